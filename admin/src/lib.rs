//! sluice's control plane: the admin HTTP API (`docs/admin-api.md`).
//!
//! A separate HTTP/1.1 listener that reads live state and changes it through the one write path,
//! [`sluice_config::Store`]. Reads (`GET`) are open; changes (`PUT`, `POST`) need the bearer token when one is
//! configured.

pub mod analysis;
mod auth;
mod body;
pub mod controller;
mod endpoint;
mod error;
mod metrics;
mod reply;
mod router;
mod server;
mod stats;
mod view;

#[cfg(test)]
mod tests;

pub use auth::load_token;
pub use error::AdminError;
pub use server::{AdminState, serve};
