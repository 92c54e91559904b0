//! One upstream HTTP/1.1 connection, and one request-response exchange on it.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::decode::{self, Head};
use super::encode::{self, BodyFraming};
use super::error::H1Error;
use crate::body::RequestBodyError;
use crate::connector::UpstreamIo;

/// The first read of a response takes up to this much; reads that fill their space double it, up to `MAX_READ`.
const FIRST_READ: usize = 8 * 1024;
const MAX_READ: usize = 256 * 1024;
/// Body data up to this size is copied behind the head or the previous chunk so that both go out in one write.
const COALESCE: usize = 16 * 1024;

/// An open connection to an upstream server.
#[derive(Debug)]
pub(crate) struct Conn {
    io: UpstreamIo,
    /// Bytes read and not consumed yet: a response head, or body bytes.
    pub(super) read: BytesMut,
    /// How much the next read may take.
    next_read: usize,
    /// It carried a complete exchange before (it came off the idle stack).
    pub(super) reused: bool,
    /// The exchange deadline's timer, kept from one exchange to the next and moved only when it goes off early:
    /// arming and cancelling a timer per request cost more than decoding the response.
    timer: Option<Pin<Box<Sleep>>>,
}

/// How the request's upload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upload {
    /// The whole request went out.
    Complete,
    /// The server started answering before the request body was complete: the rest is not sent, and the
    /// connection cannot carry another request.
    Cut,
}

/// An exchange failed; `resend` says that nothing reached the server's application, so the request may go out
/// again unchanged on another connection.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: H1Error,
    pub(crate) resend: bool,
}

impl Conn {
    /// A connection that has not carried a request yet.
    pub(crate) fn new(io: UpstreamIo) -> Self {
        Conn {
            io,
            read: BytesMut::new(),
            next_read: FIRST_READ,
            reused: false,
            timer: None,
        }
    }

    /// Whether the server closed this idle connection (or sent bytes nobody asked for). Costs no system call
    /// unless the socket turned readable while idle: tokio clears readiness after the short read that ended the
    /// last response.
    pub(crate) fn is_stale(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut probe = [0_u8; 1];
        let mut probe = ReadBuf::new(&mut probe);
        !self.read.is_empty() || Pin::new(&mut self.io).poll_read(&mut cx, &mut probe).is_ready()
    }

    /// The connection and whatever was read past the response head (a switched protocol's first bytes).
    pub(crate) fn into_parts(self) -> (UpstreamIo, BytesMut) {
        (self.io, self.read)
    }

    /// Reads more into `read`: `Ok(0)` at the end of the stream.
    pub(super) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let space = self.read.capacity() - self.read.len();
        if space < self.next_read / 2 {
            self.read.reserve(self.next_read);
        }
        let space = self.read.capacity() - self.read.len();
        let polled = tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read);
        if let Poll::Ready(Ok(n)) = polled
            && n == space
        {
            self.next_read = (self.next_read * 2).min(MAX_READ);
        }
        polled
    }

    /// A complete exchange is over and the connection is going idle. The read buffer stays for the next response
    /// (allocating one per response cost more than parsing it), unless a large body grew it.
    pub(super) fn idle(&mut self) {
        self.reused = true;
        if self.read.capacity() > FIRST_READ {
            self.read = BytesMut::new();
        }
        self.next_read = FIRST_READ;
    }

    /// Sends one request (`head` already encoded, then `body` framed as `framing`) and reads the response head,
    /// failing with [`H1Error::TimedOut`] at `deadline`. Interim responses (100 Continue, 103 Early Hints) are
    /// skipped; 101 is returned like a final response.
    pub(crate) async fn exchange<B: OutgoingBody>(
        &mut self,
        head: &[u8],
        body: &mut B,
        framing: BodyFraming,
        method: &Method,
        deadline: Instant,
    ) -> Result<(Head, Upload), Failure> {
        let mut timer = self
            .timer
            .take()
            .unwrap_or_else(|| Box::pin(tokio::time::sleep_until(deadline)));
        // Deadlines usually only grow, but a reload can shorten `[timeouts] response_header`.
        if timer.deadline() > deadline {
            timer.as_mut().reset(deadline);
        }
        let outcome = {
            let exchange = self.exchange_unbounded(head, body, framing, method);
            tokio::pin!(exchange);
            std::future::poll_fn(|cx| {
                if let Poll::Ready(outcome) = exchange.as_mut().poll(cx) {
                    return Poll::Ready(outcome);
                }
                // The timer may still be set for an earlier exchange's deadline: then it goes off early, and is moved.
                while timer.as_mut().poll(cx).is_ready() {
                    if Instant::now() >= deadline {
                        return Poll::Ready(Err(Failure {
                            error: H1Error::TimedOut,
                            resend: false,
                        }));
                    }
                    timer.as_mut().reset(deadline);
                }
                Poll::Pending
            })
            .await
        };
        self.timer = Some(timer);
        outcome
    }

    async fn exchange_unbounded<B: OutgoingBody>(
        &mut self,
        head: &[u8],
        body: &mut B,
        framing: BodyFraming,
        method: &Method,
    ) -> Result<(Head, Upload), Failure> {
        let upload = match self.write_request(head, body, framing).await {
            Ok(upload) => upload,
            Err(error) => {
                // A connection the server had closed while it sat idle fails on the first write or read.
                let resend = self.reused && framing == BodyFraming::None && self.read.is_empty();
                return Err(Failure {
                    resend: resend && matches!(error, H1Error::Io(_) | H1Error::ClosedBeforeHead),
                    error,
                });
            }
        };
        let mut received = false;
        loop {
            match decode::parse_head(&mut self.read, method) {
                Ok(Some(head))
                    if head.parts.status.is_informational() && head.parts.status != StatusCode::SWITCHING_PROTOCOLS =>
                {
                    continue;
                }
                Ok(Some(head)) => return Ok((head, upload)),
                Ok(None) => {}
                Err(err) => {
                    return Err(Failure {
                        error: err.into(),
                        resend: false,
                    });
                }
            }
            let filled = std::future::poll_fn(|cx| self.poll_fill(cx)).await;
            let error = match filled {
                Ok(0) => H1Error::ClosedBeforeHead,
                Ok(_) => {
                    received = true;
                    continue;
                }
                Err(err) => H1Error::Io(err),
            };
            let resend = self.reused && !received && framing == BodyFraming::None;
            return Err(Failure { error, resend });
        }
    }

    /// Writes the head and streams the body. While waiting for the client's next piece of body it also watches
    /// for the server answering early (a 413 before the upload ends, say), which ends the upload.
    async fn write_request<B: OutgoingBody>(
        &mut self,
        head: &[u8],
        body: &mut B,
        framing: BodyFraming,
    ) -> Result<Upload, H1Error> {
        if framing == BodyFraming::None {
            self.io.write_all(head).await?;
            self.io.flush().await?;
            return Ok(Upload::Complete);
        }
        let chunked = framing == BodyFraming::Chunked;
        let mut out = Vec::with_capacity(head.len() + COALESCE);
        out.extend_from_slice(head);
        loop {
            let frame = match poll_once(body).await {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    if !out.is_empty() {
                        self.io.write_all(&out).await?;
                        out.clear();
                    }
                    self.io.flush().await?;
                    if self.read.capacity() == self.read.len() {
                        self.read.reserve(FIRST_READ);
                    }
                    let (io, read) = (&mut self.io, &mut self.read);
                    tokio::select! {
                        biased;
                        frame = body.frame() => frame,
                        read = io.read_buf(read) => return match read {
                            Ok(0) => Err(H1Error::ClosedBeforeHead),
                            Ok(_) => Ok(Upload::Cut),
                            Err(err) => Err(H1Error::Io(err)),
                        },
                    }
                }
            };
            match frame {
                None => {
                    if chunked {
                        encode::chunked_end(&mut out, None);
                    }
                    break;
                }
                Some(Err(err)) => return Err(H1Error::RequestBody(err)),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if data.is_empty() => {}
                    Ok(data) => {
                        if chunked {
                            encode::chunk_start(&mut out, data.len());
                        }
                        if data.len() <= COALESCE {
                            out.extend_from_slice(&data);
                        } else {
                            self.io.write_all(&out).await?;
                            out.clear();
                            self.io.write_all(&data).await?;
                        }
                        if chunked {
                            out.extend_from_slice(b"\r\n");
                        }
                    }
                    Err(frame) => {
                        // Trailers end the body; HTTP/1.1 carries them only in chunked framing.
                        if chunked {
                            encode::chunked_end(&mut out, frame.trailers_ref());
                        }
                        break;
                    }
                },
            }
        }
        self.io.write_all(&out).await?;
        self.io.flush().await?;
        Ok(Upload::Complete)
    }
}

/// A request body as an exchange sends it: [`RequestBody`](crate::body::RequestBody) in the proxy, others in
/// tests.
pub(crate) trait OutgoingBody: http_body::Body<Data = Bytes, Error = RequestBodyError> + Unpin {}

impl<B: http_body::Body<Data = Bytes, Error = RequestBodyError> + Unpin> OutgoingBody for B {}

/// Polls the body once: its next frame if one is ready now, `Pending` (with the waker registered) if not.
pub(super) async fn poll_once<B: http_body::Body + Unpin>(
    body: &mut B,
) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *body).poll_frame(cx))).await
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use http::HeaderMap;
    use hyper_util::rt::TokioIo;
    use tokio::io::AsyncWriteExt as _;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::h1::decode::Framing;
    use crate::h1::encode;

    /// A request body of fixed frames of unknown length; with `hang`, it never ends after them (a slow upload).
    struct Frames {
        frames: VecDeque<Frame<Bytes>>,
        hang: bool,
    }

    impl http_body::Body for Frames {
        type Data = Bytes;
        type Error = RequestBodyError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
            match self.frames.pop_front() {
                Some(frame) => Poll::Ready(Some(Ok(frame))),
                None if self.hang => Poll::Pending,
                None => Poll::Ready(None),
            }
        }
    }

    /// A one-connection upstream: reads until `until` has arrived, records what it read, then writes `answer`.
    async fn upstream(until: &'static [u8], answer: &'static [u8]) -> (Conn, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut seen = Vec::new();
            while !seen.windows(until.len()).any(|w| w == until) {
                if stream.read_buf(&mut seen).await.expect("read") == 0 {
                    break;
                }
            }
            stream.write_all(answer).await.expect("write");
            // Hold the connection open a moment so the client reads the answer, not a reset.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            seen
        });
        let stream = TcpStream::connect(addr).await.expect("connect");
        (Conn::new(UpstreamIo::Plain(TokioIo::new(stream))), server)
    }

    /// A deadline no test reaches.
    fn far() -> Instant {
        Instant::now() + std::time::Duration::from_secs(3600)
    }

    fn post_head(exact: Option<u64>) -> (Vec<u8>, BodyFraming) {
        let parts = http::Request::post("/up").body(()).expect("request").into_parts().0;
        encode::head(&parts, exact, false)
    }

    #[tokio::test]
    async fn a_body_of_unknown_length_goes_chunked_with_its_trailers() {
        let (mut conn, server) = upstream(
            b"0\r\nx-sum: 10\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        )
        .await;
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", "10".parse().expect("value"));
        let mut body = Frames {
            frames: VecDeque::from([
                Frame::data(Bytes::from_static(b"hello")),
                Frame::data(Bytes::from_static(b"world")),
                Frame::trailers(trailers),
            ]),
            hang: false,
        };
        let (head, framing) = post_head(None);
        assert_eq!(framing, BodyFraming::Chunked);
        let (response, upload) = conn
            .exchange(&head, &mut body, framing, &Method::POST, far())
            .await
            .expect("exchange");
        assert_eq!(response.parts.status, StatusCode::OK);
        assert_eq!(upload, Upload::Complete);
        let seen = String::from_utf8(server.await.expect("server")).expect("utf-8");
        assert!(
            seen.ends_with("transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\nx-sum: 10\r\n\r\n"),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn an_early_answer_ends_the_upload_and_the_connection_is_not_kept() {
        let (mut conn, _server) = upstream(
            b"\r\n\r\n",
            b"HTTP/1.1 413 Content Too Large\r\ncontent-length: 0\r\n\r\n",
        )
        .await;
        let mut body = Frames {
            frames: VecDeque::from([Frame::data(Bytes::from_static(b"first part"))]),
            hang: true,
        };
        let (head, framing) = post_head(None);
        let (response, upload) = conn
            .exchange(&head, &mut body, framing, &Method::POST, far())
            .await
            .expect("exchange");
        assert_eq!(response.parts.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(upload, Upload::Cut);
    }

    #[tokio::test]
    async fn interim_responses_are_skipped() {
        let (mut conn, _server) = upstream(
            b"\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        )
        .await;
        let mut body = Frames {
            frames: VecDeque::new(),
            hang: false,
        };
        let parts = http::Request::get("/").body(()).expect("request").into_parts().0;
        let (head, framing) = encode::head(&parts, Some(0), true);
        let (response, _) = conn
            .exchange(&head, &mut body, framing, &Method::GET, far())
            .await
            .expect("exchange");
        assert_eq!(response.parts.status, StatusCode::NO_CONTENT);
        assert_eq!(response.framing, Framing::Empty);
    }

    #[tokio::test]
    async fn bytes_right_behind_a_101_stay_with_the_connection() {
        let (mut conn, _server) = upstream(
            b"\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\nEARLY",
        )
        .await;
        let mut body = Frames {
            frames: VecDeque::new(),
            hang: false,
        };
        let parts = http::Request::get("/ws").body(()).expect("request").into_parts().0;
        let (head, framing) = encode::head(&parts, Some(0), true);
        let (response, _) = conn
            .exchange(&head, &mut body, framing, &Method::GET, far())
            .await
            .expect("exchange");
        assert_eq!(response.parts.status, StatusCode::SWITCHING_PROTOCOLS);
        assert!(!response.keep_alive);
        let mut body = crate::h1::H1Body::new(conn, response.framing, None, response.fields);
        let (_, early) = body.take_conn().expect("connection").into_parts();
        assert_eq!(&early[..], b"EARLY");
    }

    /// An upstream that answers each request after the delay given for it; `None`: never answers.
    async fn slow_upstream(delays: Vec<Option<u64>>) -> Conn {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut seen = Vec::new();
            for delay in delays {
                while !seen.ends_with(b"\r\n\r\n") {
                    if stream.read_buf(&mut seen).await.expect("read") == 0 {
                        return;
                    }
                }
                seen.clear();
                let Some(delay) = delay else {
                    std::future::pending::<()>().await;
                    return;
                };
                tokio::time::sleep(std::time::Duration::from_secs(delay)).await;
                stream
                    .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                    .await
                    .expect("write");
            }
        });
        let stream = TcpStream::connect(addr).await.expect("connect");
        Conn::new(UpstreamIo::Plain(TokioIo::new(stream)))
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_holds_across_exchanges_that_share_one_timer() {
        use std::time::Duration;
        // Answers after 0 s, then after 6 s (past the first exchange's deadline, before the second's), then never.
        let mut conn = slow_upstream(vec![Some(0), Some(6), None]).await;
        let parts = http::Request::get("/").body(()).expect("request").into_parts().0;
        let (head, framing) = encode::head(&parts, Some(0), true);
        let mut body = Frames {
            frames: VecDeque::new(),
            hang: false,
        };
        let timeout = Duration::from_secs(10);

        let start = Instant::now();
        let (first, _) = conn
            .exchange(&head, &mut body, framing, &Method::GET, start + timeout)
            .await
            .expect("first exchange");
        assert_eq!(first.parts.status, StatusCode::NO_CONTENT);

        // The timer still points at the first deadline (10 s); this exchange's is 18 s and its answer comes at 14 s.
        tokio::time::advance(Duration::from_secs(8)).await;
        let second_start = Instant::now();
        let (second, _) = conn
            .exchange(&head, &mut body, framing, &Method::GET, second_start + timeout)
            .await
            .expect("the timer going off at the first deadline must not fail the second exchange");
        assert_eq!(second.parts.status, StatusCode::NO_CONTENT);
        assert_eq!(second_start.elapsed(), Duration::from_secs(6));

        let third_start = Instant::now();
        let failure = conn
            .exchange(&head, &mut body, framing, &Method::GET, third_start + timeout)
            .await
            .expect_err("a silent server times out");
        assert!(matches!(failure.error, H1Error::TimedOut), "{:?}", failure.error);
        assert!(!failure.resend);
        assert_eq!(
            third_start.elapsed(),
            timeout,
            "exactly at the deadline, not at an earlier one"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_deadline_than_the_last_one_is_kept() {
        use std::time::Duration;
        // After a reload shortened the timeout, the timer left at the long deadline must not delay the short one.
        let mut conn = slow_upstream(vec![Some(0), None]).await;
        let parts = http::Request::get("/").body(()).expect("request").into_parts().0;
        let (head, framing) = encode::head(&parts, Some(0), true);
        let mut body = Frames {
            frames: VecDeque::new(),
            hang: false,
        };
        conn.exchange(&head, &mut body, framing, &Method::GET, far())
            .await
            .expect("first exchange");
        let start = Instant::now();
        let failure = conn
            .exchange(&head, &mut body, framing, &Method::GET, start + Duration::from_secs(5))
            .await
            .expect_err("a silent server times out");
        assert!(matches!(failure.error, H1Error::TimedOut), "{:?}", failure.error);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }
}
