//! The runner on tokio's paused clock: real telemetry windows, real store, time advanced by the test.

use std::sync::Arc;
use std::time::Duration;

use sluice_config::{Config, Phase, Snapshot as _, Store};
use sluice_proxy::Table;
use sluice_proxy::telemetry::Outcome;
use tokio::time::Instant;

use super::{Controller, Input};

const CONFIG: &str = r#"
[listen]
http = ["127.0.0.1:0"]
[upstreams.blue]
servers = ["127.0.0.1:9101"]
[upstreams.canary]
servers = ["127.0.0.1:9102"]
[[routes]]
name = "web"
weights = { blue = 100, canary = 0 }
[routes.rollout]
stable = "blue"
canary = "canary"
steps = [10, 50, 100]
interval = "5s"
failure_threshold = 2
min_requests = 100
progress_deadline = "30s"
"#;

fn setup() -> (Arc<Store<Table>>, Arc<Controller>) {
    let store = Arc::new(Store::<Table>::from_config(Config::from_toml(CONFIG, None).unwrap()).unwrap());
    let controller = Controller::new(Arc::clone(&store));
    (store, controller)
}

/// Records one second of traffic: `blue` and `canary` requests, `canary_errors` of the canary's answered 500.
fn second_of_traffic(store: &Store<Table>, blue: u32, canary: u32, canary_errors: u32) {
    let table = store.load();
    for (version, n, errors) in [("blue", blue, 0), ("canary", canary, canary_errors)] {
        let handle = table.telemetry().version("web", version);
        for i in 0..n {
            let status = if i < errors { 500 } else { 200 };
            handle.finish(
                Instant::now(),
                Outcome::Answered {
                    status,
                    upstream_error: None,
                    local: false,
                },
            );
        }
    }
}

fn phase_and_step(store: &Store<Table>) -> (Phase, usize) {
    let state = store.load().state().overrides.rollouts.get("web").cloned().unwrap();
    (state.phase, state.step)
}

/// Drives `seconds` of simulated time with the given traffic per second, returning the (phase, step) seen at
/// the end of each second.
async fn drive(store: &Store<Table>, seconds: u32, canary_errors: u32, with_traffic: bool) -> Vec<(Phase, usize)> {
    let mut seen = Vec::new();
    for _ in 0..seconds {
        if with_traffic {
            let canary_share = match store.load().config().routes[0]
                .weights
                .iter()
                .find(|w| w.upstream == "canary")
            {
                Some(w) => w.weight,
                None => 0,
            };
            // 1,000 requests a second split by the live weights.
            second_of_traffic(
                store,
                1_000 - canary_share * 10,
                canary_share * 10,
                canary_errors * canary_share / 10,
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        seen.push(phase_and_step(store));
    }
    seen
}

#[tokio::test(start_paused = true)]
async fn a_healthy_canary_moves_one_step_per_interval_and_is_promoted() {
    let (store, controller) = setup();
    tokio::spawn(Arc::clone(&controller).run(std::future::pending()));
    controller
        .command("web", Input::Start { revision: None }, "test")
        .await
        .unwrap();
    let seen = drive(&store, 20, 0, true).await;
    let first_step_1 = seen
        .iter()
        .position(|s| *s == (Phase::Progressing, 1))
        .expect("reached step 2");
    let succeeded = seen.iter().position(|s| s.0 == Phase::Succeeded).expect("promoted");
    // One analysis per 5 s interval: step 2 after the first interval, promotion after the second.
    assert!(
        (4..=6).contains(&first_step_1),
        "step 2 at second {first_step_1}: {seen:?}"
    );
    assert!(
        (9..=11).contains(&succeeded),
        "promoted at second {succeeded}: {seen:?}"
    );
    let table = store.load();
    let weights = &table.config().routes[0].weights;
    assert_eq!(weights.iter().map(|w| w.weight).collect::<Vec<_>>(), vec![0, 100]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_canary_is_rolled_back_after_two_intervals() {
    let (store, controller) = setup();
    tokio::spawn(Arc::clone(&controller).run(std::future::pending()));
    controller
        .command("web", Input::Start { revision: None }, "test")
        .await
        .unwrap();
    // 10 % of the canary's answers are 500s (stable: none).
    let seen = drive(&store, 15, 10, true).await;
    let failed = seen.iter().position(|s| s.0 == Phase::Failed).expect("rolled back");
    assert!((9..=11).contains(&failed), "rolled back at second {failed}: {seen:?}");
    assert!(seen.iter().all(|s| s.1 == 0), "never left the first step: {seen:?}");
    let table = store.load();
    let weights = &table.config().routes[0].weights;
    assert_eq!(weights.iter().map(|w| w.weight).collect::<Vec<_>>(), vec![100, 0]);
    let decisions = controller.decisions("web");
    assert!(
        decisions
            .iter()
            .any(|d| d.judgement.is_some() && d.note.contains("failed")),
        "{decisions:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_traffic_the_deadline_fails_the_rollout() {
    let (store, controller) = setup();
    tokio::spawn(Arc::clone(&controller).run(std::future::pending()));
    controller
        .command("web", Input::Start { revision: None }, "test")
        .await
        .unwrap();
    let seen = drive(&store, 40, 0, false).await;
    let failed = seen
        .iter()
        .position(|s| s.0 == Phase::Failed)
        .expect("failed at the deadline");
    assert!((29..=36).contains(&failed), "failed at second {failed}: {seen:?}");
    let reason = store.load().state().overrides.rollouts["web"].reason.clone().unwrap();
    assert!(reason.contains("progress deadline"), "{reason}");
}
