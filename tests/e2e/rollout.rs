//! The promotion controller end to end: real upstreams, load, sluice deciding from its own measurements.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};
use sluice_tests::{AdminClient, SluiceProcess, TestClient, upstream};

use crate::binary;

fn config(blue: std::net::SocketAddr, canary: std::net::SocketAddr, rollout: &str) -> String {
    format!(
        r#"
[listen]
http = ["127.0.0.1:0"]
[upstreams.blue]
servers = ["{blue}"]
[upstreams.canary]
servers = ["{canary}"]
[[routes]]
name = "web"
weights = {{ blue = 100, canary = 0 }}
[routes.rollout]
stable = "blue"
canary = "canary"
{rollout}
[admin]
listen = "127.0.0.1:0"
"#
    )
}

/// Closed-loop load from a few clients until dropped (well over 200 req/s even in a debug build).
struct Load {
    stop: Arc<AtomicBool>,
}

impl Load {
    fn start(addr: std::net::SocketAddr, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        for _ in 0..clients {
            let (client, stop) = (TestClient::http1(addr), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let _ = client
                        .try_send(http::Request::get("/").body(Default::default()).unwrap())
                        .await;
                }
            });
        }
        Load { stop }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

async fn rollout(admin: &AdminClient) -> Value {
    let (status, body) = admin.call(Method::GET, "/api/v1/routes/web/rollout", None).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn command(admin: &AdminClient, what: &str) -> (http::StatusCode, Value) {
    admin
        .call(Method::POST, &format!("/api/v1/routes/web/rollout/{what}"), None)
        .await
}

/// Polls until the rollout's phase is one of `phases`; returns the document.
async fn until_phase(admin: &AdminClient, phases: &[&str], patience: Duration) -> Value {
    let started = Instant::now();
    loop {
        let doc = rollout(admin).await;
        if phases.iter().any(|p| doc["state"]["phase"] == *p) {
            return doc;
        }
        assert!(started.elapsed() < patience, "phase never became {phases:?}: {doc:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn highest_step(doc: &Value) -> u64 {
    doc["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["step"].as_u64())
        .max()
        .unwrap_or(0)
}

const FAST: &str = "steps = [10, 25, 50, 100]\ninterval = \"1s\"\nfailure_threshold = 2\nmin_requests = 50\nprogress_deadline = \"20s\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_canary_is_promoted_through_every_step() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(binary(), &config(blue.addr(), canary.addr(), FAST));
    let admin = AdminClient::new(sluice.admin_addr(), None);
    let _load = Load::start(sluice.addr(), 4);
    let (status, body) = command(&admin, "start").await;
    assert_eq!(status, 200, "{body}");
    let done = until_phase(&admin, &["succeeded", "failed"], Duration::from_secs(30)).await;
    assert_eq!(done["state"]["phase"], "succeeded", "{done:#}");
    assert_eq!(
        highest_step(&done),
        2,
        "steps 10, 25 and 50 were each analysed: {done:#}"
    );
    let (weights, source) = admin.weights("web").await;
    assert_eq!(weights, vec![("blue".to_owned(), 0), ("canary".to_owned(), 100)]);
    assert_eq!(source, "controller");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_with_five_percent_errors_is_rolled_back_before_the_third_step() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").fail_rate(0.05).spawn().await.unwrap();
    let text = config(
        blue.addr(),
        canary.addr(),
        &FAST.replace("interval = \"1s\"", "interval = \"2s\""),
    );
    let sluice = SluiceProcess::start(binary(), &text);
    let admin = AdminClient::new(sluice.admin_addr(), None);
    let _load = Load::start(sluice.addr(), 4);
    command(&admin, "start").await;
    let done = until_phase(&admin, &["succeeded", "failed"], Duration::from_secs(30)).await;
    assert_eq!(done["state"]["phase"], "failed", "{done:#}");
    assert!(highest_step(&done) < 2, "never reached the third step: {done:#}");
    let decisions = done["decisions"].to_string();
    assert!(
        decisions.contains("error"),
        "the decision log shows the error-rate numbers: {decisions}"
    );
    let (weights, _) = admin.weights("web").await;
    assert_eq!(weights, vec![("blue".to_owned(), 100), ("canary".to_owned(), 0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_100ms_slower_is_rolled_back_by_the_latency_check() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary")
        .latency(Duration::from_millis(100))
        .spawn()
        .await
        .unwrap();
    let sluice = SluiceProcess::start(binary(), &config(blue.addr(), canary.addr(), FAST));
    let admin = AdminClient::new(sluice.admin_addr(), None);
    let _load = Load::start(sluice.addr(), 8);
    command(&admin, "start").await;
    let done = until_phase(&admin, &["succeeded", "failed"], Duration::from_secs(30)).await;
    assert_eq!(done["state"]["phase"], "failed", "{done:#}");
    let last = done["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|d| !d["judgement"].is_null())
        .unwrap()
        .clone();
    assert_eq!(last["judgement"]["latency"]["verdict"], "fail", "{last:#}");
}

#[tokio::test]
async fn no_traffic_stays_inconclusive_then_fails_at_the_deadline() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let text = config(
        blue.addr(),
        canary.addr(),
        &FAST.replace("progress_deadline = \"20s\"", "progress_deadline = \"3s\""),
    );
    let sluice = SluiceProcess::start(binary(), &text);
    let admin = AdminClient::new(sluice.admin_addr(), None);
    command(&admin, "start").await;
    let done = until_phase(&admin, &["succeeded", "failed"], Duration::from_secs(15)).await;
    assert_eq!(done["state"]["phase"], "failed");
    assert!(
        done["state"]["reason"].as_str().unwrap().contains("progress deadline"),
        "{done:#}"
    );
    assert_eq!(highest_step(&done), 0, "no traffic, no promotion");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_at_the_same_step_with_the_same_weights() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    // A long interval: nothing moves on its own during the test.
    let slow = "steps = [10, 25, 50, 100]\ninterval = \"5m\"\nprogress_deadline = \"10m\"\n";
    let mut sluice = SluiceProcess::start(binary(), &config(blue.addr(), canary.addr(), slow));
    let admin = AdminClient::new(sluice.admin_addr(), None);
    command(&admin, "start").await;
    until_phase(&admin, &["progressing"], Duration::from_secs(5)).await;
    let before = admin.weights("web").await;
    assert_eq!(before.0, vec![("blue".to_owned(), 90), ("canary".to_owned(), 10)]);
    tokio::task::block_in_place(|| sluice.restart(&[]));
    let admin = AdminClient::new(sluice.admin_addr(), None);
    let doc = rollout(&admin).await;
    assert_eq!(
        (doc["state"]["phase"].clone(), doc["state"]["step"].clone()),
        (json!("progressing"), json!(0))
    );
    assert_eq!(admin.weights("web").await, before);
    // Pause holds; abort rolls back at once.
    assert_eq!(command(&admin, "pause").await.0, 200);
    assert_eq!(rollout(&admin).await["state"]["phase"], "paused");
    assert_eq!(command(&admin, "resume").await.0, 200);
    assert_eq!(command(&admin, "abort").await.0, 200);
    assert_eq!(rollout(&admin).await["state"]["phase"], "failed");
    assert_eq!(
        admin.weights("web").await.0,
        vec![("blue".to_owned(), 100), ("canary".to_owned(), 0)]
    );
    assert_eq!(command(&admin, "resume").await.0, 409, "nothing to resume");
}

#[tokio::test]
async fn a_hanging_webhook_times_out_and_closes_its_gate() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    // Accepts and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = hang.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            held.push(s);
        }
    });
    let with_hook = format!(
        "{FAST}[[routes.rollout.webhooks]]\nkind = \"pre-rollout\"\nurl = \"http://{hook}/gate\"\ntimeout = \"500ms\"\n"
    );
    let sluice = SluiceProcess::start(binary(), &config(blue.addr(), canary.addr(), &with_hook));
    let admin = AdminClient::new(sluice.admin_addr(), None);
    let started = Instant::now();
    command(&admin, "start").await;
    let done = until_phase(&admin, &["failed", "progressing"], Duration::from_secs(10)).await;
    assert_eq!(
        done["state"]["phase"], "failed",
        "a closed pre-rollout gate aborts: {done:#}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the controller did not hang on the webhook"
    );
    assert!(done["decisions"].to_string().contains("did not answer"), "{done:#}");
    holder.abort();
}

fn blue_green(blue: std::net::SocketAddr, canary: std::net::SocketAddr) -> String {
    config(blue, canary, "strategy = \"blue_green\"\nsteps = [100, 100]\ninterval = \"1s\"\nmin_requests = 50\nprogress_deadline = \"20s\"\n")
        .replace(
            "[routes.rollout]",
            "[[routes.match]]\nheader = { name = \"x-canary\", value = \"always\" }\nversion = \"canary\"\n[routes.rollout]",
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_switches_at_once_and_keeps_a_healthy_version() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(binary(), &blue_green(blue.addr(), canary.addr()));
    let admin = AdminClient::new(sluice.admin_addr(), None);
    // Before the switch testers reach the new version through the match rule; users do not.
    let client = TestClient::http1(sluice.addr());
    let tester = http::Request::get("/")
        .header("x-canary", "always")
        .body(Default::default())
        .unwrap();
    assert_eq!(client.send(tester).await.upstream(), Some("canary"));
    assert_eq!(client.get("/").await.upstream(), Some("blue"));
    let _load = Load::start(sluice.addr(), 4);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    command(&admin, "start").await;
    let done = until_phase(&admin, &["succeeded", "failed"], Duration::from_secs(20)).await;
    assert_eq!(done["state"]["phase"], "succeeded", "{done:#}");
    assert_eq!(
        admin.weights("web").await.0,
        vec![("blue".to_owned(), 0), ("canary".to_owned(), 100)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_switches_back_at_once_when_the_new_version_fails() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").fail_rate(0.2).spawn().await.unwrap();
    let sluice = SluiceProcess::start(binary(), &blue_green(blue.addr(), canary.addr()));
    let admin = AdminClient::new(sluice.admin_addr(), None);
    let _load = Load::start(sluice.addr(), 4);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    command(&admin, "start").await;
    let done = until_phase(&admin, &["succeeded", "failed"], Duration::from_secs(20)).await;
    assert_eq!(done["state"]["phase"], "failed", "{done:#}");
    assert!(
        done["state"]["reason"].as_str().unwrap().contains("1 failed analyses"),
        "{done:#}"
    );
    assert_eq!(
        admin.weights("web").await.0,
        vec![("blue".to_owned(), 100), ("canary".to_owned(), 0)]
    );
}
