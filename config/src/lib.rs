//! sluice's configuration: the TOML file types, the validated model, and how one becomes the other.
//!
//! No networking here: every other crate depends on this one.

mod address;
mod document;
mod duration;
mod error;
mod file;
mod key_path;
mod model;
mod share;
mod validate;

pub use error::{ConfigError, Location};
pub use model::{Config, HostPattern, Listen, Route, Runtime, ServerAddr, Timeouts, Upstream, Weight};
pub use share::{SLOTS, percent, shares};
