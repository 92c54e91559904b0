//! The upstream's builder, its handle, and the accept loop serving HTTP/1.1 and h2c on one port.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::service::UpstreamService;
use crate::state::{SeenRequest, Shared};

/// How long `shutdown` lets in-flight requests finish before closing their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (for example out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Start building an upstream server called `name`; finish with [`UpstreamBuilder::spawn`].
pub fn upstream(name: impl Into<String>) -> UpstreamBuilder {
    UpstreamBuilder {
        name: name.into(),
        latency: Duration::ZERO,
        fail_rate: 0.0,
        port: 0,
    }
}

/// Settings for an upstream server before it is spawned.
#[derive(Debug, Clone)]
#[must_use = "an upstream does nothing until `spawn` is awaited"]
pub struct UpstreamBuilder {
    /// Name sent in `x-upstream` and in bodies.
    name: String,
    /// Latency added before each answer.
    latency: Duration,
    /// Share of requests answered 500.
    fail_rate: f64,
    /// Port to bind on 127.0.0.1; 0 picks a free one.
    port: u16,
}

impl UpstreamBuilder {
    /// Bind this port on 127.0.0.1 instead of a free one (to bring a stopped server back at its address).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Add `latency` before answering each request (default 0).
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Answer this share of requests with 500, clamped to `0.0..=1.0` (default 0).
    pub fn fail_rate(mut self, rate: f64) -> Self {
        self.fail_rate = rate;
        self
    }

    /// Bind `127.0.0.1:0` and start serving; fails if the name is not a valid header value or binding fails.
    pub async fn spawn(self) -> io::Result<UpstreamHandle> {
        let name_header = HeaderValue::from_str(&self.name).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "upstream name {:?} cannot be sent in a header: use visible ASCII",
                    self.name
                ),
            )
        })?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, self.port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(self.name, name_header, self.latency, self.fail_rate));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, Arc::clone(&shared), stopped));
        tracing::debug!(upstream = %shared.name, %addr, "upstream listening");
        Ok(UpstreamHandle {
            shared,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A running upstream server; dropping it aborts the server and closes every connection at once.
#[derive(Debug)]
pub struct UpstreamHandle {
    /// State shared with the connections.
    shared: Arc<Shared>,
    /// Where the server listens.
    addr: SocketAddr,
    /// Asks the accept loop to shut down gracefully.
    stop: Option<oneshot::Sender<()>>,
    /// The accept loop, which owns every connection task.
    task: Option<JoinHandle<()>>,
}

impl UpstreamHandle {
    /// The address the server listens on (`127.0.0.1` and a free port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Change the latency added before each answer; applies to requests arriving from now on.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.set_latency(latency);
    }

    /// Change the share of requests answered 500, clamped to `0.0..=1.0` (NaN counts as 0).
    pub fn set_fail_rate(&self, rate: f64) {
        self.shared.set_fail_rate(rate);
    }

    /// Make every request arriving within `duration` from now wait until `duration` has passed.
    pub fn stall(&self, duration: Duration) {
        self.shared.stall(duration);
    }

    /// Number of requests answered so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests()
    }

    /// The last request answered, if any.
    pub fn last_request(&self) -> Option<SeenRequest> {
        self.shared.last_request()
    }

    /// Stop accepting, let in-flight requests finish (at most 5 s), then close every connection.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            // The accept loop only ends early if it panicked; then there is nothing left to stop.
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            tracing::warn!(upstream = %self.shared.name, %error, "upstream task failed");
        }
    }
}

impl Drop for UpstreamHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Accept connections until told to stop, then shut down gracefully. Connection tasks live in a `JoinSet`
/// owned by this task, so aborting it closes every connection.
async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(upstream = %shared.name, %error, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                // Without it small answers can wait for delayed ACKs and distort latency tests.
                let _ = stream.set_nodelay(true);
                let service = UpstreamService::new(Arc::clone(&shared));
                let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                let name = shared.name.clone();
                connections.spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(upstream = %name, %peer, %error, "connection ended with an error");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut stop => break,
        }
    }

    drop(listener);
    tracing::debug!(upstream = %shared.name, "upstream shutting down");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::debug!(upstream = %shared.name, "grace period over, closing remaining connections");
        }
    }
    // Dropping `connections` here aborts whatever is left.
}
