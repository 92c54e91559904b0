//! An upstream group (one version's servers): its pooled keep-alive client, round-robin choice, and each
//! server's health — active checks and passive ejection.
//!
//! Health lives in atomics on the servers, not in the table snapshot: pools (and so servers) are carried over
//! from table to table while their config is unchanged, so a server's health always travels with the server and
//! cannot drift from the server list, and the request path reads it without a lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use http::Uri;
use http::uri::Authority;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prometheus::IntGauge;
use sluice_config::{HealthCheck, OutlierDetection, ServerAddr, Timeouts, Upstream};
use tokio::time::Instant;

use crate::body::{RequestBody, UpstreamBody};
use crate::connector::UpstreamConnector;
use crate::keepalive::{KeepAlive, SendError};
use crate::telemetry::Telemetry;

/// The client type shared by every request to one upstream group.
pub(crate) type UpstreamClient = Client<UpstreamConnector, RequestBody>;

/// Why a request did not get a response head from the upstream.
#[derive(Debug)]
pub(crate) enum UpstreamFailure {
    /// No connection could be opened.
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// An HTTP/1.1 connection failed mid-exchange.
    Exchange(crate::h1::H1Error),
    /// The HTTP/2 client failed (its error says whether connecting did).
    Pooled(hyper_util::client::legacy::Error),
    /// No response head before the deadline.
    TimedOut,
}

/// One upstream server and its health.
#[derive(Debug)]
pub(crate) struct Server {
    /// As configured, for logs and errors.
    pub(crate) addr: ServerAddr,
    /// Pre-parsed so building the upstream URI per request is a reference-count bump.
    pub(crate) authority: Authority,
    /// `scheme://authority/`: what opening a connection to this server needs (HTTP/1.1 requests carry only their
    /// path, so they do not say which server they go to).
    pub(crate) origin: Uri,
    /// `host:port`, shared with access-log lines.
    pub(crate) label: Arc<str>,
    /// False once active health checks failed `unhealthy` times in a row.
    pub(crate) healthy: AtomicBool,
    /// Consecutive health check results in the direction opposite to `healthy` (for the thresholds).
    pub(crate) check_streak: AtomicU32,
    /// Consecutive transport failures of real requests.
    failures: AtomicU32,
    /// Ejections in a row without a success in between (for the backoff).
    ejections: AtomicU32,
    /// Milliseconds since the pool's epoch until which the server is ejected; 0 = not ejected.
    ejected_until: AtomicU64,
    /// Drained by the operator (set from each table build, for the `up` gauge only).
    pub(crate) drained: AtomicBool,
    up: IntGauge,
    /// Idle HTTP/1.1 connections to this server (unused for HTTP/2 upstreams, which multiplex one).
    pub(crate) keepalive: Arc<KeepAlive>,
}

/// The servers of one upstream group with their connection pool.
#[derive(Debug)]
pub(crate) struct Pool {
    pub(crate) name: Arc<str>,
    pub(crate) servers: Box<[Server]>,
    /// The multiplexed client for HTTP/2 upstreams; HTTP/1.1 requests use each server's keep-alive connections.
    pub(crate) client: UpstreamClient,
    /// `http` or `https`: part of every upstream URI (the client keys its pool by it).
    pub(crate) scheme: http::uri::Scheme,
    /// Whether requests go over HTTP/2 (no WebSocket upgrades then).
    pub(crate) h2: bool,
    /// How connections are opened, for clients besides `client` (health probes).
    connector: UpstreamConnector,
    pub(crate) health: Option<HealthCheck>,
    /// Set once a health checker task runs for this pool.
    pub(crate) checker: AtomicBool,
    outlier: OutlierDetection,
    next: AtomicUsize,
    epoch: Instant,
    /// What the pool was built from: a new table reuses the pool (and its open connections) when these match.
    spec: (Upstream, Duration, Duration),
}

impl Pool {
    /// A pool for `upstream`; an error when a server address cannot be an HTTP authority.
    pub(crate) fn new(upstream: &Upstream, timeouts: &Timeouts, telemetry: &Telemetry) -> Result<Self, String> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeouts.connect));
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let connector = UpstreamConnector::new(connector, upstream.protocol, upstream.tls.as_ref())
            .map_err(|e| format!("upstream `{}`: {e}", upstream.name))?;
        let scheme = connector.scheme();
        let servers = upstream
            .servers
            .iter()
            .map(|addr| {
                let authority = Authority::try_from(addr.to_string().as_str())
                    .map_err(|e| format!("upstream `{}` server `{addr}`: {e}", upstream.name))?;
                let origin = Uri::builder()
                    .scheme(scheme.clone())
                    .authority(authority.clone())
                    .path_and_query("/")
                    .build()
                    .map_err(|e| format!("upstream `{}` server `{addr}`: {e}", upstream.name))?;
                let up = telemetry.server_up(&upstream.name, &addr.to_string());
                up.set(1);
                Ok(Server {
                    label: Arc::from(addr.to_string().as_str()),
                    addr: addr.clone(),
                    authority,
                    origin,
                    healthy: AtomicBool::new(true),
                    check_streak: AtomicU32::new(0),
                    failures: AtomicU32::new(0),
                    ejections: AtomicU32::new(0),
                    ejected_until: AtomicU64::new(0),
                    drained: AtomicBool::new(false),
                    up,
                    keepalive: KeepAlive::new(timeouts.idle),
                })
            })
            .collect::<Result<Box<[Server]>, String>>()?;
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_timer(TokioTimer::new()).pool_idle_timeout(timeouts.idle);
        if upstream.protocol.is_h2() {
            // One multiplexed connection per server; keep-alive pings find a dead one before a request does.
            builder
                .http2_only(true)
                .timer(TokioTimer::new())
                .http2_keep_alive_interval(Duration::from_secs(20))
                .http2_keep_alive_while_idle(true);
        }
        let client = builder.build(connector.clone());
        Ok(Pool {
            name: Arc::from(upstream.name.as_str()),
            servers,
            client,
            scheme,
            h2: upstream.protocol.is_h2(),
            connector,
            health: upstream.health.clone(),
            checker: AtomicBool::new(false),
            outlier: upstream.outlier.clone(),
            next: AtomicUsize::new(0),
            epoch: Instant::now(),
            spec: (upstream.clone(), timeouts.connect, timeouts.idle),
        })
    }

    /// Sends `req` (absolute URI) to server `index`: HTTP/1.1 on one of the server's keep-alive connections, HTTP/2
    /// on the pool's multiplexed client. An HTTP/1.1 connection goes back when the response body ends.
    pub(crate) async fn send(
        &self,
        index: usize,
        req: http::Request<RequestBody>,
        deadline: tokio::time::Instant,
    ) -> Result<http::Response<UpstreamBody>, UpstreamFailure> {
        if self.h2 {
            return match tokio::time::timeout_at(deadline, self.client.request(req)).await {
                Ok(Ok(response)) => Ok(response.map(UpstreamBody::H2)),
                Ok(Err(err)) => Err(UpstreamFailure::Pooled(err)),
                Err(_) => Err(UpstreamFailure::TimedOut),
            };
        }
        // HTTP/1.1 connections keep a timer each for their deadlines: see `Conn::exchange`.
        let server = &self.servers[index];
        match server
            .keepalive
            .send(&self.connector, &server.origin, req, deadline)
            .await
        {
            Ok(response) => Ok(response.map(UpstreamBody::H1)),
            Err(SendError::Connect(err)) => Err(UpstreamFailure::Connect(err)),
            Err(SendError::Exchange(err)) => Err(UpstreamFailure::Exchange(err)),
            Err(SendError::TimedOut) => Err(UpstreamFailure::TimedOut),
        }
    }

    /// A client for health probes: the servers' protocol and TLS, but its own small pool, so a probe neither
    /// waits behind real traffic nor takes its connections.
    pub(crate) fn probe_client<B>(&self) -> Client<UpstreamConnector, B>
    where
        B: http_body::Body + Send + 'static + Unpin,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_timer(TokioTimer::new()).pool_max_idle_per_host(1);
        if self.h2 {
            builder.http2_only(true).timer(TokioTimer::new());
        }
        builder.build(self.connector.clone())
    }

    /// Whether this pool serves exactly what `upstream` and `timeouts` describe, so it can be carried over.
    pub(crate) fn same_as(&self, upstream: &Upstream, timeouts: &Timeouts) -> bool {
        self.spec.0 == *upstream && self.spec.1 == timeouts.connect && self.spec.2 == timeouts.idle
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Whether server `index` takes new requests now (healthy and not ejected).
    pub(crate) fn available(&self, index: usize) -> bool {
        let server = &self.servers[index];
        if !server.healthy.load(Ordering::Relaxed) {
            return false;
        }
        let until = server.ejected_until.load(Ordering::Relaxed);
        if until == 0 {
            return true;
        }
        if self.now_ms() < until {
            return false;
        }
        // The ejection ran out: the server gets requests again (and is ejected for longer if it fails again).
        if server
            .ejected_until
            .compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::info!(upstream = &*self.name, server = %server.addr, "ejection over; server back in rotation");
            self.refresh_gauge(server);
        }
        true
    }

    /// The next available server among `active` (not drained), round robin, skipping `exclude`.
    pub(crate) fn pick(&self, active: &[usize], exclude: Option<usize>) -> Option<usize> {
        if active.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..active.len())
            .map(|offset| active[(start + offset) % active.len()])
            .find(|&i| Some(i) != exclude && self.available(i))
    }

    /// A real request to server `index` got a response.
    pub(crate) fn report_success(&self, index: usize) {
        let server = &self.servers[index];
        // Loads first: the common case (no failures) writes nothing.
        if server.failures.load(Ordering::Relaxed) != 0 {
            server.failures.store(0, Ordering::Relaxed);
        }
        if server.ejections.load(Ordering::Relaxed) != 0 {
            server.ejections.store(0, Ordering::Relaxed);
        }
    }

    /// A real request to server `index` failed in transport (connect, reset, timeout, bad HTTP). After
    /// `consecutive_failures` in a row the server is ejected, unless that would eject more than the allowed share.
    pub(crate) fn report_failure(&self, index: usize) {
        let server = &self.servers[index];
        let failures = server.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures < self.outlier.consecutive_failures || server.ejected_until.load(Ordering::Relaxed) != 0 {
            return;
        }
        let now = self.now_ms();
        let ejected = self
            .servers
            .iter()
            .filter(|s| s.ejected_until.load(Ordering::Relaxed) > now)
            .count();
        let percent = self.outlier.max_ejected_percent as usize;
        // 0 % turns ejection off; otherwise at least one server may go, or small groups could never eject.
        let allowed = if percent == 0 {
            0
        } else {
            (self.servers.len() * percent / 100).max(1)
        };
        if ejected >= allowed {
            tracing::warn!(upstream = &*self.name, server = %server.addr, ejected, allowed,
                "server keeps failing but the ejection limit is reached; it stays in rotation");
            return;
        }
        let round = server.ejections.fetch_add(1, Ordering::Relaxed).min(16);
        let duration = self
            .outlier
            .base_ejection
            .saturating_mul(1 << round)
            .min(self.outlier.max_ejection);
        let until = now.saturating_add(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
        server.ejected_until.store(until, Ordering::Relaxed);
        server.failures.store(0, Ordering::Relaxed);
        tracing::warn!(upstream = &*self.name, server = %server.addr, failures, ejection = ?duration,
            "server ejected after consecutive failures");
        self.refresh_gauge(server);
    }

    /// What a server is doing now: `drained` (operator), `down` (health checks), `ejected` (failures), or `active`.
    pub(crate) fn state_of(&self, index: usize) -> &'static str {
        let server = &self.servers[index];
        if server.drained.load(Ordering::Relaxed) {
            "drained"
        } else if !server.healthy.load(Ordering::Relaxed) {
            "down"
        } else if !self.available(index) {
            "ejected"
        } else {
            "active"
        }
    }

    /// Ends an ejection early: an active health check just proved the server reachable again.
    pub(crate) fn clear_ejection(&self, index: usize) {
        let server = &self.servers[index];
        if server.ejected_until.swap(0, Ordering::Relaxed) != 0 {
            server.failures.store(0, Ordering::Relaxed);
            tracing::info!(upstream = &*self.name, server = %server.addr, "health check passed; ejection ended early");
            self.refresh_gauge(server);
        }
    }

    /// Sets `sluice_upstream_server_up` from the server's state.
    pub(crate) fn refresh_gauge(&self, server: &Server) {
        let up = server.healthy.load(Ordering::Relaxed)
            && server.ejected_until.load(Ordering::Relaxed) == 0
            && !server.drained.load(Ordering::Relaxed);
        server.up.set(i64::from(up));
    }
}
