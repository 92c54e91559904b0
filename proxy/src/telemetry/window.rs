//! Lock-free rolling windows: per route and version, one slot per second over the last few minutes, each slot
//! with a request count, an upstream-error count and a latency histogram.
//!
//! Writers add with relaxed atomics. A slot is reused when the clock comes round to it again; the first writer of
//! the new second claims it (a compare-and-swap on its epoch), zeroes it, then publishes the new epoch, and the
//! other writers of that second wait the few nanoseconds that takes — so no count is ever lost, and a window's
//! totals equal what clients saw.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::histogram::{BUCKETS, bucket_of};

/// Seconds the windows remember.
pub const HORIZON_SECS: u64 = 300;

/// An epoch value no real second has: the slot is being reset.
const RESETTING: u64 = u64::MAX;

struct Slot {
    /// The second (since the recorder's start) whose counts the slot holds.
    epoch: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    latency: Box<[AtomicU32]>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            // No second is 0 - 1: the slot starts empty for every real second.
            epoch: AtomicU64::new(u64::MAX - 1),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
        }
    }
}

/// One route-version's rolling window.
pub struct Window {
    slots: Box<[Slot]>,
}

impl std::fmt::Debug for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Window").field("slots", &self.slots.len()).finish()
    }
}

/// Counts over a span of seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowStats {
    /// Requests that completed.
    pub requests: u64,
    /// Of those, failures caused by the upstream (5xx answers, connect failures, resets, timeouts).
    pub errors: u64,
    /// Latency histogram over [`super::histogram::BUCKETS`] fixed buckets.
    pub latency: Vec<u64>,
}

impl WindowStats {
    /// Empty stats.
    pub fn empty() -> WindowStats {
        WindowStats {
            requests: 0,
            errors: 0,
            latency: vec![0; BUCKETS],
        }
    }

    /// The share of requests that failed, `None` without requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }

    /// The latency at quantile `q`.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        super::histogram::quantile(&self.latency, q)
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &WindowStats) {
        self.requests += other.requests;
        self.errors += other.errors;
        for (a, b) in self.latency.iter_mut().zip(&other.latency) {
            *a += b;
        }
    }
}

impl Default for Window {
    fn default() -> Self {
        Window::new()
    }
}

impl Window {
    /// An empty window over [`HORIZON_SECS`].
    pub fn new() -> Window {
        Window {
            slots: (0..HORIZON_SECS).map(|_| Slot::new()).collect(),
        }
    }

    /// Records one finished request in second `now_secs`.
    pub fn record(&self, now_secs: u64, latency: Duration, upstream_error: bool) {
        let slot = self.claim(now_secs);
        slot.requests.fetch_add(1, Ordering::Relaxed);
        if upstream_error {
            slot.errors.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        slot.latency[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
    }

    fn claim(&self, now_secs: u64) -> &Slot {
        let slot = &self.slots[(now_secs % HORIZON_SECS) as usize];
        loop {
            let epoch = slot.epoch.load(Ordering::Acquire);
            if epoch == now_secs {
                return slot;
            }
            if epoch == RESETTING {
                std::hint::spin_loop();
                continue;
            }
            if epoch > now_secs && epoch != u64::MAX - 1 {
                // A writer that read the clock a whole horizon ago and was descheduled since: count it in the
                // newer second rather than lose it.
                return slot;
            }
            if slot
                .epoch
                .compare_exchange(epoch, RESETTING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                slot.requests.store(0, Ordering::Relaxed);
                slot.errors.store(0, Ordering::Relaxed);
                for bucket in slot.latency.iter() {
                    bucket.store(0, Ordering::Relaxed);
                }
                slot.epoch.store(now_secs, Ordering::Release);
                return slot;
            }
        }
    }

    /// Totals over the `span` seconds ending with second `now_secs` (inclusive), at most [`HORIZON_SECS`].
    pub fn stats(&self, now_secs: u64, span: u64) -> WindowStats {
        let span = span.clamp(1, HORIZON_SECS);
        let first = now_secs.saturating_sub(span - 1);
        let mut out = WindowStats::empty();
        for slot in self.slots.iter() {
            let epoch = slot.epoch.load(Ordering::Acquire);
            if epoch == RESETTING || epoch < first || epoch > now_secs {
                continue;
            }
            out.requests += slot.requests.load(Ordering::Relaxed);
            out.errors += slot.errors.load(Ordering::Relaxed);
            for (total, bucket) in out.latency.iter_mut().zip(slot.latency.iter()) {
                *total += u64::from(bucket.load(Ordering::Relaxed));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn counts_within_the_span_only() {
        let w = Window::new();
        w.record(10, Duration::from_millis(5), false);
        w.record(10, Duration::from_millis(5), true);
        w.record(12, Duration::from_millis(50), false);
        let all = w.stats(12, 3);
        assert_eq!((all.requests, all.errors), (3, 1));
        let last = w.stats(12, 1);
        assert_eq!((last.requests, last.errors), (1, 0));
        assert!(last.quantile(0.5).unwrap() >= Duration::from_millis(50));
    }

    #[test]
    fn slots_are_reused_after_the_horizon() {
        let w = Window::new();
        w.record(1, Duration::from_millis(1), true);
        w.record(1 + HORIZON_SECS, Duration::from_millis(1), false);
        let stats = w.stats(1 + HORIZON_SECS, HORIZON_SECS);
        assert_eq!(
            (stats.requests, stats.errors),
            (1, 0),
            "the old second's counts were cleared"
        );
    }

    #[test]
    fn concurrent_writers_across_second_boundaries_lose_nothing() {
        let w = Arc::new(Window::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let w = Arc::clone(&w);
                std::thread::spawn(move || {
                    for i in 0..50_000u64 {
                        // Seconds advance every 1,000 records, at slightly different points per thread.
                        w.record((i + t * 250) / 1_000, Duration::from_micros(i % 5_000), i % 10 == 0);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let stats = w.stats(60, 300);
        assert_eq!(stats.requests, 200_000);
        assert_eq!(stats.errors, 20_000);
        assert_eq!(stats.latency.iter().sum::<u64>(), 200_000);
    }
}
