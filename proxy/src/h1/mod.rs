//! sluice's own HTTP/1.1: the client for upstream connections, and the fast path for client connections.
//!
//! hyper's client runs every connection as a task of its own and hands it requests, responses and body chunks
//! through channels, so each proxied request costs extra task wake-ups and channel operations on top of the work
//! on the client's connection. Here the request's own task writes the request and reads the response head, and the
//! response body reads straight from the socket whenever the client side polls it: one task drives both
//! connections. HTTP/2 upstreams keep hyper's client, whose multiplexing this does not replace.
//!
//! On the client side, [`server`] serves bodiless HTTP/1.1 requests (most of what a proxy sees) and hands every
//! other kind of request to hyper with the connection.

mod body;
mod conn;
mod controls;
mod decode;
mod encode;
mod error;
mod fields;
mod request;
mod response;
pub(crate) mod server;

pub(crate) use body::H1Body;
pub(crate) use conn::{Conn, Failure, Upload};
pub(crate) use decode::DecodeError;
pub(crate) use encode::{BodyFraming, head as encode_head};
pub(crate) use error::H1Error;
pub(crate) use fields::RawFields;
