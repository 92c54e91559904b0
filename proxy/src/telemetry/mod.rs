//! Per-version telemetry recorded on the request path without locks: Prometheus metrics, and rolling windows
//! for the controller and the state endpoint.

pub mod histogram;
mod metrics;
pub mod window;

pub use metrics::{Outcome, Telemetry, UpstreamErrorKind, VersionTelemetry};
