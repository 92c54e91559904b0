//! The request path: one table snapshot, route, version, server, then forward with headers fixed up.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::{Entry, HOST, HeaderValue, SET_COOKIE, TE, UPGRADE};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, Uri, Version as HttpVersion};
use sluice_config::{Cidr, Config, Store};
use tokio::time::Instant;

use crate::body::{BodyTooLarge, ProxyBody, Recording, RequestBody, RequestBodyError, UpstreamBody, complete_headers};
use crate::edge::access_log::{AccessLog, Destination, Format};
use crate::edge::client_addr::client_ip;
use crate::edge::pending::PendingLog;
use crate::edge::request_id::new_request_id;
use crate::edge::rules::Vars;
use crate::error::{ErrorSource, ProxyError};
use crate::h1::DecodeError;
use crate::headers::X_FORWARDED_FOR;
use crate::headers::{add_forwarded, strip_hop_by_hop};
use crate::host::request_host;
use crate::pool::{Server, UpstreamFailure};
use crate::table::{RouteEntry, Table, Version};
use crate::telemetry::Outcome;
use crate::upgrade::{Tunnels, UpgradeRequest};

/// The proxy: serves requests from the live table snapshot, which only the store's write path replaces.
#[derive(Debug)]
pub struct Proxy {
    store: Arc<Store<Table>>,
    access_log: Option<AccessLog>,
    tunnels: Tunnels,
}

/// What one request carries through the proxy besides the request itself.
#[derive(Debug)]
struct RequestCtx {
    /// The client's address as `x-forwarded-for` and templates show it (after trusted hops).
    client_ip: HeaderValue,
    request_id: HeaderValue,
    /// The version that answered, once known.
    version: Option<Arc<str>>,
    log: Option<PendingLog>,
}

/// What a connection knows about its client, computed once per connection, not per request.
#[derive(Debug, Clone)]
pub(crate) struct ClientInfo {
    pub(crate) addr: SocketAddr,
    pub(crate) ip_header: HeaderValue,
    pub(crate) proto: &'static str,
}

impl ClientInfo {
    pub(crate) fn new(addr: SocketAddr, proto: &'static str) -> Self {
        let ip_header = HeaderValue::from_str(&addr.ip().to_string()).expect("an IP address is a valid header value");
        ClientInfo { addr, ip_header, proto }
    }
}

impl Proxy {
    /// A proxy over a store (its write path is how the table changes). Starts the access log writer when the
    /// configuration has `[access_log]` (it runs on the current tokio runtime).
    pub fn new(store: Arc<Store<Table>>) -> Arc<Proxy> {
        let access_log = store.state().effective.access_log.clone().and_then(|settings| {
            if tokio::runtime::Handle::try_current().is_err() {
                tracing::warn!("no runtime to write the access log on; it stays off");
                return None;
            }
            let format = match settings.format {
                sluice_config::LogFormat::Json => Format::Json,
                sluice_config::LogFormat::Combined => Format::Combined,
            };
            let destination = settings.path.map_or(Destination::Stdout, Destination::File);
            let dropped = prometheus::IntCounter::new(
                "sluice_access_log_dropped_total",
                "Access log lines dropped because the writer could not keep up; requests never wait for the log.",
            )
            .expect("valid metric");
            // A second proxy in one process (tests) keeps its own count; the registry shows the first.
            let _ = store.load().telemetry().registry().register(Box::new(dropped.clone()));
            Some(AccessLog::start(format, destination, settings.buffer, dropped).0)
        });
        let open_tunnels = prometheus::IntGauge::new(
            "sluice_upgraded_connections",
            "Upgraded connections (WebSocket) open now; reloads and weight changes leave them alone.",
        )
        .expect("valid metric");
        let _ = store
            .load()
            .telemetry()
            .registry()
            .register(Box::new(open_tunnels.clone()));
        let tunnels = Tunnels::new(open_tunnels);
        Arc::new(Proxy {
            store,
            access_log,
            tunnels,
        })
    }

    /// Upgraded connections (WebSocket tunnels) open now.
    pub fn open_tunnels(&self) -> usize {
        self.tunnels.count()
    }

    /// Resolves once no upgraded connection is open (graceful shutdown waits for this up to the drain timeout).
    pub async fn tunnels_closed(&self) {
        self.tunnels.closed().await;
    }

    /// Closes and reopens the access log file (SIGUSR1, after logrotate moved it).
    pub fn reopen_access_log(&self) {
        if let Some(log) = &self.access_log {
            log.reopen();
        }
    }

    /// Access log lines dropped because the writer could not keep up (the request path never waits for it).
    pub fn access_log_dropped(&self) -> u64 {
        self.access_log.as_ref().map_or(0, AccessLog::dropped)
    }

    /// A proxy serving a `config` that no file backs (the demo, tests); runtime changes still apply.
    pub fn from_config(config: Config) -> Result<Arc<Proxy>, String> {
        Ok(Proxy::new(Arc::new(Store::from_config(config)?)))
    }

    /// The store behind this proxy.
    pub fn store(&self) -> &Arc<Store<Table>> {
        &self.store
    }

    /// The current table snapshot.
    pub fn table(&self) -> Arc<Table> {
        self.store.load()
    }

    /// Proxies one request; every failure becomes a response here, through [`ProxyError::status`].
    pub(crate) async fn handle(&self, mut req: Request<RequestBody>, client: &ClientInfo) -> Response<ProxyBody> {
        // One snapshot for the whole request: a reload mid-request cannot mix two tables.
        let table = self.store.load();
        let started = Instant::now();
        let config = table.config();
        let client_ip = real_client_ip(&req, client, &config.trusted_proxies);
        let ip_header = if client_ip == client.addr.ip() {
            client.ip_header.clone()
        } else {
            HeaderValue::from_str(&client_ip.to_string()).expect("an IP address is a valid header value")
        };
        // Keep the caller's request id so one id follows the request through every service; else make one.
        let request_id = match req.headers_mut().entry(&table.request_id) {
            Entry::Occupied(id) => id.get().clone(),
            Entry::Vacant(slot) => {
                let id = new_request_id();
                slot.insert(id.clone());
                id
            }
        };
        let host = if table.routes_by_host() {
            request_host(&req)
        } else {
            None
        };
        let Some(route) = table.route_for(host.as_deref(), req.uri().path()) else {
            tracing::debug!(host = ?host.or_else(|| request_host(&req)), path = req.uri().path(), "no route");
            if let Some(log) = &self.access_log {
                PendingLog::new(log, &req, client_ip, &request_id).finish(404, 0, started.elapsed());
            }
            return with_request_id(error_response(&ProxyError::NoRoute), &table, request_id);
        };
        drop(host);
        let log = match &self.access_log {
            Some(log) if route.edge.sampled() => {
                let mut pending = PendingLog::new(log, &req, client_ip, &request_id);
                pending.routed(route.name_arc(), None, None);
                Some(pending)
            }
            _ => None,
        };
        if let Some(redirect) = crate::tls::redirect::to_https(&req, route.name(), config, client.proto) {
            if let Some(log) = log {
                log.finish(308, 0, started.elapsed());
            }
            return with_request_id(redirect, &table, request_id);
        }
        let Some((index, cookie)) = route.choose(&req, client.proto == "https") else {
            let err = ProxyError::NoVersion {
                route: route.name().to_owned(),
            };
            tracing::warn!(route = route.name(), "{err}");
            if let Some(log) = log {
                log.finish(err.status().as_u16(), 0, started.elapsed());
            }
            return with_request_id(error_response(&err), &table, request_id);
        };
        let mut ctx = RequestCtx {
            client_ip: ip_header,
            request_id,
            version: None,
            log,
        };
        let mut response = self.forward_to(&table, route, index, req, client, &mut ctx).await;
        if !route.edge.response.is_empty() {
            let version = ctx.version.as_deref().unwrap_or("");
            let vars = Vars {
                client_ip: &ctx.client_ip,
                request_id: &ctx.request_id,
                version,
                route: route.name(),
            };
            complete_headers(&mut response);
            route.edge.response.apply(response.headers_mut(), &vars);
        }
        // The client was assigned a version: tell it so whatever the upstream answered. Appended, so the
        // upstream's own cookies can stay as lines.
        if let Some(cookie) = cookie {
            response.headers_mut().append(SET_COOKIE, cookie);
        }
        with_request_id(response, &table, ctx.request_id)
    }

    /// Forwards to a server of version `index` of `route` (or the route's fallback when none of its servers is up),
    /// retrying once on another server when that is safe; failures become responses. Records the outcome.
    async fn forward_to(
        &self,
        table: &Table,
        route: &RouteEntry,
        index: usize,
        mut req: Request<RequestBody>,
        client: &ClientInfo,
        ctx: &mut RequestCtx,
    ) -> Response<ProxyBody> {
        let started = Instant::now();
        let upgrade = UpgradeRequest::take(&mut req);
        let chosen = &route.versions[index];
        let (version, first) = match chosen.pool.pick(&chosen.active, None) {
            Some(server) => (chosen, server),
            None => match route
                .fallback
                .as_ref()
                .and_then(|f| f.pool.pick(&f.active, None).map(|s| (f, s)))
            {
                Some((fallback, server)) => {
                    // A dead version must not show users errors: its traffic lands on the fallback, and says so.
                    chosen.telemetry.fallbacks.inc();
                    tracing::debug!(
                        route = route.name(),
                        from = &*chosen.pool.name,
                        to = &*fallback.pool.name,
                        "every server of the version is down; using the fallback"
                    );
                    (fallback, server)
                }
                None => {
                    let err = ProxyError::NoServer {
                        upstream: chosen.pool.name.to_string(),
                    };
                    tracing::warn!(route = route.name(), "{err}");
                    chosen.telemetry.inflight.inc();
                    return answer_locally(chosen, started, ctx, &err);
                }
            },
        };
        version.telemetry.inflight.inc();
        route.retry.deposit();
        if upgrade.is_some() && version.pool.h2 {
            let err = ProxyError::UpgradeUnsupported {
                upstream: version.pool.name.to_string(),
            };
            tracing::warn!(route = route.name(), "{err}");
            return answer_locally(version, started, ctx, &err);
        }

        let (mut parts, body) = req.into_parts();
        let limit = table.config().limits.max_body_bytes;
        if let Some(limit) = limit
            && http_body::Body::size_hint(&body).lower() > limit
        {
            return answer_locally(version, started, ctx, &ProxyError::BodyTooLarge { limit });
        }
        prepare_headers(&mut parts, client);
        if let Some(upgrade) = &upgrade {
            upgrade.restore_headers(&mut parts.headers);
        }
        if !route.edge.request.is_empty() {
            let vars = Vars {
                client_ip: &ctx.client_ip,
                request_id: &ctx.request_id,
                version: &version.pool.name,
                route: route.name(),
            };
            route.edge.request.apply(&mut parts.headers, &vars);
        }
        if let Some(rewritten) = parts
            .uri
            .path_and_query()
            .and_then(|pq| route.edge.rewrite(pq.as_str()))
            && let Ok(pq) = PathAndQuery::try_from(rewritten)
        {
            let mut uri = std::mem::take(&mut parts.uri).into_parts();
            uri.path_and_query = Some(pq);
            parts.uri = Uri::from_parts(uri).unwrap_or_default();
        }
        // Only requests that can be sent again unchanged are retried: idempotent, with no body.
        // The copy kept for a retry costs an allocation, so it is only made when a retry could go somewhere.
        let somewhere_else = version.active.len() > 1 || route.fallback.is_some();
        let retry = (somewhere_else
            && route.retry.attempts() > 0
            && is_idempotent(&parts.method)
            && http_body::Body::is_end_stream(&body))
        .then(|| (parts.method.clone(), parts.uri.clone(), parts.headers.clone()));
        let mut target = version;
        let mut server = first;
        let mut result = send(table, route, target, server, parts, body.limited(limit), client).await;
        if let (Err(err), Some((method, uri, headers))) = (&result, retry)
            && err.retryable()
        {
            // Another server of the same version first; when it has none left, the fallback, so that a version
            // whose servers just died does not show users errors before health checks catch up.
            let next = match target.pool.pick(&target.active, Some(server)) {
                Some(next) => Some((target, next)),
                None => route
                    .fallback
                    .as_ref()
                    .and_then(|f| f.pool.pick(&f.active, None).map(|next| (f, next))),
            };
            if let Some((next_version, next)) = next.filter(|_| route.retry.withdraw()) {
                tracing::info!(route = route.name(), failed = %target.pool.servers[server].addr,
                    retry = %next_version.pool.servers[next].addr, "retrying on another server: {err}");
                target.pool.report_failure(server);
                if let Some(kind) = err.upstream_kind() {
                    // Rescued, so the client sees no error; the failed attempt still counts against its version.
                    target.telemetry.count_upstream_error(kind);
                }
                target.telemetry.retries.inc();
                if !std::ptr::eq(next_version, target) {
                    target.telemetry.fallbacks.inc();
                    target.telemetry.inflight.dec();
                    next_version.telemetry.inflight.inc();
                }
                let mut again = Request::new(());
                *again.method_mut() = method;
                *again.uri_mut() = uri;
                *again.headers_mut() = headers;
                let (parts, ()) = again.into_parts();
                (target, server) = (next_version, next);
                // Boxed: the retry is rare, and an inline second `send` would double the size of every request's
                // future (hyper moves that future into place once per request).
                result = Box::pin(send(table, route, target, server, parts, RequestBody::Empty, client)).await;
            }
        }
        let result = match result {
            Ok(response) if response.status() == http::StatusCode::SWITCHING_PROTOCOLS => match upgrade {
                Some(upgrade) => {
                    // The connection now belongs to the tunnel; it never goes back to the pool.
                    let label = Arc::clone(&target.pool.servers[server].label);
                    Ok(self.tunnels.open(upgrade, response, label))
                }
                // A switch nobody asked for would leave the client talking to an unknown protocol.
                None => Err(ProxyError::Protocol {
                    server: target.pool.servers[server].addr.to_string(),
                    reason: "101 Switching Protocols to a request that asked for no upgrade".to_owned(),
                }),
            },
            other => other,
        };
        match result {
            Ok(response) => {
                target.pool.report_success(server);
                let (parts, body) = response.into_parts();
                ctx.version = Some(Arc::clone(&target.pool.name));
                let mut log = ctx.log.take();
                if let Some(log) = log.as_mut() {
                    let upstream = Arc::clone(&target.pool.servers[server].label);
                    log.routed(route.name_arc(), Some(&target.pool.name), Some(upstream));
                    log.rescued(
                        server != first || !std::ptr::eq(target, version),
                        !std::ptr::eq(target, chosen),
                    );
                }
                let recording = Recording {
                    telemetry: Arc::clone(&target.telemetry),
                    started,
                    status: parts.status.as_u16(),
                    log,
                    bytes_out: 0,
                };
                Response::from_parts(parts, ProxyBody::upstream(body, recording))
            }
            Err(err) => {
                let upstream_error = err.upstream_kind();
                if upstream_error.is_some() {
                    target.pool.report_failure(server);
                    tracing::warn!(route = route.name(), version = &*target.pool.name,
                        upstream = %target.pool.servers[server].addr, "upstream failure: {err}");
                } else {
                    tracing::info!(route = route.name(), version = &*version.pool.name, client = %client.addr,
                        "client failure: {err}");
                }
                let status = err.status().as_u16();
                let outcome = if err.source() == ErrorSource::Client {
                    Outcome::ClientAborted
                } else {
                    Outcome::Answered {
                        status,
                        upstream_error,
                        local: upstream_error.is_none(),
                    }
                };
                target.telemetry.finish(started, outcome);
                ctx.version = Some(Arc::clone(&target.pool.name));
                if let Some(mut log) = ctx.log.take() {
                    let upstream = Arc::clone(&target.pool.servers[server].label);
                    log.routed(route.name_arc(), Some(&target.pool.name), Some(upstream));
                    let status = if err.source() == ErrorSource::Client {
                        499
                    } else {
                        status
                    };
                    log.finish(status, 0, started.elapsed());
                }
                error_response(&err)
            }
        }
    }
}

/// Answers `err` without asking the upstream, recording it against `version` as a local answer (not the
/// version's fault) and in the access log.
fn answer_locally(version: &Version, started: Instant, ctx: &mut RequestCtx, err: &ProxyError) -> Response<ProxyBody> {
    let status = err.status().as_u16();
    let outcome = Outcome::Answered {
        status,
        upstream_error: None,
        local: true,
    };
    version.telemetry.finish(started, outcome);
    if let Some(log) = ctx.log.take() {
        log.finish(status, 0, started.elapsed());
    }
    error_response(err)
}

/// The client's address: the peer, unless the peer is a trusted proxy, then the right-most untrusted entry of
/// `x-forwarded-for` (never taken from an untrusted peer, so it cannot be spoofed).
fn real_client_ip<B>(req: &Request<B>, client: &ClientInfo, trusted: &[Cidr]) -> IpAddr {
    let peer = client.addr.ip();
    if trusted.is_empty() || !trusted.iter().any(|c| c.contains(peer)) {
        return peer;
    }
    let chain: Vec<&str> = req
        .headers()
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    client_ip(peer, &chain, &|ip| trusted.iter().any(|c| c.contains(ip)))
}

/// Returns the request id to the client.
fn with_request_id(mut response: Response<ProxyBody>, table: &Table, id: HeaderValue) -> Response<ProxyBody> {
    // An upstream that echoes the id must not make it appear twice.
    if response.body().fields().is_some_and(|f| f.contains(&table.request_id)) {
        complete_headers(&mut response);
    }
    response.headers_mut().insert(table.request_id.clone(), id);
    response
}

/// Hop-by-hop headers out, `x-forwarded-*` in, `Host` kept; done once even when the request is retried.
fn prepare_headers(parts: &mut http::request::Parts, client: &ClientInfo) {
    // `Host` stays as the client sent it; HTTP/2 clients send `:authority` instead, which becomes `Host`.
    let (host, in_headers) = match parts.headers.get(HOST) {
        Some(h) => (Some(h.clone()), true),
        None => (
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
            false,
        ),
    };
    // `te: trailers` is the one TE value HTTP/2 allows, and gRPC servers require it: it says the client reads
    // trailers, which stays true through sluice (trailers are passed on).
    let trailers = parts.headers.get_all(TE).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("trailers")))
    });
    // `Connection: host` would take `Host` with it: put it back then.
    let stripped = strip_hop_by_hop(&mut parts.headers);
    if trailers {
        parts.headers.insert(TE, HeaderValue::from_static("trailers"));
    }
    // x-forwarded-for appends the hop that connected to us (with trusted proxies in front, the proxy); the chain
    // before it says who the client was.
    add_forwarded(&mut parts.headers, &client.ip_header, client.proto, host.clone());
    if let Some(host) = host.filter(|_| stripped || !in_headers) {
        parts.headers.insert(HOST, host);
    }
    // Upstreams speak HTTP/1.1 whatever the client spoke.
    parts.version = HttpVersion::HTTP_11;
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

/// One attempt: send to server `server` of `version` and wait for the response headers.
async fn send(
    table: &Table,
    route: &RouteEntry,
    version: &Version,
    server: usize,
    mut parts: http::request::Parts,
    body: RequestBody,
    client: &ClientInfo,
) -> Result<Response<UpstreamBody>, ProxyError> {
    let target = &version.pool.servers[server];
    // HTTP/2 sends scheme and authority with every request (`:scheme`, `:authority`), and hyper's client picks the
    // connection by them. HTTP/1.1 sends only the path, on a connection of the server's own: no URI to rebuild.
    if version.pool.h2 {
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        parts.uri = Uri::builder()
            .scheme(version.pool.scheme.clone())
            .authority(target.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| ProxyError::BadRequest { reason: e.to_string() })?;
    }
    // Tells a client hang-up (hyper drops this future) apart from an upstream failure in the logs.
    let mut hangup = HangupLog {
        route: route.name(),
        version: &version.pool.name,
        client: client.addr,
        armed: true,
    };
    let timeout = table.timeouts().response_header;
    let deadline = tokio::time::Instant::now() + timeout;
    let result = version
        .pool
        .send(server, Request::from_parts(parts, body), deadline)
        .await;
    hangup.armed = false;
    let mut response = match result {
        Ok(answer) => answer,
        Err(err) => return Err(classify(&err, target, timeout)),
    };
    let switched = (response.status() == http::StatusCode::SWITCHING_PROTOCOLS)
        .then(|| response.headers().get(UPGRADE).cloned())
        .flatten();
    let _ = strip_hop_by_hop(response.headers_mut());
    if let Some(protocol) = switched {
        response.headers_mut().insert(UPGRADE, protocol);
    }
    Ok(response)
}

/// Sorts a failure into timeouts (after `timeout`), connect failures, client-body failures, bad HTTP and everything
/// else the upstream did.
fn classify(err: &UpstreamFailure, server: &Server, timeout: std::time::Duration) -> ProxyError {
    let (err, connect): (&(dyn std::error::Error + 'static), bool) = match err {
        UpstreamFailure::Connect(err) => (err.as_ref(), true),
        UpstreamFailure::Exchange(err) => (err, false),
        UpstreamFailure::Pooled(err) => (err, err.is_connect()),
        UpstreamFailure::TimedOut => {
            return ProxyError::Timeout {
                server: server.addr.to_string(),
                timeout_ms: timeout.as_millis(),
            };
        }
    };
    let reason = error_chain(err);
    if connect {
        return ProxyError::Connect {
            server: server.addr.to_string(),
            reason,
        };
    }
    let mut source = Some(err);
    while let Some(cause) = source {
        if let Some(too_large) = cause.downcast_ref::<BodyTooLarge>() {
            return ProxyError::BodyTooLarge { limit: too_large.limit };
        }
        if cause.is::<RequestBodyError>() {
            // Our request body failed: the client's stream broke (it hung up mid-upload).
            return ProxyError::ClientBody { reason };
        }
        if cause.is::<DecodeError>() || cause.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_parse) {
            return ProxyError::Protocol {
                server: server.addr.to_string(),
                reason,
            };
        }
        source = cause.source();
    }
    ProxyError::Upstream {
        server: server.addr.to_string(),
        reason,
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn error_response(err: &ProxyError) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::text(err.public_message()));
    *response.status_mut() = err.status();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

struct HangupLog<'a> {
    route: &'a str,
    version: &'a str,
    client: SocketAddr,
    armed: bool,
}

impl Drop for HangupLog<'_> {
    fn drop(&mut self) {
        if self.armed {
            tracing::info!(
                route = self.route,
                version = self.version,
                client = %self.client,
                "client closed the connection before the upstream answered (not an upstream failure)"
            );
        }
    }
}
