//! Model types for surviving failing upstreams and abusive clients: health checks, outlier ejection, retries,
//! fallback and client-side limits.

use std::time::Duration;

/// `[upstreams.NAME.health]`: active HTTP health checks of each server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Path requested with GET; a 2xx or 3xx answer is a pass.
    pub path: String,
    /// Time between checks of one server.
    pub interval: Duration,
    /// A check that takes longer fails.
    pub timeout: Duration,
    /// Consecutive passes that bring a down server back.
    pub healthy: u32,
    /// Consecutive failures that take a server down.
    pub unhealthy: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: "/".to_owned(),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            healthy: 2,
            unhealthy: 3,
        }
    }
}

/// `[upstreams.NAME.outlier]`: passive ejection of servers that fail real requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierDetection {
    /// Consecutive upstream failures (connect, reset, timeout, 5xx from sluice's view) that eject a server.
    pub consecutive_failures: u32,
    /// How long the first ejection lasts; each further ejection in a row doubles it.
    pub base_ejection: Duration,
    /// The longest an ejection lasts.
    pub max_ejection: Duration,
    /// At most this share of a group's servers (percent, rounded down, at least one server) is ejected at once;
    /// 0 turns ejection off.
    pub max_ejected_percent: u32,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        OutlierDetection {
            consecutive_failures: 5,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(300),
            max_ejected_percent: 50,
        }
    }
}

/// Retries of idempotent requests that failed before any response byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Extra attempts per request on another server of the same version (0 turns retries off).
    pub attempts: u32,
    /// Retries may add at most this percentage of the route's requests as extra load.
    pub budget_percent: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 1,
            budget_percent: 20,
        }
    }
}

/// `[limits]`: what a client may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// A client must send a complete request head within this time (slowloris protection); an idle keep-alive
    /// connection is closed after this long too, since the wait for the next request head starts the same timer.
    pub header_timeout: Duration,
    /// Largest request head (request line and headers) in bytes; larger ones get 431.
    pub max_header_bytes: usize,
    /// Largest request body in bytes; larger ones get 413. `None`: no limit (bodies stream).
    pub max_body_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_body_bytes: None,
        }
    }
}
