//! The idle HTTP/1.1 connections of one upstream server, lent to one request at a time.
//!
//! Each server keeps its own short stack of idle connections: a request pops the most recently used one (its socket
//! is warm and least likely to have been closed by the server) and the response body puts it back the moment its
//! last byte has been read, with no task and no lookup. The stack has no size limit, so no level of concurrency
//! makes connections churn.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::HOST;
use http::{HeaderValue, Request, Response, Uri};
use tokio::time::Instant;
use tower_service::Service as _;

use crate::body::RequestBody;
use crate::connector::UpstreamConnector;
use crate::h1::{self, BodyFraming, Conn, Failure, H1Body, H1Error, Upload};

/// Why a request could not be sent on a keep-alive connection.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be opened (refused, unreachable, TLS handshake failed, timed out).
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// The connection failed while the request or the response head was under way.
    Exchange(H1Error),
    /// No response head before the deadline (connecting included).
    TimedOut,
}

/// The idle connections of one server.
#[derive(Debug)]
pub(crate) struct KeepAlive {
    /// Oldest at the front, most recently used at the back. A mutex rather than a lock-free queue: it is held for
    /// one push or pop (never across an await), is per server rather than per pool, and the LIFO order and the
    /// expiry sweep from the old end need a deque; the lock-free queues at hand are FIFO.
    idle: Mutex<VecDeque<Idle>>,
    /// An idle connection older than this is closed instead of reused.
    idle_timeout: Duration,
}

#[derive(Debug)]
struct Idle {
    conn: Conn,
    since: Instant,
}

impl KeepAlive {
    /// No connections yet; idle ones are closed after `idle_timeout`.
    pub(crate) fn new(idle_timeout: Duration) -> Arc<Self> {
        Arc::new(KeepAlive {
            idle: Mutex::new(VecDeque::new()),
            idle_timeout,
        })
    }

    /// A response has ended on `conn`: it can take the next request.
    pub(crate) fn release(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        // The oldest connections sit at the front; closing the expired ones here needs no timer task.
        while idle
            .front()
            .is_some_and(|conn| now.duration_since(conn.since) > self.idle_timeout)
        {
            idle.pop_front();
        }
        idle.push_back(Idle { conn, since: now });
    }

    /// The most recently used connection that is still open. Expired ones, and ones the server closed while they
    /// sat idle, are dropped.
    fn checkout(&self) -> Option<Conn> {
        loop {
            let Idle { mut conn, since } = self
                .idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .pop_back()?;
            if since.elapsed() <= self.idle_timeout && !conn.is_stale() {
                return Some(conn);
            }
        }
    }

    /// Connections waiting for a request now.
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or(0)
    }

    /// Sends `req` to the server at `origin` (`scheme://authority/`; the request's own URI only gives the path) on
    /// an idle connection, or on a new one when none is left; returns the response, whose body hands the connection
    /// back when it ends. Fails with [`SendError::TimedOut`] when the response head has not arrived by `deadline`.
    pub(crate) async fn send(
        self: &Arc<Self>,
        connector: &UpstreamConnector,
        origin: &Uri,
        req: Request<RequestBody>,
        deadline: Instant,
    ) -> Result<Response<H1Body>, SendError> {
        let (mut parts, mut body) = req.into_parts();
        fill_host(&mut parts, origin);
        let exact = http_body::Body::size_hint(&body).exact();
        let (head, framing) = h1::encode_head(&parts, exact, http_body::Body::is_end_stream(&body));
        loop {
            let mut conn = match self.checkout() {
                Some(conn) => conn,
                // Boxed: connecting is the rare path, and its state inline would be carried by every request's
                // future.
                None => Box::pin(tokio::time::timeout_at(deadline, connect(connector, origin.clone())))
                    .await
                    .map_err(|_| SendError::TimedOut)??,
            };
            match conn.exchange(&head, &mut body, framing, &parts.method, deadline).await {
                Ok((head, upload)) => {
                    let reusable = head.keep_alive && upload == Upload::Complete;
                    let home = reusable.then(|| Arc::clone(self));
                    let body = H1Body::new(conn, head.framing, home, head.fields);
                    return Ok(Response::from_parts(head.parts, body));
                }
                // The server closed the idle connection just as the request went out; it never saw the request,
                // which had no body to lose, so it goes out again on another connection.
                Err(failure) if failure.resend && framing == BodyFraming::None => {
                    tracing::debug!(
                        "kept-alive upstream connection was closed under the request; sending again: {}",
                        failure.error
                    );
                }
                Err(Failure {
                    error: H1Error::TimedOut,
                    ..
                }) => return Err(SendError::TimedOut),
                Err(failure) => return Err(SendError::Exchange(failure.error)),
            }
        }
    }
}

/// Opens a connection to the server `target` names.
async fn connect(connector: &UpstreamConnector, target: Uri) -> Result<Conn, SendError> {
    let io = connector.clone().call(target).await.map_err(SendError::Connect)?;
    Ok(Conn::new(io))
}

/// Sets `Host` to the server's authority when the request has none (the request line carries only the path and
/// query).
fn fill_host(parts: &mut http::request::Parts, origin: &Uri) {
    if !parts.headers.contains_key(HOST)
        && let Some(authority) = origin.authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(HOST, host);
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full};
    use hyper::service::service_fn;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioIo;
    use sluice_config::UpstreamProtocol;
    use tokio::net::TcpListener;

    use super::*;

    /// An HTTP/1.1 server answering with the number of the connection the request came on.
    async fn server() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        server_with(true).await
    }

    /// Like [`server`]; without `keep_alive` the server closes each connection after one response.
    async fn server_with(keep_alive: bool) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        server_with_body(keep_alive, "").await
    }

    /// Like [`server_with`], answering `body` when it is not empty.
    async fn server_with_body(
        keep_alive: bool,
        body: &'static str,
    ) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::spawn(async move {
                    let service = service_fn(move |_req| async move {
                        let text = if body.is_empty() {
                            n.to_string()
                        } else {
                            body.to_owned()
                        };
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(keep_alive)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (addr, accepted)
    }

    /// A deadline no test reaches.
    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    fn connector() -> UpstreamConnector {
        UpstreamConnector::new(HttpConnector::new(), UpstreamProtocol::Http1, None).expect("connector")
    }

    fn origin(addr: std::net::SocketAddr) -> Uri {
        format!("http://{addr}/").parse().expect("uri")
    }

    fn get() -> Request<RequestBody> {
        let mut req = Request::new(RequestBody::Empty);
        *req.uri_mut() = "/x?y=1".parse().expect("uri");
        req
    }

    /// Sends a GET and reads the whole response body (which returns the connection when it ends).
    async fn fetch(pool: &Arc<KeepAlive>, addr: std::net::SocketAddr) -> Bytes {
        let response = pool
            .send(&connector(), &origin(addr), get(), far())
            .await
            .expect("response");
        response.into_body().collect().await.expect("body").to_bytes()
    }

    #[tokio::test]
    async fn a_finished_response_hands_its_connection_to_the_next_request() {
        let (addr, accepted) = server().await;
        let pool = KeepAlive::new(Duration::from_secs(60));
        for _ in 0..5 {
            assert_eq!(fetch(&pool, addr).await, "0");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(pool.idle_count(), 1);
    }

    #[tokio::test]
    async fn concurrent_requests_open_connections_that_all_stay() {
        let (addr, accepted) = server().await;
        let pool = KeepAlive::new(Duration::from_secs(60));
        let mut pending = Vec::new();
        for _ in 0..3 {
            pending.push(
                pool.send(&connector(), &origin(addr), get(), far())
                    .await
                    .expect("response"),
            );
        }
        assert_eq!(
            pool.idle_count(),
            0,
            "a connection is lent until its body has been read"
        );
        for response in pending {
            response.into_body().collect().await.expect("body");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::Relaxed), 3);
        assert_eq!(pool.idle_count(), 3);
    }

    #[tokio::test]
    async fn an_unread_body_closes_its_connection_and_expired_ones_are_closed() {
        let (addr, accepted) = server_with_body(true, "a longer body than one poll takes").await;
        let pool = KeepAlive::new(Duration::from_millis(50));
        let response = pool
            .send(&connector(), &origin(addr), get(), far())
            .await
            .expect("response");
        drop(response);
        fetch(&pool, addr).await;
        assert_eq!(accepted.load(std::sync::atomic::Ordering::Relaxed), 2);
        tokio::time::sleep(Duration::from_millis(80)).await;
        fetch(&pool, addr).await;
        assert_eq!(
            accepted.load(std::sync::atomic::Ordering::Relaxed),
            3,
            "the expired connection was not used"
        );
        assert_eq!(pool.idle_count(), 1);
    }

    #[tokio::test]
    async fn connections_the_server_closes_are_never_reused() {
        let (addr, accepted) = server_with(false).await;
        let pool = KeepAlive::new(Duration::from_secs(60));
        for i in 0..5 {
            assert_eq!(fetch(&pool, addr).await, i.to_string());
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::Relaxed), 5);
        assert_eq!(pool.idle_count(), 0, "`connection: close` responses never go back");
    }

    /// A server that answers one request per connection and then closes it without saying so (no
    /// `connection: close`): the closed connection sits on the idle stack until the next request finds it.
    #[tokio::test]
    async fn a_connection_closed_while_idle_is_detected_or_the_request_sent_again() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut buf = [0_u8; 1024];
                    let _ = stream.read(&mut buf).await;
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                });
            }
        });
        let pool = KeepAlive::new(Duration::from_secs(60));
        for round in 0..20 {
            assert_eq!(fetch(&pool, addr).await, "ok", "round {round}");
            if round % 2 == 0 {
                // Half the time the close has arrived before the next request; half the time it races it.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::Relaxed), 20);
    }

    #[test]
    fn host_comes_from_the_servers_authority_when_missing() {
        let mut req = Request::new(());
        *req.uri_mut() = "/a/b?c=d".parse().expect("uri");
        let (mut parts, ()) = req.into_parts();
        let origin: Uri = "http://10.0.0.1:8080/".parse().expect("uri");
        fill_host(&mut parts, &origin);
        assert_eq!(parts.headers[HOST], "10.0.0.1:8080");
        parts.headers.insert(HOST, HeaderValue::from_static("kept"));
        fill_host(&mut parts, &origin);
        assert_eq!(parts.headers[HOST], "kept");
    }
}
