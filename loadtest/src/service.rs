//! How an upstream answers one request: stall, latency, failure, `/status/{code}`, `/echo`, and the body count.

use std::cell::RefCell;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName};
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use rand::RngExt;
use rand::rngs::SmallRng;
use tokio::time::Instant;

use crate::state::{SeenRequest, Shared};

/// Header naming the upstream that answered.
pub(crate) const X_UPSTREAM: HeaderName = HeaderName::from_static("x-upstream");
/// Header giving the number of request body bytes received.
pub(crate) const X_BODY_BYTES: HeaderName = HeaderName::from_static("x-body-bytes");

/// The service for one connection. The random generator is per connection, so choosing a failure takes no lock.
#[derive(Debug)]
pub(crate) struct UpstreamService {
    /// State shared with the handle.
    shared: Arc<Shared>,
    /// Chooses which requests fail; only borrowed inside `call`, never across an `.await`.
    rng: RefCell<SmallRng>,
}

impl UpstreamService {
    /// A service for a new connection, with a freshly seeded generator.
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            rng: RefCell::new(rand::make_rng()),
        }
    }
}

impl Service<Request<Incoming>> for UpstreamService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        // Decided at arrival: a request arriving during a stall waits for it even if the body is slow.
        let stall = self.shared.stall_deadline();
        let rate = self.shared.fail_rate();
        let fail = rate > 0.0 && self.rng.borrow_mut().random_bool(rate);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { Ok(answer(&shared, req, fail, stall).await) })
    }
}

/// Read the body to the end, wait, then build the answer and record the request.
async fn answer(shared: &Shared, req: Request<Incoming>, fail: bool, stall: Option<Instant>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let has_body = !body.is_end_stream();
    let (body_bytes, body_error) = count_body(body).await;

    let (status, text) = if let Some(error) = body_error {
        tracing::debug!(upstream = %shared.name, %error, "reading request body failed");
        (
            StatusCode::BAD_REQUEST,
            format!("{} body error after {body_bytes} bytes\n", shared.name),
        )
    } else {
        if let Some(deadline) = stall {
            tokio::time::sleep_until(deadline).await;
        }
        let latency = shared.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        choose(shared, &parts, fail, has_body.then_some(body_bytes))
    };

    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(X_UPSTREAM, shared.name_header.clone());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if has_body {
        headers.insert(X_BODY_BYTES, HeaderValue::from(body_bytes));
    }

    shared.record(SeenRequest {
        method: parts.method,
        uri: parts.uri,
        version: parts.version,
        headers: parts.headers,
        body_bytes,
    });
    response
}

/// Consume the body frame by frame, keeping only the count: memory stays flat whatever the size.
async fn count_body(mut body: Incoming) -> (u64, Option<hyper::Error>) {
    let mut count = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    count = count.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
                }
            }
            Err(error) => return (count, Some(error)),
        }
    }
    (count, None)
}

/// Status and body text for a request whose body was read in full.
fn choose(shared: &Shared, parts: &Parts, fail: bool, body_bytes: Option<u64>) -> (StatusCode, String) {
    let name = &shared.name;
    let default = match body_bytes {
        Some(count) => format!("{name} {count}\n"),
        None => format!("{name}\n"),
    };
    if fail {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("{name} failed\n"));
    }
    let path = parts.uri.path();
    if path == "/echo" {
        return (StatusCode::OK, echo(parts));
    }
    if let Some(code) = path.strip_prefix("/status/") {
        return match code
            .parse::<u16>()
            .ok()
            .and_then(|code| StatusCode::from_u16(code).ok())
        {
            Some(status) if status.as_u16() >= 200 => (status, default),
            _ => (
                StatusCode::BAD_REQUEST,
                format!("{name}: /status/{code} needs a status code from 200 to 999\n"),
            ),
        };
    }
    (StatusCode::OK, default)
}

/// The request line and headers as plain text, one `name: value` per line.
fn echo(parts: &Parts) -> String {
    let mut text = format!("{} {} {:?}\n", parts.method, parts.uri, parts.version);
    for (name, value) in &parts.headers {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{name}: {}", String::from_utf8_lossy(value.as_bytes()));
    }
    text
}
