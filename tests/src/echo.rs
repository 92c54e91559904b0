//! An upstream that shows what reached it: the HTTP version, scheme and headers it saw, WebSocket-style upgrades
//! (raw bytes echoed back), and gRPC-style responses with trailers. Plain TCP or TLS, HTTP/1.1 and HTTP/2.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::tls::Leaf;

/// A running echo upstream; stops when dropped.
#[derive(Debug)]
pub struct EchoUpstream {
    addr: SocketAddr,
    upgrades: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EchoUpstream {
    /// Serves plain HTTP/1.1 and h2c (prior knowledge) on an ephemeral loopback port; `name` goes in `x-upstream`.
    pub async fn plain(name: &str) -> EchoUpstream {
        EchoUpstream::spawn(name, None).await
    }

    /// Serves TLS with `leaf`'s certificate; ALPN offers `h2` and `http/1.1`, so the client picks the version.
    pub async fn tls(name: &str, leaf: &Leaf) -> EchoUpstream {
        let cert = CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).expect("leaf certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("leaf key PEM");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("leaf certificate and key match");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        EchoUpstream::spawn(name, Some(TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn spawn(name: &str, tls: Option<TlsAcceptor>) -> EchoUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("local address");
        let upgrades = Arc::new(AtomicUsize::new(0));
        let name: Arc<str> = Arc::from(name);
        let counter = Arc::clone(&upgrades);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (name, counter, tls) = (Arc::clone(&name), Arc::clone(&counter), tls.clone());
                tokio::spawn(async move {
                    let scheme = if tls.is_some() { "https" } else { "http" };
                    let service = service_fn(move |req| {
                        let (name, counter) = (Arc::clone(&name), Arc::clone(&counter));
                        async move { Ok::<_, Infallible>(answer(req, &name, scheme, &counter).await) }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                .await;
                        }
                        None => {
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        EchoUpstream { addr, upgrades, task }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Upgraded connections it has accepted so far.
    pub fn upgrades(&self) -> usize {
        self.upgrades.load(Ordering::Relaxed)
    }
}

type EchoBody = BoxBody<Bytes, Infallible>;

async fn answer(
    mut req: Request<Incoming>,
    name: &str,
    scheme: &str,
    upgrades: &Arc<AtomicUsize>,
) -> Response<EchoBody> {
    let mut response = Response::builder()
        .header("x-upstream", name)
        .header("x-seen-version", format!("{:?}", req.version()))
        .header("x-seen-scheme", scheme);
    for (header, echo) in [("te", "x-seen-te"), ("x-forwarded-proto", "x-seen-forwarded-proto")] {
        if let Some(value) = req.headers().get(header) {
            response = response.header(echo, value);
        }
    }
    if req.headers().contains_key(http::header::UPGRADE) {
        let key = req
            .headers()
            .get("sec-websocket-key")
            .cloned()
            .unwrap_or(HeaderValue::from_static(""));
        let on_upgrade = hyper::upgrade::on(&mut req);
        let upgrades = Arc::clone(upgrades);
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else { return };
            upgrades.fetch_add(1, Ordering::Relaxed);
            let mut io = TokioIo::new(upgraded);
            let mut buf = [0u8; 4096];
            // Echo until the client closes.
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
        return response
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(http::header::UPGRADE, "websocket")
            .header(http::header::CONNECTION, "Upgrade")
            .header("sec-websocket-accept", key)
            .body(Full::new(Bytes::new()).boxed())
            .expect("valid response");
    }
    let grpc = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if grpc {
        // A gRPC-style answer: the status comes in trailers, after the body.
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        trailers.insert("grpc-message", HeaderValue::from_static("echoed"));
        // The request's message comes back as the response's (a unary echo).
        let message = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return response
            .status(StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "application/grpc")
            // Over HTTP/1.1 only declared trailer fields are sent.
            .header(http::header::TRAILER, "grpc-status, grpc-message")
            .body(GrpcBody::new(message, trailers).boxed())
            .expect("valid response");
    }
    response
        .status(StatusCode::OK)
        .body(Full::new(Bytes::from(format!("{name}\n"))).boxed())
        .expect("valid response")
}

/// One data frame, then trailers, with no length announced: over HTTP/1.1 that makes the answer chunked, the only
/// framing that carries trailers.
struct GrpcBody {
    message: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl GrpcBody {
    fn new(message: Bytes, trailers: HeaderMap) -> Self {
        GrpcBody {
            message: Some(message),
            trailers: Some(trailers),
        }
    }
}

impl http_body::Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        let frame = match self.message.take() {
            Some(message) => Some(http_body::Frame::data(message)),
            None => self.trailers.take().map(http_body::Frame::trailers),
        };
        std::task::Poll::Ready(frame.map(Ok))
    }
}
