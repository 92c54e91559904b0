//! `GET /api/v1/routes/{route}/rollout` and its commands, against a real controller on the test's store.

use std::time::Duration;

use super::*;

/// `web` has a canary rollout (an interval long enough that no analysis runs during a test); `api` has none.
const ROLLOUT_CONFIG: &str = r#"
[listen]
http = ["127.0.0.1:0"]
[upstreams.blue]
servers = ["127.0.0.1:9101"]
[upstreams.canary]
servers = ["127.0.0.1:9103"]
[[routes]]
name = "web"
weights = { blue = 100, canary = 0 }
[routes.rollout]
stable = "blue"
canary = "canary"
steps = [5, 10, 25, 50, 100]
interval = "1h"
progress_deadline = "2h"
[routes.rollout.analysis]
max_latency_p99 = "250ms"
[[routes]]
name = "api"
path_prefix = "/api"
weights = { blue = 1 }
"#;

impl Admin {
    async fn rollout(&self, route: &str) -> Value {
        let reply = self.get(&format!("/api/v1/routes/{route}/rollout")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.json()
    }

    async fn command(&self, route: &str, command: &str, body: &str) -> Reply {
        let path = format!("/api/v1/routes/{route}/rollout/{command}");
        self.call(Method::POST, &path, Some(TOKEN), body).await
    }

    /// The weight and source of `upstream` on `route` in `GET /api/v1/state`.
    async fn weight(&self, route: &str, upstream: &str) -> (u64, String) {
        let state = self.state().await;
        let route = state["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == route)
            .unwrap()
            .clone();
        let weight = route["weights"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["upstream"] == upstream)
            .unwrap()["weight"]
            .as_u64()
            .unwrap();
        (weight, route["weights_source"].as_str().unwrap().to_owned())
    }
}

/// Polls `GET .../rollout` until `check` holds, for at most 5 s.
async fn rollout_until(admin: &Admin, route: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let doc = admin.rollout(route).await;
        if check(&doc) {
            return doc;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still not {what} after 5 s: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn idle_rollout_reads_without_a_controller_and_commands_need_one() {
    let admin = start_with(ROLLOUT_CONFIG, Some(TOKEN), false).await;
    let doc = admin.rollout("web").await;
    assert_eq!(doc["route"], "web");
    assert_eq!(
        doc["config"],
        json!({
            "strategy": "canary", "stable": "blue", "canary": "canary", "steps": [5, 10, 25, 50, 100],
            "interval_s": 3600.0, "failure_threshold": 2, "min_requests": 200, "progress_deadline_s": 7200.0,
            "analysis": { "max_error_rate": 0.05, "max_error_rate_increase": 0.01, "max_latency_p99_ms": 250.0,
                          "max_latency_ratio": 1.2, "confidence": 0.99 },
            "revision": null,
        })
    );
    assert_eq!(doc["state"]["phase"], "idle");
    assert_eq!(doc["state"]["canary_percent"], 0);
    assert_eq!(doc["state"]["started_at"], Value::Null);
    assert_eq!(doc["decisions"], json!([]));

    let reply = admin.command("web", "start", "").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.body);
    assert!(reply.error().contains("controller is not running"), "{}", reply.body);
    assert_eq!(admin.state().await["version"], 1, "nothing was applied");
    admin.stop().await;
}

#[tokio::test]
async fn start_pause_resume_abort_move_the_weights() {
    let admin = start_with(ROLLOUT_CONFIG, Some(TOKEN), true).await;
    let controller = Arc::clone(admin.controller.as_ref().unwrap());
    let (stop_controller, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(controller.run(async {
        let _ = stopped.await;
    }));

    let reply = admin
        .call(Method::POST, "/api/v1/routes/web/rollout/start", None, "")
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(admin.rollout("web").await["state"]["phase"], "idle");

    let reply = admin.command("web", "start", r#"{"revision": "build-2"}"#).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let doc = reply.json();
    assert_eq!(doc["state"]["phase"], "initializing");
    assert_eq!(doc["state"]["revision"], "build-2");
    assert_eq!(doc["state"]["canary_percent"], 0);
    assert!(is_rfc3339_millis(&doc["state"]["started_at"]), "{doc}");
    assert_eq!(doc["config"]["steps"][0], 5, "the answer is the whole document");

    // No pre-rollout webhook: the controller's next tick opens the gate and moves to the first step.
    let doc = rollout_until(&admin, "web", "progressing", |d| d["state"]["phase"] == "progressing").await;
    assert_eq!(
        (doc["state"]["step"].as_u64(), doc["state"]["canary_percent"].as_u64()),
        (Some(0), Some(5))
    );
    assert_eq!(admin.weight("web", "canary").await, (5, "controller".to_owned()));
    assert_eq!(admin.weight("web", "blue").await.0, 95);

    let reply = admin.command("web", "start", "").await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert!(reply.error().contains("it is progressing"), "{}", reply.body);

    let reply = admin.command("web", "pause", "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let doc = reply.json();
    assert_eq!(doc["state"]["phase"], "paused");
    assert_eq!(doc["state"]["paused_from"], "progressing");
    assert_eq!(doc["state"]["canary_percent"], 5, "pausing holds the step");

    let reply = admin.command("web", "resume", "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["state"]["phase"], "progressing");
    let reply = admin.command("web", "resume", "").await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert_eq!(
        reply.error(),
        "cannot resume the rollout of route `web`: it is progressing; only a paused rollout can be resumed"
    );

    let reply = admin.command("web", "abort", "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let doc = reply.json();
    assert_eq!(doc["state"]["phase"], "failed");
    assert_eq!(doc["state"]["reason"], "aborted by an operator");
    assert_eq!(doc["state"]["canary_percent"], 0);
    assert_eq!(admin.weight("web", "canary").await, (0, "controller".to_owned()));
    assert_eq!(admin.weight("web", "blue").await.0, 100);
    let reply = admin.command("web", "abort", "").await;
    assert_eq!(
        reply.status,
        StatusCode::CONFLICT,
        "a failed rollout cannot be aborted again: {}",
        reply.body
    );

    // The decision log, oldest first, one entry per transition.
    let doc = admin.rollout("web").await;
    let notes: Vec<&str> = doc["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["note"].as_str().unwrap())
        .collect();
    assert!(notes.first().unwrap().contains("started"), "{notes:?}");
    assert!(notes.last().unwrap().contains("aborted by an operator"), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("paused")), "{notes:?}");
    assert!(
        doc["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| is_rfc3339_millis(&d["at"]))
    );

    // Each command is in the event log under its caller.
    let events = admin.get("/api/v1/events").await.json();
    let who: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["what"].as_str().unwrap().contains("rollout of route web"))
        .map(|e| e["who"].as_str().unwrap())
        .collect();
    assert!(who.iter().any(|w| w.starts_with("admin api 127.0.0.1:")), "{who:?}");

    let _ = stop_controller.send(());
    running.await.unwrap();
    admin.stop().await;
}

#[tokio::test]
async fn routes_without_a_rollout_bad_bodies_and_wrong_methods() {
    let admin = start_with(ROLLOUT_CONFIG, Some(TOKEN), true).await;
    for path in ["/api/v1/routes/api/rollout", "/api/v1/routes/nope/rollout"] {
        let reply = admin.get(path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}: {}", reply.body);
    }
    let reply = admin.get("/api/v1/routes/api/rollout").await;
    assert!(reply.error().contains("[routes.rollout]"), "{}", reply.body);
    assert!(
        admin
            .get("/api/v1/routes/nope/rollout")
            .await
            .error()
            .contains("unknown route `nope`")
    );

    let reply = admin.command("api", "start", "").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
    assert!(reply.error().contains("[routes.rollout]"), "{}", reply.body);
    assert_eq!(admin.command("nope", "abort", "").await.status, StatusCode::NOT_FOUND);
    assert_eq!(admin.command("web", "restart", "").await.status, StatusCode::NOT_FOUND);

    for (body, says) in [
        ("[1]", "JSON object"),
        ("{\"revision\": 7}", "non-empty string"),
        ("{\"revision\": \"\"}", "non-empty string"),
        ("{\"rev\": \"x\"}", "unknown field `rev`"),
        ("{", "not valid JSON"),
    ] {
        let reply = admin.command("web", "start", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {}", reply.body);
        assert!(reply.error().contains(says), "{body}: {}", reply.body);
    }
    assert_eq!(admin.rollout("web").await["state"]["phase"], "idle", "nothing started");
    let reply = admin.command("web", "pause", "").await;
    assert_eq!(
        reply.status,
        StatusCode::CONFLICT,
        "an idle rollout cannot be paused: {}",
        reply.body
    );

    let reply = admin.get("/api/v1/routes/web/rollout/start").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "POST");
    let reply = admin
        .call(Method::POST, "/api/v1/routes/web/rollout", Some(TOKEN), "")
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);

    // A `null` revision is the same as no body.
    let reply = admin.command("web", "start", "{\"revision\": null}").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["state"]["revision"], Value::Null);
    admin.stop().await;
}
