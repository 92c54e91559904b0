//! Bodies stream both ways without buffering.

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sluice_tests::{RepeatBody, SluiceProcess, peak_rss_kib, upstream};

use crate::{binary, two_version_config};

#[tokio::test]
async fn one_gib_upload_arrives_whole_with_flat_memory() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(blue.addr(), canary.addr(), "blue = 1", ""),
    );
    let client: Client<_, RepeatBody> = Client::builder(TokioExecutor::new()).build_http();
    let body = RepeatBody::new(1 << 20, 1024, false);
    let sent = body.len();
    assert_eq!(sent, 1 << 30);
    let request = http::Request::post(format!("http://{}/upload", sluice.addr()))
        .body(body)
        .unwrap();
    let response = client.request(request).await.expect("upload through sluice");
    assert_eq!(response.status(), 200);
    let counted: u64 = response.headers()["x-body-bytes"].to_str().unwrap().parse().unwrap();
    let text: Bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(counted, sent, "upstream answered {text:?}");
    assert_eq!(blue.last_request().unwrap().body_bytes, sent);
    let peak = peak_rss_kib(sluice.pid());
    assert!(peak < 64 * 1024, "sluice peaked at {peak} KiB while streaming 1 GiB");
}

#[tokio::test]
async fn upload_with_content_length_arrives_whole() {
    // The 1 GiB test sends chunked; this one announces its length, the other framing an upstream must see intact.
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(blue.addr(), canary.addr(), "blue = 1", ""),
    );
    let client: Client<_, RepeatBody> = Client::builder(TokioExecutor::new()).build_http();
    let body = RepeatBody::new(64 * 1024, 512, true);
    let request = http::Request::post(format!("http://{}/", sluice.addr()))
        .body(body)
        .unwrap();
    let response = client.request(request).await.expect("upload through sluice");
    assert_eq!(response.headers()["x-body-bytes"], (32u64 << 20).to_string().as_str());
    let seen = blue.last_request().unwrap();
    assert_eq!(seen.headers["content-length"], (32u64 << 20).to_string().as_str());
}
