//! Accepting client connections and serving them until shutdown, then draining.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::body::{RequestBody, complete_headers};
use crate::edge::proxy_protocol::{Rewind, read_header};
use crate::forward::{ClientInfo, Proxy};
use crate::h1::server::{self, Ended, Settings};
use crate::tls::redirect::{HttpsPort, https_port};

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

/// A bound socket and what its connections speak: plain HTTP, or TLS first.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl Listener {
    /// HTTP/1.1 and h2c (prior knowledge) in the clear.
    pub fn plain(tcp: TcpListener) -> Listener {
        Listener { tcp, tls: None }
    }

    /// TLS with `config` (see [`Certificates::server_config`](crate::tls::Certificates::server_config)), then
    /// HTTP/1.1 or HTTP/2 as ALPN agreed.
    pub fn tls(tcp: TcpListener, config: Arc<ServerConfig>) -> Listener {
        Listener {
            tcp,
            tls: Some(TlsAcceptor::from(config)),
        }
    }

    /// The address the socket is bound to (the port the OS picked for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

impl From<TcpListener> for Listener {
    fn from(tcp: TcpListener) -> Listener {
        Listener::plain(tcp)
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("tcp", &self.tcp)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Serves `listeners` until `shutdown` resolves, then stops accepting and waits up to `drain` for in-flight
/// requests to finish, on plain and TLS connections alike.
pub async fn serve<L: Into<Listener>>(
    listeners: Vec<L>,
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
    let fast = Settings {
        head_timeout: limits.header_timeout.min(idle),
        max_head: limits.max_header_bytes.max(8192),
    };
    let listeners: Vec<Listener> = listeners.into_iter().map(Into::into).collect();
    let bound_tls: Vec<SocketAddr> = listeners
        .iter()
        .filter(|l| l.tls.is_some())
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let https_port = https_port(&bound_tls);
    let (conn_tx, mut conn_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut accept_tasks = Vec::new();
    for Listener { tcp, tls } in listeners {
        let conn_tx = conn_tx.clone();
        let mut stop = stop_rx.clone();
        accept_tasks.push(tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = tcp.accept() => accepted,
                    _ = stop.changed() => break,
                };
                match accepted {
                    Ok((stream, addr)) => {
                        if conn_tx.send((stream, addr, tls.clone())).is_err() {
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
                let Some((mut stream, addr, tls)) = conn else { break };
                let _ = stream.set_nodelay(true);
                let proxy = Arc::clone(&proxy);
                let builder = Arc::clone(&builder);
                // Taken before the task starts, so the drain also waits for connections still in their handshake.
                let watcher = graceful.watcher();
                let header_timeout = limits.header_timeout;
                let stop = stop_rx.clone();
                if !proxy_protocol && tls.is_none() {
                    // The common case gets a task of its own shape: the general one below has room for the PROXY
                    // header and the TLS handshake, which a plain connection would carry for its whole life.
                    let client = ClientInfo::new(addr, "http");
                    let stream = Rewind::new(Vec::new(), stream);
                    tokio::spawn(serve_client(builder, stream, proxy, client, https_port, watcher, (fast, stop)));
                    continue;
                }
                let task = async move {
                    // Behind a PROXY-protocol balancer the header names the real client; it must come first, before
                    // any TLS.
                    let (source, rest) = if proxy_protocol {
                        // Boxed: the header's buffer would otherwise stay in the task for the connection's life.
                        match Box::pin(read_header(&mut stream, header_timeout)).await {
                            Ok((source, rest)) => (source.unwrap_or(addr), rest),
                            Err(err) => {
                                tracing::info!(peer = %addr, "closing: no valid PROXY protocol header: {err}");
                                return;
                            }
                        }
                    } else {
                        (addr, Vec::new())
                    };
                    let stream = Rewind::new(rest, stream);
                    let Some(acceptor) = tls else {
                        let client = ClientInfo::new(source, "http");
                        return serve_client(builder, stream, proxy, client, https_port, watcher, (fast, stop)).await;
                    };
                    // A client that connects and says nothing must not hold the task: the handshake gets the same
                    // patience as a request head.
                    // Boxed, as is all that follows: a TLS session is kilobytes, and inline it would make every plain
                    // connection's task that large too.
                    let stream = match Box::pin(tokio::time::timeout(header_timeout, acceptor.accept(stream))).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(err)) => {
                            tracing::debug!(client = %source, "TLS handshake failed: {err}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(client = %source, timeout = ?header_timeout, "TLS handshake timed out");
                            return;
                        }
                    };
                    let client = ClientInfo::new(source, "https");
                    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                        Box::pin(serve_connection(&builder, TokioIo::new(stream), proxy, client, None, watcher)).await;
                    } else {
                        Box::pin(serve_client(builder, stream, proxy, client, None, watcher, (fast, stop))).await;
                    }
                };
                tokio::spawn(task);
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
        upgraded = proxy.open_tunnels(),
        "stopped accepting; draining in-flight requests and upgraded connections"
    );
    let open = graceful.count() + proxy.open_tunnels();
    // Upgraded connections (WebSockets) left hyper's watch when they switched protocols; they get the same
    // deadline as requests, and whatever is still open when it passes is closed with the runtime.
    let drained = async {
        graceful.shutdown().await;
        proxy.tunnels_closed().await;
    };
    match tokio::time::timeout(drain, drained).await {
        Ok(()) => Drain::Complete,
        Err(_) => Drain::TimedOut { open },
    }
}

/// Serves an HTTP/1.1 connection on sluice's fast path, and with hyper from the first request that path leaves to
/// it; `watcher` keeps the drain waiting until the connection is done either way.
async fn serve_client<I>(
    builder: Arc<auto::Builder<TokioExecutor>>,
    io: I,
    proxy: Arc<Proxy>,
    client: ClientInfo,
    https_port: Option<HttpsPort>,
    watcher: Watcher,
    (settings, stop): (Settings, watch::Receiver<bool>),
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match server::serve(io, &proxy, &client, https_port, settings, stop).await {
        Ended::Closed => drop(watcher),
        Ended::HandOver { io, buffered } => {
            let io = TokioIo::new(Rewind::new(buffered.to_vec(), io));
            // Boxed: hyper's connection state is kilobytes, and inline it would make every connection's task that
            // large, fast path or not.
            Box::pin(serve_connection(&builder, io, proxy, client, https_port, watcher)).await;
        }
    }
}

/// Serves HTTP on one accepted (and, for TLS, handshaken) connection until it closes or the drain ends it.
/// `https_port` goes on each request for `redirect_http_to_https` routes (plain connections only).
async fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: TokioIo<I>,
    proxy: Arc<Proxy>,
    client: ClientInfo,
    https_port: Option<HttpsPort>,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let source = client.addr;
    let client = Arc::new(client);
    let service = service_fn(move |mut req: Request<Incoming>| {
        if let Some(port) = https_port {
            req.extensions_mut().insert(port);
        }
        let proxy = Arc::clone(&proxy);
        let client = Arc::clone(&client);
        // Boxed: hyper keeps a slot the size of this future in every connection for as long as it is open, and
        // moves the future into it per request; a request's state is kilobytes, so an idle keep-alive connection
        // would hold that much for nothing, and every request would copy it.
        Box::pin(async move {
            let mut response = proxy.handle(req.map(RequestBody::client), &client).await;
            // hyper writes only the map.
            complete_headers(&mut response);
            Ok::<_, Infallible>(response)
        })
    });
    // With upgrades: a WebSocket handshake hands the raw connection to the tunnel once it is answered 101.
    let conn = builder.serve_connection_with_upgrades(io, service).into_owned();
    if let Err(err) = watcher.watch(conn).await {
        tracing::debug!(client = %source, "connection ended with an error: {err}");
    }
}
