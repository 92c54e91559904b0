//! sluice's data plane: accept client connections, pick a route and a version from one immutable table snapshot,
//! and forward the request to a server of that version with bodies streamed both ways.

mod body;
mod connector;
mod edge;
mod error;
mod forward;
mod h1;
mod headers;
mod health;
mod host;
mod keepalive;
mod listener;
mod pool;
mod retry;
mod schedule;
mod sticky;
mod table;
pub mod telemetry;
pub mod tls;
mod upgrade;

pub use body::{BodyError, ProxyBody};
pub use error::{ErrorSource, ProxyError};
pub use forward::Proxy;
pub use health::supervise as supervise_health;
pub use listener::{Drain, Listener, serve};
pub use sticky::bucket_ranges;
pub use table::{RouteEntry, Table};
