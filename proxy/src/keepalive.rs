//! The idle HTTP/1.1 connections of one upstream server, lent to one request at a time.
//!
//! hyper-util's pooled client costs every request a boxed future, a lookup by authority under a lock shared by all
//! servers, and a spawned task that waits to put the connection back. Here each server keeps its own short stack of
//! idle connections: a request pops the most recently used one (its socket is warm and least likely to have been
//! closed by the server) and the response body puts it back the moment it ends, with no task and no lookup. The
//! stack has no size limit, so no level of concurrency makes connections churn.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::HOST;
use http::{HeaderValue, Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use tokio::time::Instant;
use tower_service::Service as _;

use crate::body::RequestBody;
use crate::connector::UpstreamConnector;

/// Why a request could not be sent on a keep-alive connection.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be opened (refused, unreachable, TLS handshake failed, timed out).
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// The connection failed while the request or the response head was under way.
    Http(hyper::Error),
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
    sender: http1::SendRequest<RequestBody>,
    since: Instant,
}

/// A connection lent to one request. [`Lease::release`] returns it once the response body has ended; dropping it
/// instead (the client hung up, the body broke, the connection was upgraded) closes the connection.
#[derive(Debug)]
pub(crate) struct Lease {
    sender: http1::SendRequest<RequestBody>,
    home: Arc<KeepAlive>,
}

impl Lease {
    /// The response is complete: the connection can take the next request.
    pub(crate) fn release(self) {
        let mut idle = self.home.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        // The oldest connections sit at the front; closing the expired ones here needs no timer task.
        while idle
            .front()
            .is_some_and(|conn| now.duration_since(conn.since) > self.home.idle_timeout)
        {
            idle.pop_front();
        }
        idle.push_back(Idle {
            sender: self.sender,
            since: now,
        });
    }
}

impl KeepAlive {
    /// No connections yet; idle ones are closed after `idle_timeout`.
    pub(crate) fn new(idle_timeout: Duration) -> Arc<Self> {
        Arc::new(KeepAlive {
            idle: Mutex::new(VecDeque::new()),
            idle_timeout,
        })
    }

    /// The most recently used connection that can take a request now. Closed and expired ones are dropped; one
    /// still busy (its response ended before the client's upload did) stays for later rather than making this
    /// request wait behind the upload.
    fn checkout(&self) -> Option<Idle> {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut busy = Vec::new();
        let mut found = None;
        while let Some(conn) = idle.pop_back() {
            if conn.sender.is_closed() || conn.since.elapsed() > self.idle_timeout {
                continue;
            }
            if conn.sender.is_ready() {
                found = Some(conn);
                break;
            }
            busy.push(conn);
        }
        for conn in busy.into_iter().rev() {
            idle.push_back(conn);
        }
        found
    }

    /// Connections waiting for a request now.
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or(0)
    }

    /// Sends `req` (its URI absolute: scheme and authority pick the server) on an idle connection, or on a new one
    /// when none is left; returns the response head and the connection on lease.
    pub(crate) async fn send(
        self: &Arc<Self>,
        connector: &UpstreamConnector,
        mut req: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        let target = origin_form(&mut req);
        while let Some(mut conn) = self.checkout() {
            match conn.sender.try_send_request(req).await {
                Ok(response) => return Ok((response, self.lease(conn.sender))),
                Err(mut err) => match err.take_message() {
                    // The server closed the idle connection before the request went out: nothing was sent, so the
                    // request is safe to send again on another connection.
                    Some(unsent) => req = unsent,
                    None => return Err(SendError::Http(err.into_error())),
                },
            }
        }
        // Boxed: connecting is the rare path, and its state inline would be carried by every request's future.
        let mut sender = Box::pin(connect(connector, target)).await?;
        match sender.try_send_request(req).await {
            Ok(response) => Ok((response, self.lease(sender))),
            Err(err) => Err(SendError::Http(err.into_error())),
        }
    }

    fn lease(self: &Arc<Self>, sender: http1::SendRequest<RequestBody>) -> Lease {
        Lease {
            sender,
            home: Arc::clone(self),
        }
    }
}

/// Opens a connection to the server `target` names and starts its task.
async fn connect(connector: &UpstreamConnector, target: Uri) -> Result<http1::SendRequest<RequestBody>, SendError> {
    let io = connector.clone().call(target).await.map_err(SendError::Connect)?;
    let (sender, conn) = http1::Builder::new()
        .handshake(io)
        .await
        .map_err(|err| SendError::Connect(Box::new(err)))?;
    tokio::spawn(async move {
        if let Err(err) = conn.with_upgrades().await {
            tracing::debug!("upstream connection ended: {err}");
        }
    });
    Ok(sender)
}

/// Turns the request's absolute URI into the origin form an HTTP/1.1 request line carries (`/path?query`), setting
/// `Host` from the authority when the client sent none; returns the absolute URI for the connector.
fn origin_form(req: &mut Request<RequestBody>) -> Uri {
    let absolute = req.uri().clone();
    if !req.headers().contains_key(HOST)
        && let Some(authority) = absolute.authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        req.headers_mut().insert(HOST, host);
    }
    let origin = absolute
        .path_and_query()
        .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
    *req.uri_mut() = origin;
    absolute
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
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::spawn(async move {
                    let service = service_fn(move |_req| async move {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(n.to_string()))))
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

    fn connector() -> UpstreamConnector {
        UpstreamConnector::new(HttpConnector::new(), UpstreamProtocol::Http1, None).expect("connector")
    }

    fn get(addr: std::net::SocketAddr) -> Request<RequestBody> {
        let mut req = Request::new(RequestBody::Empty);
        *req.uri_mut() = format!("http://{addr}/x?y=1").parse().expect("uri");
        req
    }

    #[tokio::test]
    async fn a_released_connection_serves_the_next_request() {
        let (addr, accepted) = server().await;
        let pool = KeepAlive::new(Duration::from_secs(60));
        for _ in 0..5 {
            let (response, lease) = pool.send(&connector(), get(addr)).await.expect("response");
            let body = response.into_body().collect().await.expect("body").to_bytes();
            assert_eq!(body, "0");
            lease.release();
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(pool.idle_count(), 1);
    }

    #[tokio::test]
    async fn concurrent_requests_open_connections_that_all_stay() {
        let (addr, accepted) = server().await;
        let pool = KeepAlive::new(Duration::from_secs(60));
        let mut leases = Vec::new();
        for _ in 0..3 {
            let (response, lease) = pool.send(&connector(), get(addr)).await.expect("response");
            response.into_body().collect().await.expect("body");
            leases.push(lease);
        }
        for lease in leases {
            lease.release();
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::Relaxed), 3);
        assert_eq!(pool.idle_count(), 3);
    }

    #[tokio::test]
    async fn a_dropped_lease_is_not_reused_and_expired_ones_are_closed() {
        let (addr, accepted) = server().await;
        let pool = KeepAlive::new(Duration::from_millis(50));
        let (response, lease) = pool.send(&connector(), get(addr)).await.expect("response");
        response.into_body().collect().await.expect("body");
        drop(lease);
        let (response, lease) = pool.send(&connector(), get(addr)).await.expect("response");
        response.into_body().collect().await.expect("body");
        lease.release();
        assert_eq!(accepted.load(std::sync::atomic::Ordering::Relaxed), 2);
        tokio::time::sleep(Duration::from_millis(80)).await;
        let (response, lease) = pool.send(&connector(), get(addr)).await.expect("response");
        response.into_body().collect().await.expect("body");
        lease.release();
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
            let (response, lease) = pool.send(&connector(), get(addr)).await.expect("response");
            let body = response.into_body().collect().await.expect("body").to_bytes();
            assert_eq!(body, i.to_string());
            lease.release();
            // Give the connection's task a moment to see the server's close; a request racing it is sent again.
            tokio::task::yield_now().await;
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::Relaxed), 5);
    }

    #[test]
    fn origin_form_keeps_path_and_query_and_fills_host() {
        let mut req = Request::new(RequestBody::Empty);
        *req.uri_mut() = "http://10.0.0.1:8080/a/b?c=d".parse().expect("uri");
        let absolute = origin_form(&mut req);
        assert_eq!(absolute.authority().map(|a| a.as_str()), Some("10.0.0.1:8080"));
        assert_eq!(req.uri(), "/a/b?c=d");
        assert_eq!(req.headers()[HOST], "10.0.0.1:8080");
    }
}
