//! HTTP/1.1 upgrades (WebSocket): the handshake is proxied like any request, then the two raw connections are
//! joined in a tunnel that lives until either side closes it.
//!
//! A tunnel holds no table snapshot and no config: reloads and weight changes cannot touch it. Open tunnels are
//! counted so that a graceful shutdown can wait for them (up to the drain timeout) like in-flight requests.

use std::sync::Arc;

use http::header::{CONNECTION, HeaderValue, UPGRADE};
use http::{HeaderMap, Request, Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use prometheus::IntGauge;
use tokio::sync::watch;

use crate::body::UpstreamBody;
use crate::edge::proxy_protocol::Rewind;

/// A client's request to switch protocols, taken off the request before it is forwarded.
#[derive(Debug)]
pub(crate) struct UpgradeRequest {
    /// Resolves to the client's raw connection once the 101 response has been written.
    on_upgrade: OnUpgrade,
    /// The `Upgrade` header as the client sent it (`websocket`).
    protocol: HeaderValue,
}

impl UpgradeRequest {
    /// The upgrade the client asks for: an HTTP/1.1 request with `Upgrade` and `Connection: upgrade`.
    pub(crate) fn take<B>(req: &mut Request<B>) -> Option<UpgradeRequest> {
        // HTTP/2 forbids `Connection`; its WebSocket variant (extended CONNECT) is not supported.
        if req.version() != Version::HTTP_11 || !connection_has_upgrade(req.headers()) {
            return None;
        }
        let protocol = req.headers().get(UPGRADE)?.clone();
        Some(UpgradeRequest {
            on_upgrade: hyper::upgrade::on(req),
            protocol,
        })
    }

    /// Puts the upgrade back on the upstream request after hop-by-hop headers were stripped.
    pub(crate) fn restore_headers(&self, headers: &mut HeaderMap) {
        headers.insert(UPGRADE, self.protocol.clone());
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

fn connection_has_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// The open tunnels of a proxy.
#[derive(Debug, Clone)]
pub(crate) struct Tunnels {
    open: Arc<watch::Sender<usize>>,
    gauge: IntGauge,
}

impl Tunnels {
    /// No tunnels yet; `gauge` shows how many are open.
    pub(crate) fn new(gauge: IntGauge) -> Self {
        Tunnels {
            open: Arc::new(watch::Sender::new(0)),
            gauge,
        }
    }

    /// How many tunnels are open now.
    pub(crate) fn count(&self) -> usize {
        *self.open.borrow()
    }

    /// Resolves once no tunnel is open.
    pub(crate) async fn closed(&self) {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|n| *n == 0).await;
    }

    /// The upstream answered 101: keep its `Upgrade`, and once the client's side has been handed over too, copy
    /// bytes both ways until either closes. Returns the response to send the client, its body empty.
    pub(crate) fn open(
        &self,
        request: UpgradeRequest,
        mut upstream: Response<UpstreamBody>,
        label: Arc<str>,
    ) -> Response<UpstreamBody> {
        debug_assert_eq!(upstream.status(), StatusCode::SWITCHING_PROTOCOLS);
        let conn = match upstream.body_mut() {
            UpstreamBody::H1(body) => body.take_conn(),
            // Refused before sending: HTTP/2 upstreams get no upgrades.
            UpstreamBody::H2(_) => None,
        };
        let headers = upstream.headers_mut();
        if !headers.contains_key(UPGRADE) {
            headers.insert(UPGRADE, request.protocol.clone());
        }
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        let guard = TunnelGuard::new(self);
        tokio::spawn(async move {
            let _guard = guard;
            let Some(conn) = conn else {
                tracing::info!(upstream = &*label, "upgrade did not complete: no upstream connection");
                return;
            };
            let client = match request.on_upgrade.await {
                Ok(client) => client,
                Err(err) => {
                    tracing::info!(upstream = &*label, "upgrade did not complete: {err}");
                    return;
                }
            };
            // Whatever the server sent right behind its 101 was read with the head; it goes first.
            let (io, early) = conn.into_parts();
            let mut upstream = Rewind::new(early.to_vec(), io);
            let mut client = TokioIo::new(client);
            match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                Ok((sent, received)) => {
                    tracing::debug!(upstream = &*label, sent, received, "upgraded connection closed");
                }
                Err(err) => tracing::debug!(upstream = &*label, "upgraded connection ended: {err}"),
            }
        });
        upstream
    }
}

/// Counts a tunnel as open for exactly as long as its task lives, panics included.
struct TunnelGuard {
    tunnels: Tunnels,
}

impl TunnelGuard {
    fn new(tunnels: &Tunnels) -> Self {
        tunnels.open.send_modify(|n| *n += 1);
        tunnels.gauge.inc();
        TunnelGuard {
            tunnels: tunnels.clone(),
        }
    }
}

impl Drop for TunnelGuard {
    fn drop(&mut self) {
        self.tunnels.open.send_modify(|n| *n -= 1);
        self.tunnels.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: Version, connection: &str, upgrade: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().version(version).header(CONNECTION, connection);
        if let Some(upgrade) = upgrade {
            builder = builder.header(UPGRADE, upgrade);
        }
        builder.body(()).expect("request")
    }

    #[test]
    fn websocket_handshake_is_an_upgrade() {
        let mut req = request(Version::HTTP_11, "keep-alive, Upgrade", Some("websocket"));
        let upgrade = UpgradeRequest::take(&mut req).expect("upgrade");
        let mut headers = HeaderMap::new();
        upgrade.restore_headers(&mut headers);
        assert_eq!(headers[UPGRADE], "websocket");
        assert_eq!(headers[CONNECTION], "upgrade");
    }

    #[test]
    fn no_upgrade_without_both_headers_or_on_http2() {
        assert!(UpgradeRequest::take(&mut request(Version::HTTP_11, "keep-alive", Some("websocket"))).is_none());
        assert!(UpgradeRequest::take(&mut request(Version::HTTP_11, "upgrade", None)).is_none());
        assert!(UpgradeRequest::take(&mut request(Version::HTTP_2, "upgrade", Some("websocket"))).is_none());
    }

    #[tokio::test]
    async fn closed_waits_for_the_last_tunnel() {
        let tunnels = Tunnels::new(IntGauge::new("t", "t").expect("gauge"));
        let guard = TunnelGuard::new(&tunnels);
        assert_eq!(tunnels.count(), 1);
        let waiting = tokio::spawn({
            let tunnels = tunnels.clone();
            async move { tunnels.closed().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(guard);
        waiting.await.expect("closed resolves");
        assert_eq!(tunnels.count(), 0);
    }
}
