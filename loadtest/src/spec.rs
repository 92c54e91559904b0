//! What a load run does: the target, closed or open loop, the bounds, the protocol and the request's shape, and
//! the check that keeps the load on this machine.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::uri::{PathAndQuery, Scheme};
use http::{HeaderMap, HeaderName, Method, Uri};

use crate::error::LoadError;

/// Where requests go: an `http://` URL, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host as written, without brackets for IPv6.
    host: String,
    /// Port, 80 when the URL has none.
    port: u16,
    /// `host:port` as written in the URL, for `Host` and the h2 `:authority`.
    authority: String,
    /// Path and query, `/` when the URL has none.
    path: PathAndQuery,
}

impl Target {
    /// Parse an `http://host[:port][/path]` URL. `https` is not supported: sluice's benchmarks are plaintext.
    pub fn parse(url: &str) -> Result<Self, LoadError> {
        let invalid = |reason: &str| LoadError::InvalidTarget {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|_| invalid("not a URL; write e.g. http://127.0.0.1:8080/"))?;
        match uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTP => {}
            Some(_) => return Err(invalid("only http:// is supported (h2 means h2c with prior knowledge)")),
            None => return Err(invalid("needs a scheme and a host, e.g. http://127.0.0.1:8080/")),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("needs a host, e.g. http://127.0.0.1:8080/"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("user information in the URL is not supported"));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        Ok(Self {
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_owned(),
            path: uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        })
    }

    /// The target `http://{addr}{path}`; `path` must start with `/`.
    pub fn from_addr(addr: SocketAddr, path: &str) -> Result<Self, LoadError> {
        Self::parse(&format!("http://{addr}{path}"))
    }

    /// Host as written (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Port (80 by default).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` as written in the URL.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Path and query sent in each request.
    pub fn path(&self) -> &PathAndQuery {
        &self.path
    }

    /// Refuse a host that is not literally on this machine, unless `allow_remote`. Names other than `localhost`
    /// are refused too; addresses they resolve to are checked again before connecting.
    pub fn check_local(&self, allow_remote: bool) -> Result<(), LoadError> {
        if allow_remote || is_local_host(&self.host) {
            Ok(())
        } else {
            Err(LoadError::Remote {
                host: self.host.clone(),
            })
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path)
    }
}

/// Whether `host` (an IP literal, IPv6 with or without brackets, or a name) is this machine: `localhost`,
/// 127.0.0.0/8, `::1`, or an IPv4-mapped loopback address.
pub fn is_local_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.trim_end_matches('.').eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(is_local_ip)
}

/// Whether a resolved address is a loopback address.
pub(crate) fn is_local_ip(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Each connection sends its next request as soon as the previous response has ended.
    Closed,
    /// Requests at fixed intended send times, `rate` per second spread evenly; latency counts from the intended
    /// time, so a stall delays (and is charged to) every request that should have been sent during it.
    Open {
        /// Requests per second; must be positive and finite.
        rate: f64,
    },
}

/// The HTTP version spoken on every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive.
    Http1,
    /// HTTP/2 over cleartext with prior knowledge (h2c). One request is in flight per connection, as with
    /// HTTP/1.1, so the concurrency is the connection count.
    H2,
}

/// Everything a load run needs. Start from [`LoadSpec::new`] and change fields.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Where requests go.
    pub target: Target,
    /// Closed or open loop.
    pub mode: Mode,
    /// Connections opened (closed loop: each sends back to back; open loop: the pool sends draw from).
    pub connections: usize,
    /// Stop starting requests after this long.
    pub duration: Option<Duration>,
    /// Stop after this many requests. With neither bound the run goes on until [`crate::LiveStats::stop`].
    pub requests: Option<u64>,
    /// HTTP/1.1 or h2c.
    pub protocol: Protocol,
    /// Request method.
    pub method: Method,
    /// Extra request headers; a `host` here replaces the one taken from the target.
    pub headers: HeaderMap,
    /// Bytes of body sent with each request (0 sends none).
    pub body_size: usize,
    /// Response header whose values are counted (e.g. `x-upstream`, the version that answered).
    pub tally_header: Option<HeaderName>,
    /// Longest wait for one response, from sending to the end of its body; past it the request counts as a
    /// `timeout` error and its connection is replaced.
    pub timeout: Duration,
    /// Allow a target that is not on this machine.
    pub allow_remote: bool,
}

impl LoadSpec {
    /// Closed loop on 50 HTTP/1.1 connections, `GET`, no bound, tally by `x-upstream`, 10 s timeout.
    pub fn new(target: Target) -> Self {
        Self {
            target,
            mode: Mode::Closed,
            connections: 50,
            duration: None,
            requests: None,
            protocol: Protocol::Http1,
            method: Method::GET,
            headers: HeaderMap::new(),
            body_size: 0,
            tally_header: Some(HeaderName::from_static("x-upstream")),
            timeout: Duration::from_secs(10),
            allow_remote: false,
        }
    }

    /// Check the numbers and the target before anything is sent.
    pub fn validate(&self) -> Result<(), LoadError> {
        if self.connections == 0 {
            return Err(LoadError::InvalidSpec("connections must be at least 1".into()));
        }
        if let Mode::Open { rate } = self.mode
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(LoadError::InvalidSpec(format!(
                "rate must be a positive number of requests per second, not {rate}"
            )));
        }
        if self.requests == Some(0) {
            return Err(LoadError::InvalidSpec("requests must be at least 1".into()));
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            return Err(LoadError::InvalidSpec("duration must be longer than 0".into()));
        }
        if self.timeout.is_zero() {
            return Err(LoadError::InvalidSpec("timeout must be longer than 0".into()));
        }
        self.target.check_local(self.allow_remote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_local() {
        for host in [
            "127.0.0.1",
            "127.1.2.3",
            "127.255.255.254",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST.",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_local_host(host), "{host} should be local");
        }
    }

    #[test]
    fn other_hosts_are_remote() {
        for host in [
            "128.0.0.1",
            "10.0.0.1",
            "192.168.1.1",
            "0.0.0.0",
            "::",
            "::2",
            "example.com",
            "localhost.example.com",
            "126.255.255.255",
        ] {
            assert!(!is_local_host(host), "{host} should be remote");
        }
    }

    #[test]
    fn remote_target_is_refused_unless_allowed() {
        let target = Target::parse("http://example.com:8080/x").unwrap();
        let error = target.check_local(false).unwrap_err();
        assert!(matches!(error, LoadError::Remote { .. }));
        assert!(error.to_string().contains("--allow-remote"), "{error}");
        assert!(target.check_local(true).is_ok());

        let spec = LoadSpec::new(Target::parse("http://10.1.2.3/").unwrap());
        assert!(matches!(spec.validate(), Err(LoadError::Remote { .. })));
        let spec = LoadSpec::new(Target::parse("http://[::1]:9000/").unwrap());
        assert!(spec.validate().is_ok());
    }

    #[test]
    fn target_parts() {
        let target = Target::parse("http://[::1]:9000/a?b=c").unwrap();
        assert_eq!(target.host(), "::1");
        assert_eq!(target.port(), 9000);
        assert_eq!(target.authority(), "[::1]:9000");
        assert_eq!(target.path().as_str(), "/a?b=c");
        assert_eq!(target.to_string(), "http://[::1]:9000/a?b=c");

        let target = Target::parse("http://localhost").unwrap();
        assert_eq!(target.port(), 80);
        assert_eq!(target.path().as_str(), "/");
    }

    #[test]
    fn bad_targets_say_why() {
        for url in ["https://127.0.0.1/", "127.0.0.1:80", "/path", "http://u@127.0.0.1/"] {
            let error = Target::parse(url).unwrap_err();
            assert!(matches!(error, LoadError::InvalidTarget { .. }), "{url}: {error}");
        }
    }

    #[test]
    fn spec_numbers_are_checked() {
        let target = Target::parse("http://127.0.0.1:1/").unwrap();
        let mut spec = LoadSpec::new(target);
        assert!(spec.validate().is_ok());
        spec.connections = 0;
        assert!(spec.validate().is_err());
        spec.connections = 1;
        spec.mode = Mode::Open { rate: 0.0 };
        assert!(spec.validate().is_err());
        spec.mode = Mode::Open { rate: f64::NAN };
        assert!(spec.validate().is_err());
        spec.mode = Mode::Open { rate: 10.0 };
        spec.requests = Some(0);
        assert!(spec.validate().is_err());
    }
}
