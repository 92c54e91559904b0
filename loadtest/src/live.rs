//! The figures of a run while it runs, shared between the connections that record them and whoever watches
//! (a progress line, `sluice demo`), plus the switch that stops the run early.
//!
//! Each connection keeps a small [`Batch`] and adds it to the shared report every [`FLUSH_EVERY`] responses or
//! [`FLUSH_AFTER`], whichever first, so the lock is taken rarely and held only to add a few numbers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::ErrorKind;
use crate::report::Report;

/// A batch is added to the shared report once it holds this many outcomes.
pub(crate) const FLUSH_EVERY: usize = 64;
/// ...or once this long has passed since the last flush, so watchers lag by at most about this much.
pub(crate) const FLUSH_AFTER: Duration = Duration::from_millis(100);

/// A handle on a run's live figures; clones share them. Pass one to [`crate::run_with`], then call
/// [`LiveStats::snapshot`] as often as wanted (e.g. once a second, and [`Report::since`] on the previous
/// snapshot for that second's rates and per-version counts).
#[derive(Debug, Clone, Default)]
pub struct LiveStats {
    inner: Arc<Inner>,
}

/// State behind a [`LiveStats`].
#[derive(Debug, Default)]
struct Inner {
    /// Everything flushed so far; `duration` is unset until the run ends.
    report: Mutex<Report>,
    /// When the clock started (after the first connections were open).
    started: OnceLock<Instant>,
    /// When the run ended.
    finished: OnceLock<Instant>,
    /// Late sends so far (open loop), counted without the lock.
    late_sends: AtomicU64,
    /// Whether the run is open loop, so `late_sends` is reported.
    open_loop: AtomicBool,
    /// Set by `stop`.
    stopped: AtomicBool,
    /// Wakes the open-loop scheduler when stopped.
    stop_notify: Notify,
}

impl LiveStats {
    /// A fresh handle for one run.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything recorded so far (up to about 100 ms behind), with `duration` the time since the start, or the
    /// whole run once it has ended.
    pub fn snapshot(&self) -> Report {
        let mut report = self.lock().clone();
        report.duration = self.elapsed();
        if self.inner.open_loop.load(Ordering::Relaxed) {
            report.late_sends = Some(self.inner.late_sends.load(Ordering::Relaxed));
        }
        report
    }

    /// Time since the run started (zero before), up to its end.
    pub fn elapsed(&self) -> Duration {
        let Some(started) = self.inner.started.get() else {
            return Duration::ZERO;
        };
        let end = self.inner.finished.get().copied().unwrap_or_else(Instant::now);
        end.saturating_duration_since(*started)
    }

    /// Whether the run has ended.
    pub fn is_finished(&self) -> bool {
        self.inner.finished.get().is_some()
    }

    /// Stop the run: no new request is started; those in flight finish, then `run` returns its report.
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::Relaxed);
        self.inner.stop_notify.notify_waiters();
    }

    /// Whether [`LiveStats::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Relaxed)
    }

    /// Wait until [`LiveStats::stop`] is called.
    pub(crate) async fn stopped(&self) {
        loop {
            let notified = self.inner.stop_notify.notified();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }

    /// Start the clock; later calls keep the first time.
    pub(crate) fn start(&self, at: Instant, open_loop: bool) {
        self.inner.open_loop.store(open_loop, Ordering::Relaxed);
        let _ = self.inner.started.set(at);
    }

    /// Stop the clock.
    pub(crate) fn finish(&self, at: Instant) {
        let _ = self.inner.finished.set(at);
    }

    /// Count one send that found every connection busy.
    pub(crate) fn add_late_send(&self) {
        self.inner.late_sends.fetch_add(1, Ordering::Relaxed);
    }

    /// Add a batch to the shared report and empty it.
    pub(crate) fn flush(&self, batch: &mut Batch) {
        if batch.is_empty() {
            return;
        }
        let mut report = self.lock();
        for &latency in &batch.latencies {
            report.latency.saturating_record(latency.max(1));
        }
        report.requests += batch.requests;
        for (status, count) in batch.statuses.drain(..) {
            *report.statuses.entry(status).or_default() += count;
        }
        for (kind, count) in batch.errors.drain(..) {
            *report.errors.entry(kind).or_default() += count;
        }
        for (value, count) in batch.tally.drain(..) {
            match report.tally.get_mut(&value) {
                Some(total) => *total += count,
                None => {
                    report.tally.insert(value, count);
                }
            }
        }
        drop(report);
        batch.latencies.clear();
        batch.requests = 0;
    }

    /// The shared report; a panic elsewhere cannot leave counters half-updated, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Report> {
        self.inner.report.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Outcomes one connection recorded since its last flush. Small vectors: a batch sees few distinct statuses,
/// kinds and tally values, and a linear search over them beats hashing.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Requests finished.
    requests: u64,
    /// Latency of each response in microseconds.
    latencies: Vec<u64>,
    /// Responses by status.
    statuses: Vec<(u16, u64)>,
    /// Errors by kind.
    errors: Vec<(ErrorKind, u64)>,
    /// Responses by tally value.
    tally: Vec<(String, u64)>,
}

impl Batch {
    /// Record a response.
    pub(crate) fn response(&mut self, status: u16, latency: Duration, tally: Option<&[u8]>) {
        self.requests += 1;
        self.latencies
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        bump(&mut self.statuses, &status);
        if let Some(value) = tally {
            match self.tally.iter_mut().find(|(seen, _)| seen.as_bytes() == value) {
                Some((_, count)) => *count += 1,
                None => self.tally.push((String::from_utf8_lossy(value).into_owned(), 1)),
            }
        }
    }

    /// Record a failed request.
    pub(crate) fn error(&mut self, kind: ErrorKind) {
        self.requests += 1;
        bump(&mut self.errors, &kind);
    }

    /// Outcomes recorded since the last flush.
    pub(crate) fn len(&self) -> u64 {
        self.requests
    }

    /// Whether nothing was recorded since the last flush.
    pub(crate) fn is_empty(&self) -> bool {
        self.requests == 0
    }
}

/// Add one to `key`'s count.
fn bump<K: PartialEq + Copy>(counts: &mut Vec<(K, u64)>, key: &K) {
    match counts.iter_mut().find(|(seen, _)| seen == key) {
        Some((_, count)) => *count += 1,
        None => counts.push((*key, 1)),
    }
}
