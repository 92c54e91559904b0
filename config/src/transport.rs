//! How sluice talks to an upstream's servers: the HTTP version and whether the connection is TLS.

use std::fmt;
use std::path::PathBuf;

/// The HTTP version spoken to an upstream's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 with keep-alive (the default); the only one that carries WebSocket upgrades.
    #[default]
    Http1,
    /// HTTP/2 over TLS, negotiated by ALPN.
    H2,
    /// HTTP/2 over cleartext TCP with prior knowledge (gRPC services inside a cluster).
    H2c,
}

impl UpstreamProtocol {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamProtocol::Http1 => "http1",
            UpstreamProtocol::H2 => "h2",
            UpstreamProtocol::H2c => "h2c",
        }
    }

    /// Whether requests to the upstream use HTTP/2.
    pub fn is_h2(self) -> bool {
        !matches!(self, UpstreamProtocol::Http1)
    }
}

impl fmt::Display for UpstreamProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// TLS to an upstream's servers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamTls {
    /// PEM file of the certificate authorities to trust instead of the system's roots (resolved against the
    /// config file's directory).
    pub ca: Option<PathBuf>,
    /// The name sent in SNI and checked against the server's certificate; by default each server's host.
    pub server_name: Option<String>,
}
