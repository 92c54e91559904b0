//! Body types: what goes upstream (the client's body, possibly size-limited, or nothing) and what goes back
//! (the upstream's body, recorded when it ends, or a short body sluice wrote itself).
//!
//! Enums rather than boxed bodies: no allocation per request on the hot path.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::edge::pending::PendingLog;
use crate::h1::{H1Body, RawFields};
use crate::telemetry::{Outcome, UpstreamErrorKind, VersionTelemetry};

/// The body of a request sent upstream.
#[derive(Debug)]
pub(crate) enum RequestBody {
    /// The client's body, streamed as it arrives; `remaining` is the byte limit left, if any.
    Client {
        /// The client's body.
        body: Incoming,
        /// Bytes the body may still carry before it is cut off (`[limits] max_body_bytes`).
        remaining: Option<u64>,
    },
    /// No body (a retry of a request that had none).
    Empty,
}

/// A request body went over `[limits] max_body_bytes`.
#[derive(Debug, thiserror::Error)]
#[error("request body is larger than the {limit}-byte limit")]
pub(crate) struct BodyTooLarge {
    /// The configured limit.
    pub(crate) limit: u64,
}

/// Why a request body stopped: the client's connection failed, or the body went over the limit.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestBodyError {
    /// The client's stream failed (it hung up mid-upload).
    #[error(transparent)]
    Client(#[from] hyper::Error),
    /// The body is larger than allowed.
    #[error(transparent)]
    TooLarge(#[from] BodyTooLarge),
}

impl RequestBody {
    /// The client's body as hyper delivers it, with no limit yet.
    pub(crate) fn client(body: Incoming) -> Self {
        RequestBody::Client { body, remaining: None }
    }

    /// The same body, cut off after `limit` bytes (`[limits] max_body_bytes`).
    pub(crate) fn limited(self, limit: Option<u64>) -> Self {
        match self {
            RequestBody::Client { body, .. } => RequestBody::Client { body, remaining: limit },
            RequestBody::Empty => RequestBody::Empty,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            RequestBody::Empty => Poll::Ready(None),
            RequestBody::Client { body, remaining } => match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let (Some(left), Some(data)) = (remaining.as_mut(), frame.data_ref()) {
                        let len = data.len() as u64;
                        if len > *left {
                            let limit = *left;
                            *left = 0;
                            return Poll::Ready(Some(Err(BodyTooLarge { limit }.into())));
                        }
                        *left -= len;
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err.into()))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Empty => true,
            RequestBody::Client { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Empty => SizeHint::with_exact(0),
            RequestBody::Client { body, .. } => body.size_hint(),
        }
    }
}

/// Records one request's outcome when its response body ends (or is dropped unfinished).
#[derive(Debug)]
pub(crate) struct Recording {
    pub(crate) telemetry: Arc<VersionTelemetry>,
    pub(crate) started: Instant,
    pub(crate) status: u16,
    /// The access-log line, when this request is logged.
    pub(crate) log: Option<PendingLog>,
    pub(crate) bytes_out: u64,
}

impl Recording {
    fn finish(self, outcome: Outcome) {
        self.telemetry.finish(self.started, outcome);
        if let Some(log) = self.log {
            // nginx's 499: the client closed the connection before the response ended.
            let status = if outcome == Outcome::ClientAborted {
                499
            } else {
                self.status
            };
            log.finish(status, self.bytes_out, self.started.elapsed());
        }
    }
}

/// An upstream's response body: read off sluice's own HTTP/1.1 connection, or from hyper's HTTP/2 client.
#[derive(Debug)]
pub(crate) enum UpstreamBody {
    /// From an HTTP/1.1 upstream; its connection goes back to the server's idle stack when the body ends.
    H1(H1Body),
    /// From an HTTP/2 upstream.
    H2(Incoming),
}

/// Why a response body broke off (the upstream failed mid-body).
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            UpstreamBody::H1(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            UpstreamBody::H2(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::H1(body) => body.is_end_stream(),
            UpstreamBody::H2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::H1(body) => body.size_hint(),
            UpstreamBody::H2(body) => body.size_hint(),
        }
    }
}

/// A response body: streamed from the upstream (and recorded when it ends), or a small one of sluice's own.
#[derive(Debug)]
pub struct ProxyBody {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    /// Streamed from the upstream as it arrives; the recording is taken when the outcome is recorded.
    Upstream {
        body: UpstreamBody,
        recording: Option<Recording>,
    },
    /// A complete body sluice produced; `None` once sent.
    Local(Option<Bytes>),
}

impl ProxyBody {
    /// A complete body from static text.
    pub fn text(text: &'static str) -> Self {
        ProxyBody {
            inner: Inner::Local(Some(Bytes::from_static(text.as_bytes()))),
        }
    }

    pub(crate) fn upstream(body: UpstreamBody, recording: Recording) -> Self {
        ProxyBody {
            inner: Inner::Upstream {
                body,
                recording: Some(recording),
            },
        }
    }

    /// The response's end-to-end header fields as an HTTP/1.1 upstream wrote them, when they are not in its map.
    pub(crate) fn fields(&self) -> Option<&RawFields> {
        match &self.inner {
            Inner::Upstream {
                body: UpstreamBody::H1(body),
                ..
            } => body.fields(),
            _ => None,
        }
    }

    fn take_fields(&mut self) -> Option<RawFields> {
        match &mut self.inner {
            Inner::Upstream {
                body: UpstreamBody::H1(body),
                ..
            } => body.take_fields(),
            _ => None,
        }
    }
}

/// Puts every header field of `response` in its map: those an HTTP/1.1 upstream's fields kept as lines (see
/// [`RawFields`]) join the ones already there. Whatever reads, replaces or removes response headers calls this
/// first; only appending does not need it.
pub(crate) fn complete_headers(response: &mut Response<ProxyBody>) {
    if let Some(fields) = response.body_mut().take_fields() {
        // The upstream's fields first, as the fast path writes them: a cookie sluice adds comes after the
        // upstream's, and so wins over one of the same name.
        let added = std::mem::take(response.headers_mut());
        let headers = response.headers_mut();
        fields.append_to(headers);
        let mut name = None;
        for (next, value) in added {
            name = next.or(name);
            if let Some(name) = &name {
                headers.append(name.clone(), value);
            }
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match &mut self.get_mut().inner {
            Inner::Upstream { body, recording } => {
                let polled = Pin::new(body).poll_frame(cx);
                if let (Poll::Ready(Some(Ok(frame))), Some(r)) = (&polled, recording.as_mut())
                    && let Some(data) = frame.data_ref()
                {
                    r.bytes_out += data.len() as u64;
                }
                let upstream_error = match &polled {
                    Poll::Ready(None) => None,
                    // The upstream broke off mid-body: the client gets a truncated response (and the upstream
                    // connection is closed).
                    Poll::Ready(Some(Err(_))) => Some(UpstreamErrorKind::Reset),
                    _ => return polled,
                };
                if let Some(r) = recording.take() {
                    let status = r.status;
                    r.finish(Outcome::Answered {
                        status,
                        upstream_error,
                        local: false,
                    });
                }
                polled
            }
            Inner::Local(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Upstream { body, .. } => body.is_end_stream(),
            Inner::Local(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Upstream { body, .. } => body.size_hint(),
            Inner::Local(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Inner::Local(None) => SizeHint::with_exact(0),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        if let Inner::Upstream { body, recording, .. } = &mut self.inner
            && let Some(r) = recording.take()
        {
            // hyper never polls a body that is empty from the start (HEAD, 204, 304, content-length 0): that is a
            // complete response. Anything else dropped unfinished is the client hanging up.
            let status = r.status;
            if body.is_end_stream() {
                r.finish(Outcome::Answered {
                    status,
                    upstream_error: None,
                    local: false,
                });
            } else {
                r.finish(Outcome::ClientAborted);
            }
        }
    }
}
