//! `GET /metrics` and the live stats, with requests recorded straight into the table's telemetry.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use sluice_proxy::telemetry::{Outcome, UpstreamErrorKind};
use tokio::time::Instant;

use super::*;

impl Admin {
    /// Records one finished request of `route`/`version` that took `latency` and ended with `status`.
    fn record(&self, route: &str, version: &str, latency: Duration, status: u16, error: Option<UpstreamErrorKind>) {
        let handle = self.store.load().telemetry().version(route, version);
        let outcome = Outcome::Answered {
            status,
            upstream_error: error,
            local: false,
        };
        handle.finish(Instant::now() - latency, outcome);
    }

    fn abort(&self, route: &str, version: &str) {
        let handle = self.store.load().telemetry().version(route, version);
        handle.finish(Instant::now(), Outcome::ClientAborted);
    }

    async fn metrics(&self) -> String {
        let reply = self.get("/metrics").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.headers["content-type"], "text/plain; version=0.0.4");
        reply.body
    }
}

/// The value of the sample `name` whose labels are exactly `labels` (in any order).
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            if metric != name {
                return None;
            }
            let mut found: Vec<String> = rest
                .strip_suffix('}')?
                .split(',')
                .filter(|pair| !pair.is_empty())
                .map(str::to_owned)
                .collect();
            let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            found.sort();
            want.sort();
            (found == want).then(|| value.parse().expect("sample values are numbers"))
        })
}

/// The traffic of the stats tests: web/blue 20 fast answers and a 404, web/canary 9 slow answers, a connect failure
/// and a client abort.
fn record_traffic(admin: &Admin) {
    for _ in 0..20 {
        admin.record("web", "blue", Duration::from_millis(1), 200, None);
    }
    admin.record("web", "blue", Duration::from_millis(1), 404, None);
    for _ in 0..9 {
        admin.record("web", "canary", Duration::from_millis(50), 200, None);
    }
    admin.record(
        "web",
        "canary",
        Duration::from_millis(50),
        502,
        Some(UpstreamErrorKind::Connect),
    );
    admin.abort("web", "canary");
}

#[tokio::test]
async fn metrics_expose_the_recorded_requests_and_the_config_families() {
    let admin = start(Some(TOKEN)).await;
    record_traffic(&admin);
    // One failed and one good reload.
    std::fs::write(&admin.config, "not toml [").unwrap();
    assert_eq!(
        admin.post("/api/v1/reload").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    std::fs::write(&admin.config, CONFIG).unwrap();
    assert_eq!(admin.post("/api/v1/reload").await.status, StatusCode::OK);

    let text = admin.metrics().await;
    let web = |version: &'static str| [("route", "web"), ("version", version)];
    let requests = |version, code| {
        let [route, version] = web(version);
        sample(&text, "sluice_requests_total", &[route, version, ("code", code)])
    };
    assert_eq!(requests("blue", "2xx"), Some(20.0), "{text}");
    assert_eq!(requests("blue", "4xx"), Some(1.0));
    assert_eq!(requests("canary", "2xx"), Some(9.0));
    assert_eq!(requests("canary", "5xx"), Some(1.0));
    let [route, canary] = web("canary");
    assert_eq!(
        sample(
            &text,
            "sluice_upstream_errors_total",
            &[route, canary, ("kind", "connect")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "sluice_upstream_errors_total",
            &[route, canary, ("kind", "reset")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "sluice_client_aborts_total", &web("canary")),
        Some(1.0),
        "an abort is not an upstream error"
    );
    assert_eq!(
        sample(&text, "sluice_request_duration_seconds_count", &web("canary")),
        Some(10.0)
    );
    let slow = [route, canary, ("le", "0.025")];
    assert_eq!(
        sample(&text, "sluice_request_duration_seconds_bucket", &slow),
        Some(0.0),
        "50 ms answers are above the 25 ms bucket"
    );
    assert_eq!(sample(&text, "sluice_route_weight", &web("blue")), Some(90.0));
    assert_eq!(sample(&text, "sluice_route_weight", &web("canary")), Some(10.0));

    for family in [
        "# TYPE sluice_config_reloads_total counter",
        "# HELP sluice_config_reloads_total ",
        "# TYPE sluice_config_version gauge",
        "# HELP sluice_config_version ",
        "# TYPE sluice_requests_total counter",
        "# TYPE sluice_request_duration_seconds histogram",
    ] {
        assert!(text.contains(family), "no `{family}` in\n{text}");
    }
    let reloads = |result| sample(&text, "sluice_config_reloads_total", &[("result", result)]);
    assert_eq!(reloads("ok"), Some(1.0));
    assert_eq!(reloads("failed"), Some(1.0));
    let version = admin.state().await["version"].as_f64();
    assert_eq!(version, Some(2.0));
    assert_eq!(sample(&text, "sluice_config_version", &[]), version);
    if cfg!(target_os = "linux") {
        assert!(
            sample(&text, "process_resident_memory_bytes", &[]).is_some_and(|rss| rss > 0.0),
            "process metrics are exposed"
        );
    }
    admin.stop().await;
}

#[tokio::test]
async fn metrics_pass_promtool_check() {
    let admin = start(Some(TOKEN)).await;
    record_traffic(&admin);
    admin
        .store
        .load()
        .telemetry()
        .server_up("canary", "127.0.0.1:9103")
        .set(0);
    let text = admin.metrics().await;
    admin.stop().await;

    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            println!("skipped: promtool not installed");
            return;
        }
        Err(err) => panic!("cannot run promtool: {err}"),
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{said}\non:\n{text}",
        out.status
    );
    println!("promtool check metrics: ok {}", said.trim());
}

/// `versions[]` (or `stats[]`) entry of `upstream`.
fn version<'a>(versions: &'a Value, upstream: &str) -> &'a Value {
    versions
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {versions}"))
        .iter()
        .find(|v| v["upstream"] == upstream)
        .unwrap_or_else(|| panic!("no `{upstream}` in {versions}"))
}

fn latency(stats: &Value, quantile: &str) -> f64 {
    stats["latency_ms"][quantile]
        .as_f64()
        .unwrap_or_else(|| panic!("no {quantile} in {stats}"))
}

#[tokio::test]
async fn stats_count_exactly_what_was_recorded() {
    let admin = start(Some(TOKEN)).await;
    record_traffic(&admin);

    let reply = admin.get("/api/v1/routes/web/stats?window=30s").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["route"], "web");
    assert_eq!(body["window_s"], 30);
    let names: Vec<&str> = body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["upstream"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["blue", "canary"], "in layout order");

    let blue = version(&body["versions"], "blue");
    assert_eq!(blue["window_s"], 30);
    assert_eq!(blue["requests"], 21, "{blue}");
    assert_eq!(blue["errors"], 0, "a 404 is not an upstream error: {blue}");
    assert_eq!(blue["error_rate"], 0.0);
    for q in ["p50", "p90", "p99"] {
        let ms = latency(blue, q);
        assert!((1.0..5.0).contains(&ms), "blue {q} {ms} ms");
    }

    let canary = version(&body["versions"], "canary");
    assert_eq!(canary["requests"], 10, "the abort is not a request: {canary}");
    assert_eq!(canary["errors"], 1);
    assert_eq!(canary["error_rate"], 0.1);
    let (p50, p90, p99) = (latency(canary, "p50"), latency(canary, "p90"), latency(canary, "p99"));
    assert!((50.0..60.0).contains(&p50), "canary p50 {p50} ms");
    assert!(p50 <= p90 && p90 <= p99 && p99 < 100.0, "{canary}");

    // The state shows the same numbers over 60 s; a route without traffic has no rate and no latency.
    let state = admin.state().await;
    let web = &state["routes"][0];
    assert_eq!(web["name"], "web");
    let canary = version(&web["stats"], "canary");
    assert_eq!(canary["window_s"], 60);
    assert_eq!(
        (canary["requests"].as_u64(), canary["errors"].as_u64()),
        (Some(10), Some(1))
    );
    assert_eq!(version(&web["stats"], "blue")["requests"], 21);
    let api = &state["routes"][1];
    assert_eq!(api["name"], "api");
    assert_eq!(
        api["stats"],
        json!([{
            "upstream": "blue", "window_s": 60, "requests": 0, "errors": 0,
            "error_rate": null, "latency_ms": null,
        }])
    );

    // A version dropped from the weights keeps showing what it served.
    let reply = admin.put_weights("web", r#"{"blue": 1}"#).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(version(&reply.json()["stats"], "canary")["requests"], 10);
    admin.stop().await;
}

#[tokio::test]
async fn stats_refuse_a_bad_window_and_an_unknown_route() {
    let admin = start(Some(TOKEN)).await;
    let five_minutes = admin.get("/api/v1/routes/web/stats?window=5m").await;
    assert_eq!(five_minutes.status, StatusCode::OK, "{}", five_minutes.body);
    assert_eq!(five_minutes.json()["window_s"], 300);
    assert_eq!(admin.get("/api/v1/routes/web/stats").await.json()["window_s"], 60);
    for bad in ["abc", "30", "0s", "301s", "10m", "1500ms"] {
        let reply = admin.get(&format!("/api/v1/routes/web/stats?window={bad}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}: {}", reply.body);
        let error = reply.error();
        assert!(
            error.contains("`window`") && error.contains(&format!("`{bad}`")),
            "{bad}: {error}"
        );
    }
    let reply = admin.get("/api/v1/routes/nope/stats").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.error().contains("`nope`"), "{}", reply.body);
    let reply = admin
        .call(Method::POST, "/api/v1/routes/web/stats", Some(TOKEN), "")
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "GET, HEAD");
    admin.stop().await;
}
