//! Per-version telemetry recorded on the request path without locks: rolling windows for the controller and
//! the state endpoint.

pub mod histogram;
pub mod window;
