//! One HTTP/1.1 request to the admin API on a current-thread runtime, bounded by a timeout.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// How long a whole exchange (connect, send, read the answer) may take.
pub(super) const TIMEOUT: Duration = Duration::from_secs(10);

/// A request as `sluice ctl` builds it.
#[derive(Debug)]
pub(super) struct Call {
    pub(super) method: Method,
    pub(super) url: String,
    pub(super) body: Option<serde_json::Value>,
    pub(super) token: Option<String>,
}

/// What the server answered, whatever the status.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) body: Bytes,
}

/// Why there is no answer.
#[derive(Debug)]
pub(super) enum CallError {
    /// Nothing was sent: the request itself could not be built (a message for the user).
    Local(String),
    /// The server could not be reached or did not answer in time (the reason).
    Unreachable(String),
}

/// Sends `call` and reads the whole answer.
pub(super) fn send(call: Call) -> Result<Answer, CallError> {
    let request = build(call)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| CallError::Local(format!("cannot start the runtime: {err}")))?;
    runtime.block_on(async {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let exchange = async {
            let response = client.request(request).await.map_err(|err| reason(&err))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|err| reason(&err))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        match tokio::time::timeout(TIMEOUT, exchange).await {
            Ok(result) => result.map_err(CallError::Unreachable),
            Err(_) => Err(CallError::Unreachable(format!(
                "no answer within {} s",
                TIMEOUT.as_secs()
            ))),
        }
    })
}

fn build(call: Call) -> Result<http::Request<Full<Bytes>>, CallError> {
    let local = |message: String| CallError::Local(message);
    let mut builder = http::Request::builder()
        .method(call.method)
        .uri(&call.url)
        .header(ACCEPT, "application/json")
        .header(USER_AGENT, concat!("sluice-ctl/", env!("CARGO_PKG_VERSION")));
    if let Some(token) = call.token {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| local("the admin token contains characters not allowed in an HTTP header".to_owned()))?;
        value.set_sensitive(true);
        builder = builder.header(AUTHORIZATION, value);
    }
    let body = match call.body {
        Some(json) => {
            builder = builder.header(CONTENT_TYPE, "application/json");
            Full::new(Bytes::from(json.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    builder
        .body(body)
        .map_err(|err| local(format!("cannot build a request for {}: {err}", call.url)))
}

/// The most specific causes of a transport error, e.g. `tcp connect error: Connection refused (os error 111)`;
/// the outermost `client error (Connect)` says nothing a user needs.
fn reason(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cause = err.source();
    while let Some(inner) = cause {
        if !out.is_empty() {
            out.push_str(": ");
        }
        let _ = write!(out, "{inner}");
        cause = inner.source();
    }
    if out.is_empty() { err.to_string() } else { out }
}

/// Percent-encodes one path segment (route, upstream, `[::1]:9101`): everything but RFC 3986 unreserved
/// characters and `:`.
pub(super) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_names_and_addresses_readable() {
        assert_eq!(segment("web"), "web");
        assert_eq!(segment("canary_2-b"), "canary_2-b");
        assert_eq!(segment("127.0.0.1:9101"), "127.0.0.1:9101");
        assert_eq!(segment("[::1]:9101"), "%5B::1%5D:9101");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn refused_connection_is_unreachable_with_the_os_reason() {
        // Bind then drop a listener so the port is (almost certainly) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let call = Call {
            method: Method::GET,
            url: format!("http://127.0.0.1:{port}/api/v1/state"),
            body: None,
            token: None,
        };
        match send(call) {
            Err(CallError::Unreachable(reason)) => assert!(reason.contains("refused"), "{reason}"),
            other => panic!("expected a refused connection, got {other:?}"),
        }
    }

    #[test]
    fn a_token_with_a_newline_is_refused_before_sending() {
        let call = Call {
            method: Method::POST,
            url: "http://127.0.0.1:9/api/v1/reload".to_owned(),
            body: None,
            token: Some("a\nb".to_owned()),
        };
        assert!(matches!(build(call), Err(CallError::Local(_))));
    }
}
