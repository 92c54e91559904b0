//! Live state and the one write path that changes it.

mod event;
mod persist;
mod state;
mod store;

#[cfg(test)]
mod tests;

pub use event::Event;
pub use persist::{StateFileError, default_state_path, unix_millis};
pub use state::{DrainedServer, LiveState, Overrides, RuntimeWeights, WeightSource};
pub use store::{OpenError, OpenOptions, ReloadOutcome, Snapshot, Store, WriteError};
