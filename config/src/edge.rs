//! The validated model of the edge features an nginx user relies on: trusted proxies (real client address), the
//! access log, request ids, and per-route header rules.
//!
//! Plain data like the rest of the model: header names are lower-cased and checked, header values are parsed into
//! templates, so the data plane only fills in variables.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

/// An address block, `10.0.0.0/8`, or one address (`/32`, `/128`).
///
/// `addr` is the network address: the config refuses a block written with host bits set (`10.0.0.1/8`), since that
/// is most often a typo for `/32`. IPv4-mapped IPv6 blocks (`::ffff:10.0.0.0/104`) are stored as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address; every bit after `prefix` is zero.
    pub addr: IpAddr,
    /// The prefix length: at most 32 for IPv4, 128 for IPv6.
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in this block. An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, what a dual-stack socket
    /// reports for an IPv4 peer) counts as the IPv4 address it maps.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The access log: one line per request, written off the request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    /// How a line is written.
    pub format: LogFormat,
    /// The file lines are appended to (resolved against the config file's directory); `None` means stdout.
    pub path: Option<PathBuf>,
    /// Lines held in the channel to the writer; when it is full, further lines are dropped and counted.
    pub buffer: usize,
}

impl AccessLog {
    /// `buffer` when the file does not say.
    pub const DEFAULT_BUFFER: usize = 8192;
    /// The largest `buffer` accepted.
    pub const MAX_BUFFER: usize = 1_000_000;
}

/// The format of access-log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LogFormat {
    /// One JSON object per line with every field.
    #[default]
    Json,
    /// nginx's `combined` format, so existing log tooling keeps working.
    Combined,
}

/// Where the request id travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId {
    /// The header kept from the client (or generated), passed upstream and returned; lower-case.
    pub header: String,
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId {
            header: "x-request-id".to_owned(),
        }
    }
}

/// A route's header rules, names lower-cased, in file order. The data plane applies, per direction, `remove`, then
/// `set` (replacing any value), then `add` (appending one more value).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderRules {
    /// Request headers set before forwarding, replacing what the client sent.
    pub request_set: Vec<(String, Template)>,
    /// Request headers added before forwarding, beside what the client sent.
    pub request_add: Vec<(String, Template)>,
    /// Request headers removed before forwarding.
    pub request_remove: Vec<String>,
    /// Response headers set before answering, replacing what the upstream sent.
    pub response_set: Vec<(String, Template)>,
    /// Response headers added before answering.
    pub response_add: Vec<(String, Template)>,
    /// Response headers removed before answering.
    pub response_remove: Vec<String>,
}

impl HeaderRules {
    /// Whether there are no rules at all, so the data plane can skip them.
    pub fn is_empty(&self) -> bool {
        self.request_set.is_empty()
            && self.request_add.is_empty()
            && self.request_remove.is_empty()
            && self.response_set.is_empty()
            && self.response_add.is_empty()
            && self.response_remove.is_empty()
    }
}

/// A header value with variables: literal parts are valid header-value text (visible ASCII, spaces, tabs), adjacent
/// literals merged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Template {
    /// The parts in order; empty for an empty value.
    pub parts: Vec<TemplatePart>,
}

impl Template {
    /// The value when the template has no variables, so it can be built once.
    pub fn as_literal(&self) -> Option<&str> {
        match &self.parts[..] {
            [] => Some(""),
            [TemplatePart::Literal(text)] => Some(text),
            _ => None,
        }
    }
}

/// Written back as it would be in the file: `$$` for a literal `$`, `${name}` for variables.
impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                TemplatePart::Literal(text) => f.write_str(&text.replace('$', "$$"))?,
                TemplatePart::ClientIp => f.write_str("${client_ip}")?,
                TemplatePart::RequestId => f.write_str("${request_id}")?,
                TemplatePart::Version => f.write_str("${version}")?,
                TemplatePart::Route => f.write_str("${route}")?,
            }
        }
        Ok(())
    }
}

/// One part of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TemplatePart {
    /// Text as written.
    Literal(String),
    /// `$client_ip`: the client address (after trusted proxies and the PROXY protocol), without port.
    ClientIp,
    /// `$request_id`: the request's id.
    RequestId,
    /// `$version`: the upstream the request was sent to.
    Version,
    /// `$route`: the route's name.
    Route,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(addr: &str, prefix: u8) -> Cidr {
        Cidr {
            addr: addr.parse().expect("address"),
            prefix,
        }
    }

    #[test]
    fn contains_checks_the_prefix_bits_only() {
        let net = cidr("10.0.0.0", 8);
        assert!(net.contains("10.255.1.2".parse().expect("ip")));
        assert!(!net.contains("11.0.0.1".parse().expect("ip")));
        assert!(net.contains("::ffff:10.1.2.3".parse().expect("ip")));
        assert!(!net.contains("::1".parse().expect("ip")));
        assert!(cidr("0.0.0.0", 0).contains("203.0.113.9".parse().expect("ip")));
        let one = cidr("192.168.1.7", 32);
        assert!(one.contains("192.168.1.7".parse().expect("ip")));
        assert!(!one.contains("192.168.1.8".parse().expect("ip")));
        let v6 = cidr("2001:db8::", 32);
        assert!(v6.contains("2001:db8:1::5".parse().expect("ip")));
        assert!(!v6.contains("2001:db9::5".parse().expect("ip")));
        assert!(cidr("::", 0).contains("2001:db8::1".parse().expect("ip")));
        assert_eq!(v6.to_string(), "2001:db8::/32");
    }

    #[test]
    fn template_displays_as_written() {
        let template = Template {
            parts: vec![
                TemplatePart::Literal("a$b ".into()),
                TemplatePart::ClientIp,
                TemplatePart::Route,
            ],
        };
        assert_eq!(template.to_string(), "a$$b ${client_ip}${route}");
        assert_eq!(template.as_literal(), None);
        assert_eq!(Template::default().as_literal(), Some(""));
    }
}
