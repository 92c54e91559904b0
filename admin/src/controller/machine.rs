//! The rollout state machine: pure, no I/O, no clock of its own — every input carries the time, so every
//! transition is tested deterministically.
//!
//! idle → initializing (pre-rollout gate) → progressing (step k, one analysis per interval) → promoting (confirm
//! gate) → succeeded; any analysis streak of `failure_threshold` failures, a deadline of inconclusive analyses, or
//! an abort → failed (canary back to 0 %). Pause holds any active phase; resume returns to it.

use sluice_config::{Phase, Rollout, RolloutState, Strategy};

use crate::analysis::Verdict;

/// Something that happened to a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An operator (or a new revision) starts a rollout.
    Start {
        /// The revision it is for.
        revision: Option<String>,
    },
    /// A gate's webhooks answered: true = open.
    Gate(bool),
    /// One interval's analysis.
    Analysis(Verdict),
    /// Operator commands.
    Pause,
    /// See [`Input::Pause`].
    Resume,
    /// Skip to 100 % now.
    Promote,
    /// Roll back now.
    Abort,
}

/// What the runner must do after a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The new state (persisted with the weights).
    pub state: RolloutState,
    /// Canary share in percent to set, when traffic moves.
    pub canary_percent: Option<u32>,
    /// The gate to ask next (its webhooks), if any.
    pub gate: Option<Gate>,
    /// One line for the decision log and the event log.
    pub note: String,
}

/// Webhook gates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Before traffic moves at all.
    PreRollout,
    /// Before the next step's traffic increase.
    PreStep,
    /// Before promotion (canary) or the switch (blue-green).
    ConfirmPromotion,
}

/// A fresh state for a rollout that has not run.
pub fn idle(rollout: &Rollout) -> RolloutState {
    RolloutState {
        phase: Phase::Idle,
        step: 0,
        failures: 0,
        paused_from: None,
        reason: None,
        revision: None,
        stable: rollout.stable.clone(),
        canary: rollout.canary.clone(),
        started_at_ms: 0,
        last_conclusive_ms: 0,
    }
}

/// Applies `input` at `now_ms` (Unix milliseconds); `None` when the input means nothing in this phase.
pub fn step(rollout: &Rollout, state: &RolloutState, input: Input, now_ms: u64) -> Option<Transition> {
    let mut next = state.clone();
    let to = |next: RolloutState, canary_percent: Option<u32>, gate: Option<Gate>, note: String| {
        Some(Transition {
            state: next,
            canary_percent,
            gate,
            note,
        })
    };
    match (state.phase, input) {
        (_, Input::Start { revision }) if !state.phase.is_active() && state.phase != Phase::Paused => {
            next = idle(rollout);
            next.phase = Phase::Initializing;
            next.revision = revision;
            next.started_at_ms = now_ms;
            next.last_conclusive_ms = now_ms;
            to(
                next,
                Some(0),
                Some(Gate::PreRollout),
                "rollout started; asking the pre-rollout gate".into(),
            )
        }
        (Phase::Initializing, Input::Gate(true)) => {
            next.last_conclusive_ms = now_ms;
            match rollout.strategy {
                Strategy::Canary if rollout.steps.len() < 2 => {
                    // A single 100 % step is a direct promotion, still behind its gate.
                    next.phase = Phase::Promoting;
                    to(
                        next,
                        None,
                        Some(Gate::ConfirmPromotion),
                        "pre-rollout gate open; asking to promote".into(),
                    )
                }
                Strategy::Canary => {
                    next.phase = Phase::Progressing;
                    next.step = 0;
                    let percent = rollout.steps[0];
                    to(
                        next,
                        Some(percent),
                        None,
                        format!("pre-rollout gate open; step 1 at {percent} %"),
                    )
                }
                Strategy::BlueGreen => {
                    next.phase = Phase::Promoting;
                    to(
                        next,
                        None,
                        Some(Gate::ConfirmPromotion),
                        "pre-rollout gate open; asking to switch".into(),
                    )
                }
            }
        }
        (Phase::Initializing, Input::Gate(false)) => fail(next, "the pre-rollout gate refused; rollout aborted"),
        (Phase::Progressing, Input::Analysis(verdict)) => analysed(rollout, next, verdict, now_ms),
        (Phase::Progressing, Input::Gate(true)) if rollout.strategy == Strategy::Canary => {
            // The pre-step gate opened: move to the next step (the last step, 100 %, is promotion's).
            next.step += 1;
            next.failures = 0;
            next.last_conclusive_ms = now_ms;
            let percent = rollout.steps[next.step];
            to(
                next,
                Some(percent),
                None,
                format!("pre-step gate open; step {} at {percent} %", state.step + 2),
            )
        }
        (Phase::Progressing, Input::Gate(false)) => {
            to(next, None, None, "the pre-step gate refused; holding the step".into())
        }
        (Phase::Promoting, Input::Gate(true)) => match rollout.strategy {
            Strategy::Canary => {
                next.phase = Phase::Succeeded;
                next.reason = Some(format!("promoted: {} is the new stable version", state.canary));
                next.stable = state.canary.clone();
                to(
                    next,
                    Some(100),
                    None,
                    "confirm-promotion gate open; promoted to 100 %".into(),
                )
            }
            Strategy::BlueGreen => {
                next.phase = Phase::Progressing;
                next.step = 0;
                next.last_conclusive_ms = now_ms;
                to(
                    next,
                    Some(100),
                    None,
                    "switched all traffic to the new version; analysing".into(),
                )
            }
        },
        (Phase::Promoting, Input::Gate(false)) => {
            to(next, None, None, "the confirm-promotion gate refused; holding".into())
        }
        (phase, Input::Pause) if phase.is_active() => {
            next.phase = Phase::Paused;
            next.paused_from = Some(phase);
            to(next, None, None, format!("paused while {}", phase.as_str()))
        }
        (Phase::Paused, Input::Resume) => {
            next.phase = state.paused_from.unwrap_or(Phase::Progressing);
            next.paused_from = None;
            // Time spent paused does not count towards the progress deadline.
            next.last_conclusive_ms = now_ms;
            let note = format!("resumed {}", next.phase.as_str());
            to(next, None, None, note)
        }
        (phase, Input::Promote) if phase.is_active() || phase == Phase::Paused => {
            next.phase = Phase::Succeeded;
            next.paused_from = None;
            next.stable = state.canary.clone();
            next.reason = Some("promoted by an operator".into());
            to(next, Some(100), None, "promoted to 100 % by an operator".into())
        }
        (phase, Input::Abort) if phase.is_active() || phase == Phase::Paused => {
            next.paused_from = None;
            fail(next, "aborted by an operator")
        }
        _ => None,
    }
}

fn fail(mut next: RolloutState, reason: &str) -> Option<Transition> {
    next.phase = Phase::Failed;
    next.reason = Some(reason.to_owned());
    Some(Transition {
        state: next,
        canary_percent: Some(0),
        gate: None,
        note: format!("rolled back: {reason}"),
    })
}

fn analysed(rollout: &Rollout, mut next: RolloutState, verdict: Verdict, now_ms: u64) -> Option<Transition> {
    let note = |next: RolloutState, percent: Option<u32>, gate: Option<Gate>, note: String| {
        Some(Transition {
            state: next,
            canary_percent: percent,
            gate,
            note,
        })
    };
    match verdict {
        Verdict::Fail => {
            next.failures += 1;
            next.last_conclusive_ms = now_ms;
            // Blue-green switches back at the first failure: all users are on the new version.
            let threshold = if rollout.strategy == Strategy::BlueGreen {
                1
            } else {
                rollout.failure_threshold
            };
            if next.failures >= threshold {
                let reason = format!("{} failed analyses in a row", next.failures);
                return fail(next, &reason);
            }
            let failures = next.failures;
            note(
                next,
                None,
                None,
                format!("analysis failed ({failures} of {threshold}); holding"),
            )
        }
        Verdict::Inconclusive => {
            let waited = now_ms.saturating_sub(next.last_conclusive_ms);
            if u128::from(waited) >= rollout.progress_deadline.as_millis() {
                let reason = format!(
                    "no conclusive analysis for {} s (progress deadline): too little traffic to judge",
                    waited / 1000
                );
                return fail(next, &reason);
            }
            note(
                next,
                None,
                None,
                "analysis inconclusive (too little data); holding the step".into(),
            )
        }
        Verdict::Pass => {
            next.failures = 0;
            next.last_conclusive_ms = now_ms;
            match rollout.strategy {
                Strategy::BlueGreen => {
                    next.step += 1;
                    if next.step >= rollout.steps.len() {
                        next.phase = Phase::Succeeded;
                        next.stable = next.canary.clone();
                        next.reason = Some(format!("switched: {} is the new stable version", next.canary));
                        return note(next, None, None, "post-switch analyses passed; succeeded".into());
                    }
                    let step = next.step;
                    note(next, None, None, format!("post-switch analysis {step} passed"))
                }
                Strategy::Canary => {
                    if next.step + 1 >= rollout.steps.len() - 1 {
                        // The next step is 100 %: that is promotion, behind its own gate.
                        next.phase = Phase::Promoting;
                        return note(
                            next,
                            None,
                            Some(Gate::ConfirmPromotion),
                            "analysis passed; asking to promote".into(),
                        );
                    }
                    note(
                        next,
                        None,
                        Some(Gate::PreStep),
                        "analysis passed; asking to increase traffic".into(),
                    )
                }
            }
        }
    }
}
