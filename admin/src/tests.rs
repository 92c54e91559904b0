//! The API through a real socket: a store opened on a temporary config file, the admin server on
//! `127.0.0.1:0`, and a hyper client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sluice_config::{OpenOptions, Store};
use sluice_proxy::Table;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::controller::Controller;
use crate::{AdminState, serve};

mod rollout;
mod telemetry;

const TOKEN: &str = "s3cret-token";

const CONFIG: &str = r#"
[listen]
http = ["127.0.0.1:0"]
[upstreams.blue]
servers = ["127.0.0.1:9101", "127.0.0.1:9102", "[::1]:9104"]
[upstreams.canary]
servers = ["127.0.0.1:9103"]
[[routes]]
name = "web"
weights = { blue = 90, canary = 10 }
[[routes]]
name = "api"
hosts = ["api.example.com"]
path_prefix = "/api"
weights = { blue = 1 }
"#;

struct Admin {
    addr: SocketAddr,
    config: PathBuf,
    store: Arc<Store<Table>>,
    controller: Option<Arc<Controller>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message: {}", self.body))
            .to_owned()
    }
}

async fn start(token: Option<&str>) -> Admin {
    start_with(CONFIG, token, false).await
}

/// An admin server on `config`; with `controller`, rollout commands go to a [`Controller`] on the same store (not
/// running: a test that wants its ticks runs it).
async fn start_with(config_text: &str, token: Option<&str>, controller: bool) -> Admin {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, config_text).unwrap();
    let store = Arc::new(Store::open(&config, &OpenOptions::default()).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let controller = controller.then(|| Controller::new(Arc::clone(&store)));
    let mut admin = AdminState::new(Arc::clone(&store), token.map(str::to_owned));
    if let Some(controller) = &controller {
        admin = admin.with_controller(Arc::clone(controller));
    }
    let admin = Arc::new(admin);
    let task = tokio::spawn(serve(listener, admin, async {
        let _ = stopped.await;
    }));
    Admin {
        addr,
        config,
        store,
        controller,
        stop: Some(stop),
        task,
        _dir: dir,
    }
}

impl Admin {
    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: &str) -> Reply {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = Request::builder().method(method).uri(path).header("host", "admin");
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        let response = sender.send_request(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None, "").await
    }

    async fn state(&self) -> Value {
        let reply = self.get("/api/v1/state").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.json()
    }

    async fn put_weights(&self, route: &str, body: &str) -> Reply {
        self.call(
            Method::PUT,
            &format!("/api/v1/routes/{route}/weights"),
            Some(TOKEN),
            body,
        )
        .await
    }

    async fn post(&self, path: &str) -> Reply {
        self.call(Method::POST, path, Some(TOKEN), "").await
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(std::time::Duration::from_secs(5), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

fn is_rfc3339_millis(text: &Value) -> bool {
    let text = text.as_str().unwrap_or_default();
    text.len() == 24 && text.ends_with('Z') && text.as_bytes()[10] == b'T' && text.as_bytes()[19] == b'.'
}

fn server_state(state: &Value, upstream: &str, addr: &str) -> String {
    let upstream = state["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == upstream)
        .unwrap();
    let server = upstream["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["addr"] == addr)
        .unwrap();
    server["state"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn state_shows_the_live_config_and_who_set_the_weights() {
    let admin = start(Some(TOKEN)).await;
    let state = admin.state().await;
    assert_eq!(state["version"], 1);
    assert!(is_rfc3339_millis(&state["published_at"]), "{}", state["published_at"]);
    assert_eq!(state["config_file"], admin.config.display().to_string());
    assert!(state["state_file"].as_str().unwrap().ends_with("sluice.state.json"));
    assert_eq!(state["reloads"], json!({ "ok": 0, "failed": 0 }));
    assert_eq!(state["last_reload"], Value::Null);
    let web = &state["routes"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(web["hosts"], json!(["*"]));
    assert_eq!(web["path_prefix"], "/");
    assert_eq!(
        web["weights"],
        json!([
            { "upstream": "blue", "weight": 90, "share_percent": "90.00" },
            { "upstream": "canary", "weight": 10, "share_percent": "10.00" },
        ])
    );
    assert_eq!(web["weights_source"], "file");
    assert_eq!(web["weights_set_at"], Value::Null);
    assert_eq!(state["routes"][1]["hosts"], json!(["api.example.com"]));
    assert_eq!(state["upstreams"][0]["name"], "blue");
    assert_eq!(server_state(&state, "blue", "[::1]:9104"), "active");

    assert_eq!(
        admin.put_weights("web", r#"{"blue": 80, "canary": 20}"#).await.status,
        StatusCode::OK
    );
    let state = admin.state().await;
    assert_eq!(state["version"], 2);
    assert_eq!(state["routes"][0]["weights_source"], "admin");
    assert!(is_rfc3339_millis(&state["routes"][0]["weights_set_at"]));
    assert_eq!(state["routes"][1]["weights_source"], "file");
    admin.stop().await;
}

#[tokio::test]
async fn put_weights_answers_the_route_with_its_new_shares() {
    let admin = start(Some(TOKEN)).await;
    // Object order does not matter: the route keeps its layout order.
    let reply = admin.put_weights("web", r#"{"canary": 1, "blue": 2}"#).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["version"], 2);
    assert_eq!(body["name"], "web");
    assert_eq!(body["weights_source"], "admin");
    assert_eq!(
        body["weights"],
        json!([
            { "upstream": "blue", "weight": 2, "share_percent": "66.67" },
            { "upstream": "canary", "weight": 1, "share_percent": "33.33" },
        ])
    );
    // All zero is allowed: the route then answers 503.
    let reply = admin.put_weights("web", r#"{"blue": 0, "canary": 0}"#).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["weights"][0]["share_percent"], "0.00");
    admin.stop().await;
}

#[tokio::test]
async fn bad_weights_are_refused_naming_what_is_wrong() {
    let admin = start(Some(TOKEN)).await;
    let reply = admin.put_weights("wbe", r#"{"blue": 1}"#).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.error().contains("unknown route `wbe`"), "{}", reply.body);

    let reply = admin.put_weights("web", r#"{"blue": -1}"#).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error(), "weight of `blue` must be a non-negative integer, got -1");

    let reply = admin.put_weights("web", r#"{"blue": "x"}"#).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error(),
        "weight of `blue` must be a non-negative integer, got \"x\""
    );

    let reply = admin.put_weights("web", r#"{"bleu": 80, "canary": 20}"#).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error(), "unknown upstream `bleu`; did you mean `blue`?");

    let reply = admin.put_weights("web", "[80, 20]").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.error().contains(r#"{"blue": 90, "canary": 10}"#),
        "{}",
        reply.body
    );

    let reply = admin.put_weights("web", "{}").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.error().contains("no weights"), "{}", reply.body);

    assert_eq!(admin.state().await["version"], 1, "nothing was applied");
    admin.stop().await;
}

#[tokio::test]
async fn changes_need_the_token_and_reads_do_not() {
    let admin = start(Some(TOKEN)).await;
    let path = "/api/v1/routes/web/weights";
    let body = r#"{"blue": 50, "canary": 50}"#;
    for token in [None, Some("wrong"), Some("s3cret-toke"), Some("s3cret-token-and-more")] {
        let reply = admin.call(Method::PUT, path, token, body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
        assert!(!reply.error().is_empty());
    }
    let reply = admin.call(Method::POST, "/api/v1/reload", None, "").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = admin
        .call(
            Method::POST,
            "/api/v1/upstreams/blue/servers/127.0.0.1:9101/drain",
            None,
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(admin.state().await["version"], 1, "nothing was applied");

    assert_eq!(
        admin.call(Method::PUT, path, Some(TOKEN), body).await.status,
        StatusCode::OK
    );
    assert_eq!(admin.get("/api/v1/events").await.status, StatusCode::OK);
    admin.stop().await;

    // Without a configured token, changes are open.
    let open = start(None).await;
    assert_eq!(open.call(Method::PUT, path, None, body).await.status, StatusCode::OK);
    open.stop().await;
}

/// Sends `head` then `body_len` bytes of body while reading the answer, the way curl sends a big upload.
async fn raw_exchange(addr: SocketAddr, head: String, body_len: usize) -> String {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        let chunk = vec![b'x'; 64 * 1024];
        let mut left = body_len;
        while left > 0 {
            let n = left.min(chunk.len());
            write.write_all(&chunk[..n]).await?;
            left -= n;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Until the headers are in: the server may reset the connection after answering without reading everything.
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    writer.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn bodies_over_64_kib_are_refused() {
    let admin = start(Some(TOKEN)).await;
    let ten_mb = 10 * 1024 * 1024;
    let head = format!(
        "PUT /api/v1/routes/web/weights HTTP/1.1\r\nhost: admin\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {ten_mb}\r\n\r\n"
    );
    let answer = raw_exchange(admin.addr, head, ten_mb).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // No length declared: the limit stops the read.
    let chunk = 70 * 1024;
    let head = format!(
        "PUT /api/v1/routes/web/weights HTTP/1.1\r\nhost: admin\r\nauthorization: Bearer {TOKEN}\r\n\
         transfer-encoding: chunked\r\n\r\n{chunk:x}\r\n"
    );
    let answer = raw_exchange(admin.addr, head, chunk).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // A body just under the limit is read (and then judged on its content).
    let padded = format!(r#"{{"blue": 80, "canary": 20}}{}"#, " ".repeat(60 * 1024));
    assert_eq!(admin.put_weights("web", &padded).await.status, StatusCode::OK);
    admin.stop().await;
}

#[tokio::test]
async fn drain_then_enable_a_server() {
    let admin = start(Some(TOKEN)).await;
    let reply = admin.post("/api/v1/upstreams/blue/servers/127.0.0.1:9101/drain").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.json(),
        json!({ "version": 2, "upstream": "blue", "server": "127.0.0.1:9101", "state": "drained" })
    );
    let state = admin.state().await;
    assert_eq!(server_state(&state, "blue", "127.0.0.1:9101"), "drained");
    assert_eq!(server_state(&state, "blue", "127.0.0.1:9102"), "active");

    let reply = admin.post("/api/v1/upstreams/blue/servers/127.0.0.1:9101/enable").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["state"], "active");
    assert_eq!(server_state(&admin.state().await, "blue", "127.0.0.1:9101"), "active");

    // IPv6 servers, percent-encoded or raw.
    let reply = admin
        .post("/api/v1/upstreams/blue/servers/%5B%3A%3A1%5D%3A9104/drain")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["server"], "[::1]:9104");
    assert_eq!(server_state(&admin.state().await, "blue", "[::1]:9104"), "drained");
    let reply = admin.post("/api/v1/upstreams/blue/servers/[::1]:9104/enable").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(server_state(&admin.state().await, "blue", "[::1]:9104"), "active");

    let reply = admin.post("/api/v1/upstreams/blue/servers/127.0.0.1:1/drain").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(
        reply.error().contains("127.0.0.1:9101, 127.0.0.1:9102"),
        "{}",
        reply.body
    );
    let reply = admin.post("/api/v1/upstreams/bleu/servers/127.0.0.1:9101/drain").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.error().contains("did you mean `blue`"), "{}", reply.body);
    admin.stop().await;
}

#[tokio::test]
async fn reload_of_an_invalid_file_is_422_and_shows_where() {
    let admin = start(Some(TOKEN)).await;
    let broken = CONFIG.replace(r#"path_prefix = "/api""#, r#"path_prefix = "api""#);
    let line = broken.lines().position(|l| l.starts_with("path_prefix")).unwrap() + 1;
    std::fs::write(&admin.config, &broken).unwrap();
    let reply = admin.post("/api/v1/reload").await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
    assert!(reply.error().contains("routes[1].path_prefix"), "{}", reply.body);

    let state = admin.state().await;
    assert_eq!(state["version"], 1, "the last good config stays live");
    assert_eq!(state["reloads"], json!({ "ok": 0, "failed": 1 }));
    let last = &state["last_reload"];
    assert_eq!(last["ok"], false);
    assert_eq!(last["version"], Value::Null);
    assert!(
        last["trigger"].as_str().unwrap().starts_with("admin api 127.0.0.1:"),
        "{last}"
    );
    assert!(is_rfc3339_millis(&last["at"]));
    let error = last["error"].as_str().unwrap();
    assert!(error.contains(&format!("sluice.toml:{line}:")), "line {line}: {error}");

    std::fs::write(&admin.config, CONFIG).unwrap();
    let reply = admin.post("/api/v1/reload").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json(), json!({ "version": 2, "notes": [] }));
    let state = admin.state().await;
    assert_eq!(state["last_reload"]["ok"], true);
    assert_eq!(state["last_reload"]["version"], 2);
    assert_eq!(state["last_reload"]["error"], Value::Null);
    admin.stop().await;
}

#[tokio::test]
async fn events_list_the_changes_oldest_first() {
    let admin = start(Some(TOKEN)).await;
    assert_eq!(
        admin.put_weights("web", r#"{"blue": 80, "canary": 20}"#).await.status,
        StatusCode::OK
    );
    assert_eq!(
        admin
            .post("/api/v1/upstreams/canary/servers/127.0.0.1:9103/drain")
            .await
            .status,
        StatusCode::OK
    );
    let events = admin.get("/api/v1/events").await.json();
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    let weights = &events[0];
    assert_eq!(weights["version"], 2);
    assert_eq!(weights["what"], "weights of route web (admin)");
    assert_eq!(weights["before"], "blue=90 canary=10");
    assert_eq!(weights["after"], "blue=80 canary=20");
    assert!(
        weights["who"].as_str().unwrap().starts_with("admin api 127.0.0.1:"),
        "{weights}"
    );
    assert!(is_rfc3339_millis(&weights["at"]));
    assert_eq!(events[1]["version"], 3);
    assert_eq!(events[1]["after"], "drained");

    let last = admin.get("/api/v1/events?limit=1").await.json();
    assert_eq!(last["events"].as_array().unwrap().len(), 1);
    assert_eq!(last["events"][0]["version"], 3);
    let reply = admin.get("/api/v1/events?limit=lots").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.error().contains("limit"));
    admin.stop().await;
}

#[tokio::test]
async fn wrong_methods_and_unknown_paths() {
    let admin = start(Some(TOKEN)).await;
    let reply = admin.get("/api/v1/routes/web/weights").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "PUT");
    assert!(!reply.error().is_empty());
    let reply = admin.call(Method::DELETE, "/api/v1/state", Some(TOKEN), "").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "GET, HEAD");
    assert_eq!(admin.get("/api/v1/reload").await.headers["allow"], "POST");

    let reply = admin.get("/api/v1/nope").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.error().contains("/api/v1/nope"));
    assert_eq!(reply.headers["content-type"], "application/json");
    admin.stop().await;
}

#[tokio::test]
async fn healthz_is_plain_ok() {
    let admin = start(Some(TOKEN)).await;
    let reply = admin.get("/healthz").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.trim(), "ok");
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    admin.stop().await;
}
