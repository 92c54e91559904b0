//! Edge essentials: access log, request ids, header rules, path rewrite, real client address, PROXY protocol.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use sluice_tests::{AdminClient, SluiceProcess, TestClient, assert_eventually, upstream};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::{binary, two_version_config};

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_gets_one_json_line_with_its_version_and_sigusr1_starts_a_new_file() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let extra = "[access_log]\nformat = \"json\"\npath = \"access.log\"\n";
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(blue.addr(), canary.addr(), "blue = 1, canary = 1", extra),
    );
    let log = sluice.dir().path().join("access.log");
    let client = TestClient::http1(sluice.addr());
    let mut seen: HashMap<String, usize> = HashMap::new();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for _ in 0..100 {
                    mine.push(client.get("/").await.upstream().unwrap().to_owned());
                }
                mine
            })
        })
        .collect();
    for t in tasks {
        for v in t.await.unwrap() {
            *seen.entry(v).or_default() += 1;
        }
    }
    assert_eventually!(lines(&log).len() == 400, Duration::from_secs(5));
    let mut logged: HashMap<String, usize> = HashMap::new();
    for line in lines(&log) {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(v["status"], 200);
        assert_eq!(v["route"], "web");
        assert_eq!(v["client_ip"], "127.0.0.1");
        assert!(v["request_id"].as_str().is_some_and(|id| id.len() == 32), "{line}");
        *logged.entry(v["version"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(
        logged, seen,
        "one line per request, each with the version that answered"
    );

    // logrotate: move the file, signal, and the next lines go to a new file.
    std::fs::rename(&log, sluice.dir().path().join("access.log.1")).unwrap();
    sluice.signal("USR1");
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..10 {
        client.get("/").await;
    }
    assert_eventually!(lines(&log).len() == 10, Duration::from_secs(5));
    assert_eq!(lines(&sluice.dir().path().join("access.log.1")).len(), 400);
}

#[tokio::test]
async fn combined_format_parses_as_nginx_combined() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let extra = "[access_log]\nformat = \"combined\"\npath = \"access.log\"\n";
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(blue.addr(), canary.addr(), "blue = 1", extra),
    );
    let client = TestClient::http1(sluice.addr());
    let req = http::Request::get("/page?q=1")
        .header("user-agent", "curl/8.0")
        .header("referer", "http://example.com/")
        .body(Full::<Bytes>::default())
        .unwrap();
    client.send(req).await;
    let log = sluice.dir().path().join("access.log");
    assert_eventually!(lines(&log).len() == 1, Duration::from_secs(5));
    let line = &lines(&log)[0];
    // The combined format: $remote_addr - $remote_user [$time_local] "$request" $status $bytes "$referer" "$ua"
    let parts: Vec<&str> = line.splitn(2, " - - [").collect();
    assert_eq!(parts[0], "127.0.0.1", "{line}");
    let rest = parts[1];
    let (time, rest) = rest.split_once("] \"").unwrap();
    assert!(time.ends_with(" +0000") && time.len() == 26, "time {time:?}");
    let (request, rest) = rest.split_once("\" ").unwrap();
    assert_eq!(request, "GET /page?q=1 HTTP/1.1");
    let fields: Vec<&str> = rest.splitn(3, ' ').collect();
    assert_eq!(fields[0], "200");
    assert!(fields[1].parse::<u64>().is_ok(), "{line}");
    assert_eq!(fields[2], "\"http://example.com/\" \"curl/8.0\"", "{line}");
}

#[tokio::test]
async fn a_stalled_log_never_slows_requests_and_drops_are_counted() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let extra = "[access_log]\npath = \"stalled.fifo\"\nbuffer = 16\n[admin]\nlisten = \"127.0.0.1:0\"\n";
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    std::fs::write(
        dir.path().join("sluice.toml"),
        two_version_config(blue.addr(), canary.addr(), "blue = 1", extra),
    )
    .unwrap();
    // A FIFO nobody reads: opening it for writing blocks forever, like a dead disk.
    let made = std::process::Command::new("mkfifo")
        .arg(dir.path().join("stalled.fifo"))
        .status()
        .unwrap();
    assert!(made.success());
    let sluice = SluiceProcess::start_in(binary(), dir, &[]);
    let client = TestClient::http1(sluice.addr());
    for _ in 0..500 {
        assert_eq!(client.get("/").await.status, 200);
    }
    let admin = AdminClient::new(sluice.admin_addr(), None);
    let (_, metrics) = admin.text("/metrics").await;
    let dropped: f64 = metrics
        .lines()
        .find(|l| l.starts_with("sluice_access_log_dropped_total "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(
        dropped >= 480.0,
        "lines that could not be written are dropped and counted: {dropped}"
    );
}

#[tokio::test]
async fn request_ids_header_rules_and_prefix_rewrite_reach_the_upstream() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let routes = r#"
[[routes]]
name = "api"
path_prefix = "/api"
weights = { canary = 1 }
strip_prefix = true
[routes.headers]
request_set = { "x-env" = "prod", "x-client" = "$client_ip", "x-route" = "$route" }
request_remove = ["x-internal"]
response_set = { "x-served-by" = "$version" }
response_remove = ["x-upstream-secret"]
"#;
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(blue.addr(), canary.addr(), "blue = 1", routes),
    );
    let client = TestClient::http1(sluice.addr());
    let req = http::Request::get("/api/users?id=7")
        .header("x-request-id", "abc")
        .header("x-internal", "secret")
        .body(Full::<Bytes>::default())
        .unwrap();
    let answer = client.send(req).await;
    assert_eq!(answer.headers["x-request-id"], "abc", "the caller's id comes back");
    assert_eq!(answer.headers["x-served-by"], "canary");
    let seen = canary.last_request().unwrap();
    assert_eq!(
        seen.uri.path_and_query().unwrap().as_str(),
        "/users?id=7",
        "prefix stripped, query kept"
    );
    assert_eq!(seen.headers["x-request-id"], "abc");
    assert_eq!(seen.headers["x-env"], "prod");
    assert_eq!(seen.headers["x-client"], "127.0.0.1");
    assert_eq!(seen.headers["x-route"], "api");
    assert!(!seen.headers.contains_key("x-internal"));
    // Without an id, sluice makes one and sends it both ways.
    let fresh = client.get("/").await;
    let id = fresh.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_eq!(blue.last_request().unwrap().headers["x-request-id"], id.as_str());
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_peers() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    for (trusted, expect) in [("\"10.0.0.0/8\"", "127.0.0.1"), ("\"127.0.0.1\"", "198.51.100.4")] {
        // trusted_proxies is a top-level key: it must come before the first table.
        let text = two_version_config(blue.addr(), canary.addr(), "blue = 1", "").replacen(
            "[listen]",
            &format!("trusted_proxies = [{trusted}]\n[listen]"),
            1,
        ) + "[routes.headers]\nrequest_set = { \"x-client\" = \"$client_ip\" }\n";
        let sluice = SluiceProcess::start(binary(), &text);
        let req = http::Request::get("/")
            .header("x-forwarded-for", "198.51.100.4")
            .body(Full::<Bytes>::default())
            .unwrap();
        TestClient::http1(sluice.addr()).send(req).await;
        assert_eq!(
            blue.last_request().unwrap().headers["x-client"],
            expect,
            "trusted = {trusted}"
        );
    }
}

async fn raw_exchange(addr: std::net::SocketAddr, prefix: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // One write: a listener that refuses the prefix answers and closes at once, and a second write could then fail
    // (or leave unread bytes that turn sluice's close into a reset that eats the answer).
    let mut request = prefix.to_vec();
    request.extend_from_slice(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let _ = stream.write_all(&request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn proxy_protocol_v1_and_v2_set_the_client_address() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let text = two_version_config(
        blue.addr(),
        canary.addr(),
        "blue = 1",
        "[routes.headers]\nrequest_set = { \"x-client\" = \"$client_ip\" }\n",
    )
    .replacen(
        "http = [\"127.0.0.1:0\"]",
        "http = [\"127.0.0.1:0\"]\nproxy_protocol = true",
        1,
    );
    let sluice = SluiceProcess::start(binary(), &text);
    let answer = raw_exchange(sluice.addr(), b"PROXY TCP4 203.0.113.9 10.0.0.1 5555 80\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = blue.last_request().unwrap();
    assert_eq!(seen.headers["x-client"], "203.0.113.9");
    assert_eq!(seen.headers["x-forwarded-for"], "203.0.113.9");

    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend_from_slice(&[0x21, 0x11, 0x00, 12]);
    v2.extend_from_slice(&[198, 51, 100, 23, 10, 0, 0, 1]);
    v2.extend_from_slice(&4444u16.to_be_bytes());
    v2.extend_from_slice(&443u16.to_be_bytes());
    let answer = raw_exchange(sluice.addr(), &v2).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(blue.last_request().unwrap().headers["x-client"], "198.51.100.23");

    // Without a header such a listener serves nothing.
    let answer = raw_exchange(sluice.addr(), b"").await;
    assert!(!answer.contains("200 OK"), "{answer}");

    // A listener without proxy_protocol treats the header as a bad request.
    let plain = SluiceProcess::start(
        binary(),
        &two_version_config(blue.addr(), canary.addr(), "blue = 1", ""),
    );
    let answer = raw_exchange(plain.addr(), b"PROXY TCP4 203.0.113.9 10.0.0.1 5555 80\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}
