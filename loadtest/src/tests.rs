//! The upstream through real sockets and a hyper client, as the proxy's tests will use it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Frame, Incoming};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::upstream;

/// A body of `left` copies of `chunk`, produced one frame at a time with no length announced.
struct Chunks {
    left: usize,
    chunk: Bytes,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))))
    }
}

/// An HTTP/1.1 connection to `addr`.
async fn h1<B>(addr: SocketAddr) -> http1::SendRequest<B>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    sender
}

/// An h2c (prior knowledge) connection to `addr`.
async fn h2<B>(addr: SocketAddr) -> http2::SendRequest<B>
where
    B: Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// A request with no body.
fn get(addr: SocketAddr, path: &str) -> Request<Empty<Bytes>> {
    Request::get(path)
        .header("host", addr.to_string())
        .body(Empty::new())
        .unwrap()
}

/// Send one request on a fresh HTTP/1.1 connection.
async fn send<B>(addr: SocketAddr, req: Request<B>) -> Response<Incoming>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    h1(addr).await.send_request(req).await.unwrap()
}

/// The response body as text.
async fn text(response: Response<Incoming>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn default_answer_names_the_upstream() {
    let up = upstream("canary").spawn().await.unwrap();
    assert_eq!(up.name(), "canary");
    assert!(up.addr().ip().is_loopback());
    assert_eq!(up.requests(), 0);

    let response = send(up.addr(), get(up.addr(), "/anything")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-upstream"], "canary");
    assert!(response.headers().get("x-body-bytes").is_none());
    assert_eq!(text(response).await, "canary\n");
    assert_eq!(up.requests(), 1);
}

#[tokio::test]
async fn streamed_body_is_counted() {
    let up = upstream("blue").spawn().await.unwrap();
    // 16 MiB in 64 KiB frames, chunked: the server never learns the length up front.
    let body = Chunks {
        left: 256,
        chunk: Bytes::from(vec![b'x'; 64 * 1024]),
    };
    let req = Request::post("/upload").header("host", "blue").body(body).unwrap();
    let response = send(up.addr(), req).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-body-bytes"], "16777216");
    assert_eq!(text(response).await, "blue 16777216\n");
    assert_eq!(up.last_request().unwrap().body_bytes, 16 * 1024 * 1024);
}

#[tokio::test]
async fn fail_rate_one_answers_500_until_changed() {
    let up = upstream("green").fail_rate(1.0).spawn().await.unwrap();
    let response = send(up.addr(), get(up.addr(), "/")).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.headers()["x-upstream"], "green");
    assert_eq!(text(response).await, "green failed\n");

    up.set_fail_rate(0.0);
    let response = send(up.addr(), get(up.addr(), "/")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(up.requests(), 2);
}

#[tokio::test]
async fn fail_rate_half_fails_about_half() {
    let up = upstream("flaky").fail_rate(0.5).spawn().await.unwrap();
    let mut sender = h1(up.addr()).await;
    let mut failed = 0;
    for _ in 0..400 {
        sender.ready().await.unwrap();
        let response = sender.send_request(get(up.addr(), "/")).await.unwrap();
        if response.status() == StatusCode::INTERNAL_SERVER_ERROR {
            failed += 1;
        }
        response.into_body().collect().await.unwrap();
    }
    // Binomial(400, 0.5): mean 200, standard deviation 10; this range is 10 deviations wide each side.
    assert!((100..=300).contains(&failed), "{failed} of 400 failed");
    assert_eq!(up.requests(), 400);
}

#[tokio::test]
async fn set_latency_delays_answers() {
    let up = upstream("slow").spawn().await.unwrap();
    up.set_latency(Duration::from_millis(200));
    let start = Instant::now();
    let response = send(up.addr(), get(up.addr(), "/")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "took {:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn latency_follows_tokio_time() {
    // A 30 s latency on a paused clock: the test only finishes quickly if the wait is a tokio sleep.
    let up = upstream("paused")
        .latency(Duration::from_secs(30))
        .spawn()
        .await
        .unwrap();
    let start = Instant::now();
    let response = send(up.addr(), get(up.addr(), "/")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(start.elapsed() >= Duration::from_secs(30), "took {:?}", start.elapsed());
}

#[tokio::test]
async fn stall_holds_requests_until_it_ends() {
    let up = upstream("stuck").spawn().await.unwrap();
    let start = Instant::now();
    up.stall(Duration::from_millis(300));
    let response = send(up.addr(), get(up.addr(), "/")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "took {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn h2c_prior_knowledge_works() {
    let up = upstream("canary").spawn().await.unwrap();
    let mut sender = h2(up.addr()).await;

    let req = Request::get(format!("http://{}/", up.addr()))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.headers()["x-upstream"], "canary");
    assert_eq!(text(response).await, "canary\n");

    let mut sender = h2(up.addr()).await;
    let body = Chunks {
        left: 32,
        chunk: Bytes::from(vec![b'y'; 64 * 1024]),
    };
    let req = Request::post(format!("http://{}/upload", up.addr()))
        .body(body)
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.headers()["x-body-bytes"], "2097152");
    assert_eq!(text(response).await, "canary 2097152\n");
    assert_eq!(up.last_request().unwrap().version, Version::HTTP_2);
}

#[tokio::test]
async fn last_request_records_headers() {
    let up = upstream("canary").spawn().await.unwrap();
    assert!(up.last_request().is_none());
    let req = Request::put("/items/7?x=1")
        .header("host", "example.test")
        .header("x-sluice-route", "checkout")
        .body(Chunks {
            left: 1,
            chunk: Bytes::from_static(b"hello"),
        })
        .unwrap();
    send(up.addr(), req).await;

    let seen = up.last_request().unwrap();
    assert_eq!(seen.method, Method::PUT);
    assert_eq!(seen.uri, "/items/7?x=1");
    assert_eq!(seen.version, Version::HTTP_11);
    assert_eq!(seen.headers["host"], "example.test");
    assert_eq!(seen.headers["x-sluice-route"], "checkout");
    assert_eq!(seen.body_bytes, 5);
}

#[tokio::test]
async fn status_and_echo_paths() {
    let up = upstream("canary").spawn().await.unwrap();
    let response = send(up.addr(), get(up.addr(), "/status/503")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["x-upstream"], "canary");

    let response = send(up.addr(), get(up.addr(), "/status/abc")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let req = Request::get("/echo")
        .header("host", "example.test")
        .header("x-hello", "world");
    let response = send(up.addr(), req.body(Empty::<Bytes>::new()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = text(response).await;
    assert!(echoed.starts_with("GET /echo HTTP/1.1\n"), "{echoed}");
    assert!(echoed.contains("\nhost: example.test\n"), "{echoed}");
    assert!(echoed.contains("\nx-hello: world\n"), "{echoed}");
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let up = upstream("canary").spawn().await.unwrap();
    let addr = up.addr();
    send(addr, get(addr, "/")).await;
    up.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn name_must_fit_in_a_header() {
    let error = upstream("bad\nname").spawn().await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}
