//! A request body that streams the same chunk many times: gigabytes of upload without gigabytes of memory.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Streams `chunk` `times` times; with `exact_length` it also announces its length (`content-length`),
/// otherwise it is sent chunked.
#[derive(Debug)]
pub struct RepeatBody {
    chunk: Bytes,
    remaining: u64,
    exact_length: bool,
}

impl RepeatBody {
    /// `times` copies of a `chunk_size`-byte chunk.
    pub fn new(chunk_size: usize, times: u64, exact_length: bool) -> Self {
        RepeatBody {
            chunk: Bytes::from(vec![b'x'; chunk_size]),
            remaining: times,
            exact_length,
        }
    }

    /// Total bytes this body sends.
    pub fn len(&self) -> u64 {
        self.chunk.len() as u64 * self.remaining
    }

    /// Whether the body sends nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Body for RepeatBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        this.remaining -= 1;
        Poll::Ready(Some(Ok(Frame::data(this.chunk.clone()))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        if self.exact_length {
            SizeHint::with_exact(self.len())
        } else {
            SizeHint::default()
        }
    }
}
