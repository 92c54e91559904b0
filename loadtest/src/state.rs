//! What an upstream shares between its handle and its connections: run-time knobs as atomics, counters, and
//! the last request seen.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::{HeaderMap, HeaderValue, Method, Uri, Version};
use tokio::time::Instant;

/// A request as the upstream saw it, recorded once its body has been read to the end.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// Request method.
    pub method: Method,
    /// Request URI as received (origin form for HTTP/1.1, absolute for h2).
    pub uri: Uri,
    /// HTTP version the request arrived with.
    pub version: Version,
    /// Request headers as received.
    pub headers: HeaderMap,
    /// Number of body bytes received (0 for a request without a body).
    pub body_bytes: u64,
}

/// State shared by the handle and every connection of one upstream. The request path only reads atomics and
/// swaps one `Arc`; it never takes a lock.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The upstream's name, as given to `upstream()`.
    pub(crate) name: String,
    /// `name` as a header value, validated once at spawn.
    pub(crate) name_header: HeaderValue,
    /// Added latency in nanoseconds.
    latency_nanos: AtomicU64,
    /// Share of requests answered 500, as `f64` bits, always within `0.0..=1.0`.
    fail_rate_bits: AtomicU64,
    /// End of the current stall, in nanoseconds since `epoch`; 0 means no stall was ever set.
    stall_until_nanos: AtomicU64,
    /// Reference point for `stall_until_nanos`.
    epoch: Instant,
    /// Requests answered.
    requests: AtomicU64,
    /// The last request answered.
    last: ArcSwapOption<SeenRequest>,
}

impl Shared {
    /// New state with the given name and initial knobs.
    pub(crate) fn new(name: String, name_header: HeaderValue, latency: Duration, fail_rate: f64) -> Self {
        let shared = Self {
            name,
            name_header,
            latency_nanos: AtomicU64::new(0),
            fail_rate_bits: AtomicU64::new(0.0_f64.to_bits()),
            stall_until_nanos: AtomicU64::new(0),
            epoch: Instant::now(),
            requests: AtomicU64::new(0),
            last: ArcSwapOption::empty(),
        };
        shared.set_latency(latency);
        shared.set_fail_rate(fail_rate);
        shared
    }

    /// Latency currently added before each answer.
    pub(crate) fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_nanos.load(Ordering::Relaxed))
    }

    /// Set the added latency (saturating at about 584 years).
    pub(crate) fn set_latency(&self, latency: Duration) {
        self.latency_nanos.store(nanos(latency), Ordering::Relaxed);
    }

    /// Share of requests currently answered 500.
    pub(crate) fn fail_rate(&self) -> f64 {
        f64::from_bits(self.fail_rate_bits.load(Ordering::Relaxed))
    }

    /// Set the failure share, clamped to `0.0..=1.0` (NaN counts as 0).
    pub(crate) fn set_fail_rate(&self, rate: f64) {
        self.fail_rate_bits.store(clamp_rate(rate).to_bits(), Ordering::Relaxed);
    }

    /// Make every request arriving within `duration` from now wait until then. Overlapping stalls extend.
    pub(crate) fn stall(&self, duration: Duration) {
        let until = nanos(self.epoch.elapsed().saturating_add(duration)).max(1);
        self.stall_until_nanos.fetch_max(until, Ordering::Relaxed);
    }

    /// The end of the stall a request arriving now must wait for, if it is still ahead.
    pub(crate) fn stall_deadline(&self) -> Option<Instant> {
        let until = self.stall_until_nanos.load(Ordering::Relaxed);
        if until == 0 {
            return None;
        }
        let deadline = self.epoch + Duration::from_nanos(until);
        (deadline > Instant::now()).then_some(deadline)
    }

    /// Requests answered so far.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Acquire)
    }

    /// Record an answered request.
    pub(crate) fn record(&self, seen: SeenRequest) {
        self.last.store(Some(Arc::new(seen)));
        self.requests.fetch_add(1, Ordering::Release);
    }

    /// The last request answered, if any.
    pub(crate) fn last_request(&self) -> Option<SeenRequest> {
        self.last.load_full().map(|seen| SeenRequest::clone(&seen))
    }
}

/// A duration in nanoseconds, saturating at `u64::MAX`.
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Clamp a failure share to `0.0..=1.0`, mapping NaN to 0.
fn clamp_rate(rate: f64) -> f64 {
    if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) }
}
