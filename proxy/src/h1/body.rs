//! A response body read straight off the upstream connection as the client side polls for it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::conn::Conn;
use super::decode::{Chunked, Decoded, Framing};
use super::error::H1Error;
use super::fields::RawFields;
use crate::keepalive::KeepAlive;

/// The body of a response from an HTTP/1.1 upstream. The connection goes back to its server's idle stack the
/// moment the last byte has been read (before the client has it, even); dropped unfinished, it is closed.
#[derive(Debug)]
pub(crate) struct H1Body {
    conn: Option<Conn>,
    state: State,
    /// Where the connection goes once the body has ended; `None`: it closes then.
    home: Option<Arc<KeepAlive>>,
    /// The response's end-to-end header fields, when they were kept as lines rather than put in its map: they
    /// travel with the body so that the fast path can write them as they are (see [`RawFields`]).
    fields: Option<RawFields>,
}

#[derive(Debug)]
enum State {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
    Done,
}

impl H1Body {
    /// The body `framing` delimits on `conn`; the connection returns to `home` once the body has ended.
    /// The response's `fields`, if kept as lines, go with it.
    pub(crate) fn new(conn: Conn, framing: Framing, home: Option<Arc<KeepAlive>>, fields: Option<RawFields>) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunked::new()),
            Framing::UntilClose => State::UntilClose,
        };
        let mut body = H1Body {
            conn: Some(conn),
            state,
            home,
            fields,
        };
        if matches!(body.state, State::Done) && body.home.is_some() {
            body.finish();
        }
        body
    }

    /// The response's header fields kept as lines, if any.
    pub(crate) fn fields(&self) -> Option<&RawFields> {
        self.fields.as_ref()
    }

    /// Takes the response's header fields kept as lines, to put them in its map.
    pub(crate) fn take_fields(&mut self) -> Option<RawFields> {
        self.fields.take()
    }

    /// Takes the raw connection after a `101 Switching Protocols` (with any bytes the server sent past the head);
    /// the body is then empty.
    pub(crate) fn take_conn(&mut self) -> Option<Conn> {
        self.state = State::Done;
        self.conn.take()
    }

    /// The body has been read to its end: the connection can take the next request.
    fn finish(&mut self) {
        self.state = State::Done;
        if let (Some(mut conn), Some(home)) = (self.conn.take(), self.home.take())
            // Bytes past the end of the response were never asked for: such a server cannot be trusted with a
            // second request on this connection.
            && conn.read.is_empty()
        {
            conn.idle();
            home.release(conn);
        }
    }

    fn fail(&mut self, error: H1Error) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        self.state = State::Done;
        self.conn = None;
        Poll::Ready(Some(Err(error)))
    }
}

impl Body for H1Body {
    type Data = Bytes;
    type Error = H1Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Length(remaining) => {
                    if !conn.read.is_empty() {
                        let take = usize::try_from(*remaining).map_or(conn.read.len(), |r| r.min(conn.read.len()));
                        let data = conn.read.split_to(take).freeze();
                        *remaining -= data.len() as u64;
                        if *remaining == 0 {
                            this.finish();
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                State::Chunked(decoder) => match decoder.decode(&mut conn.read) {
                    Ok(Some(Decoded::Data(data))) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(Some(Decoded::Trailers(trailers))) => {
                        // The trailer section is the end of the message: nothing is read after it.
                        this.finish();
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                    Ok(Some(Decoded::End)) => {
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Ok(None) => {}
                    Err(err) => return this.fail(err.into()),
                },
                State::UntilClose => {
                    if !conn.read.is_empty() {
                        let data = conn.read.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
            }
            match conn.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    if matches!(this.state, State::UntilClose) {
                        this.state = State::Done;
                        this.conn = None;
                        return Poll::Ready(None);
                    }
                    return this.fail(H1Error::ClosedMidBody);
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(err)) => return this.fail(H1Error::Io(err)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            State::Done => SizeHint::with_exact(0),
            State::Chunked(_) | State::UntilClose => SizeHint::default(),
        }
    }
}
