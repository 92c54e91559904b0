//! The load generator against the demo upstream, through real sockets.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Version};

use crate::{ErrorKind, LiveStats, LoadError, LoadSpec, Mode, Protocol, Target, run, run_with, upstream};

/// A spec aimed at `addr`.
fn spec_for(addr: std::net::SocketAddr, path: &str) -> LoadSpec {
    LoadSpec::new(Target::from_addr(addr, path).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_counts_add_up_and_tally_by_upstream() {
    let up = upstream("blue").fail_rate(0.3).spawn().await.unwrap();
    let mut spec = spec_for(up.addr(), "/");
    spec.connections = 4;
    spec.requests = Some(400);

    let report = run(&spec).await.unwrap();
    assert_eq!(report.requests, 400);
    assert_eq!(report.error_count(), 0, "{:?}", report.errors);
    assert_eq!(up.requests(), 400);
    let ok = report.statuses.get(&200).copied().unwrap_or(0);
    let failed = report.statuses.get(&500).copied().unwrap_or(0);
    assert_eq!(ok + failed, 400, "{:?}", report.statuses);
    assert!(failed > 40 && failed < 200, "30 % of 400 should fail, got {failed}");
    assert_eq!(report.tally.len(), 1);
    assert_eq!(report.tally["blue"], 400);
    assert_eq!(report.latency.len(), 400);
    assert_eq!(report.late_sends, None);
    assert!(report.rate() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_post_with_headers_and_body() {
    let up = upstream("green").spawn().await.unwrap();
    let mut spec = spec_for(up.addr(), "/upload");
    spec.protocol = Protocol::H2;
    spec.method = Method::POST;
    spec.body_size = 1000;
    spec.connections = 2;
    spec.requests = Some(20);
    spec.headers
        .insert(HeaderName::from_static("x-test"), HeaderValue::from_static("yes"));

    let report = run(&spec).await.unwrap();
    assert_eq!(report.statuses.get(&200), Some(&20), "{report:?}");
    let seen = up.last_request().unwrap();
    assert_eq!(seen.version, Version::HTTP_2);
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.body_bytes, 1000);
    assert_eq!(seen.headers["x-test"], "yes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_holds_the_rate() {
    let up = upstream("stable")
        .latency(Duration::from_millis(20))
        .spawn()
        .await
        .unwrap();
    let mut spec = spec_for(up.addr(), "/");
    spec.mode = Mode::Open { rate: 200.0 };
    spec.connections = 20;
    spec.duration = Some(Duration::from_secs(1));

    let report = run(&spec).await.unwrap();
    assert_eq!(report.error_count(), 0, "{:?}", report.errors);
    assert!((180.0..=220.0).contains(&report.rate()), "rate {}", report.rate());
    assert!(
        report.quantile(0.5) >= Duration::from_millis(20),
        "p50 {:?}",
        report.quantile(0.5)
    );
    assert_eq!(report.late_sends, Some(0));
    assert_eq!(report.tally["stable"], report.requests);
}

/// A stall in the middle must show in the tail: every request that should have gone out during it is charged
/// the wait from its intended send time, not just the few that were in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_sees_a_stall_that_a_closed_loop_hides() {
    let up = upstream("stable")
        .latency(Duration::from_millis(20))
        .spawn()
        .await
        .unwrap();
    let mut spec = spec_for(up.addr(), "/");
    spec.mode = Mode::Open { rate: 200.0 };
    spec.connections = 10;
    spec.duration = Some(Duration::from_secs(2));

    let stall = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        up.stall(Duration::from_millis(500));
    };
    let (report, ()) = tokio::join!(run(&spec), stall);
    let report = report.unwrap();
    assert_eq!(report.error_count(), 0, "{:?}", report.errors);
    let summary = report.latency_summary();
    assert!(
        summary.p999 >= 400_000,
        "p99.9 {} µs should show the 500 ms stall",
        summary.p999
    );
    // Measured from the actual send, each connection would record at most one slow request per stall (10 in
    // all); from the intended time, all ~64 requests meant for the first 320 ms of the stall take >= 200 ms.
    let slow = report.latency.count_between(200_000, u64::MAX);
    assert!(
        slow > 3 * spec.connections as u64,
        "only {slow} requests took 200 ms or more"
    );
    // 10 connections at 20 ms fill up during the stall: later sends go out late, and are counted.
    let late = report.late_sends.unwrap();
    assert!(
        late >= 60,
        "about 90 sends were meant for the busy part of the stall, {late} counted late"
    );
    assert!(report.requests >= 380, "{} requests", report.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stats_can_be_watched_and_stop_the_run() {
    let up = upstream("canary")
        .latency(Duration::from_millis(5))
        .spawn()
        .await
        .unwrap();
    let mut spec = spec_for(up.addr(), "/");
    spec.connections = 2;
    let live = LiveStats::new();
    let running = tokio::spawn({
        let spec = spec.clone();
        let live = live.clone();
        async move { run_with(&spec, live).await }
    });

    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = live.snapshot();
    assert!(first.requests > 0, "nothing flushed after 300 ms");
    assert!(!live.is_finished());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = live.snapshot();
    let interval = second.since(&first);
    assert!(interval.requests > 0);
    assert!(interval.tally["canary"] > 0);
    assert!(interval.duration >= Duration::from_millis(250));

    live.stop();
    let report = tokio::time::timeout(Duration::from_secs(2), running)
        .await
        .expect("the run stops when asked")
        .unwrap()
        .unwrap();
    assert!(live.is_finished());
    assert!(report.requests >= second.requests);
    assert_eq!(report.requests, up.requests());
}

#[tokio::test]
async fn dead_target_fails_before_the_run() {
    let up = upstream("gone").spawn().await.unwrap();
    let addr = up.addr();
    up.shutdown().await;
    let mut spec = spec_for(addr, "/");
    spec.requests = Some(1);
    let error = run(&spec).await.unwrap_err();
    assert!(matches!(error, LoadError::Connect { .. }), "{error}");
}

#[tokio::test]
async fn timeouts_are_counted_by_kind() {
    let up = upstream("slow")
        .latency(Duration::from_millis(500))
        .spawn()
        .await
        .unwrap();
    let mut spec = spec_for(up.addr(), "/");
    spec.connections = 1;
    spec.requests = Some(2);
    spec.timeout = Duration::from_millis(50);
    let report = run(&spec).await.unwrap();
    assert_eq!(report.requests, 2);
    assert_eq!(report.errors.get(&ErrorKind::Timeout), Some(&2));
    assert_eq!(report.responses(), 0);
}

#[tokio::test]
async fn remote_target_is_refused_before_connecting() {
    let spec = LoadSpec::new(Target::parse("http://192.0.2.1:80/").unwrap());
    let error = run(&spec).await.unwrap_err();
    assert!(matches!(error, LoadError::Remote { .. }), "{error}");
}
