//! Building windows for tests.

use sluice_proxy::telemetry::histogram::{BUCKETS, bucket_of};
use sluice_proxy::telemetry::window::WindowStats;

/// A window with `requests` requests, `errors` of them failed, and the given latencies (µs) in its histogram.
pub(super) fn window(requests: u64, errors: u64, latencies_micros: impl IntoIterator<Item = u64>) -> WindowStats {
    let mut latency = vec![0; BUCKETS];
    for micros in latencies_micros {
        latency[bucket_of(micros)] += 1;
    }
    WindowStats {
        requests,
        errors,
        latency,
    }
}

/// A window whose `requests` latencies are spread evenly over `from..to` µs.
pub(super) fn spread(requests: u64, errors: u64, from: u64, to: u64) -> WindowStats {
    window(
        requests,
        errors,
        (0..requests).map(|i| from + (to - from) * i / requests.max(1)),
    )
}
