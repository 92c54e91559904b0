//! Live control: weights and config changes under load, reload triggers, persistence across restarts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::json;
use sluice_tests::{AdminClient, SluiceProcess, TestClient, assert_eventually, upstream};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{binary, two_version_config};

const ADMIN: &str = "[admin]\nlisten = \"127.0.0.1:0\"\n";

fn config(blue: std::net::SocketAddr, canary: std::net::SocketAddr, weights: &str) -> String {
    two_version_config(blue, canary, weights, ADMIN)
}

/// Polls through a fresh client until a request lands on `version`; returns how long that took.
async fn time_until_routed_to(client: &TestClient, version: &str, patience: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let answer = client.get("/").await;
        if answer.upstream() == Some(version) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < patience,
            "still not routed to {version} after {patience:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_changes_and_config_rewrites_under_load_fail_no_request() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let (b, c) = (blue.addr(), canary.addr());
    let sluice = SluiceProcess::start(binary(), &config(b, c, "blue = 50, canary = 50"));
    let admin = AdminClient::new(sluice.admin_addr(), None);

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for _ in 0..12 {
        let client = TestClient::http1(sluice.addr());
        let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client
                    .try_send(http::Request::get("/").body(Default::default()).unwrap())
                    .await
                {
                    Ok(answer) if answer.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(answer) => panic!("request failed under load: {} {}", answer.status, answer.text()),
                    Err(err) => {
                        eprintln!("transport error under load: {err}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }

    let started = Instant::now();
    let probe = TestClient::http1(sluice.addr());
    let mut slowest_api = Duration::ZERO;
    let mut slowest_file = Duration::ZERO;
    let (mut api_changes, mut rewrites, mut invalid) = (0, 0, 0);
    for i in 0..150u32 {
        if i % 3 == 2 {
            rewrites += 1;
            // Each rewrite differs from every earlier one, so the watcher sees each as a change.
            let stamp = format!("# rewrite {rewrites}\n");
            let counts =
                |state: serde_json::Value| (state["reloads"]["ok"].as_u64(), state["reloads"]["failed"].as_u64());
            let (ok_before, failed_before) = counts(admin.state().await);
            let written = Instant::now();
            if rewrites % 2 == 0 {
                invalid += 1;
                sluice.rewrite_config(&(stamp + &config(b, c, "blue = 50, canary = 50").replace("servers", "servrs")));
                assert_eventually!(counts(admin.state().await).1 > failed_before, Duration::from_secs(5));
            } else {
                // Every valid rewrite flips the file's weights, so the file wins over the API's last change.
                let to = if (rewrites / 2) % 2 == 0 { "canary" } else { "blue" };
                let weights = if to == "canary" {
                    "blue = 0, canary = 1"
                } else {
                    "blue = 1, canary = 0"
                };
                sluice.rewrite_config(&(stamp + &config(b, c, weights)));
                assert_eventually!(counts(admin.state().await).0 > ok_before, Duration::from_secs(5));
                time_until_routed_to(&probe, to, Duration::from_secs(1)).await;
                slowest_file = slowest_file.max(written.elapsed());
            }
        } else {
            api_changes += 1;
            let to = if api_changes % 2 == 0 { "blue" } else { "canary" };
            let weights = if to == "canary" {
                json!({"blue": 0, "canary": 100})
            } else {
                json!({"blue": 100, "canary": 0})
            };
            admin.set_weights("web", weights).await;
            slowest_api = slowest_api.max(time_until_routed_to(&probe, to, Duration::from_secs(1)).await);
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let ok = ok.load(Ordering::Relaxed);
    eprintln!(
        "{api_changes} API changes, {rewrites} rewrites ({invalid} invalid) in {elapsed:?} under {:.0} req/s; \
         slowest API change seen after {slowest_api:?}, slowest file change after {slowest_file:?}",
        ok as f64 / elapsed.as_secs_f64()
    );
    assert_eq!((api_changes, rewrites, invalid), (100, 50, 25));
    assert_eq!(failed.load(Ordering::Relaxed), 0, "requests failed during changes");
    assert!(ok > 1000, "the load ran: {ok} requests");
    let state = admin.state().await;
    assert_eq!(state["reloads"]["ok"].as_u64(), Some(25), "{state}");
    assert_eq!(state["reloads"]["failed"].as_u64(), Some(25), "{state}");
}

#[tokio::test]
async fn invalid_edit_keeps_old_weights_and_state_names_the_line() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(binary(), &config(blue.addr(), canary.addr(), "blue = 1, canary = 0"));
    let admin = AdminClient::new(sluice.admin_addr(), None);
    let broken = config(blue.addr(), canary.addr(), "blue = 0, canary = 1").replace("path_prefix", "x");
    let broken = broken.replace("name = \"web\"", "name = \"web\"\npath_prefix = \"nope\"");
    let line = broken.lines().position(|l| l.starts_with("path_prefix")).unwrap() + 1;
    sluice.rewrite_config(&broken);
    assert_eventually!(admin.state().await["last_reload"]["ok"] == json!(false));
    let error = admin.state().await["last_reload"]["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains(&format!("sluice.toml:{line}:")) && error.contains("path_prefix"),
        "{error}"
    );
    assert_eq!(TestClient::http1(sluice.addr()).get("/").await.upstream(), Some("blue"));
    assert_eventually!(sluice.stderr().contains("configuration rejected"));
}

#[tokio::test]
async fn symlink_swap_and_sighup_reload() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    // Laid out like a Kubernetes ConfigMap volume: sluice.toml -> ..data/sluice.toml, ..data -> v1.
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let root = dir.path();
    for (version, weights) in [("v1", "blue = 1, canary = 0"), ("v2", "blue = 0, canary = 1")] {
        std::fs::create_dir(root.join(version)).unwrap();
        std::fs::write(
            root.join(version).join("sluice.toml"),
            config(blue.addr(), canary.addr(), weights),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("v1", root.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/sluice.toml", root.join("sluice.toml")).unwrap();
    let sluice = SluiceProcess::start_in(binary(), Arc::clone(&dir), &[]);
    let client = TestClient::http1(sluice.addr());
    assert_eq!(client.get("/").await.upstream(), Some("blue"));
    std::os::unix::fs::symlink("v2", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    time_until_routed_to(&client, "canary", Duration::from_secs(3)).await;

    // SIGHUP reloads too (here the content is unchanged for the watcher: write it in place without the watcher
    // seeing a difference is impossible, so check the reload counter instead).
    let admin = AdminClient::new(sluice.admin_addr(), None);
    let before = admin.state().await["reloads"]["ok"].as_u64().unwrap();
    sluice.signal("HUP");
    assert_eventually!(admin.state().await["reloads"]["ok"].as_u64().unwrap() == before + 1);
    assert_eq!(admin.state().await["last_reload"]["trigger"], "SIGHUP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_weights_survive_restart_until_the_file_changes_them() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let (b, c) = (blue.addr(), canary.addr());
    let mut sluice = SluiceProcess::start(binary(), &config(b, c, "blue = 90, canary = 10"));
    let admin = AdminClient::new(sluice.admin_addr(), None);
    admin.set_weights("web", json!({"blue": 20, "canary": 80})).await;

    tokio::task::block_in_place(|| sluice.restart(&[]));
    let admin = AdminClient::new(sluice.admin_addr(), None);
    let expect_admin = (
        vec![("blue".to_owned(), 20), ("canary".to_owned(), 80)],
        "admin".to_owned(),
    );
    assert_eq!(admin.weights("web").await, expect_admin);

    // An unrelated edit (a timeout) keeps the API's weights.
    let version = admin.state().await["version"].as_u64().unwrap();
    sluice.rewrite_config(
        &config(b, c, "blue = 90, canary = 10").replace("[admin]", "[timeouts]\nidle = \"30s\"\n[admin]"),
    );
    assert_eventually!(admin.state().await["version"].as_u64().unwrap() > version);
    assert_eq!(admin.weights("web").await, expect_admin);

    // Changing that route's weights in the file: the file wins.
    sluice.rewrite_config(
        &config(b, c, "blue = 60, canary = 40").replace("[admin]", "[timeouts]\nidle = \"30s\"\n[admin]"),
    );
    let expect_file = (
        vec![("blue".to_owned(), 60), ("canary".to_owned(), 40)],
        "file".to_owned(),
    );
    assert_eventually!(admin.weights("web").await == expect_file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_state_writes_never_tears_the_state_file() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let mut sluice = SluiceProcess::start(binary(), &config(blue.addr(), canary.addr(), "blue = 90, canary = 10"));
    let state_file = sluice.dir().path().join("sluice.state.json");
    for round in 0..5u64 {
        let admin = AdminClient::new(sluice.admin_addr(), None);
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let admin = admin.clone();
                tokio::spawn(async move {
                    for i in 0u64.. {
                        let body = json!({"blue": i % 100, "canary": 100 - i % 100 + w});
                        let path = "/api/v1/routes/web/weights";
                        if admin.call_raw(Method::PUT, path, body).await.is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(150 + round * 37)).await;
        tokio::task::block_in_place(|| sluice.kill9());
        for w in writers {
            let _ = w.await;
        }
        let text = std::fs::read_to_string(&state_file).expect("a state file exists after the writes");
        let parsed: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("torn state file: {e}\n{text}"));
        assert_eq!(parsed["routes"]["web"]["source"], "admin");
        // The restarted process accepts the file it left behind.
        let dir = sluice.dir();
        sluice = SluiceProcess::start_in(binary(), dir, &[]);
        let (weights, source) = AdminClient::new(sluice.admin_addr(), None).weights("web").await;
        assert_eq!(source, "admin");
        assert_eq!(
            weights[0].1,
            parsed["routes"]["web"]["weights"][0]["weight"].as_u64().unwrap()
        );
    }
}

#[tokio::test]
async fn unreadable_state_file_stops_startup_until_discarded() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sluice.toml"),
        config(blue.addr(), canary.addr(), "blue = 1"),
    )
    .unwrap();
    std::fs::write(dir.path().join("sluice.state.json"), "{ torn").unwrap();
    let out = std::process::Command::new(binary())
        .args(["run", "--config"])
        .arg(dir.path().join("sluice.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("sluice.state.json") && stderr.contains("--discard-state"),
        "{stderr}"
    );
    let sluice = SluiceProcess::start_in(binary(), Arc::new(dir), &["--discard-state"]);
    assert_eq!(TestClient::http1(sluice.addr()).get("/").await.upstream(), Some("blue"));
}

#[tokio::test]
async fn admin_api_guards_its_input() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let text =
        config(blue.addr(), canary.addr(), "blue = 1").replace("[admin]", "[admin]\ntoken_file = \"admin.token\"");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sluice.toml"), text).unwrap();
    std::fs::write(dir.path().join("admin.token"), "s3cret\n").unwrap();
    let sluice = SluiceProcess::start_in(binary(), Arc::new(dir), &[]);
    let anonymous = AdminClient::new(sluice.admin_addr(), None);
    let (status, _) = anonymous
        .call(Method::PUT, "/api/v1/routes/web/weights", Some(json!({"blue": 1})))
        .await;
    assert_eq!(status, 401);
    let admin = AdminClient::new(sluice.admin_addr(), Some("s3cret"));
    let (status, body) = admin
        .call(Method::PUT, "/api/v1/routes/web/weights", Some(json!({"blue": -1})))
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("blue"), "{body}");
    // A 10 MB body over a raw socket: the answer comes before the body is sent, as curl would see it.
    let mut stream = tokio::net::TcpStream::connect(sluice.admin_addr()).await.unwrap();
    let head = "PUT /api/v1/routes/web/weights HTTP/1.1\r\nhost: admin\r\nauthorization: Bearer s3cret\r\n\
                content-type: application/json\r\ncontent-length: 10485760\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let _ = stream.write_all(&[b' '; 65_536]).await;
    let mut answer = vec![0u8; 512];
    let n = stream.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let (status, _) = admin
        .call(Method::PUT, "/api/v1/routes/nope/weights", Some(json!({"blue": 1})))
        .await;
    assert_eq!(status, 404);
    assert_eq!(admin.weights("web").await.1, "file", "nothing refused was applied");
}

#[tokio::test]
async fn drained_server_gets_no_new_requests() {
    let blue_a = upstream("blue").spawn().await.unwrap();
    let blue_b = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let text = config(blue_a.addr(), canary.addr(), "blue = 1").replace(
        &format!("[\"{}\"]", blue_a.addr()),
        &format!("[\"{}\", \"{}\"]", blue_a.addr(), blue_b.addr()),
    );
    let sluice = SluiceProcess::start(binary(), &text);
    let admin = AdminClient::new(sluice.admin_addr(), None);
    let client = TestClient::http1(sluice.addr());
    let path = format!("/api/v1/upstreams/blue/servers/{}/drain", blue_a.addr());
    let (status, body) = admin.call(Method::POST, &path, None).await;
    assert_eq!(status, 200, "{body}");
    let before = blue_a.requests();
    for _ in 0..20 {
        assert_eq!(client.get("/").await.status, 200);
    }
    assert_eq!(blue_a.requests(), before, "a drained server got new requests");
    let (status, _) = admin.call(Method::POST, &path.replace("/drain", "/enable"), None).await;
    assert_eq!(status, 200);
    for _ in 0..20 {
        client.get("/").await;
    }
    assert!(blue_a.requests() > before, "an enabled server gets requests again");
}
