//! Load-testing and demo tools for sluice.
//!
//! For now this is the upstream server that the end-to-end tests and `sluice demo` put behind the proxy:
//! a real HTTP/1.1 + h2c server on `127.0.0.1:0`, built with [`upstream`], whose latency, failure rate and
//! stalls can be changed while it runs.

mod service;
mod state;
mod upstream;

#[cfg(test)]
mod tests;

pub use state::SeenRequest;
pub use upstream::{UpstreamBuilder, UpstreamHandle, upstream};
