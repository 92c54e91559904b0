//! The promotion controller: moves a route's traffic from its stable version to a canary step by step (or in one
//! blue-green switch), judging each interval with [`crate::analysis`], and rolls back on failure.

mod machine;
mod runner;
mod webhook;

#[cfg(test)]
mod runner_tests;
#[cfg(test)]
mod tests;

pub use machine::{Gate, Input, Transition, idle, step};
pub use runner::{Controller, Decision};
