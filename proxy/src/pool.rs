//! An upstream group (one version's servers) and its one pooled keep-alive client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::uri::Authority;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use sluice_config::{ServerAddr, Timeouts, Upstream};

/// The client type shared by every request to one upstream group.
pub(crate) type UpstreamClient = Client<HttpConnector, Incoming>;

/// One upstream server.
#[derive(Debug)]
pub(crate) struct Server {
    /// As configured, for logs and errors.
    pub(crate) addr: ServerAddr,
    /// Pre-parsed so building the upstream URI per request is a reference-count bump.
    pub(crate) authority: Authority,
}

/// The servers of one upstream group with their connection pool.
#[derive(Debug)]
pub(crate) struct Pool {
    pub(crate) name: Arc<str>,
    pub(crate) servers: Box<[Server]>,
    pub(crate) client: UpstreamClient,
    next: AtomicUsize,
    /// What the pool was built from: a new table reuses the pool (and its open connections) when these match.
    spec: (Upstream, Duration, Duration),
}

impl Pool {
    /// A pool for `upstream`, or `None` when a server address cannot be an HTTP authority.
    pub(crate) fn new(upstream: &Upstream, timeouts: &Timeouts) -> Result<Self, String> {
        let servers = upstream
            .servers
            .iter()
            .map(|addr| {
                let authority = Authority::try_from(addr.to_string().as_str())
                    .map_err(|e| format!("upstream `{}` server `{addr}`: {e}", upstream.name))?;
                Ok(Server {
                    addr: addr.clone(),
                    authority,
                })
            })
            .collect::<Result<Box<[Server]>, String>>()?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeouts.connect));
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(timeouts.idle)
            .build(connector);
        Ok(Pool {
            name: Arc::from(upstream.name.as_str()),
            servers,
            client,
            next: AtomicUsize::new(0),
            spec: (upstream.clone(), timeouts.connect, timeouts.idle),
        })
    }

    /// Whether this pool serves exactly what `upstream` and `timeouts` describe, so it can be carried over.
    pub(crate) fn same_as(&self, upstream: &Upstream, timeouts: &Timeouts) -> bool {
        self.spec.0 == *upstream && self.spec.1 == timeouts.connect && self.spec.2 == timeouts.idle
    }

    /// The next of the `active` servers, round robin; `None` when none is active.
    pub(crate) fn pick(&self, active: &[usize]) -> Option<&Server> {
        if active.is_empty() {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Some(&self.servers[active[n % active.len()]])
    }
}
