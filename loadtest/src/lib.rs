//! Load-testing and demo tools for sluice.
//!
//! - The upstream server that the end-to-end tests and `sluice demo` put behind the proxy: a real HTTP/1.1 +
//!   h2c server on `127.0.0.1:0`, built with [`upstream`], whose latency, failure rate and stalls can be changed
//!   while it runs.
//! - The load generator behind the `sluice-load` binary: describe a run with a [`LoadSpec`] (closed loop, or
//!   open loop at a fixed rate with latency counted from the intended send time), [`run`] it, and read the
//!   [`Report`]; [`run_with`] and a [`LiveStats`] handle let another task watch the figures while it runs.

mod connection;
mod error;
mod live;
mod report;
mod runner;
mod service;
mod spec;
mod state;
mod upstream;

#[cfg(test)]
mod load_tests;
#[cfg(test)]
mod tests;

pub use error::{ErrorKind, LoadError};
pub use live::LiveStats;
pub use report::{LatencySummary, Report, Summary};
pub use runner::{run, run_with};
pub use spec::{LoadSpec, Mode, Protocol, Target, is_local_host};
pub use state::SeenRequest;
pub use upstream::{UpstreamBuilder, UpstreamHandle, upstream};
