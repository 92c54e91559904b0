//! Which endpoint a request is for: path first (404 for none), then method (405 with `allow`), then the token for
//! changes (401), then the body (413 over the limit).

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;

use crate::endpoint::RolloutCommand;
use crate::error::ApiError;
use crate::server::AdminState;
use crate::{body, endpoint, reply};

/// The endpoints of `docs/admin-api.md`, with their path parameters decoded.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Healthz,
    Metrics,
    State,
    Events,
    Reload,
    Weights {
        route: String,
    },
    Stats {
        route: String,
    },
    Rollout {
        route: String,
    },
    RolloutCommand {
        route: String,
        command: RolloutCommand,
    },
    Server {
        upstream: String,
        server: String,
        drain: bool,
    },
}

/// Answers one request; every failure becomes its `{"error": "..."}` response.
pub(crate) async fn handle<B>(admin: Arc<AdminState>, req: Request<B>, peer: SocketAddr) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match dispatch(&admin, req, peer).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn dispatch<B>(
    admin: &Arc<AdminState>,
    req: Request<B>,
    peer: SocketAddr,
) -> Result<Response<Full<Bytes>>, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let endpoint = Endpoint::parse(req.uri().path())?;
    let (read_only, allow) = match endpoint {
        Endpoint::Healthz
        | Endpoint::Metrics
        | Endpoint::State
        | Endpoint::Events
        | Endpoint::Stats { .. }
        | Endpoint::Rollout { .. } => (true, "GET, HEAD"),
        Endpoint::Weights { .. } => (false, "PUT"),
        Endpoint::Reload | Endpoint::Server { .. } | Endpoint::RolloutCommand { .. } => (false, "POST"),
    };
    let method_ok = match *req.method() {
        Method::GET | Method::HEAD => read_only,
        Method::PUT => allow == "PUT",
        Method::POST => allow == "POST",
        _ => false,
    };
    if !method_ok {
        return Err(ApiError::MethodNotAllowed { allow });
    }
    if read_only {
        let query = req.uri().query();
        return match endpoint {
            Endpoint::Healthz => Ok(reply::text(StatusCode::OK, "ok\n")),
            Endpoint::Metrics => endpoint::metrics(admin),
            Endpoint::Events => endpoint::events(admin, query),
            Endpoint::Stats { route } => endpoint::stats(admin, &route, query),
            Endpoint::Rollout { route } => endpoint::rollout(admin, &route),
            _ => Ok(endpoint::state(admin)),
        };
    }
    admin.authorize(req.headers())?;
    let who = format!("admin api {peer}");
    let (parts, body) = req.into_parts();
    let body = body::read(&parts.headers, body).await?;
    match endpoint {
        Endpoint::Weights { route } => endpoint::weights(admin, route, body::weights(&body)?, who).await,
        Endpoint::Server {
            upstream,
            server,
            drain,
        } => endpoint::server(admin, upstream, server, drain, who).await,
        Endpoint::RolloutCommand { route, command } => {
            let input = endpoint::rollout_input(command, &body)?;
            endpoint::rollout_command(admin, route, command, input, who).await
        }
        _ => endpoint::reload(admin, who).await,
    }
}

impl Endpoint {
    fn parse(path: &str) -> Result<Endpoint, ApiError> {
        let not_found = || ApiError::NotFound(format!("no such path `{path}`; the admin API is under /api/v1/"));
        match path {
            "/healthz" => return Ok(Endpoint::Healthz),
            "/metrics" => return Ok(Endpoint::Metrics),
            _ => {}
        }
        let Some(rest) = path.strip_prefix("/api/v1/") else {
            return Err(not_found());
        };
        let segments: Vec<&str> = rest.split('/').collect();
        Ok(match segments.as_slice() {
            ["state"] => Endpoint::State,
            ["events"] => Endpoint::Events,
            ["reload"] => Endpoint::Reload,
            ["routes", route, "weights"] => Endpoint::Weights {
                route: name(route, "route")?,
            },
            ["routes", route, "stats"] => Endpoint::Stats {
                route: name(route, "route")?,
            },
            ["routes", route, "rollout"] => Endpoint::Rollout {
                route: name(route, "route")?,
            },
            ["routes", route, "rollout", command] => Endpoint::RolloutCommand {
                route: name(route, "route")?,
                command: RolloutCommand::parse(command).ok_or_else(not_found)?,
            },
            ["upstreams", upstream, "servers", server, action @ ("drain" | "enable")] => Endpoint::Server {
                upstream: name(upstream, "upstream")?,
                server: server_addr(server)?,
                drain: *action == "drain",
            },
            _ => return Err(not_found()),
        })
    }
}

/// A route or upstream name from the path; one that cannot be a name cannot exist either.
fn name(segment: &str, what: &str) -> Result<String, ApiError> {
    let name = decode(segment)?;
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    if name.is_empty() || !name.chars().all(valid) {
        return Err(ApiError::NotFound(format!(
            "unknown {what} `{name}`; {what} names are lower-case letters, digits, `_` and `-`"
        )));
    }
    Ok(name)
}

/// A server address from the path, written as the config writes it: `host:port`, host lower-cased, an IPv6
/// literal in brackets and normalised (`[::0001]:80` is `[::1]:80`), raw or percent-encoded.
fn server_addr(segment: &str) -> Result<String, ApiError> {
    let text = decode(segment)?;
    if let Some((inside, port)) = text.strip_prefix('[').and_then(|rest| rest.split_once("]:"))
        && let Ok(ip) = inside.parse::<Ipv6Addr>()
    {
        return Ok(format!("[{ip}]:{port}"));
    }
    Ok(text.to_ascii_lowercase())
}

/// Percent-decodes one path segment or query value.
pub(crate) fn decode(segment: &str) -> Result<String, ApiError> {
    let bad = || ApiError::BadRequest(format!("path segment `{segment}` is not valid percent-encoded UTF-8"));
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(upstream: &str, server: &str, drain: bool) -> Endpoint {
        Endpoint::Server {
            upstream: upstream.into(),
            server: server.into(),
            drain,
        }
    }

    #[test]
    fn paths() {
        assert_eq!(Endpoint::parse("/healthz").unwrap(), Endpoint::Healthz);
        assert_eq!(Endpoint::parse("/api/v1/state").unwrap(), Endpoint::State);
        assert_eq!(Endpoint::parse("/metrics").unwrap(), Endpoint::Metrics);
        assert_eq!(
            Endpoint::parse("/api/v1/routes/web/stats").unwrap(),
            Endpoint::Stats { route: "web".into() }
        );
        assert_eq!(
            Endpoint::parse("/api/v1/routes/web-2_b/weights").unwrap(),
            Endpoint::Weights {
                route: "web-2_b".into()
            }
        );
        assert_eq!(
            Endpoint::parse("/api/v1/routes/web/rollout").unwrap(),
            Endpoint::Rollout { route: "web".into() }
        );
        assert_eq!(
            Endpoint::parse("/api/v1/routes/web/rollout/abort").unwrap(),
            Endpoint::RolloutCommand {
                route: "web".into(),
                command: RolloutCommand::Abort
            }
        );
        assert_eq!(
            Endpoint::parse("/api/v1/upstreams/blue/servers/127.0.0.1:9101/drain").unwrap(),
            server("blue", "127.0.0.1:9101", true)
        );
        assert_eq!(
            Endpoint::parse("/api/v1/upstreams/blue/servers/App.Internal:80/enable").unwrap(),
            server("blue", "app.internal:80", false)
        );
        for path in [
            "/",
            "/api/v1/state/",
            "/api/v1/routes/web",
            "/api/v2/state",
            "/api/v1/upstreams/b/servers/a:1/x",
            "/api/v1/routes/web/rollout/restart",
            "/api/v1/routes/web/rollout/",
        ] {
            assert!(matches!(Endpoint::parse(path), Err(ApiError::NotFound(_))), "{path}");
        }
        assert!(
            matches!(Endpoint::parse("/api/v1/routes/Web/weights"), Err(ApiError::NotFound(m)) if m.contains("`Web`"))
        );
    }

    #[test]
    fn ipv6_servers_raw_or_percent_encoded() {
        let want = server("blue", "[::1]:9101", true);
        assert_eq!(
            Endpoint::parse("/api/v1/upstreams/blue/servers/[::1]:9101/drain").unwrap(),
            want
        );
        assert_eq!(
            Endpoint::parse("/api/v1/upstreams/blue/servers/%5B%3A%3A1%5D%3A9101/drain").unwrap(),
            want
        );
        assert_eq!(
            Endpoint::parse("/api/v1/upstreams/blue/servers/%5b::0001%5d:9101/drain").unwrap(),
            want
        );
        assert!(matches!(
            Endpoint::parse("/api/v1/upstreams/blue/servers/%zz/drain"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            Endpoint::parse("/api/v1/upstreams/blue/servers/%ff/drain"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
