//! TLS termination: SNI picks the certificate, h2 over ALPN, `x-forwarded-proto: https`, certificates replaced on
//! disk under load, a broken one refused while the old keeps serving, the http → https redirect, and `sluice check`
//! on bad certificates.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::json;
use sluice_tests::{
    AdminClient, EchoUpstream, Leaf, SluiceProcess, TestCa, TestClient, TlsClient, assert_eventually, replace, upstream,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::binary;

/// `[listen]` with one plain and one TLS port, route `web` to `blue` (plus `route_extra`), three certificate
/// entries: `default.test` (the default; its certificate also names `fallback.test` and 127.0.0.1, which the file
/// does not list), `a.test`, and `*.b.test` in a subdirectory.
fn config(blue: SocketAddr, route_extra: &str) -> String {
    format!(
        r#"
[listen]
http = ["127.0.0.1:0"]
https = ["127.0.0.1:0"]

[upstreams.blue]
servers = ["{blue}"]

[[routes]]
name = "web"
weights = {{ blue = 1 }}
{route_extra}

[[tls.certificates]]
hosts = ["default.test"]
cert = "default.pem"
key = "default.key"

[[tls.certificates]]
hosts = ["a.test"]
cert = "a.pem"
key = "a.key"

[[tls.certificates]]
hosts = ["*.b.test"]
cert = "certs/b.pem"
key = "certs/b.key"

[admin]
listen = "127.0.0.1:0"
"#
    )
}

/// Certificates for [`config`]'s entries, written into `dir`.
struct Pki {
    ca: TestCa,
    default: Leaf,
    a: Leaf,
    b: Leaf,
}

impl Pki {
    fn write(dir: &Path) -> Pki {
        let ca = TestCa::new();
        let pki = Pki {
            default: ca.leaf(&["default.test", "fallback.test", "127.0.0.1"]),
            a: ca.leaf(&["a.test"]),
            b: ca.leaf(&["*.b.test"]),
            ca,
        };
        std::fs::create_dir_all(dir.join("certs")).unwrap();
        pki.default.write(dir, "default");
        pki.a.write(dir, "a");
        pki.b.write(&dir.join("certs"), "b");
        pki
    }
}

/// Starts sluice on [`config`] with fresh certificates.
fn start(blue: SocketAddr, route_extra: &str) -> (SluiceProcess, Pki) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let pki = Pki::write(dir.path());
    std::fs::write(dir.path().join("sluice.toml"), config(blue, route_extra)).unwrap();
    (SluiceProcess::start_in(binary(), dir, &[]), pki)
}

#[tokio::test]
async fn each_name_gets_its_certificate_and_h2_over_tls_reaches_the_upstream_as_https() {
    let blue = EchoUpstream::plain("blue").await;
    let (sluice, pki) = start(blue.addr(), "");
    let https = sluice.https_addr();
    let http1 = TlsClient::new(&pki.ca, &["http/1.1"]);

    let mut a = http1.connect(https, "a.test").await.unwrap();
    assert_eq!(a.peer_names(), ["a.test"]);
    assert_eq!(a.alpn(), Some("http/1.1"));
    let answer = a.get("/").await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.headers["x-seen-forwarded-proto"], "https");
    assert_eq!(answer.upstream(), Some("blue"));

    let b = http1.connect(https, "shop.b.test").await.unwrap();
    assert_eq!(b.peer_names(), ["*.b.test"], "the wildcard entry");
    assert_eq!(b.peer_certificate(), &pki.b.der);
    let unknown = http1.connect(https, "fallback.test").await.unwrap();
    assert_eq!(
        unknown.peer_certificate(),
        &pki.default.der,
        "a name no entry lists gets the first entry"
    );
    // rustls sends no SNI for an IP address.
    let mut no_sni = http1.connect(https, "127.0.0.1").await.unwrap();
    assert_eq!(
        no_sni.peer_certificate(),
        &pki.default.der,
        "no SNI gets the first entry"
    );
    assert_eq!(no_sni.get("/").await.unwrap().status, 200);

    let h2 = TlsClient::new(&pki.ca, &["h2", "http/1.1"]);
    let mut conn = h2.connect(https, "a.test").await.unwrap();
    assert_eq!(conn.alpn(), Some("h2"));
    for _ in 0..3 {
        let answer = conn.get("/over-h2").await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.headers["x-seen-forwarded-proto"], "https");
        // The upstream leg is HTTP/1.1 whatever the client spoke.
        assert_eq!(answer.headers["x-seen-version"], "HTTP/1.1");
    }

    let plain = TestClient::http1(sluice.addr()).get("/").await;
    assert_eq!(plain.headers["x-seen-forwarded-proto"], "http");

    // Bytes that are not TLS end that connection only.
    let mut junk = TcpStream::connect(https).await.unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\nhost: a.test\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), junk.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the connection is closed rather than left hanging");
    assert_eq!(a.get("/").await.unwrap().status, 200, "other connections carry on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_tls_requests_finish() {
    let blue = upstream("blue").latency(Duration::from_secs(1)).spawn().await.unwrap();
    let (mut sluice, pki) = start(blue.addr(), "[timeouts]\ndrain = \"10s\"");
    let https = sluice.https_addr();
    let inflight: Vec<_> = [&["http/1.1"][..], &["h2"][..], &["h2"][..]]
        .into_iter()
        .map(|alpn| {
            let client = TlsClient::new(&pki.ca, alpn);
            tokio::spawn(async move { client.connect(https, "a.test").await?.get("/").await })
        })
        .collect();
    // Let the requests reach the upstream (which holds each for 1 s) before the signal.
    tokio::time::sleep(Duration::from_millis(400)).await;
    sluice.signal("TERM");
    for task in inflight {
        let answer = task.await.unwrap().unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let status = tokio::task::block_in_place(|| sluice.wait_exit(Duration::from_secs(10)));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "stderr: {}", sluice.stderr());
}

/// Counts of a load loop's requests.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, result: Result<http::StatusCode, String>) {
        match result {
            Ok(status) if status == 200 => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(status) => self.errors.lock().unwrap().push(format!("status {status}")),
            Err(err) => self.errors.lock().unwrap().push(err),
        }
    }

    fn ok(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }
}

/// Keep-alive requests on one connection per task, and a fresh handshake per request in others, until `stop`.
fn load(
    https: SocketAddr,
    ca: &TestCa,
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for alpn in [&["http/1.1"][..], &["h2"][..]] {
        let client = TlsClient::new(ca, alpn);
        let (stop, tally) = (Arc::clone(stop), Arc::clone(tally));
        tasks.push(tokio::spawn(async move {
            let mut conn = client.connect(https, "a.test").await.unwrap();
            while !stop.load(Ordering::Relaxed) {
                tally.record(conn.get("/keep-alive").await.map(|a| a.status));
            }
        }));
    }
    for _ in 0..2 {
        let client = TlsClient::new(ca, &["http/1.1"]);
        let (stop, tally) = (Arc::clone(stop), Arc::clone(tally));
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let result = match client.connect(https, "a.test").await {
                    Ok(mut conn) => conn.get("/fresh").await.map(|a| a.status),
                    Err(err) => Err(err),
                };
                tally.record(result);
            }
        }));
    }
    tasks
}

/// The certificate a fresh handshake for `sni` gets.
async fn served(client: &TlsClient, https: SocketAddr, sni: &str) -> Option<Vec<u8>> {
    client
        .connect(https, sni)
        .await
        .ok()
        .map(|c| c.peer_certificate().to_vec())
}

/// The admin state's `tls.last_error.message`, if any.
async fn last_error(admin: &AdminClient) -> Option<String> {
    admin.state().await["tls"]["last_error"]["message"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_certificates_serve_new_handshakes_without_failing_a_request_and_broken_ones_are_refused() {
    let blue = upstream("blue").spawn().await.unwrap();
    let (sluice, pki) = start(blue.addr(), "");
    let https = sluice.https_addr();
    let dir = sluice.dir();
    let admin = AdminClient::new(sluice.admin_addr(), None);
    let probe = TlsClient::new(&pki.ca, &["http/1.1"]);
    assert_eq!(served(&probe, https, "a.test").await, Some(pki.a.der.to_vec()));
    let tls = admin.state().await["tls"].clone();
    assert_eq!(tls["certificates"][1]["hosts"], json!(["a.test"]), "{tls}");
    assert_eq!(tls["certificates"][2]["names"], json!(["*.b.test"]), "{tls}");
    assert_eq!(tls["last_error"], serde_json::Value::Null, "{tls}");

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let tasks = load(https, &pki.ca, &stop, &tally);
    assert_eventually!(tally.ok() >= 40, Duration::from_secs(10));

    // Replaced the way cert-manager or `mv` does it: new files renamed over the old ones.
    let renewed = pki.ca.leaf(&["a.test"]);
    renewed.write(dir.path(), "a");
    assert_eventually!(
        served(&probe, https, "a.test").await == Some(renewed.der.to_vec()),
        Duration::from_secs(10)
    );
    let before = tally.ok();
    assert_eventually!(tally.ok() >= before + 40, Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let errors = tally.errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} requests failed, e.g. {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(last_error(&admin).await, None);

    // A broken file is refused; the renewed certificate keeps serving and the state says which file is wrong.
    replace(
        &dir.path().join("a.pem"),
        b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
    );
    assert_eventually!(
        last_error(&admin)
            .await
            .is_some_and(|m| m.contains("a.pem") && m.contains("tls.certificates[1].cert")),
        Duration::from_secs(10)
    );
    assert_eq!(served(&probe, https, "a.test").await, Some(renewed.der.to_vec()));
    // Weight changes rebuild the route table; a broken certificate on disk must not fail them.
    admin.set_weights("web", json!({ "blue": 2 })).await;
    // The error is recorded before it is logged, and the log reaches the captured stderr through a pipe: wait.
    assert_eventually!(
        sluice
            .stderr()
            .contains("certificates rejected, the previous ones keep serving"),
        Duration::from_secs(5)
    );

    // Fixing the file clears the error and serves the fix.
    let fixed = pki.ca.leaf(&["a.test"]);
    fixed.write(dir.path(), "a");
    assert_eventually!(
        served(&probe, https, "a.test").await == Some(fixed.der.to_vec()),
        Duration::from_secs(10)
    );
    assert_eventually!(last_error(&admin).await.is_none(), Duration::from_secs(5));
    assert_eq!(served(&probe, https, "x.b.test").await, Some(pki.b.der.to_vec()));
}

#[tokio::test]
async fn sighup_rereads_certificates() {
    let blue = upstream("blue").spawn().await.unwrap();
    let (sluice, pki) = start(blue.addr(), "");
    let https = sluice.https_addr();
    let probe = TlsClient::new(&pki.ca, &["http/1.1"]);
    // Written in place, no rename: a watcher may or may not see it, SIGHUP must.
    let renewed = pki.ca.leaf(&["*.b.test"]);
    std::fs::write(sluice.dir().path().join("certs/b.pem"), &renewed.cert_pem).unwrap();
    std::fs::write(sluice.dir().path().join("certs/b.key"), &renewed.key_pem).unwrap();
    sluice.signal("HUP");
    assert_eventually!(
        served(&probe, https, "x.b.test").await == Some(renewed.der.to_vec()),
        Duration::from_secs(10)
    );
    let sighup_reload = |log: &str| {
        log.lines()
            .any(|l| l.contains("certificates reloaded") && l.contains("SIGHUP"))
    };
    assert_eventually!(sighup_reload(&sluice.stderr()), Duration::from_secs(5));
}

#[tokio::test]
async fn redirect_http_to_https_answers_308_with_the_https_port() {
    let blue = upstream("blue").spawn().await.unwrap();
    let (sluice, pki) = start(blue.addr(), "redirect_http_to_https = true");
    let client = TestClient::http1(sluice.addr());
    let port = sluice.https_addr().port();
    for method in ["GET", "POST"] {
        let req = Request::builder()
            .method(method)
            .uri("/cart/items?id=7&q=a%20b")
            .header("host", "A.test:8080")
            .body(Full::<Bytes>::default())
            .unwrap();
        let answer = client.send(req).await;
        assert_eq!(answer.status, 308, "{method}");
        assert_eq!(
            answer.headers["location"],
            format!("https://a.test:{port}/cart/items?id=7&q=a%20b"),
            "{method}"
        );
        assert!(answer.headers.contains_key("x-request-id"));
    }
    assert_eq!(blue.requests(), 0, "redirected requests never reach the upstream");

    let mut conn = TlsClient::new(&pki.ca, &["http/1.1"])
        .connect(sluice.https_addr(), "a.test")
        .await
        .unwrap();
    assert_eq!(conn.get("/cart/items").await.unwrap().status, 200, "https is served");
    assert_eq!(blue.requests(), 1);
}

/// Runs `sluice check` and `sluice run` on the [`config`] files in `dir`; returns check's exit code and stderr,
/// asserting that `run` refuses the same files with exit 64 and the same message.
fn check_and_run(dir: &Path) -> (Option<i32>, String) {
    let path = dir.join("sluice.toml");
    let out = Command::new(binary()).arg("check").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        return (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let run = Command::new(binary())
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(64), "run refuses the file");
    let run_stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run_stderr.contains(stderr.trim()),
        "same message from run: {run_stderr}"
    );
    (out.status.code(), stderr)
}

#[test]
fn check_refuses_a_mismatched_key_and_an_expired_certificate_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::write(dir.path());
    std::fs::write(
        dir.path().join("sluice.toml"),
        config("127.0.0.1:9101".parse().unwrap(), ""),
    )
    .unwrap();
    let (code, stdout) = check_and_run(dir.path());
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("https://127.0.0.1:0"), "{stdout}");
    assert!(stdout.contains("tls       default.test (default)"), "{stdout}");

    // a.test's certificate with b's key.
    std::fs::write(dir.path().join("a.key"), &pki.b.key_pem).unwrap();
    let (code, stderr) = check_and_run(dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("tls.certificates[1].key"), "{stderr}");
    assert!(
        stderr.contains(&dir.path().join("a.key").display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("does not match"), "{stderr}");

    pki.ca.expired_leaf(&["a.test"]).write(dir.path(), "a");
    let (code, stderr) = check_and_run(dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("tls.certificates[1].cert"), "{stderr}");
    assert!(
        stderr.contains(&dir.path().join("a.pem").display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("expired"), "{stderr}");
}
