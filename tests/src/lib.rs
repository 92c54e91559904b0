//! sluice's end-to-end harness: run the real `sluice` binary and real upstreams on ephemeral loopback ports,
//! talk to them over real sockets, and wait for outcomes with bounded patience.

mod admin;
mod client;
mod echo;
mod eventually;
mod process;
mod repeat;
mod tls;

pub use admin::AdminClient;
pub use client::{Answer, TestClient};
pub use echo::EchoUpstream;
pub use process::{SluiceProcess, peak_rss_kib};
pub use repeat::RepeatBody;
pub use sluice_loadtest::{UpstreamHandle, upstream};
pub use tls::{Leaf, TestCa, TlsClient, TlsConnection, replace};
