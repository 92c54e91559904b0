//! Telemetry per version, health checks, ejection, fallback, retries and client limits, through real sockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sluice_tests::{AdminClient, SluiceProcess, TestClient, assert_eventually, upstream};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::{binary, two_version_config};

const ADMIN: &str = "[admin]\nlisten = \"127.0.0.1:0\"\n";

/// The value of the first sample of `family` whose labels include every `name="value"` in `labels`.
async fn metric(admin: &AdminClient, family: &str, labels: &[&str]) -> Option<f64> {
    let (_, text) = admin.text("/metrics").await;
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) || l.starts_with(&format!("{family} ")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn server_state(admin: &AdminClient, upstream: &str, server: &str) -> String {
    let state = admin.state().await;
    let group = state["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == upstream)
        .unwrap()
        .clone();
    let s = group["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["addr"] == server)
        .unwrap()
        .clone();
    s["state"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn per_version_latency_and_counts_match_what_clients_saw() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary")
        .latency(Duration::from_millis(50))
        .spawn()
        .await
        .unwrap();
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(blue.addr(), canary.addr(), "blue = 1, canary = 1", ADMIN),
    );
    let client = TestClient::http1(sluice.addr());
    let mut seen = std::collections::HashMap::<String, u64>::new();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for _ in 0..40 {
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
    let admin = AdminClient::new(sluice.admin_addr(), None);
    let (status, stats) = admin
        .call(http::Method::GET, "/api/v1/routes/web/stats?window=60s", None)
        .await;
    assert_eq!(status, 200, "{stats}");
    let version = |name: &str| {
        stats["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["upstream"] == name)
            .unwrap()
            .clone()
    };
    let (b, c) = (version("blue"), version("canary"));
    assert_eq!(b["requests"].as_u64(), Some(seen["blue"]), "{stats}");
    assert_eq!(c["requests"].as_u64(), Some(seen["canary"]), "{stats}");
    let canary_p50 = c["latency_ms"]["p50"].as_f64().unwrap();
    let blue_p50 = b["latency_ms"]["p50"].as_f64().unwrap();
    assert!((50.0..65.0).contains(&canary_p50), "canary p50 {canary_p50} ms");
    assert!(blue_p50 < 5.0, "blue p50 {blue_p50} ms");
    for (name, count) in &seen {
        let version_label = format!("version=\"{name}\"");
        let total = metric(
            &admin,
            "sluice_requests_total",
            &["code=\"2xx\"", "route=\"web\"", &version_label],
        )
        .await;
        assert_eq!(total, Some(*count as f64), "sluice_requests_total for {name}");
    }
    let count = metric(&admin, "sluice_request_duration_seconds_count", &["version=\"canary\""]).await;
    assert_eq!(count, Some(seen["canary"] as f64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_two_servers_shows_no_errors_and_it_comes_back() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary_a = upstream("canary").spawn().await.unwrap();
    let canary_b = upstream("canary").spawn().await.unwrap();
    let a_addr = canary_a.addr();
    let health = "[upstreams.canary.health]\npath = \"/\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\nhealthy = 1\nunhealthy = 2\n";
    let config = two_version_config(blue.addr(), a_addr, "canary = 1", &format!("{ADMIN}{health}")).replace(
        &format!("[\"{a_addr}\"]"),
        &format!("[\"{a_addr}\", \"{}\"]", canary_b.addr()),
    );
    let sluice = SluiceProcess::start(binary(), &config);
    let admin = AdminClient::new(sluice.admin_addr(), None);

    let failures = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..6)
        .map(|_| {
            let client = TestClient::http1(sluice.addr());
            let (failures, done, stop) = (Arc::clone(&failures), Arc::clone(&done), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match client
                        .try_send(http::Request::get("/").body(Default::default()).unwrap())
                        .await
                    {
                        Ok(a) if a.status == 200 => done.fetch_add(1, Ordering::Relaxed),
                        other => {
                            eprintln!("client saw a failure: {:?}", other.map(|a| a.status));
                            failures.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Instant::now();
    canary_a.shutdown().await;
    assert_eventually!(
        server_state(&admin, "canary", &a_addr.to_string()).await != "active",
        Duration::from_secs(3)
    );
    let marked_down_after = killed.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _back = upstream("canary").port(a_addr.port()).spawn().await.unwrap();
    let returned = Instant::now();
    assert_eventually!(
        server_state(&admin, "canary", &a_addr.to_string()).await == "active",
        Duration::from_secs(20)
    );
    let back_after = returned.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    eprintln!(
        "marked down {marked_down_after:?} after the kill; back {back_after:?} after it returned; {} requests",
        done.load(Ordering::Relaxed)
    );
    assert_eq!(failures.load(Ordering::Relaxed), 0, "GETs failed while a server died");
    assert!(
        marked_down_after < Duration::from_secs(1),
        "marked down after {marked_down_after:?}"
    );
    let up = metric(&admin, "sluice_upstream_server_up", &[&format!("server=\"{a_addr}\"")]).await;
    assert_eq!(up, Some(1.0));
}

#[tokio::test]
async fn dead_canary_falls_back_to_blue_without_errors() {
    let blue = upstream("blue").spawn().await.unwrap();
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let config = two_version_config(blue.addr(), dead, "blue = 1, canary = 1", ADMIN).replace(
        "weights = { blue = 1, canary = 1 }",
        "weights = { blue = 1, canary = 1 }\nfallback = \"blue\"",
    );
    let sluice = SluiceProcess::start(binary(), &config);
    let client = TestClient::http1(sluice.addr());
    for _ in 0..200 {
        let answer = client.get("/").await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.upstream(), Some("blue"));
    }
    let admin = AdminClient::new(sluice.admin_addr(), None);
    let fallbacks = metric(&admin, "sluice_fallbacks_total", &["version=\"canary\""])
        .await
        .unwrap_or(0.0);
    assert!(
        fallbacks >= 90.0,
        "half the traffic was canary's: {fallbacks} fallbacks"
    );
    let connect_errors = metric(
        &admin,
        "sluice_upstream_errors_total",
        &["kind=\"connect\"", "version=\"canary\""],
    )
    .await;
    assert!(
        connect_errors.unwrap_or(0.0) >= 1.0,
        "the failed attempts still count against canary"
    );
    assert_eq!(blue.requests(), 200);
    assert_eq!(server_state(&admin, "canary", &dead.to_string()).await, "ejected");
}

#[tokio::test]
async fn slow_header_clients_are_cut_off_and_do_not_slow_others() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let config = two_version_config(
        blue.addr(),
        canary.addr(),
        "blue = 1",
        "[limits]\nheader_timeout = \"1s\"\n",
    );
    let sluice = SluiceProcess::start(binary(), &config);
    let addr = sluice.addr();
    let slow: Vec<_> = (0..100)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let started = Instant::now();
                for byte in b"GET / HTTP/1.1\r\nhost: x\r\nx-slow: "
                    .iter()
                    .chain(std::iter::repeat(&b'a'))
                {
                    if stream.write_all(&[*byte]).await.is_err() || started.elapsed() > Duration::from_secs(10) {
                        break;
                    }
                    let mut buf = [0u8; 256];
                    // Sluice closing (or answering 408) ends the drip.
                    match tokio::time::timeout(Duration::from_millis(250), stream.read(&mut buf)).await {
                        Ok(Ok(_)) | Ok(Err(_)) => break,
                        Err(_) => {}
                    }
                }
                started.elapsed()
            })
        })
        .collect();
    let client = TestClient::http1(addr);
    for _ in 0..200 {
        assert_eq!(client.get("/").await.status, 200);
    }
    for s in slow {
        let cut_after = s.await.unwrap();
        assert!(
            cut_after < Duration::from_secs(3),
            "a slow client was held for {cut_after:?}"
        );
    }
}

#[tokio::test]
async fn oversized_heads_get_431_and_bodies_413() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let config = two_version_config(
        blue.addr(),
        canary.addr(),
        "blue = 1",
        "[limits]\nmax_header_bytes = 16384\nmax_body_bytes = 1000\n",
    );
    let sluice = SluiceProcess::start(binary(), &config);
    let mut stream = TcpStream::connect(sluice.addr()).await.unwrap();
    let big = format!("GET / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "a".repeat(40_000));
    let _ = stream.write_all(big.as_bytes()).await;
    let mut answer = vec![0u8; 256];
    let n = stream.read(&mut answer).await.unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );

    let client = TestClient::http1(sluice.addr());
    let post = |len: usize| {
        http::Request::post("/")
            .body(http_body_util::Full::new(bytes::Bytes::from(vec![b'x'; len])))
            .unwrap()
    };
    assert_eq!(client.send(post(2000)).await.status, 413);
    assert_eq!(client.send(post(500)).await.status, 200);
    assert_eq!(blue.requests(), 1, "the oversized body never reached the upstream");
}
