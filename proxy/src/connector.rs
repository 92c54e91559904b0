//! Opening connections to upstream servers: TCP, then TLS when the upstream asks for it (SNI from the server's
//! name, ALPN offering the configured HTTP version).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{RootCertStore, crypto::aws_lc_rs};
use sluice_config::{UpstreamProtocol, UpstreamTls};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Connects to an upstream's servers, with TLS when configured.
#[derive(Clone)]
pub(crate) struct UpstreamConnector {
    http: HttpConnector,
    tls: Option<Tls>,
}

#[derive(Clone)]
struct Tls {
    connector: TlsConnector,
    /// Overrides the name taken from each server's address.
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for UpstreamConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConnector")
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl UpstreamConnector {
    /// A connector over `http` (TCP settings already applied); an error names a CA file that cannot be used.
    pub(crate) fn new(
        mut http: HttpConnector,
        protocol: UpstreamProtocol,
        tls: Option<&UpstreamTls>,
    ) -> Result<Self, String> {
        let Some(settings) = tls else {
            return Ok(UpstreamConnector { http, tls: None });
        };
        // The connector is handed `https://` URIs, which a plain HttpConnector refuses by default.
        http.enforce_http(false);
        let roots = match &settings.ca {
            Some(path) => Arc::new(roots_from_file(path)?),
            None => system_roots()?,
        };
        let provider = Arc::new(aws_lc_rs::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS client setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = if protocol.is_h2() {
            vec![b"h2".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        let server_name = settings
            .server_name
            .as_deref()
            .map(|name| ServerName::try_from(name.to_owned()).map_err(|e| format!("tls.server_name `{name}`: {e}")))
            .transpose()?;
        Ok(UpstreamConnector {
            http,
            tls: Some(Tls {
                connector: TlsConnector::from(Arc::new(config)),
                server_name,
            }),
        })
    }

    /// The scheme requests to this upstream carry (the pool keys connections by it).
    pub(crate) fn scheme(&self) -> http::uri::Scheme {
        if self.tls.is_some() {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        }
    }
}

fn roots_from_file(path: &std::path::Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| format!("tls.ca `{}`: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("tls.ca `{}`: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("tls.ca `{}`: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("tls.ca `{}`: no PEM certificates in the file", path.display()));
    }
    Ok(roots)
}

/// The operating system's trusted roots, read once per process (it means reading a directory of files).
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                return Err(format!(
                    "no trusted root certificates found on this system ({}); set `ca` in [upstreams.NAME.tls]",
                    errors.join("; ")
                ));
            }
            Ok(Arc::new(roots))
        })
        .clone()
}

impl tower_service::Service<Uri> for UpstreamConnector {
    type Response = UpstreamIo;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<UpstreamIo, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let name = match &self.tls {
            Some(Tls {
                server_name: Some(name),
                ..
            }) => Some(Ok(name.clone())),
            Some(_) => Some(name_from_uri(&uri)),
            None => None,
        };
        let tls = self.tls.as_ref().map(|tls| tls.connector.clone());
        let connecting = self.http.call(uri);
        Box::pin(async move {
            let tcp = connecting.await?;
            match (tls, name) {
                (Some(connector), Some(name)) => {
                    let stream = connector.connect(name?, tcp.into_inner()).await?;
                    Ok(UpstreamIo::Tls(Box::new(TokioIo::new(stream))))
                }
                _ => Ok(UpstreamIo::Plain(tcp)),
            }
        })
    }
}

fn name_from_uri(uri: &Uri) -> Result<ServerName<'static>, Box<dyn std::error::Error + Send + Sync>> {
    let host = uri.host().unwrap_or_default();
    // IPv6 literals come bracketed in a URI.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(ServerName::try_from(host.to_owned())?)
}

/// A connection to an upstream server: plain TCP or TLS over TCP.
#[derive(Debug)]
pub(crate) enum UpstreamIo {
    Plain(TokioIo<TcpStream>),
    // Boxed: a TLS session is over a kilobyte, and plain connections should not pay for it.
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for UpstreamIo {
    fn connected(&self) -> Connected {
        match self {
            UpstreamIo::Plain(tcp) => tcp.connected(),
            UpstreamIo::Tls(tls) => {
                let (tcp, session) = tls.inner().get_ref();
                let connected = tcp.connected();
                if session.alpn_protocol() == Some(b"h2") {
                    connected.negotiated_h2()
                } else {
                    connected
                }
            }
        }
    }
}

impl Read for UpstreamIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_read(cx, buf),
            UpstreamIo::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl Write for UpstreamIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_write(cx, buf),
            UpstreamIo::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            UpstreamIo::Tls(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamIo::Plain(io) => io.is_write_vectored(),
            UpstreamIo::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_flush(cx),
            UpstreamIo::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_shutdown(cx),
            UpstreamIo::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
}

// tokio's traits too: sluice's own HTTP/1.1 client and the WebSocket tunnel work on the inner streams directly.
impl tokio::io::AsyncRead for UpstreamIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io.inner_mut()).poll_read(cx, buf),
            UpstreamIo::Tls(io) => Pin::new(io.inner_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for UpstreamIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io.inner_mut()).poll_write(cx, buf),
            UpstreamIo::Tls(io) => Pin::new(io.inner_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io.inner_mut()).poll_write_vectored(cx, bufs),
            UpstreamIo::Tls(io) => Pin::new(io.inner_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamIo::Plain(io) => io.inner().is_write_vectored(),
            UpstreamIo::Tls(io) => io.inner().is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io.inner_mut()).poll_flush(cx),
            UpstreamIo::Tls(io) => Pin::new(io.inner_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io.inner_mut()).poll_shutdown(cx),
            UpstreamIo::Tls(io) => Pin::new(io.inner_mut()).poll_shutdown(cx),
        }
    }
}
