//! Requests split by weight across versions, over HTTP/1.1 keep-alive and h2c.

use std::collections::HashMap;

use sluice_tests::{SluiceProcess, TestClient, upstream};

use crate::{binary, two_version_config};

/// Sends `n` GETs over `concurrency` parallel keep-alive streams and counts answers per version.
async fn tally(client: &TestClient, n: usize, concurrency: usize) -> HashMap<String, usize> {
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for _ in 0..n / concurrency {
                let answer = client.get("/").await;
                assert_eq!(answer.status, 200, "{}", answer.text());
                *counts
                    .entry(answer.upstream().expect("x-upstream").to_owned())
                    .or_default() += 1;
            }
            counts
        }));
    }
    let mut total = HashMap::new();
    for task in tasks {
        for (version, count) in task.await.expect("client task") {
            *total.entry(version).or_default() += count;
        }
    }
    total
}

#[tokio::test]
async fn ninety_ten_over_http1_keep_alive() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(blue.addr(), canary.addr(), "blue = 90, canary = 10", ""),
    );
    let counts = tally(&TestClient::http1(sluice.addr()), 20_000, 8).await;
    let canary_share = counts["canary"] as f64 / 20_000.0 * 100.0;
    assert!(
        (canary_share - 10.0).abs() <= 0.6,
        "canary got {canary_share:.2} %: {counts:?}"
    );
    assert_eq!(counts["blue"] + counts["canary"], 20_000);
    assert_eq!(
        blue.requests() + canary.requests(),
        20_000,
        "every request reached exactly one upstream"
    );
}

#[tokio::test]
async fn nine_nine_nine_nine_to_one_gives_the_small_side_a_hundredth_of_a_percent() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(blue.addr(), canary.addr(), "blue = 9999, canary = 1", ""),
    );
    let counts = tally(&TestClient::http1(sluice.addr()), 20_000, 8).await;
    let small = counts.get("canary").copied().unwrap_or(0);
    assert!(small as f64 / 20_000.0 <= 0.0005, "canary got {small} of 20,000");
    // 0.01 % of 20,000 is 2: the small side is not rounded away either.
    assert!(small >= 1, "a weight of 1 in 10,000 must still get traffic: {counts:?}");
}

#[tokio::test]
async fn h2c_prior_knowledge_gets_the_same_split() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(blue.addr(), canary.addr(), "blue = 90, canary = 10", ""),
    );
    let counts = tally(&TestClient::h2c(sluice.addr()), 4_000, 8).await;
    let canary_share = counts["canary"] as f64 / 4_000.0 * 100.0;
    assert!(
        (canary_share - 10.0).abs() <= 0.6,
        "canary got {canary_share:.2} % over h2c: {counts:?}"
    );
    // The upstream is spoken to in HTTP/1.1 whatever the client used.
    assert_eq!(blue.last_request().unwrap().version, http::Version::HTTP_11);
}
