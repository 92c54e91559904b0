//! The validated configuration model. Built only from a file through `TryFrom`, never deserialized directly:
//! the file format (`file.rs`) may change shape, this model is what the rest of sluice relies on.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use crate::edge::{AccessLog, Cidr, HeaderRules, RequestId};
use crate::resilience::{HealthCheck, Limits, OutlierDetection, RetryPolicy};
use crate::rollout::Rollout;
use crate::sticky::{MatchRule, Sticky};
use crate::transport::{UpstreamProtocol, UpstreamTls};

/// A whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this was read from, when it came from a file.
    pub source: Option<PathBuf>,
    /// Addresses to accept client traffic on.
    pub listen: Listen,
    /// Named upstream groups (one per version: blue, green, canary…), sorted by name.
    pub upstreams: Vec<Upstream>,
    /// Routes in file order.
    pub routes: Vec<Route>,
    /// Process settings.
    pub runtime: Runtime,
    /// Timeouts, with defaults filled in.
    pub timeouts: Timeouts,
    /// The admin API, when configured.
    pub admin: Option<Admin>,
    /// What clients may send.
    pub limits: Limits,
    /// Peers whose `X-Forwarded-For` is believed; empty means none (the TCP peer is the client).
    pub trusted_proxies: Vec<Cidr>,
    /// The access log, when `[access_log]` is set; `None` means off.
    pub access_log: Option<AccessLog>,
    /// The request-id header, with its default when `[request_id]` is absent.
    pub request_id: RequestId,
    /// The certificates the `https` listeners serve; `Some` exactly when `listen.https` is not empty.
    pub tls: Option<Tls>,
}

/// The admin API listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// Address of the admin HTTP listener.
    pub listen: SocketAddr,
    /// File holding the bearer token mutating calls need; required unless `listen` is a loopback address.
    /// Resolved against the config file's directory.
    pub token_file: Option<PathBuf>,
    /// Where runtime changes are persisted; `None` means beside the config file. Resolved like `token_file`.
    pub state_file: Option<PathBuf>,
}

/// Listener addresses; at least one of `http` and `https` is not empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Plain-text listeners; each serves HTTP/1.1 and h2c with prior knowledge.
    pub http: Vec<SocketAddr>,
    /// TLS listeners; each serves HTTP/1.1 and HTTP/2 (ALPN `h2`, `http/1.1`) with the certificates of [`Tls`].
    pub https: Vec<SocketAddr>,
    /// Every listener expects a PROXY protocol (v1 or v2) header before the request (before the TLS handshake on
    /// `https` ones).
    pub proxy_protocol: bool,
}

/// `[tls]`: the certificates served on `https` listeners, chosen by SNI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// In file order, at least one; the first is the default for clients that send no or an unknown name.
    pub certificates: Vec<TlsCertificate>,
}

/// One `[[tls.certificates]]` entry: which names it serves and where its PEM files are. The files are read and
/// checked by the proxy (this crate does no cryptography).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsCertificate {
    /// Exact names and `*.suffix` wildcards, at least one; never [`HostPattern::Any`]. No name is listed by two
    /// entries.
    pub hosts: Vec<HostPattern>,
    /// The certificate chain, leaf first, resolved against the config file's directory.
    pub cert: PathBuf,
    /// The private key, resolved like `cert`.
    pub key: PathBuf,
}

/// One upstream group: the servers of one version of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Name matching `[a-z0-9_-]+`, unique.
    pub name: String,
    /// At least one server.
    pub servers: Vec<ServerAddr>,
    /// Active health checks, when `[upstreams.NAME.health]` is set.
    pub health: Option<HealthCheck>,
    /// Passive ejection of failing servers (always on, with defaults).
    pub outlier: OutlierDetection,
    /// The HTTP version spoken to the servers.
    pub protocol: UpstreamProtocol,
    /// TLS to the servers, when `tls` is set.
    pub tls: Option<UpstreamTls>,
}

/// An upstream server address: a host name or IP literal and a port. Names resolve at connect time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerAddr {
    /// Host name, IPv4 literal, or IPv6 literal without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A route: which requests it takes and how it splits them across versions.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Name matching `[a-z0-9_-]+`, unique.
    pub name: String,
    /// Host patterns; empty means any host.
    pub hosts: Vec<HostPattern>,
    /// Path prefix starting with `/`; the longest matching prefix wins.
    pub path_prefix: String,
    /// Relative weights per upstream, in file order; each names an existing upstream once.
    pub weights: Vec<Weight>,
    /// Sticky sessions, when `[routes.sticky]` is set; otherwise requests are split by weight alone.
    pub sticky: Option<Sticky>,
    /// Match rules in file order, tried before the split; the first that matches picks the version.
    pub matches: Vec<MatchRule>,
    /// The upstream that takes a request when every server of the chosen version is down, ejected or drained.
    pub fallback: Option<String>,
    /// Retries of idempotent requests that failed before any response byte.
    pub retry: RetryPolicy,
    /// Automatic rollout, when `[routes.rollout]` is set.
    pub rollout: Option<Rollout>,
    /// Share of the route's requests written to the access log, 0.0..=1.0 (0 is off); 1.0 unless set.
    pub access_log_sample: f64,
    /// Remove `path_prefix` from the path before forwarding (a `/` is put back when the rest does not start with
    /// one). Never true together with `rewrite_prefix`.
    pub strip_prefix: bool,
    /// Replace `path_prefix` by this (starts with `/`) before forwarding.
    pub rewrite_prefix: Option<String>,
    /// Header rules; empty unless `[routes.headers]` is set.
    pub headers: HeaderRules,
    /// Plain-`http` requests get a 308 to the same URL on `https` instead of being proxied.
    pub redirect_http_to_https: bool,
}

/// A host pattern of a route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `*`: any host.
    Any,
    /// An exact name, lower-cased, without port.
    Exact(String),
    /// `*.example.com`, stored as the suffix `.example.com`, lower-cased.
    Suffix(String),
}

impl HostPattern {
    /// Whether this pattern matches `host` (already lower-cased, port removed).
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(name) => name == host,
            HostPattern::Suffix(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }

    /// How specific the pattern is: exact names beat longer suffixes beat shorter ones beat `*`.
    pub fn specificity(&self) -> usize {
        match self {
            HostPattern::Any => 0,
            HostPattern::Suffix(suffix) => 1 + suffix.len(),
            HostPattern::Exact(_) => usize::MAX,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Suffix(suffix) => write!(f, "*{suffix}"),
        }
    }
}

/// The relative weight of one upstream within a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weight {
    /// Name of an existing upstream.
    pub upstream: String,
    /// Relative, non-negative.
    pub weight: u32,
}

/// Process settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Runtime {
    /// Worker threads; `None` means one per core.
    pub workers: Option<NonZeroUsize>,
}

/// Timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect to an upstream server.
    pub connect: Duration,
    /// From sending a request upstream to its response headers.
    pub response_header: Duration,
    /// How long an idle upstream keep-alive connection is kept; client connections are closed after the shorter of
    /// this and `limits.header_timeout`.
    pub idle: Duration,
    /// On shutdown, how long in-flight requests may take to finish.
    pub drain: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(2),
            response_header: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            drain: Duration::from_secs(30),
        }
    }
}
