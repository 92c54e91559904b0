//! The HTTP/1.1 fast path for client connections: sluice reads request heads and writes responses itself.
//!
//! hyper's server keeps an 8 KiB read buffer and an 8 KiB write buffer for as long as a connection is open, and
//! its dispatcher costs about as much per request as the proxying itself. Here a waiting connection holds a 1 KiB
//! head buffer, and a request's head, the upstream exchange and the response share one task.
//! Requests with a body, upgrades, `Expect`, trailers, CONNECT, HTTP/1.0 and HTTP/2 are handed, with the bytes
//! read so far, to hyper for the rest of the connection: they keep the general path and all its behaviour.

use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use http::{Method, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::watch;
use tokio::time::Instant;

use super::conn::poll_once;
use super::encode;
use super::request::{self, Parsed, RequestError};
use super::response::{self, Delimit};
use crate::body::{ProxyBody, RequestBody};
use crate::forward::{ClientInfo, Proxy};
use crate::tls::redirect::HttpsPort;

/// Body data up to this size is copied behind the head or the previous chunk so both go out in one write.
const COALESCE: usize = 16 * 1024;
/// A request head is read into this much space at first; more is added as a long head needs it. Small enough
/// for the allocator's per-thread cache, and most heads fit.
const HEAD_READ: usize = 1024;

/// The fast path's limits, from `[limits]` and `[timeouts]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// How long a request head may take to arrive, counted from the moment the connection waits for one (so it
    /// also bounds keep-alive idle time), as hyper's header-read timer does.
    pub(crate) head_timeout: Duration,
    /// The largest request head accepted (431 beyond).
    pub(crate) max_head: usize,
}

/// How a connection left the fast path.
#[derive(Debug)]
pub(crate) enum Ended<I> {
    /// It is closed (or its client went away).
    Closed,
    /// A request the fast path leaves to hyper is next: `buffered` holds the bytes already read from `io`.
    HandOver {
        /// The connection.
        io: I,
        /// Read and not yet served, starting with the request's head.
        buffered: BytesMut,
    },
}

/// Serves requests on `io` until it closes, `stop` turns true (a connection waiting for a request closes at once,
/// one with a request in flight after answering it), or a request needs hyper.
pub(crate) async fn serve<I>(
    mut io: I,
    proxy: &Proxy,
    client: &ClientInfo,
    https_port: Option<HttpsPort>,
    settings: Settings,
    stop: watch::Receiver<bool>,
) -> Ended<I>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::new();
    // One timer for the connection, moved lazily: arming and cancelling a timer per request cost more than
    // parsing the request. It may go off before the current deadline, which then re-arms it.
    let timer = tokio::time::sleep(settings.head_timeout);
    tokio::pin!(timer);
    // Likewise one wait for shutdown, on a receiver of its own (the other one is read between requests), instead of
    // joining and leaving the watch's waiter list per request.
    let mut shutdown = stop.clone();
    let stopped = shutdown.changed();
    tokio::pin!(stopped);
    loop {
        let deadline = Instant::now() + settings.head_timeout;
        let parsed = loop {
            if !buf.is_empty() {
                match request::parse(&mut buf, settings.max_head) {
                    Ok(Some(parsed)) => break parsed,
                    Ok(None) => {}
                    Err(err) => {
                        tracing::debug!(client = %client.addr, "refusing a request: {err}");
                        refuse(&mut io, &err).await;
                        return Ended::Closed;
                    }
                }
            }
            if *stop.borrow() && buf.is_empty() {
                return Ended::Closed;
            }
            if buf.capacity() - buf.len() < HEAD_READ / 4 {
                buf.reserve(HEAD_READ);
            }
            let waiting = buf.is_empty();
            let read = tokio::select! {
                biased;
                read = io.read_buf(&mut buf) => read,
                () = &mut timer => {
                    if Instant::now() >= deadline {
                        return Ended::Closed;
                    }
                    timer.as_mut().reset(deadline);
                    continue;
                }
                // Shutdown closes a connection between requests, never one with a request under way.
                _ = &mut stopped, if waiting => return Ended::Closed,
            };
            if !matches!(read, Ok(n) if n > 0) {
                return Ended::Closed;
            }
        };
        let Parsed::Request { request, keep_alive } = parsed else {
            return Ended::HandOver { io, buffered: buf };
        };
        let head_request = request.method() == Method::HEAD;
        let mut request = request.map(|()| RequestBody::Empty);
        if let Some(port) = https_port {
            request.extensions_mut().insert(port);
        }
        // Boxed: the connection's own state stays small while it waits for the next request. The box comes first
        // so the request's future (several KiB) is built in place rather than on the stack and copied over.
        let slot = Box::new_uninit();
        let response = Box::into_pin(Box::write(slot, proxy.handle(request, client))).await;
        let close = !keep_alive || *stop.borrow();
        if respond(&mut io, response, head_request, close).await.is_err() || close {
            let _ = io.shutdown().await;
            return Ended::Closed;
        }
        if buf.capacity() > 4 * HEAD_READ {
            // A long head grew the buffer: do not hold that much while the connection waits.
            buf = BytesMut::new();
        }
    }
}

/// Writes `response`; an error means the connection cannot carry another request (the client left, or the
/// upstream broke off mid-body and the client must see the response end early).
async fn respond<I>(io: &mut I, response: Response<ProxyBody>, head_request: bool, close: bool) -> std::io::Result<()>
where
    I: AsyncWrite + Unpin,
{
    let (parts, mut body) = response.into_parts();
    let fields = body.fields();
    let (delimit, length) = response::delimit(head_request, &parts, fields, body.size_hint().exact());
    let mut out = Vec::with_capacity(512);
    response::head(&mut out, &parts, fields, delimit, length, close);
    drop(parts);
    if delimit == Delimit::NoBody {
        io.write_all(&out).await?;
        return io.flush().await;
    }
    let chunked = delimit == Delimit::Chunked;
    loop {
        let frame = match poll_once(&mut body).await {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                if !out.is_empty() {
                    io.write_all(&out).await?;
                    out.clear();
                }
                io.flush().await?;
                body.frame().await
            }
        };
        match frame {
            None => break,
            Some(Err(err)) => {
                let _ = io.write_all(&out).await;
                return Err(std::io::Error::other(err));
            }
            Some(Ok(frame)) => {
                // Trailers are dropped, as hyper does for clients that did not ask for them (those that did take
                // hyper's path).
                let Ok(data) = frame.into_data() else { continue };
                if data.is_empty() {
                    continue;
                }
                if chunked {
                    encode::chunk_start(&mut out, data.len());
                }
                if data.len() <= COALESCE {
                    out.extend_from_slice(&data);
                } else {
                    io.write_all(&out).await?;
                    out.clear();
                    io.write_all(&data).await?;
                }
                if chunked {
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }
    if chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    io.write_all(&out).await?;
    io.flush().await
}

/// Answers a request head that cannot be served with its status and the reason, then closes.
async fn refuse<I>(io: &mut I, err: &RequestError)
where
    I: AsyncWrite + Unpin,
{
    let status: StatusCode = err.status();
    let text = format!(
        "{} {}: {err}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("error")
    );
    let mut response = Response::new(());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let (parts, ()) = response.into_parts();
    let mut out = Vec::with_capacity(256);
    response::head(&mut out, &parts, None, Delimit::Length, Some(text.len() as u64), true);
    out.extend_from_slice(text.as_bytes());
    let _ = io.write_all(&out).await;
    let _ = io.shutdown().await;
}
