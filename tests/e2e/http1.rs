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

/// An upstream that answers every request, on kept-alive connections, with the bytes of `response`.
async fn canned_upstream(response: &'static str) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4) else {
                        let mut chunk = [0; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(n) if n > 0 => seen.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length: "))
                        .map_or(0, |n| n.trim().parse().unwrap());
                    while seen.len() < end + length {
                        let mut chunk = [0; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(n) if n > 0 => seen.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                    }
                    seen.drain(..end + length);
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn upstream_fields_pass_as_sent_on_both_client_paths_with_one_request_id_and_one_date() {
    let blue = canned_upstream(
        "HTTP/1.1 200 OK\r\nServer: canned\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
         X-Request-Id: upstream-echo\r\nSet-Cookie: a=1\r\nDate: Mon, 23 Nov 2026 17:00:00 GMT\r\n\
         Content-Length: 3\r\n\r\nok\n",
    )
    .await;
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(binary(), &two_version_config(blue, canary.addr(), "blue = 1", ""));
    // A bodiless request (sluice's fast path), then one with a body, which hands the connection to hyper for the
    // rest of it (so the last one is hyper's too).
    let answer = exchange(
        sluice.addr(),
        b"GET / HTTP/1.1\r\nhost: x\r\nx-request-id: caller-id\r\n\r\n\
          POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello\
          GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    let lines: Vec<String> = answer.lines().map(str::to_ascii_lowercase).collect();
    let count = |line: &str| lines.iter().filter(|l| l.as_str() == line).count();
    assert_eq!(count("http/1.1 200 ok"), 3, "{answer}");
    assert_eq!(count("server: canned"), 3, "{answer}");
    assert_eq!(count("set-cookie: a=1"), 3, "{answer}");
    assert_eq!(count("content-length: 3"), 3, "{answer}");
    assert_eq!(count("date: mon, 23 nov 2026 17:00:00 gmt"), 3, "{answer}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("date:")).count(), 3, "{answer}");
    // sluice's id replaces the one the upstream echoes; the caller's own id is kept.
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("x-request-id:")).count(),
        3,
        "{answer}"
    );
    assert_eq!(count("x-request-id: caller-id"), 1, "{answer}");
    assert!(!answer.contains("upstream-echo"), "{answer}");
    assert!(!lines.iter().any(|l| l.starts_with("keep-alive")), "{answer}");
    assert_eq!(count("connection: close"), 1, "{answer}");
}

#[tokio::test]
async fn response_header_rules_see_the_fields_the_upstream_sent() {
    let blue = canned_upstream(
        "HTTP/1.1 200 OK\r\nX-Secret: s3cr3t\r\nSet-Cookie: a=1\r\nX-Kept: yes\r\nContent-Length: 3\r\n\r\nok\n",
    )
    .await;
    let canary = upstream("canary").spawn().await.unwrap();
    let routes = r#"
[[routes]]
name = "api"
path_prefix = "/api"
weights = { blue = 1 }
[routes.headers]
response_set = { "set-cookie" = "b=2" }
response_remove = ["x-secret"]
"#;
    let sluice = SluiceProcess::start(binary(), &two_version_config(blue, canary.addr(), "blue = 1", routes));
    let answer = exchange(
        sluice.addr(),
        b"GET /api/a HTTP/1.1\r\nhost: x\r\n\r\n\
          POST /api/b HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi",
    )
    .await;
    let lines: Vec<String> = answer.lines().map(str::to_ascii_lowercase).collect();
    let count = |line: &str| lines.iter().filter(|l| l.as_str() == line).count();
    assert_eq!(count("http/1.1 200 ok"), 2, "{answer}");
    assert_eq!(count("x-kept: yes"), 2, "{answer}");
    assert!(!answer.to_ascii_lowercase().contains("x-secret"), "{answer}");
    // `set` replaces the upstream's cookie rather than adding one.
    assert_eq!(count("set-cookie: b=2"), 2, "{answer}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("set-cookie:")).count(),
        2,
        "{answer}"
    );
}

#[tokio::test]
async fn a_length_beside_chunked_coding_is_dropped_so_the_body_cannot_pose_as_a_response() {
    let blue = canned_upstream(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n\
         5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(binary(), &two_version_config(blue, canary.addr(), "blue = 1", ""));
    let answer = exchange(sluice.addr(), b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
    let lower = answer.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 200 ok\r\n"), "{answer}");
    assert!(!lower.contains("content-length"), "{answer}");
    assert!(lower.contains("transfer-encoding: chunked\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), "{answer}");
}

#[tokio::test]
async fn a_bodiless_status_keeps_its_fields_and_the_connection_carries_on() {
    // A 304 keeps the length of the representation it stands for, and has no body all the same.
    let blue = canned_upstream("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 10\r\n\r\n").await;
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(binary(), &two_version_config(blue, canary.addr(), "blue = 1", ""));
    let answer = exchange(
        sluice.addr(),
        b"GET /a HTTP/1.1\r\nhost: x\r\nif-none-match: \"v1\"\r\n\r\n\
          GET /b HTTP/1.1\r\nhost: x\r\nif-none-match: \"v1\"\r\nconnection: close\r\n\r\n",
    )
    .await;
    let heads: Vec<&str> = answer.split_inclusive("\r\n\r\n").collect();
    assert_eq!(heads.len(), 2, "two heads and nothing after them: {answer:?}");
    for head in heads {
        assert!(head.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{answer:?}");
        assert!(head.contains("ETag: \"v1\"\r\n"), "{answer:?}");
        assert!(head.contains("Content-Length: 10\r\n"), "{answer:?}");
        assert!(!head.to_ascii_lowercase().contains("transfer-encoding"), "{answer:?}");
    }
}
