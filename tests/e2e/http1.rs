//! The HTTP/1.1 fast path on the client side, over raw sockets: pipelining, HEAD, `Connection: close`, the hand-over
//! to hyper for a request with a body in the middle of a connection, and bad heads.

use std::time::Duration;

use sluice_tests::{SluiceProcess, UpstreamHandle, upstream};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::{binary, two_version_config};

/// Writes `bytes` in one go and reads until sluice closes the connection.
async fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("sluice closes the connection after the last response")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Upstreams `blue` and `canary`, and sluice sending everything to `blue`.
async fn start() -> (UpstreamHandle, UpstreamHandle, SluiceProcess) {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(blue.addr(), canary.addr(), "blue = 1", ""),
    );
    (blue, canary, sluice)
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_and_close_ends_the_connection() {
    let (blue, _canary, sluice) = start().await;
    let answer = exchange(
        sluice.addr(),
        b"GET /status/201 HTTP/1.1\r\nhost: x\r\n\r\n\
          HEAD /a HTTP/1.1\r\nhost: x\r\n\r\n\
          GET /status/202 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    let statuses: Vec<&str> = answer.lines().filter(|line| line.starts_with("HTTP/1.1 ")).collect();
    assert_eq!(
        statuses,
        ["HTTP/1.1 201 Created", "HTTP/1.1 200 OK", "HTTP/1.1 202 Accepted"],
        "{answer}"
    );
    assert_eq!(
        answer.matches("blue\n").count(),
        2,
        "the HEAD response has no body: {answer}"
    );
    assert_eq!(
        answer.matches("content-length: 5").count(),
        3,
        "HEAD keeps the length: {answer}"
    );
    assert_eq!(answer.matches("connection: close").count(), 1, "{answer}");
    assert!(answer.contains("date: "), "{answer}");
    assert_eq!(blue.requests(), 3);
}

#[tokio::test]
async fn a_request_with_a_body_mid_connection_is_served_and_so_is_the_next() {
    let (blue, _canary, sluice) = start().await;
    let answer = exchange(
        sluice.addr(),
        b"GET / HTTP/1.1\r\nhost: x\r\n\r\n\
          POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello\
          POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
          GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 4, "{answer}");
    assert!(answer.contains("blue 5\n") && answer.contains("blue 3\n"), "{answer}");
    assert_eq!(blue.requests(), 4);
}

#[tokio::test]
async fn bad_heads_get_400_with_the_reason_and_http10_still_works() {
    let (blue, _canary, sluice) = start().await;
    let answer = exchange(sluice.addr(), b"GET / HTTP/1.1\r\nno colon here\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
    assert!(answer.contains("invalid request head: invalid header name"), "{answer}");

    let answer = exchange(sluice.addr(), b"GET / HTTP/1.0\r\nhost: x\r\n\r\n").await;
    assert!(answer.contains(" 200 OK\r\n") && answer.ends_with("blue\n"), "{answer}");
    assert_eq!(blue.requests(), 1);
}

#[tokio::test]
async fn absolute_form_targets_reach_the_upstream_as_path_and_host() {
    let (blue, _canary, sluice) = start().await;
    let answer = exchange(
        sluice.addr(),
        b"GET http://x.test:8080/echo?q=1 HTTP/1.1\r\nhost: x.test:8080\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    // The upstream's view of the request line: the path alone, the authority left to `Host`.
    assert!(answer.contains("GET /echo?q=1 HTTP/1.1\n"), "{answer}");
    assert!(answer.contains("host: x.test:8080\n"), "{answer}");
    assert_eq!(blue.requests(), 1);
}
