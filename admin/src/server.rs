//! The admin listener: one task per connection, graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use sluice_config::Store;
use sluice_proxy::Table;
use sluice_proxy::tls::CertificateReloader;
use tokio::net::TcpListener;

use crate::auth::Token;
use crate::controller::Controller;
use crate::error::ApiError;
use crate::router;

/// How long a client may take to send a request's headers, which also bounds keep-alive idle time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// On shutdown, how long in-flight admin calls may take to finish.
const DRAIN: Duration = Duration::from_secs(10);

/// What the admin API serves: the live store, the token changes need, and the promotion controller that rollout
/// commands go to.
///
/// Reads (`GET /healthz`, `/metrics`, `/api/v1/state`, `/api/v1/events`, `/api/v1/routes/{route}/stats`,
/// `/api/v1/routes/{route}/rollout`) are open to anyone who can reach the listener: they show weights, traffic, server addresses and file paths, never the
/// token. Changes (`PUT`, `POST`) need
/// `Authorization: Bearer <token>` when a token is set; without one (allowed by the config only on a loopback
/// listener) they are open too.
#[derive(Debug)]
pub struct AdminState {
    store: Arc<Store<Table>>,
    token: Option<Token>,
    controller: Option<Arc<Controller>>,
    tls: Option<CertificateReloader>,
}

impl AdminState {
    /// Serves `store`; changes need `token` when it is `Some` (an empty token matches no request: use
    /// [`load_token`](crate::load_token), which refuses one).
    pub fn new(store: Arc<Store<Table>>, token: Option<String>) -> AdminState {
        AdminState {
            store,
            token: token.as_deref().map(Token::new),
            controller: None,
            tls: None,
        }
    }

    /// Sends rollout commands (`POST /api/v1/routes/{route}/rollout/...`) to `controller`; without one they answer
    /// 503.
    #[must_use]
    pub fn with_controller(mut self, controller: Arc<Controller>) -> AdminState {
        self.controller = Some(controller);
        self
    }

    /// Shows the certificates in `GET /api/v1/state` and re-reads them on `POST /api/v1/reload`.
    #[must_use]
    pub fn with_tls(mut self, reloader: CertificateReloader) -> AdminState {
        self.tls = Some(reloader);
        self
    }

    pub(crate) fn tls(&self) -> Option<&CertificateReloader> {
        self.tls.as_ref()
    }

    pub(crate) fn controller(&self) -> Option<&Arc<Controller>> {
        self.controller.as_ref()
    }

    pub(crate) fn store(&self) -> &Arc<Store<Table>> {
        &self.store
    }

    /// Whether a change may go ahead.
    pub(crate) fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match &self.token {
            Some(token) => token.check(headers),
            None => Ok(()),
        }
    }
}

/// Serves the admin API on `listener` until `shutdown` resolves, then stops accepting and gives in-flight calls a
/// few seconds to finish.
pub async fn serve(listener: TcpListener, admin: Arc<AdminState>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Usually EMFILE: back off instead of spinning.
                tracing::warn!("admin api: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let admin = Arc::clone(&admin);
        let service = service_fn(move |req| {
            let admin = Arc::clone(&admin);
            async move { Ok::<_, Infallible>(router::handle(admin, req, peer).await) }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!(client = %peer, "admin connection ended with an error: {err}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("admin api: calls still running after {DRAIN:?}; closing them");
    }
}
