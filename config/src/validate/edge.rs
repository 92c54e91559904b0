//! `trusted_proxies`, `[access_log]`, `[request_id]`, and a route's `access_log`, path rewrite and
//! `[routes.headers]`: one check per rule, each error pointing at the offending text.

use std::net::IpAddr;
use std::ops::Bound;
use std::path::Path;

use toml::Spanned;

use crate::document::Document;
use crate::edge::{AccessLog, Cidr, HeaderRules, LogFormat, RequestId, Template, TemplatePart};
use crate::error::ConfigError;
use crate::file::{AccessLogFile, HeaderMapFile, HeadersFile, RequestIdFile, RouteFile};
use crate::key_path::{child, index};

/// The variables a header value may use, as written.
const VARIABLES: &str = "$client_ip, $request_id, $version, $route";

/// A route's edge settings, validated.
pub(super) struct RouteEdge {
    pub(super) access_log_sample: f64,
    pub(super) strip_prefix: bool,
    pub(super) rewrite_prefix: Option<String>,
    pub(super) headers: HeaderRules,
}

impl Document<'_> {
    /// `trusted_proxies`, in file order.
    pub(super) fn trusted_proxies(
        &self,
        list: Option<&Spanned<Vec<Spanned<String>>>>,
    ) -> Result<Vec<Cidr>, ConfigError> {
        let Some(list) = list else {
            return Ok(Vec::new());
        };
        let mut out: Vec<Cidr> = Vec::with_capacity(list.get_ref().len());
        for (i, text) in list.get_ref().iter().enumerate() {
            let key = index("trusted_proxies", i);
            let cidr = parse_cidr(text.get_ref()).map_err(|message| self.error(text.span(), &key, message))?;
            if let Some(first) = out.iter().position(|c| *c == cidr) {
                let message = format!("`{cidr}` is already listed as trusted_proxies[{first}]; list each block once");
                return Err(self.error(text.span(), key, message));
            }
            out.push(cidr);
        }
        Ok(out)
    }

    /// `[access_log]`.
    pub(super) fn access_log(&self, table: &Spanned<AccessLogFile>) -> Result<AccessLog, ConfigError> {
        let file = table.get_ref();
        let format = match &file.format {
            None => LogFormat::default(),
            Some(text) => match text.get_ref().as_str() {
                "json" => LogFormat::Json,
                "combined" => LogFormat::Combined,
                other => {
                    let message = format!(
                        "unknown format `{other}`; use \"json\" (one object per line, every field) or \"combined\" \
                         (nginx's combined log format)"
                    );
                    return Err(self.error(text.span(), "access_log.format", message));
                }
            },
        };
        let path = match &file.path {
            None => None,
            Some(text) if text.get_ref() == "-" => None,
            Some(text) if text.get_ref().trim().is_empty() => {
                let message = "an empty path; give a file name, or \"-\" for stdout";
                return Err(self.error(text.span(), "access_log.path", message));
            }
            Some(text) => {
                // Relative paths mean "beside the config file", wherever sluice was started from.
                let dir = self.source.path.and_then(Path::parent).unwrap_or(Path::new(""));
                Some(dir.join(text.get_ref()))
            }
        };
        let buffer = match &file.buffer {
            None => AccessLog::DEFAULT_BUFFER,
            Some(value) => usize::try_from(*value.get_ref())
                .ok()
                .filter(|n| (1..=AccessLog::MAX_BUFFER).contains(n))
                .ok_or_else(|| {
                    let message = format!(
                        "{} lines; use 1 to {} (lines held for the writer before further ones are dropped), \
                         e.g. {}",
                        value.get_ref(),
                        AccessLog::MAX_BUFFER,
                        AccessLog::DEFAULT_BUFFER
                    );
                    self.error(value.span(), "access_log.buffer", message)
                })?,
        };
        Ok(AccessLog { format, path, buffer })
    }

    /// `[request_id]`, or its default.
    pub(super) fn request_id(&self, table: Option<&Spanned<RequestIdFile>>) -> Result<RequestId, ConfigError> {
        let Some(header) = table.and_then(|t| t.get_ref().header.as_ref()) else {
            return Ok(RequestId::default());
        };
        let header = header_name(header.get_ref(), Direction::Request)
            .map_err(|message| self.error(header.span(), "request_id.header", message))?;
        Ok(RequestId { header })
    }

    /// A route's `access_log`, `strip_prefix`, `rewrite_prefix` and `headers`.
    pub(super) fn route_edge(&self, key: &str, file: &RouteFile, path_prefix: &str) -> Result<RouteEdge, ConfigError> {
        let access_log_sample = self.number(
            key,
            "access_log",
            file.access_log.as_ref(),
            1.0,
            (Bound::Included(0.0), Bound::Included(1.0)),
            "use a share from 0.0 (log none of this route's requests) to 1.0 (log all), e.g. 0.1",
        )?;
        let strip_prefix = file.strip_prefix.as_ref().is_some_and(|b| *b.get_ref());
        let rewrite_prefix = match &file.rewrite_prefix {
            None => None,
            Some(text) => {
                let rewrite_key = child(key, "rewrite_prefix");
                if strip_prefix {
                    let message = "`strip_prefix = true` and `rewrite_prefix` both say what replaces path_prefix; \
                                   keep one (`rewrite_prefix = \"/\"` is the same as `strip_prefix = true`)";
                    return Err(self.error(text.span(), rewrite_key, message));
                }
                let value = text.get_ref();
                let problem = if !value.starts_with('/') {
                    Some("must start with `/`")
                } else if value.contains(['?', '#']) || value.contains(char::is_whitespace) {
                    Some("becomes part of the request path, so it cannot contain `?`, `#` or whitespace")
                } else if path_prefix.ends_with('/') && !value.ends_with('/') {
                    Some("does not end with `/` but path_prefix does, so `/api/users` would become `/v2users`")
                } else {
                    None
                };
                if let Some(problem) = problem {
                    let message = format!("`{value}` {problem}; e.g. \"/v2/\" with path_prefix \"/api/\"");
                    return Err(self.error(text.span(), rewrite_key, message));
                }
                Some(value.clone())
            }
        };
        let headers = match &file.headers {
            None => HeaderRules::default(),
            Some(headers) => self.headers(&child(key, "headers"), headers.get_ref())?,
        };
        Ok(RouteEdge {
            access_log_sample,
            strip_prefix,
            rewrite_prefix,
            headers,
        })
    }

    /// `routes[i].headers`.
    fn headers(&self, key: &str, file: &HeadersFile) -> Result<HeaderRules, ConfigError> {
        let request_set = self.header_values(key, "request_set", file.request_set.as_ref(), Direction::Request)?;
        let request_add = self.header_values(key, "request_add", file.request_add.as_ref(), Direction::Request)?;
        let request_remove =
            self.header_names(key, "request_remove", file.request_remove.as_ref(), Direction::Request)?;
        let response_set = self.header_values(key, "response_set", file.response_set.as_ref(), Direction::Response)?;
        let response_add = self.header_values(key, "response_add", file.response_add.as_ref(), Direction::Response)?;
        let response_remove = self.header_names(
            key,
            "response_remove",
            file.response_remove.as_ref(),
            Direction::Response,
        )?;
        // Removing a header that another rule writes is a contradiction whatever the order the rules run in.
        for (remove_name, removed, list, written) in [
            (
                "request_remove",
                &request_remove,
                &file.request_remove,
                [("request_set", &request_set), ("request_add", &request_add)],
            ),
            (
                "response_remove",
                &response_remove,
                &file.response_remove,
                [("response_set", &response_set), ("response_add", &response_add)],
            ),
        ] {
            for (i, name) in removed.iter().enumerate() {
                for (writer, rules) in written {
                    if rules.iter().any(|(n, _)| n == name) {
                        let span = list.as_ref().map_or(0..0, |l| l.get_ref()[i].span());
                        let message = format!(
                            "`{name}` is also in `{writer}`; a header cannot be both written and removed, keep one rule"
                        );
                        return Err(self.error(span, index(&child(key, remove_name), i), message));
                    }
                }
            }
        }
        Ok(HeaderRules {
            request_set,
            request_add,
            request_remove,
            response_set,
            response_add,
            response_remove,
        })
    }

    /// `headers.NAME = { header = "value", ... }`, in file order.
    fn header_values(
        &self,
        headers_key: &str,
        name: &str,
        map: Option<&HeaderMapFile>,
        direction: Direction,
    ) -> Result<Vec<(String, Template)>, ConfigError> {
        let Some(map) = map else {
            return Ok(Vec::new());
        };
        let key = child(headers_key, name);
        // Serde hands the table over sorted by name; the model keeps the order the operator wrote.
        let mut entries: Vec<_> = map.get_ref().iter().collect();
        entries.sort_by_key(|(header, _)| header.span().start);
        let mut out: Vec<(String, Template)> = Vec::with_capacity(entries.len());
        for (header, value) in entries {
            let entry_key = child(&key, header.get_ref());
            let lower = header_name(header.get_ref(), direction)
                .map_err(|message| self.error(header.span(), &entry_key, message))?;
            if out.iter().any(|(n, _)| *n == lower) {
                let message =
                    format!("`{lower}` is already in `{name}` (header names are case-insensitive); list it once");
                return Err(self.error(header.span(), entry_key, message));
            }
            let template =
                parse_template(value.get_ref()).map_err(|message| self.error(value.span(), &entry_key, message))?;
            out.push((lower, template));
        }
        Ok(out)
    }

    /// `headers.NAME = ["header", ...]`, in file order.
    fn header_names(
        &self,
        headers_key: &str,
        name: &str,
        list: Option<&Spanned<Vec<Spanned<String>>>>,
        direction: Direction,
    ) -> Result<Vec<String>, ConfigError> {
        let Some(list) = list else {
            return Ok(Vec::new());
        };
        let key = child(headers_key, name);
        let mut out: Vec<String> = Vec::with_capacity(list.get_ref().len());
        for (i, header) in list.get_ref().iter().enumerate() {
            let entry_key = index(&key, i);
            let lower = header_name(header.get_ref(), direction)
                .map_err(|message| self.error(header.span(), &entry_key, message))?;
            if let Some(first) = out.iter().position(|n| *n == lower) {
                let message = format!("`{lower}` is already listed as {name}[{first}]; list each header once");
                return Err(self.error(header.span(), entry_key, message));
            }
            out.push(lower);
        }
        Ok(out)
    }
}

/// Which message a header rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Request,
    Response,
}

/// Parses an address block `ADDR/PREFIX` or a single address; refuses host bits set after the prefix.
fn parse_cidr(text: &str) -> Result<Cidr, String> {
    let form = "use an address block or one address, e.g. \"10.0.0.0/8\", \"192.168.1.7\" or \"2001:db8::/32\"";
    let (addr_text, prefix_text) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let addr: IpAddr = addr_text
        .parse()
        .map_err(|_| format!("`{addr_text}` is not an IPv4 or IPv6 address; {form}"))?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_text {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max && !p.starts_with('+') => n,
            _ => {
                return Err(format!(
                    "`{text}` has prefix length `{p}`; an {} prefix is a number from 0 to {max}",
                    if addr.is_ipv4() { "IPv4" } else { "IPv6" }
                ));
            }
        },
    };
    let cidr = Cidr { addr, prefix };
    let network = network_of(cidr);
    if network != addr {
        return Err(format!(
            "`{text}` has bits set after the /{prefix} prefix; write the block as `{network}/{prefix}`, or \
             `{addr}/{max}` for the one address"
        ));
    }
    // A dual-stack socket reports IPv4 peers as `::ffff:a.b.c.d`; `Cidr::contains` compares those as IPv4.
    if let IpAddr::V6(v6) = addr
        && let Some(v4) = v6.to_ipv4_mapped()
        && prefix >= 96
    {
        return Ok(Cidr {
            addr: IpAddr::V4(v4),
            prefix: prefix - 96,
        });
    }
    Ok(cidr)
}

/// The address of `cidr` with every bit after the prefix cleared.
fn network_of(cidr: Cidr) -> IpAddr {
    match cidr.addr {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(cidr.prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(cidr.prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

/// Checks a header name a rule may touch and lower-cases it.
fn header_name(text: &str, direction: Direction) -> Result<String, String> {
    if text.is_empty() {
        return Err("an empty header name; e.g. \"x-env\"".to_owned());
    }
    if let Some(bad) = text.chars().find(|&c| !(c.is_ascii() && is_token_byte(c as u8))) {
        return Err(format!(
            "`{text}` contains {bad:?}, so it is not a header name; use letters, digits and !#$%&'*+-.^_`|~, \
             e.g. \"x-env\""
        ));
    }
    let lower = text.to_ascii_lowercase();
    let hop_by_hop = matches!(
        lower.as_str(),
        "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade"
    ) || lower.starts_with("proxy-");
    if hop_by_hop {
        return Err(format!(
            "`{lower}` is a hop-by-hop header: it is about one connection, sluice manages it on each side and \
             never forwards it, so a rule cannot touch it"
        ));
    }
    if lower == "content-length" {
        return Err("`content-length` frames the message, so sluice sets it itself; a rule cannot touch it".to_owned());
    }
    if lower == "host" && direction == Direction::Request {
        return Err(
            "`host` is forwarded as the client sent it (routes match on it); a request rule cannot set, add or \
             remove it"
                .to_owned(),
        );
    }
    Ok(lower)
}

/// An RFC 9110 token character: what header names are made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses a header value with `$name` or `${name}` variables; `$$` is a literal `$`.
fn parse_template(text: &str) -> Result<Template, String> {
    let mut parts: Vec<TemplatePart> = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        if c != '$' {
            if !(c == '\t' || (' '..='~').contains(&c)) {
                return Err(format!(
                    "`{text}` contains {c:?}, which a header value cannot hold; use visible ASCII, spaces and tabs"
                ));
            }
            literal.push(c);
            continue;
        }
        let name = if let Some(after) = rest.strip_prefix('$') {
            rest = after;
            literal.push('$');
            continue;
        } else if let Some(after) = rest.strip_prefix('{') {
            let Some((name, after)) = after.split_once('}') else {
                return Err(format!(
                    "`{text}` has `${{` without a closing `}}`; e.g. \"${{route}}-suffix\""
                ));
            };
            rest = after;
            name
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let (name, after) = rest.split_at(end);
            rest = after;
            name
        };
        let part = match name {
            "client_ip" => TemplatePart::ClientIp,
            "request_id" => TemplatePart::RequestId,
            "version" => TemplatePart::Version,
            "route" => TemplatePart::Route,
            "" => {
                return Err(format!(
                    "`{text}` has a `$` without a variable name; variables are {VARIABLES}; write `$$` for a \
                     literal `$`"
                ));
            }
            other => {
                return Err(format!(
                    "unknown variable `${other}`; variables are {VARIABLES} (write `${{route}}` when letters follow, \
                     `$$` for a literal `$`)"
                ));
            }
        };
        if !literal.is_empty() {
            parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
        }
        parts.push(part);
    }
    if !literal.is_empty() {
        parts.push(TemplatePart::Literal(literal));
    }
    Ok(Template { parts })
}
