//! The host a request is for, as route matching needs it: lower-case, without a port.

use std::borrow::Cow;

use http::Request;
use http::header::HOST;

/// The request's host: the URI authority (HTTP/2, absolute-form) or the `Host` header, port removed,
/// lower-cased (allocating only when it has upper-case letters).
pub(crate) fn request_host<B>(req: &Request<B>) -> Option<Cow<'_, str>> {
    let raw = match req.uri().host() {
        Some(h) => h,
        None => strip_port(req.headers().get(HOST)?.to_str().ok()?),
    };
    let raw = raw.strip_suffix('.').unwrap_or(raw);
    if raw.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(raw.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(raw))
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: keep the brackets, as `Uri::host` does.
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(header: &str) -> Option<String> {
        let req = Request::builder().uri("/x").header(HOST, header).body(()).unwrap();
        request_host(&req).map(|c| c.into_owned())
    }

    #[test]
    fn strips_port_and_lowercases() {
        assert_eq!(host_of("Example.COM:8080").as_deref(), Some("example.com"));
        assert_eq!(host_of("example.com").as_deref(), Some("example.com"));
        assert_eq!(host_of("example.com.").as_deref(), Some("example.com"));
        assert_eq!(host_of("[::1]:8080").as_deref(), Some("[::1]"));
    }

    #[test]
    fn authority_wins_over_header() {
        let req = Request::builder()
            .uri("http://api.example.com/x")
            .header(HOST, "other")
            .body(())
            .unwrap();
        assert_eq!(request_host(&req).as_deref(), Some("api.example.com"));
    }

    #[test]
    fn no_host_is_none() {
        let req = Request::builder().uri("/x").body(()).unwrap();
        assert_eq!(request_host(&req), None);
    }
}
