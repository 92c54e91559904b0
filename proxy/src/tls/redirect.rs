//! `redirect_http_to_https`: a plain-`http` request on such a route is answered 308 with the same URL on
//! `https`, never proxied. 308 rather than 301 so that a POST stays a POST.
//!
//! The URL names a port when the `https` listeners all share one other than 443. It is the port they are bound
//! to, which only the listener knows when the config says port 0, so the listener hands it to the request path
//! as a request extension (on plain connections only, and only when there is such a port).

use std::net::SocketAddr;

use http::header::{CONTENT_LENGTH, LOCATION};
use http::{HeaderValue, Request, Response, StatusCode};
use sluice_config::Config;

use crate::body::ProxyBody;
use crate::host::request_host;

/// The port a redirect names, put on plain-`http` requests by the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HttpsPort(pub(crate) u16);

/// The port redirects name for `https` listeners bound to `bound`: the one they share when it is not 443; `None`
/// (no port in the URL) for 443, for several ports, or without `https` listeners.
pub(crate) fn https_port(bound: &[SocketAddr]) -> Option<HttpsPort> {
    let port = bound.first()?.port();
    (port != 443 && bound.iter().all(|a| a.port() == port)).then_some(HttpsPort(port))
}

/// The redirect for `req` when it came over plain `http` (`proto`) on route `route` and the route asks for one;
/// `None` to proxy it as usual. A request without a usable host cannot be redirected and is proxied.
pub(crate) fn to_https<B>(req: &Request<B>, route: &str, config: &Config, proto: &str) -> Option<Response<ProxyBody>> {
    // Validation allows the flag only with `https` listeners: without them this is one comparison per request.
    if proto != "http" || config.listen.https.is_empty() {
        return None;
    }
    if !config.routes.iter().find(|r| r.name == route)?.redirect_http_to_https {
        return None;
    }
    let host = request_host(req)?;
    // The host goes into a URL: refuse anything but a name or an address, so a crafted `Host` cannot change it.
    let valid = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':');
    if host.is_empty() || !host.bytes().all(valid) {
        return None;
    }
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let location = match req.extensions().get::<HttpsPort>() {
        Some(HttpsPort(port)) => format!("https://{host}:{port}{path}"),
        None => format!("https://{host}{path}"),
    };
    let location = HeaderValue::from_str(&location).ok()?;
    let mut response = Response::new(ProxyBody::text(""));
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    response.headers_mut().insert(LOCATION, location);
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(https: &str, redirect: bool) -> Config {
        let text = format!(
            "[listen]\nhttp = [\"127.0.0.1:8080\"]\nhttps = [{https}]\n[upstreams.blue]\nservers = [\"127.0.0.1:9\"]\n\
             [[routes]]\nname = \"web\"\nweights = {{ blue = 1 }}\nredirect_http_to_https = {redirect}\n\
             [[tls.certificates]]\nhosts = [\"example.com\"]\ncert = \"a.pem\"\nkey = \"a.key\"\n"
        );
        Config::from_toml(&text, None).expect("valid")
    }

    fn location(config: &Config, uri: &str, host: &str, proto: &str) -> Option<String> {
        let mut req = Request::get(uri).header("host", host).body(()).expect("request");
        let bound = config.listen.https.clone();
        if let Some(port) = https_port(&bound) {
            req.extensions_mut().insert(port);
        }
        let response = to_https(&req, "web", config, proto)?;
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        Some(response.headers()[LOCATION].to_str().expect("ascii").to_owned())
    }

    #[test]
    fn keeps_path_and_query_and_names_a_non_443_port() {
        let config = config("\"0.0.0.0:8443\"", true);
        assert_eq!(
            location(&config, "/a/b?x=1&y=2", "Example.com:8080", "http").as_deref(),
            Some("https://example.com:8443/a/b?x=1&y=2")
        );
        let config443 = self::config("\"0.0.0.0:443\"", true);
        assert_eq!(
            location(&config443, "/", "example.com", "http").as_deref(),
            Some("https://example.com/")
        );
    }

    #[test]
    fn the_port_is_the_one_all_https_listeners_share_unless_443() {
        let port = |bound: &[&str]| {
            let bound: Vec<SocketAddr> = bound.iter().map(|a| a.parse().expect("address")).collect();
            https_port(&bound).map(|p| p.0)
        };
        assert_eq!(port(&["0.0.0.0:8443"]), Some(8443));
        assert_eq!(port(&["0.0.0.0:8443", "[::]:8443"]), Some(8443));
        assert_eq!(port(&["0.0.0.0:443"]), None);
        assert_eq!(port(&["0.0.0.0:8443", "0.0.0.0:9443"]), None);
        assert_eq!(port(&[]), None);
    }

    #[test]
    fn only_plain_http_on_routes_that_ask() {
        assert_eq!(
            location(&config("\"0.0.0.0:8443\"", true), "/", "example.com", "https"),
            None
        );
        assert_eq!(
            location(&config("\"0.0.0.0:8443\"", false), "/", "example.com", "http"),
            None
        );
    }

    #[test]
    fn a_host_that_would_change_the_url_is_not_redirected() {
        let config = config("\"0.0.0.0:8443\"", true);
        assert_eq!(location(&config, "/", "evil.com/x", "http"), None);
        assert_eq!(location(&config, "/", "a@b", "http"), None);
    }
}
