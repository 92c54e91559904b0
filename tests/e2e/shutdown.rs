//! SIGTERM: stop accepting, let in-flight requests finish, exit 0.

use std::time::Duration;

use sluice_tests::{SluiceProcess, TestClient, upstream};

use crate::{binary, two_version_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_two_second_requests_finish_then_exits_zero() {
    let blue = upstream("blue").latency(Duration::from_secs(2)).spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let mut sluice = SluiceProcess::start(
        binary(),
        &two_version_config(blue.addr(), canary.addr(), "blue = 1", "[timeouts]\ndrain = \"10s\""),
    );
    let client = TestClient::http1(sluice.addr());
    let inflight: Vec<_> = (0..5)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("/").await })
        })
        .collect();
    // Let the requests reach the upstream (which holds each for 2 s) before the signal.
    tokio::time::sleep(Duration::from_millis(500)).await;
    sluice.signal("TERM");
    for task in inflight {
        let answer = task.await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let status = tokio::task::block_in_place(|| sluice.wait_exit(Duration::from_secs(10)));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "stderr: {}", sluice.stderr());
    // Once stopped, new connections are refused.
    assert!(
        TestClient::http1(sluice.addr())
            .try_send(http::Request::get("/").body(Default::default()).unwrap())
            .await
            .is_err()
    );
}
