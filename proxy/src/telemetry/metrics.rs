//! Prometheus metrics and rolling windows per route and version, resolved once per table build.
//!
//! `with_label_values` hashes the labels and takes a lock on every call, so the request path never calls it:
//! each table build resolves a [`VersionTelemetry`] of ready handles per route-version, and requests only touch
//! atomics through them. The registry outlives tables so counters keep counting across reloads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use tokio::time::Instant;

use super::window::{Window, WindowStats};

/// Why an upstream failed a request; the `kind` label of `sluice_upstream_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// The connection could not be opened.
    Connect,
    /// No response headers within the timeout.
    Timeout,
    /// The connection broke (before or during the response).
    Reset,
    /// The upstream spoke invalid HTTP.
    Protocol,
}

impl UpstreamErrorKind {
    const ALL: [UpstreamErrorKind; 4] = [
        UpstreamErrorKind::Connect,
        UpstreamErrorKind::Timeout,
        UpstreamErrorKind::Reset,
        UpstreamErrorKind::Protocol,
    ];

    fn label(self) -> &'static str {
        match self {
            UpstreamErrorKind::Connect => "connect",
            UpstreamErrorKind::Timeout => "timeout",
            UpstreamErrorKind::Reset => "reset",
            UpstreamErrorKind::Protocol => "protocol",
        }
    }
}

/// Every metric of the process, and the per-version handles built from them.
pub struct Telemetry {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    upstream_errors: IntCounterVec,
    client_aborts: IntCounterVec,
    inflight: IntGaugeVec,
    route_weight: IntGaugeVec,
    server_up: IntGaugeVec,
    fallbacks: IntCounterVec,
    retries: IntCounterVec,
    versions: Mutex<HashMap<(String, String), Arc<VersionTelemetry>>>,
    start: Instant,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

/// One route-version's ready-to-use handles and its rolling window.
pub struct VersionTelemetry {
    /// Indexed by status class: 1xx..5xx → 0..4.
    requests: [IntCounter; 5],
    duration: prometheus::Histogram,
    errors: [IntCounter; 4],
    client_aborts: IntCounter,
    pub(crate) inflight: IntGauge,
    pub(crate) fallbacks: IntCounter,
    pub(crate) retries: IntCounter,
    window: Window,
    start: Instant,
}

impl std::fmt::Debug for VersionTelemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionTelemetry").finish_non_exhaustive()
    }
}

/// Histogram buckets of `sluice_request_duration_seconds`: 1 ms to 10 s.
const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("metric definitions are valid");
    registry
        .register(Box::new(vec.clone()))
        .expect("each metric is registered once");
    vec
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let vec = IntGaugeVec::new(Opts::new(name, help), labels).expect("metric definitions are valid");
    registry
        .register(Box::new(vec.clone()))
        .expect("each metric is registered once");
    vec
}

impl Telemetry {
    /// A fresh registry with sluice's metrics and the process collector (RSS, open fds, CPU).
    pub fn new() -> Arc<Telemetry> {
        let registry = Registry::new();
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "sluice_request_duration_seconds",
                "Time from receiving a request to the end of its response body, per route and version.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["route", "version"],
        )
        .expect("metric definitions are valid");
        registry.register(Box::new(duration.clone())).expect("registered once");
        #[cfg(target_os = "linux")]
        {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            registry.register(Box::new(process)).expect("registered once");
        }
        Arc::new(Telemetry {
            requests: counter_vec(
                &registry,
                "sluice_requests_total",
                "Requests answered, per route, version and status class.",
                &["route", "version", "code"],
            ),
            duration,
            upstream_errors: counter_vec(
                &registry,
                "sluice_upstream_errors_total",
                "Requests failed by the upstream, per route, version and kind (connect, timeout, reset, protocol).",
                &["route", "version", "kind"],
            ),
            client_aborts: counter_vec(
                &registry,
                "sluice_client_aborts_total",
                "Requests the client gave up on before the response ended; never counted as upstream errors.",
                &["route", "version"],
            ),
            inflight: gauge_vec(
                &registry,
                "sluice_inflight_requests",
                "Requests being proxied now, per route and version.",
                &["route", "version"],
            ),
            route_weight: gauge_vec(
                &registry,
                "sluice_route_weight",
                "Share of the route's traffic each version gets, in percent (rounded down).",
                &["route", "version"],
            ),
            server_up: gauge_vec(
                &registry,
                "sluice_upstream_server_up",
                "1 when the server takes new requests, 0 when it is down, ejected or drained.",
                &["upstream", "server"],
            ),
            fallbacks: counter_vec(
                &registry,
                "sluice_fallbacks_total",
                "Requests sent to the route's fallback because every server of the chosen version was down.",
                &["route", "version"],
            ),
            retries: counter_vec(
                &registry,
                "sluice_retries_total",
                "Requests retried on another server of the same version.",
                &["route", "version"],
            ),
            registry,
            versions: Mutex::new(HashMap::new()),
            start: Instant::now(),
        })
    }

    /// The handles of `route`/`version`, created on first use. Called when a table is built, never per request.
    pub fn version(&self, route: &str, version: &str) -> Arc<VersionTelemetry> {
        let mut versions = self.versions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (route.to_owned(), version.to_owned());
        Arc::clone(versions.entry(key).or_insert_with(|| {
            let labels = [route, version];
            let class = |c: &str| self.requests.with_label_values(&[route, version, c]);
            let kind = |k: UpstreamErrorKind| self.upstream_errors.with_label_values(&[route, version, k.label()]);
            Arc::new(VersionTelemetry {
                requests: [class("1xx"), class("2xx"), class("3xx"), class("4xx"), class("5xx")],
                duration: self.duration.with_label_values(&labels),
                errors: UpstreamErrorKind::ALL.map(kind),
                client_aborts: self.client_aborts.with_label_values(&labels),
                inflight: self.inflight.with_label_values(&labels),
                fallbacks: self.fallbacks.with_label_values(&labels),
                retries: self.retries.with_label_values(&labels),
                window: Window::new(),
                start: self.start,
            })
        }))
    }

    /// Sets the `sluice_route_weight` gauge of a route-version (share of 10,000 slots → percent).
    pub fn set_weight(&self, route: &str, version: &str, share: u32) {
        self.route_weight
            .with_label_values(&[route, version])
            .set(i64::from(share / 100));
    }

    /// The `sluice_upstream_server_up` gauge of one server, resolved once per pool.
    pub fn server_up(&self, upstream: &str, server: &str) -> IntGauge {
        self.server_up.with_label_values(&[upstream, server])
    }

    /// The registry, for the exposition endpoint.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The current second of the rolling windows' clock.
    pub fn now_secs(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    /// Counts of `route`/`version` over the last `span` seconds ending now; `None` for a pair never seen.
    pub fn stats(&self, route: &str, version: &str, span: Duration) -> Option<WindowStats> {
        self.stats_at(route, version, self.now_secs(), span)
    }

    /// Like [`Telemetry::stats`] for the window ending at second `now_secs`: the controller reads stable and
    /// canary over exactly the same seconds this way.
    pub fn stats_at(&self, route: &str, version: &str, now_secs: u64, span: Duration) -> Option<WindowStats> {
        let versions = self.versions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let v = versions.get(&(route.to_owned(), version.to_owned()))?;
        Some(v.window.stats(now_secs, span.as_secs().max(1)))
    }
}

/// How a request ended, for [`VersionTelemetry::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response went out with this status (from the upstream or, for 502/504, from sluice).
    Answered {
        /// The status the client got.
        status: u16,
        /// Set when the upstream caused the failure.
        upstream_error: Option<UpstreamErrorKind>,
        /// sluice answered itself (a 503 for a version with no server up is not the version's failure).
        local: bool,
    },
    /// The client went away before the response ended.
    ClientAborted,
}

impl VersionTelemetry {
    /// Counts an upstream failure that a retry or the fallback hid from the client.
    pub fn count_upstream_error(&self, kind: UpstreamErrorKind) {
        self.errors[kind as usize].inc();
    }

    /// Records one request that started at `started`. Upstream 5xx answers count as errors in the window;
    /// client aborts count only as aborts.
    pub fn finish(&self, started: Instant, outcome: Outcome) {
        self.inflight.dec();
        match outcome {
            Outcome::ClientAborted => self.client_aborts.inc(),
            Outcome::Answered {
                status,
                upstream_error,
                local,
            } => {
                let elapsed = started.elapsed();
                let class = usize::from((status / 100).clamp(1, 5) - 1);
                self.requests[class].inc();
                self.duration.observe(elapsed.as_secs_f64());
                if let Some(kind) = upstream_error {
                    self.errors[kind as usize].inc();
                }
                let failed = upstream_error.is_some() || (!local && status >= 500);
                self.window
                    .record(started.duration_since(self.start).as_secs(), elapsed, failed);
            }
        }
    }
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[tokio::test]
    async fn a_request_lands_in_the_current_second() {
        let telemetry = Telemetry::new();
        let v = telemetry.version("web", "blue");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        v.inflight.inc();
        v.finish(
            Instant::now(),
            Outcome::Answered {
                status: 200,
                upstream_error: None,
                local: false,
            },
        );
        let now = telemetry.now_secs();
        let stats = telemetry.stats_at("web", "blue", now, Duration::from_secs(1)).unwrap();
        assert_eq!(stats.requests, 1, "now_secs {now}");
    }
}
