//! Building responses.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// A JSON response, with a trailing newline for terminals.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec(value).expect("a JSON value always serialises");
    body.push(b'\n');
    respond(status, "application/json", body)
}

/// A Prometheus text exposition.
pub(crate) fn exposition(body: Vec<u8>) -> Response<Full<Bytes>> {
    respond(StatusCode::OK, prometheus::TEXT_FORMAT, body)
}

/// A plain-text response.
pub(crate) fn text(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", text.as_bytes().to_vec())
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Live state changes under the reader's feet: never serve it from a cache.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
