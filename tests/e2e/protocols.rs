//! WebSocket upgrades and gRPC-style HTTP/2 with trailers through sluice, and HTTP/2 to upstreams.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use sluice_tests::{AdminClient, EchoUpstream, SluiceProcess, TestCa, TestClient, assert_eventually};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::binary;

const ADMIN: &str = "[admin]\nlisten = \"127.0.0.1:0\"\n";

fn config(blue: SocketAddr, canary: SocketAddr, weights: &str, blue_extra: &str, extra: &str) -> String {
    format!(
        r#"
[listen]
http = ["127.0.0.1:0"]

[upstreams.blue]
servers = ["{blue}"]
{blue_extra}

[upstreams.canary]
servers = ["{canary}"]

[[routes]]
name = "web"
weights = {{ {weights} }}
[routes.sticky]
key = "header:x-user"

{extra}
"#
    )
}

/// A WebSocket handshake over a raw connection; returns the connection and the response head.
async fn open_websocket(proxy: SocketAddr, user: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    let request = format!(
        "GET /chat HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nx-user: {user}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("response head within 5 s")
            .unwrap();
        assert_eq!(n, 1, "connection closed mid-head: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    (stream, String::from_utf8(head).unwrap().to_ascii_lowercase())
}

/// Sends `message` through the tunnel and expects it back unchanged.
async fn echo(stream: &mut TcpStream, message: &str) {
    stream.write_all(message.as_bytes()).await.unwrap();
    let mut back = vec![0u8; message.len()];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back))
        .await
        .unwrap_or_else(|_| panic!("no echo of {message:?} within 5 s"))
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&back), message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_stays_open_across_reloads_and_weight_changes() {
    let blue = EchoUpstream::plain("blue").await;
    let canary = EchoUpstream::plain("canary").await;
    let (b, c) = (blue.addr(), canary.addr());
    let sluice = SluiceProcess::start(binary(), &config(b, c, "blue = 50, canary = 50", "", ADMIN));
    let admin = AdminClient::new(sluice.admin_addr(), None);

    // Routed and sticky like any request: the tunnel lands where this user's plain requests land.
    let plain = TestClient::http1(sluice.addr())
        .send(
            Request::get("/")
                .header("x-user", "alice")
                .body(Default::default())
                .unwrap(),
        )
        .await;
    let version = plain.upstream().unwrap().to_owned();
    let (mut ws, head) = open_websocket(sluice.addr(), "alice").await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(head.contains("connection: upgrade"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: dghlihnhbxbszsbub25jzq=="),
        "{head}"
    );
    assert!(head.contains(&format!("x-upstream: {version}")), "{head}");
    echo(&mut ws, "hello").await;

    for i in 0..20 {
        let (ok_before, weights) = (
            admin.state().await["reloads"]["ok"].as_u64().unwrap(),
            if i % 2 == 0 {
                "blue = 90, canary = 10"
            } else {
                "blue = 10, canary = 90"
            },
        );
        sluice.rewrite_config(&format!("# reload {i}\n{}", config(b, c, weights, "", ADMIN)));
        assert_eventually!(
            admin.state().await["reloads"]["ok"].as_u64().unwrap() > ok_before,
            Duration::from_secs(5)
        );
        echo(&mut ws, &format!("after reload {i}")).await;
        let to_blue = if i % 2 == 0 { 0 } else { 100 };
        admin
            .set_weights("web", json!({"blue": to_blue, "canary": 100 - to_blue}))
            .await;
        echo(&mut ws, &format!("after weight change {i}")).await;
    }
    let (_, metrics) = admin.text("/metrics").await;
    assert!(metrics.contains("sluice_upgraded_connections 1"), "{metrics}");
    assert_eq!(blue.upgrades() + canary.upgrades(), 1);

    drop(ws);
    assert_eventually!(
        admin.text("/metrics").await.1.contains("sluice_upgraded_connections 0"),
        Duration::from_secs(5)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_to_an_http2_upstream_is_refused_with_501() {
    let blue = EchoUpstream::plain("blue").await;
    let canary = EchoUpstream::plain("canary").await;
    let sluice = SluiceProcess::start(
        binary(),
        &config(blue.addr(), canary.addr(), "blue = 1", "protocol = \"h2c\"", ""),
    );
    let (_ws, head) = open_websocket(sluice.addr(), "bob").await;
    assert!(head.starts_with("http/1.1 501"), "{head}");
    // Plain requests to the same upstream still go through, over HTTP/2.
    let answer = TestClient::http1(sluice.addr()).get("/").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["x-seen-version"], "HTTP/2.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_style_exchange_keeps_its_trailers() {
    let blue = EchoUpstream::plain("blue").await;
    let canary = EchoUpstream::plain("canary").await;
    for protocol in ["h2c", "http1"] {
        let sluice = SluiceProcess::start(
            binary(),
            &config(
                blue.addr(),
                canary.addr(),
                "blue = 1",
                &format!("protocol = \"{protocol}\""),
                "",
            ),
        );
        // A gRPC client: HTTP/2 with prior knowledge, `te: trailers`, a length-prefixed message.
        let stream = TcpStream::connect(sluice.addr()).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let message = Bytes::from_static(b"\0\0\0\0\x05hello");
        let request = Request::post("http://app.test/echo.Echo/Say")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(message.clone()))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200, "upstream protocol {protocol}");
        assert_eq!(response.headers()["content-type"], "application/grpc");
        assert_eq!(
            response.headers()["x-seen-te"],
            "trailers",
            "upstream protocol {protocol}"
        );
        let expected = if protocol == "h2c" { "HTTP/2.0" } else { "HTTP/1.1" };
        assert_eq!(response.headers()["x-seen-version"], expected);
        let collected = response.into_body().collect().await.unwrap();
        let trailers = collected
            .trailers()
            .cloned()
            .unwrap_or_else(|| panic!("trailers reach the client (upstream protocol {protocol})"));
        assert_eq!(trailers["grpc-status"], "0", "upstream protocol {protocol}");
        assert_eq!(trailers["grpc-message"], "echoed");
        assert_eq!(collected.to_bytes(), message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_over_tls_speak_h2_or_http1_and_check_the_certificate() {
    let ca = TestCa::new();
    let leaf = ca.leaf(&["upstream.test", "127.0.0.1"]);
    let secure = EchoUpstream::tls("blue", &leaf).await;
    let other = EchoUpstream::plain("canary").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.path().join("other-ca.pem"), TestCa::new().pem()).unwrap();
    let ca_path = dir.path().join("ca.pem").display().to_string();
    let other_ca = dir.path().join("other-ca.pem").display().to_string();
    let cases = [
        // HTTP/2 over TLS by ALPN; SNI and the checked name come from `server_name`.
        (
            format!("protocol = \"h2\"\n[upstreams.blue.tls]\nca = \"{ca_path}\"\nserver_name = \"upstream.test\""),
            Some("HTTP/2.0"),
        ),
        // HTTP/1.1 over TLS; the server is listed by IP, which the certificate names.
        (format!("[upstreams.blue.tls]\nca = \"{ca_path}\""), Some("HTTP/1.1")),
        // A certificate from a CA sluice does not trust: refused, 502.
        (
            format!("protocol = \"h2\"\n[upstreams.blue.tls]\nca = \"{other_ca}\""),
            None,
        ),
    ];
    for (transport, version) in cases {
        let sluice = SluiceProcess::start(
            binary(),
            &config(secure.addr(), other.addr(), "blue = 1", &transport, ADMIN),
        );
        let answer = TestClient::http1(sluice.addr()).get("/").await;
        match version {
            Some(version) => {
                assert_eq!(answer.status, 200, "{transport}: {}", answer.text());
                assert_eq!(answer.headers["x-seen-version"], version, "{transport}");
                assert_eq!(answer.headers["x-seen-scheme"], "https");
                assert_eq!(answer.headers["x-seen-forwarded-proto"], "http", "the client's scheme");
            }
            None => {
                assert_eq!(answer.status, 502, "{transport}: {}", answer.text());
                let (_, metrics) = AdminClient::new(sluice.admin_addr(), None).text("/metrics").await;
                let line = metrics
                    .lines()
                    .find(|l| l.starts_with("sluice_upstream_errors_total") && l.contains("kind=\"connect\""))
                    .unwrap_or_else(|| panic!("a connect error is counted: {metrics}"));
                assert!(line.contains("version=\"blue\""), "{line}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_upstream_ca_refuses_the_config_naming_the_file() {
    let blue = EchoUpstream::plain("blue").await;
    let canary = EchoUpstream::plain("canary").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    let missing = dir.path().join("missing-ca.pem");
    let text = config(
        blue.addr(),
        canary.addr(),
        "blue = 1",
        &format!("[upstreams.blue.tls]\nca = \"{}\"", missing.display()),
        "",
    );
    std::fs::write(&path, text).unwrap();
    let output = std::process::Command::new(binary())
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("missing-ca.pem"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_waits_for_an_open_websocket_up_to_the_drain_timeout() {
    let blue = EchoUpstream::plain("blue").await;
    let canary = EchoUpstream::plain("canary").await;
    for drain in ["10s", "1s"] {
        let mut sluice = SluiceProcess::start(
            binary(),
            &config(
                blue.addr(),
                canary.addr(),
                "blue = 1",
                "",
                &format!("[timeouts]\ndrain = \"{drain}\""),
            ),
        );
        let (mut ws, head) = open_websocket(sluice.addr(), "carol").await;
        assert!(head.starts_with("http/1.1 101"), "{head}");
        echo(&mut ws, "before").await;
        sluice.signal("TERM");
        if drain == "10s" {
            // The tunnel outlives the signal and keeps working; closing it lets sluice finish at once.
            let early = tokio::task::block_in_place(|| sluice.wait_exit(Duration::from_millis(1500)));
            assert!(early.is_none(), "exited with a WebSocket open: {}", sluice.stderr());
            echo(&mut ws, "during drain").await;
            drop(ws);
            let status = tokio::task::block_in_place(|| sluice.wait_exit(Duration::from_secs(5)));
            assert_eq!(status.and_then(|s| s.code()), Some(0), "stderr: {}", sluice.stderr());
        } else {
            // Past the drain timeout the tunnel is closed and sluice exits anyway.
            let status = tokio::task::block_in_place(|| sluice.wait_exit(Duration::from_secs(8)));
            assert_eq!(status.and_then(|s| s.code()), Some(0), "stderr: {}", sluice.stderr());
            let mut rest = Vec::new();
            let closed = tokio::time::timeout(Duration::from_secs(5), ws.read_to_end(&mut rest)).await;
            assert!(closed.is_ok(), "the client's side is closed once sluice exits");
        }
    }
}
