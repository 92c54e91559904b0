//! Accepting client connections and serving them until shutdown, then draining.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::edge::proxy_protocol::{Rewind, read_header};
use crate::forward::{ClientInfo, Proxy};

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Every connection finished its in-flight requests and closed.
    Complete,
    /// The drain timeout passed with connections still open; they were closed.
    TimedOut {
        /// Connections still open when the timeout passed.
        open: usize,
    },
}

/// Serves `listeners` until `shutdown` resolves, then stops accepting and waits up to `drain` for in-flight
/// requests to finish.
pub async fn serve(
    listeners: Vec<TcpListener>,
    proxy: Arc<Proxy>,
    idle: Duration,
    drain: Duration,
    shutdown: impl Future<Output = ()>,
) -> Drain {
    let graceful = GracefulShutdown::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let limits = proxy.table().config().limits.clone();
    let proxy_protocol = proxy.table().config().listen.proxy_protocol;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper starts the header-read timer whenever an HTTP/1 connection waits for a request head, so it cuts off
    // slowloris clients and also bounds keep-alive idle time: use the shorter of the two settings.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout.min(idle))
        // hyper answers 431 when a request head does not fit; it needs at least 8 KiB of buffer.
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    let (conn_tx, mut conn_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut accept_tasks = Vec::new();
    for listener in listeners {
        let conn_tx = conn_tx.clone();
        let mut stop = stop_rx.clone();
        accept_tasks.push(tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = stop.changed() => break,
                };
                match accepted {
                    Ok((stream, addr)) => {
                        if conn_tx.send((stream, addr)).is_err() {
                            break;
                        }
                    }
                    Err(err) => {
                        // Usually EMFILE: back off instead of spinning, as hyper-util's graceful example does.
                        tracing::warn!("accept failed: {err}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }
    drop(conn_tx);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            conn = conn_rx.recv() => {
                let Some((mut stream, addr)) = conn else { break };
                let _ = stream.set_nodelay(true);
                let proxy = Arc::clone(&proxy);
                let builder = Arc::clone(&builder);
                let watcher = graceful.watcher();
                let header_timeout = limits.header_timeout;
                tokio::spawn(async move {
                    // Behind a PROXY-protocol balancer the header names the real client; it must come first.
                    let (source, rest) = if proxy_protocol {
                        match read_header(&mut stream, header_timeout).await {
                            Ok((source, rest)) => (source.unwrap_or(addr), rest),
                            Err(err) => {
                                tracing::info!(peer = %addr, "closing: no valid PROXY protocol header: {err}");
                                return;
                            }
                        }
                    } else {
                        (addr, Vec::new())
                    };
                    let client = ClientInfo::new(source, "http");
                    let service = service_fn(move |req| {
                        let proxy = Arc::clone(&proxy);
                        let client = client.clone();
                        async move { Ok::<_, Infallible>(proxy.handle(req, &client).await) }
                    });
                    let io = TokioIo::new(Rewind::new(rest, stream));
                    // With upgrades: a WebSocket handshake hands the raw connection to the tunnel once it is answered 101.
                    let conn = builder.serve_connection_with_upgrades(io, service).into_owned();
                    if let Err(err) = watcher.watch(conn).await {
                        tracing::debug!(client = %source, "connection ended with an error: {err}");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    let _ = stop_tx.send(true);
    for task in accept_tasks {
        let _ = task.await;
    }
    tracing::info!(
        connections = graceful.count(),
        "stopped accepting; draining in-flight requests"
    );
    let open = graceful.count();
    match tokio::time::timeout(drain, graceful.shutdown()).await {
        Ok(()) => Drain::Complete,
        Err(_) => Drain::TimedOut { open },
    }
}
