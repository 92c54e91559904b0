//! The response body type: an upstream body streamed through, or a short body sluice wrote itself.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// A response body: streamed from the upstream, or a small one of sluice's own (errors).
///
/// An enum rather than a boxed body: no allocation per request on the hot path.
#[derive(Debug)]
pub enum ProxyBody {
    /// Streamed from the upstream as it arrives.
    Upstream(Incoming),
    /// A complete body sluice produced; `None` once sent.
    Local(Option<Bytes>),
}

impl ProxyBody {
    /// A complete body from static text.
    pub fn text(text: &'static str) -> Self {
        ProxyBody::Local(Some(Bytes::from_static(text.as_bytes())))
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.get_mut() {
            ProxyBody::Upstream(incoming) => Pin::new(incoming).poll_frame(cx),
            ProxyBody::Local(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Upstream(incoming) => incoming.is_end_stream(),
            ProxyBody::Local(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Upstream(incoming) => incoming.size_hint(),
            ProxyBody::Local(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            ProxyBody::Local(None) => SizeHint::with_exact(0),
        }
    }
}
