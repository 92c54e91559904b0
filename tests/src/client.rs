//! A small keep-alive HTTP client for tests: HTTP/1.1 or h2c with prior knowledge, bodies collected.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A response with its body read.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Answer {
    /// The `x-upstream` header the demo upstreams set: which version answered.
    pub fn upstream(&self) -> Option<&str> {
        self.headers.get("x-upstream").and_then(|v| v.to_str().ok())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A pooled client aimed at one proxy address.
#[derive(Debug, Clone)]
pub struct TestClient {
    base: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl TestClient {
    /// HTTP/1.1 with keep-alive.
    pub fn http1(base: SocketAddr) -> Self {
        TestClient {
            base,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// HTTP/2 over cleartext with prior knowledge (what `curl --http2-prior-knowledge` does).
    pub fn h2c(base: SocketAddr) -> Self {
        TestClient {
            base,
            client: Client::builder(TokioExecutor::new()).http2_only(true).build_http(),
        }
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(Request::get(path).body(Full::default()).expect("valid request"))
            .await
    }

    /// Sends `req` (its URI is a path; the proxy address is filled in) and reads the whole answer.
    /// Panics on a transport error or after 30 s: tests that expect those use [`TestClient::try_send`].
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Answer {
        match self.try_send(req).await {
            Ok(answer) => answer,
            Err(err) => panic!("request to {} failed: {err}", self.base),
        }
    }

    /// Like [`TestClient::send`], returning transport errors and timeouts as text.
    pub async fn try_send(&self, mut req: Request<Full<Bytes>>) -> Result<Answer, String> {
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
        *req.uri_mut() = format!("http://{}{}", self.base, path)
            .parse()
            .map_err(|e| format!("uri: {e}"))?;
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .map_err(|_| "no answer within 30 s".to_owned())?
            .map_err(|e| format!("{e:?}"))?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}
