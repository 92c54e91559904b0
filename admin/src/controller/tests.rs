//! Every transition of the state machine, with explicit clocks.

use std::time::Duration;

use sluice_config::{AnalysisSettings, Phase, Rollout, Strategy};

use super::machine::{Gate, Input, idle, step};
use crate::analysis::Verdict;

fn rollout(strategy: Strategy) -> Rollout {
    Rollout {
        strategy,
        stable: "blue".into(),
        canary: "canary".into(),
        steps: vec![5, 10, 25, 50, 100],
        interval: Duration::from_secs(5),
        failure_threshold: 2,
        min_requests: 100,
        progress_deadline: Duration::from_secs(60),
        analysis: AnalysisSettings::default(),
        webhooks: Vec::new(),
        revision: None,
    }
}

/// Drives a canary rollout to step 1 at 5 %.
fn progressing(r: &Rollout) -> sluice_config::RolloutState {
    let started = step(
        r,
        &idle(r),
        Input::Start {
            revision: Some("v2".into()),
        },
        1_000,
    )
    .unwrap();
    assert_eq!(started.state.phase, Phase::Initializing);
    assert_eq!(started.gate, Some(Gate::PreRollout));
    let t = step(r, &started.state, Input::Gate(true), 1_000).unwrap();
    assert_eq!((t.state.phase, t.canary_percent), (Phase::Progressing, Some(5)));
    t.state
}

#[test]
fn healthy_canary_walks_every_step_then_promotes_behind_the_gate() {
    let r = rollout(Strategy::Canary);
    let mut s = progressing(&r);
    let mut now = 1_000;
    let mut shares = vec![5];
    loop {
        now += 5_000;
        let t = step(&r, &s, Input::Analysis(Verdict::Pass), now).unwrap();
        s = t.state;
        let opened = step(&r, &s, Input::Gate(true), now).unwrap();
        match t.gate {
            Some(Gate::PreStep) => shares.push(opened.canary_percent.unwrap()),
            Some(Gate::ConfirmPromotion) => {
                assert_eq!(
                    (opened.state.phase, opened.canary_percent),
                    (Phase::Succeeded, Some(100))
                );
                assert_eq!(opened.state.stable, "canary", "the canary is the new stable version");
                break;
            }
            other => panic!("unexpected gate {other:?}"),
        }
        s = opened.state;
    }
    assert_eq!(shares, vec![5, 10, 25, 50]);
}

#[test]
fn failures_below_the_threshold_hold_and_the_threshold_rolls_back() {
    let r = rollout(Strategy::Canary);
    let s = progressing(&r);
    let once = step(&r, &s, Input::Analysis(Verdict::Fail), 6_000).unwrap();
    assert_eq!(
        (once.state.phase, once.state.failures, once.canary_percent),
        (Phase::Progressing, 1, None)
    );
    let twice = step(&r, &once.state, Input::Analysis(Verdict::Fail), 11_000).unwrap();
    assert_eq!((twice.state.phase, twice.canary_percent), (Phase::Failed, Some(0)));
    assert!(twice.state.reason.unwrap().contains("2 failed analyses"));
}

#[test]
fn a_pass_resets_the_failure_streak() {
    let r = rollout(Strategy::Canary);
    let s = progressing(&r);
    let failed = step(&r, &s, Input::Analysis(Verdict::Fail), 6_000).unwrap().state;
    let passed = step(&r, &failed, Input::Analysis(Verdict::Pass), 11_000).unwrap().state;
    assert_eq!(passed.failures, 0);
}

#[test]
fn inconclusive_holds_until_the_deadline_then_fails_with_that_reason() {
    let r = rollout(Strategy::Canary);
    let s = progressing(&r);
    let held = step(&r, &s, Input::Analysis(Verdict::Inconclusive), 30_000).unwrap();
    assert_eq!((held.state.phase, held.canary_percent), (Phase::Progressing, None));
    assert_eq!(held.state.failures, 0, "too little data is not a failure");
    let late = step(&r, &held.state, Input::Analysis(Verdict::Inconclusive), 61_000).unwrap();
    assert_eq!(late.state.phase, Phase::Failed);
    assert!(late.state.reason.unwrap().contains("progress deadline"));
}

#[test]
fn refused_gates_hold_or_abort() {
    let r = rollout(Strategy::Canary);
    let started = step(&r, &idle(&r), Input::Start { revision: None }, 0).unwrap();
    let refused = step(&r, &started.state, Input::Gate(false), 0).unwrap();
    assert_eq!((refused.state.phase, refused.canary_percent), (Phase::Failed, Some(0)));
    let s = progressing(&r);
    let asked = step(&r, &s, Input::Analysis(Verdict::Pass), 6_000).unwrap();
    let held = step(&r, &asked.state, Input::Gate(false), 6_000).unwrap();
    assert_eq!(
        (held.state.phase, held.state.step, held.canary_percent),
        (Phase::Progressing, 0, None)
    );
}

#[test]
fn pause_holds_resume_returns_and_does_not_count_paused_time() {
    let r = rollout(Strategy::Canary);
    let s = progressing(&r);
    let paused = step(&r, &s, Input::Pause, 2_000).unwrap().state;
    assert_eq!(
        (paused.phase, paused.paused_from),
        (Phase::Paused, Some(Phase::Progressing))
    );
    assert!(
        step(&r, &paused, Input::Analysis(Verdict::Pass), 3_000).is_none(),
        "no analysis while paused"
    );
    let resumed = step(&r, &paused, Input::Resume, 500_000).unwrap().state;
    assert_eq!(resumed.phase, Phase::Progressing);
    let t = step(&r, &resumed, Input::Analysis(Verdict::Inconclusive), 510_000).unwrap();
    assert_eq!(t.state.phase, Phase::Progressing, "the deadline counts from the resume");
}

#[test]
fn abort_and_promote_act_at_once() {
    let r = rollout(Strategy::Canary);
    let s = progressing(&r);
    let aborted = step(&r, &s, Input::Abort, 2_000).unwrap();
    assert_eq!((aborted.state.phase, aborted.canary_percent), (Phase::Failed, Some(0)));
    let promoted = step(&r, &s, Input::Promote, 2_000).unwrap();
    assert_eq!(
        (promoted.state.phase, promoted.canary_percent),
        (Phase::Succeeded, Some(100))
    );
    assert!(
        step(&r, &aborted.state, Input::Abort, 3_000).is_none(),
        "nothing to abort once failed"
    );
}

#[test]
fn a_finished_rollout_can_start_again_but_a_running_one_cannot() {
    let r = rollout(Strategy::Canary);
    let s = progressing(&r);
    assert!(step(&r, &s, Input::Start { revision: None }, 2_000).is_none());
    let failed = step(&r, &s, Input::Abort, 2_000).unwrap().state;
    let again = step(
        &r,
        &failed,
        Input::Start {
            revision: Some("v3".into()),
        },
        3_000,
    )
    .unwrap();
    assert_eq!(
        (again.state.phase, again.state.revision.as_deref()),
        (Phase::Initializing, Some("v3"))
    );
}

#[test]
fn blue_green_switches_once_and_switches_back_on_the_first_failure() {
    let r = rollout(Strategy::BlueGreen);
    let started = step(&r, &idle(&r), Input::Start { revision: None }, 0).unwrap();
    let asked = step(&r, &started.state, Input::Gate(true), 0).unwrap();
    assert_eq!(
        (asked.state.phase, asked.gate, asked.canary_percent),
        (Phase::Promoting, Some(Gate::ConfirmPromotion), None)
    );
    let switched = step(&r, &asked.state, Input::Gate(true), 0).unwrap();
    assert_eq!(
        (switched.state.phase, switched.canary_percent),
        (Phase::Progressing, Some(100))
    );
    let failed = step(&r, &switched.state, Input::Analysis(Verdict::Fail), 5_000).unwrap();
    assert_eq!((failed.state.phase, failed.canary_percent), (Phase::Failed, Some(0)));
    let mut s = switched.state;
    for i in 0..r.steps.len() {
        let t = step(&r, &s, Input::Analysis(Verdict::Pass), 5_000 * (i as u64 + 1)).unwrap();
        s = t.state;
    }
    assert_eq!(s.phase, Phase::Succeeded);
}
