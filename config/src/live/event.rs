//! The change log: the last changes made to live state, for `GET /api/v1/events`.

use std::collections::VecDeque;
use std::time::SystemTime;

/// How many changes the log keeps.
pub(crate) const EVENTS_KEPT: usize = 256;

/// One change (or rejected change) to live state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The version it published, `None` when it was rejected or changed nothing.
    pub version: Option<u64>,
    /// When it happened.
    pub at: SystemTime,
    /// Who asked: `admin api`, `file watcher`, `SIGHUP`, `controller`, …
    pub who: String,
    /// What was changed, e.g. `weights of route web` or `reload`.
    pub what: String,
    /// The state before, in a line.
    pub before: String,
    /// The state after, in a line (or the error).
    pub after: String,
}

/// A bounded log of events, oldest dropped first.
#[derive(Debug, Default)]
pub(crate) struct EventLog {
    events: VecDeque<Event>,
}

impl EventLog {
    pub(crate) fn push(&mut self, event: Event) {
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    pub(crate) fn recent(&self, limit: usize) -> Vec<Event> {
        let skip = self.events.len().saturating_sub(limit);
        self.events.iter().skip(skip).cloned().collect()
    }
}
