//! End-to-end tests: the real `sluice` binary and real upstreams on ephemeral loopback ports, one test binary.

// Helpers outside `#[test]` functions panic on setup failures too: that is a failed test, not a crash.
#![allow(clippy::unwrap_used)]

mod cli;
mod edge;
mod errors;
mod forwarding;
mod http1;
mod live;
mod protocols;
mod resilience;
mod rollout;
mod shutdown;
mod split;
mod sticky;
mod streaming;
mod tls;

use std::net::SocketAddr;
use std::path::Path;

/// The `sluice` binary cargo built for these tests.
pub(crate) fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sluice"))
}

/// A config with `blue` and `canary` upstreams and one route `web` with the given weights.
pub(crate) fn two_version_config(blue: SocketAddr, canary: SocketAddr, weights: &str, extra: &str) -> String {
    format!(
        r#"
[listen]
http = ["127.0.0.1:0"]

[upstreams.blue]
servers = ["{blue}"]

[upstreams.canary]
servers = ["{canary}"]

[[routes]]
name = "web"
weights = {{ {weights} }}
{extra}
"#
    )
}
