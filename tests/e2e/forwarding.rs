//! What reaches the upstream: hop-by-hop headers gone, `x-forwarded-*` set, `Host` kept.

use bytes::Bytes;
use http_body_util::Full;
use sluice_tests::{SluiceProcess, TestClient, upstream};

use crate::{binary, two_version_config};

#[tokio::test]
async fn hop_by_hop_headers_stay_on_the_client_hop() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(blue.addr(), canary.addr(), "blue = 1", ""),
    );
    let request = http::Request::get("/echo?x=1")
        .header("host", "shop.example.com")
        .header("connection", "keep-alive, x-hop-secret")
        .header("x-hop-secret", "must not pass")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("x-end-to-end", "passes")
        .header("x-forwarded-for", "203.0.113.7")
        .body(Full::<Bytes>::default())
        .unwrap();
    let answer = TestClient::http1(sluice.addr()).send(request).await;
    assert_eq!(answer.status, 200);
    let seen = blue.last_request().expect("the upstream saw the request");
    let h = &seen.headers;
    assert!(
        !h.contains_key("x-hop-secret"),
        "a header named in Connection reached the upstream: {h:?}"
    );
    assert!(!h.contains_key("keep-alive"));
    assert!(!h.contains_key("proxy-authorization"));
    assert_eq!(h["x-end-to-end"], "passes");
    assert_eq!(h["host"], "shop.example.com", "Host must stay as the client sent it");
    assert_eq!(h["x-forwarded-host"], "shop.example.com");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(
        h["x-forwarded-for"], "203.0.113.7, 127.0.0.1",
        "the client address is appended"
    );
    assert_eq!(seen.uri.path_and_query().unwrap().as_str(), "/echo?x=1");
    // The echo body shows the same thing a curl user would see.
    assert!(
        answer.text().contains("x-forwarded-for: 203.0.113.7, 127.0.0.1"),
        "{}",
        answer.text()
    );
}

#[tokio::test]
async fn h2_authority_becomes_the_upstream_host() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(blue.addr(), canary.addr(), "blue = 1", ""),
    );
    let answer = TestClient::h2c(sluice.addr()).get("/").await;
    assert_eq!(answer.status, 200);
    let seen = blue.last_request().unwrap();
    assert_eq!(seen.headers["host"], sluice.addr().to_string().as_str());
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
}

#[tokio::test]
async fn routes_by_host_and_longest_prefix() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let extra = r#"
[[routes]]
name = "api"
hosts = ["api.example.com"]
path_prefix = "/v2"
weights = { canary = 1 }
"#;
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(blue.addr(), canary.addr(), "blue = 1", extra),
    );
    let client = TestClient::http1(sluice.addr());
    let get = |host: &'static str, path: &'static str| {
        let client = client.clone();
        async move {
            let req = http::Request::get(path)
                .header("host", host)
                .body(Full::<Bytes>::default())
                .unwrap();
            client.send(req).await
        }
    };
    assert_eq!(get("api.example.com", "/v2/users").await.upstream(), Some("canary"));
    assert_eq!(get("API.Example.com:8080", "/v2").await.upstream(), Some("canary"));
    assert_eq!(get("api.example.com", "/v1").await.upstream(), Some("blue"));
    assert_eq!(get("www.example.com", "/v2").await.upstream(), Some("blue"));
}
