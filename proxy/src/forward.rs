//! The request path: one table snapshot, route, version, server, then forward with headers fixed up.

use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{HOST, HeaderValue, SET_COOKIE};
use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version as HttpVersion};
use hyper::body::Incoming;
use sluice_config::{Config, Store};

use crate::body::ProxyBody;
use crate::error::{ErrorSource, ProxyError};
use crate::headers::{add_forwarded, strip_hop_by_hop};
use crate::host::request_host;
use crate::pool::Server;
use crate::table::{RouteEntry, Table};

/// The proxy: serves requests from the live table snapshot, which only the store's write path replaces.
#[derive(Debug)]
pub struct Proxy {
    store: Arc<Store<Table>>,
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
    /// A proxy over a store (its write path is how the table changes).
    pub fn new(store: Arc<Store<Table>>) -> Arc<Proxy> {
        Arc::new(Proxy { store })
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
    pub(crate) async fn handle(&self, req: Request<Incoming>, client: &ClientInfo) -> Response<ProxyBody> {
        // One snapshot for the whole request: a reload mid-request cannot mix two tables.
        let table = self.store.load();
        let host = request_host(&req);
        let Some(route) = table.route_for(host.as_deref(), req.uri().path()) else {
            tracing::debug!(host = ?host, path = req.uri().path(), "no route");
            return error_response(&ProxyError::NoRoute);
        };
        drop(host);
        let Some((index, cookie)) = route.choose(&req, client.proto == "https") else {
            let err = ProxyError::NoVersion {
                route: route.name().to_owned(),
            };
            tracing::warn!(route = route.name(), "{err}");
            return error_response(&err);
        };
        let mut response = self.forward_to(&table, route, index, req, client).await;
        // The client was assigned a version: tell it so whatever the upstream answered.
        if let Some(cookie) = cookie {
            response.headers_mut().append(SET_COOKIE, cookie);
        }
        response
    }

    /// Forwards to a server of version `index` of `route`; failures become responses.
    async fn forward_to(
        &self,
        table: &Table,
        route: &RouteEntry,
        index: usize,
        req: Request<Incoming>,
        client: &ClientInfo,
    ) -> Response<ProxyBody> {
        let version = &route.versions[index];
        let pool = &version.pool;
        let Some(server) = pool.pick(&version.active) else {
            let err = ProxyError::NoServer {
                upstream: pool.name.to_string(),
            };
            tracing::warn!(route = route.name(), "{err}");
            return error_response(&err);
        };
        match forward(table, route, server, pool, req, client).await {
            Ok(response) => response,
            Err(err) => {
                match err.source() {
                    ErrorSource::Upstream => tracing::warn!(
                        route = route.name(), version = &*pool.name, upstream = %server.addr, "upstream failure: {err}"
                    ),
                    _ => tracing::info!(
                        route = route.name(), version = &*pool.name, client = %client.addr, "client failure: {err}"
                    ),
                }
                error_response(&err)
            }
        }
    }
}

async fn forward(
    table: &Table,
    route: &RouteEntry,
    server: &Server,
    pool: &crate::pool::Pool,
    req: Request<Incoming>,
    client: &ClientInfo,
) -> Result<Response<ProxyBody>, ProxyError> {
    let (mut parts, body) = req.into_parts();
    // `Host` stays as the client sent it; HTTP/2 clients send `:authority` instead, which becomes `Host`.
    let host = match parts.headers.get(HOST) {
        Some(h) => Some(h.clone()),
        None => parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    };
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(server.authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| ProxyError::BadRequest { reason: e.to_string() })?;
    strip_hop_by_hop(&mut parts.headers);
    add_forwarded(&mut parts.headers, &client.ip_header, client.proto, host.clone());
    if let Some(host) = host {
        parts.headers.insert(HOST, host);
    }
    // Upstreams speak HTTP/1.1 whatever the client spoke.
    parts.version = HttpVersion::HTTP_11;

    // Tells a client hang-up (hyper drops this future) apart from an upstream failure in the logs.
    let mut hangup = HangupLog {
        route: route.name(),
        version: &pool.name,
        client: client.addr,
        armed: true,
    };
    let timeout = table.timeouts().response_header;
    let result = tokio::time::timeout(timeout, pool.client.request(Request::from_parts(parts, body))).await;
    hangup.armed = false;
    let response = match result {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => return Err(classify(&err, server)),
        Err(_) => {
            return Err(ProxyError::Timeout {
                server: server.addr.to_string(),
                timeout_ms: timeout.as_millis(),
            });
        }
    };
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, ProxyBody::Upstream(body)))
}

/// Sorts a client error into connect failures, client-body failures and everything else the upstream did.
fn classify(err: &hyper_util::client::legacy::Error, server: &Server) -> ProxyError {
    let reason = error_chain(err);
    if err.is_connect() {
        return ProxyError::Connect {
            server: server.addr.to_string(),
            reason,
        };
    }
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(hyper_err) = cause.downcast_ref::<hyper::Error>() {
            // A failing request body is the client's: hyper wraps it as a "user body" error whose cause is the
            // server-side connection's own error.
            if hyper_err.is_user() && hyper_err.source().is_some_and(|s| s.is::<hyper::Error>()) {
                return ProxyError::ClientBody { reason };
            }
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
