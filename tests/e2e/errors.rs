//! Failures become the right status quickly: 404 no route, 502 upstream down, 503 no weight, 504 upstream silent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_config::{Config, Weight, WeightSource};
use sluice_proxy::Proxy;
use sluice_tests::{SluiceProcess, TestClient, upstream};
use tokio::net::TcpListener;

use crate::{binary, two_version_config};

/// An address where nothing listens: bound, then released.
async fn closed_port() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn upstream_down_is_a_fast_502() {
    let blue = closed_port().await;
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(blue, canary.addr(), "blue = 1", "[timeouts]\nconnect = \"1s\""),
    );
    let started = Instant::now();
    let answer = TestClient::http1(sluice.addr()).get("/").await;
    assert_eq!(answer.status, 502, "{}", answer.text());
    assert!(answer.text().starts_with("502 bad gateway"), "{}", answer.text());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "502 took {:?}",
        started.elapsed()
    );
    // The log line reaches the captured stderr a moment after the response.
    sluice_tests::assert_eventually!(sluice.stderr().contains("upstream failure"));
}

#[tokio::test]
async fn silent_upstream_is_a_504_at_the_response_header_timeout() {
    // Accepts connections and reads nothing: the request is sent, no answer ever comes.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(
            silent_addr,
            canary.addr(),
            "blue = 1",
            "[timeouts]\nresponse_header = \"500ms\"",
        ),
    );
    let started = Instant::now();
    let answer = TestClient::http1(sluice.addr()).get("/").await;
    let took = started.elapsed();
    assert_eq!(answer.status, 504, "{}", answer.text());
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(5),
        "504 after {took:?}"
    );
    holder.abort();
}

#[tokio::test]
async fn no_matching_route_is_404() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let mut config = two_version_config(blue.addr(), canary.addr(), "blue = 1", "");
    config = config.replace("name = \"web\"", "name = \"web\"\npath_prefix = \"/app\"");
    let sluice = SluiceProcess::start(binary(), &config);
    let client = TestClient::http1(sluice.addr());
    assert_eq!(client.get("/other").await.status, 404);
    assert_eq!(client.get("/app/x").await.status, 200);
    assert_eq!(blue.requests(), 1);
}

#[tokio::test]
async fn all_weights_zero_at_run_time_is_503() {
    // Files need one weight above 0; weights set at run time can all be 0. Publish such a table in process.
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let text = two_version_config(blue.addr(), canary.addr(), "blue = 1, canary = 1", "");
    let config = Config::from_toml(&text, None).unwrap();
    let proxy = Proxy::from_config(config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sluice_proxy::serve(
        vec![listener],
        Arc::clone(&proxy),
        Duration::from_secs(60),
        Duration::from_secs(1),
        async move {
            let _ = stopped.await;
        },
    ));
    let client = TestClient::http1(addr);
    assert_eq!(client.get("/").await.status, 200);

    let zero = vec![
        Weight {
            upstream: "blue".into(),
            weight: 0,
        },
        Weight {
            upstream: "canary".into(),
            weight: 0,
        },
    ];
    assert_eq!(
        proxy
            .store()
            .set_weights("web", zero, WeightSource::Admin, "test")
            .unwrap(),
        2
    );
    let answer = client.get("/").await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert_eq!(
        blue.requests() + canary.requests(),
        1,
        "no upstream saw the 503 request"
    );
    let _ = stop.send(());
    server.await.unwrap();
}
