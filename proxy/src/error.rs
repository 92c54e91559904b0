//! Why a request could not be proxied, who caused it, and the one place that turns that into a status.

use http::StatusCode;

/// Who caused a failure. Only upstream failures count against a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The upstream server refused, reset, timed out or spoke bad HTTP.
    Upstream,
    /// The client went away or sent a broken body.
    Client,
    /// Routing found nothing to send the request to (no route, no weight).
    Routing,
}

/// A request that sluice could not proxy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// No route matches the request's host and path.
    #[error("no route matches this host and path")]
    NoRoute,
    /// The route matched but every version's weight is 0.
    #[error("route `{route}` has no version with a weight above 0")]
    NoVersion {
        /// The matched route.
        route: String,
    },
    /// Every server of the chosen version is drained.
    #[error("every server of upstream `{upstream}` is drained")]
    NoServer {
        /// The chosen version's upstream.
        upstream: String,
    },
    /// Connecting to the upstream server failed or timed out.
    #[error("connecting to upstream {server} failed: {reason}")]
    Connect {
        /// `host:port` of the server.
        server: String,
        /// The connector's message.
        reason: String,
    },
    /// No response headers arrived within the response-header timeout.
    #[error("upstream {server} sent no response headers within {timeout_ms} ms")]
    Timeout {
        /// `host:port` of the server.
        server: String,
        /// The timeout that elapsed.
        timeout_ms: u128,
    },
    /// The upstream connection broke or the upstream spoke invalid HTTP.
    #[error("upstream {server} failed: {reason}")]
    Upstream {
        /// `host:port` of the server.
        server: String,
        /// hyper's message.
        reason: String,
    },
    /// The upstream answered with something that is not valid HTTP.
    #[error("upstream {server} sent invalid HTTP: {reason}")]
    Protocol {
        /// `host:port` of the server.
        server: String,
        /// hyper's message.
        reason: String,
    },
    /// The request body is larger than `[limits] max_body_bytes`.
    #[error("request body is larger than the {limit}-byte limit")]
    BodyTooLarge {
        /// The limit.
        limit: u64,
    },
    /// The client's request body failed (the client hung up mid-upload).
    #[error("client request body failed: {reason}")]
    ClientBody {
        /// hyper's message.
        reason: String,
    },
    /// The request cannot be forwarded as it stands (e.g. an unusable request target).
    #[error("bad request: {reason}")]
    BadRequest {
        /// What is wrong with it.
        reason: String,
    },
    /// An HTTP/1.1 upgrade (WebSocket) was routed to an upstream that speaks HTTP/2, which cannot carry it.
    #[error("upstream `{upstream}` speaks HTTP/2; upgrades such as WebSocket need `protocol = \"http1\"`")]
    UpgradeUnsupported {
        /// The chosen version's upstream.
        upstream: String,
    },
}

impl ProxyError {
    /// The status a client gets for this error: the only mapping from errors to statuses.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::NoVersion { .. } | ProxyError::NoServer { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Connect { .. } | ProxyError::Upstream { .. } | ProxyError::Protocol { .. } => {
                StatusCode::BAD_GATEWAY
            }
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::ClientBody { .. } | ProxyError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ProxyError::UpgradeUnsupported { .. } => StatusCode::NOT_IMPLEMENTED,
        }
    }

    /// Who caused this error.
    pub fn source(&self) -> ErrorSource {
        match self {
            ProxyError::NoRoute
            | ProxyError::NoVersion { .. }
            | ProxyError::NoServer { .. }
            | ProxyError::UpgradeUnsupported { .. } => ErrorSource::Routing,
            ProxyError::Connect { .. }
            | ProxyError::Timeout { .. }
            | ProxyError::Upstream { .. }
            | ProxyError::Protocol { .. } => ErrorSource::Upstream,
            ProxyError::ClientBody { .. } | ProxyError::BadRequest { .. } | ProxyError::BodyTooLarge { .. } => {
                ErrorSource::Client
            }
        }
    }

    /// The `kind` label this error counts under in `sluice_upstream_errors_total`, for upstream errors.
    pub fn upstream_kind(&self) -> Option<crate::telemetry::UpstreamErrorKind> {
        use crate::telemetry::UpstreamErrorKind as Kind;
        match self {
            ProxyError::Connect { .. } => Some(Kind::Connect),
            ProxyError::Timeout { .. } => Some(Kind::Timeout),
            ProxyError::Upstream { .. } => Some(Kind::Reset),
            ProxyError::Protocol { .. } => Some(Kind::Protocol),
            _ => None,
        }
    }

    /// Whether the request may be retried on another server: nothing reached the upstream's application
    /// (refused connection) or the connection broke before any response byte.
    pub fn retryable(&self) -> bool {
        matches!(self, ProxyError::Connect { .. } | ProxyError::Upstream { .. })
    }

    /// The short plain-text body sent with the status; never leaks upstream addresses to clients.
    pub fn public_message(&self) -> &'static str {
        match self {
            ProxyError::NoRoute => "404 not found: no route matches this host and path\n",
            ProxyError::NoVersion { .. } => "503 service unavailable: no version of this route takes traffic\n",
            ProxyError::NoServer { .. } => "503 service unavailable: every server of this version is drained\n",
            ProxyError::Connect { .. } => "502 bad gateway: the upstream server could not be reached\n",
            ProxyError::Upstream { .. } => "502 bad gateway: the upstream server failed\n",
            ProxyError::Protocol { .. } => "502 bad gateway: the upstream server sent an invalid response\n",
            ProxyError::BodyTooLarge { .. } => "413 payload too large: the request body is over the limit\n",
            ProxyError::Timeout { .. } => "504 gateway timeout: the upstream server did not answer in time\n",
            ProxyError::ClientBody { .. } => "400 bad request: the request body was cut off\n",
            ProxyError::BadRequest { .. } => "400 bad request\n",
            ProxyError::UpgradeUnsupported { .. } => {
                "501 not implemented: this version's upstream cannot carry a protocol upgrade\n"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(ProxyError::NoRoute.status(), 404);
        assert_eq!(ProxyError::NoVersion { route: "web".into() }.status(), 503);
        let connect = ProxyError::Connect {
            server: "a:1".into(),
            reason: "refused".into(),
        };
        assert_eq!(connect.status(), 502);
        assert_eq!(connect.source(), ErrorSource::Upstream);
        let timeout = ProxyError::Timeout {
            server: "a:1".into(),
            timeout_ms: 5,
        };
        assert_eq!(timeout.status(), 504);
        let client = ProxyError::ClientBody { reason: "eof".into() };
        assert_eq!(client.source(), ErrorSource::Client);
    }

    #[test]
    fn public_message_starts_with_status() {
        let all = [
            ProxyError::NoRoute,
            ProxyError::NoVersion { route: "r".into() },
            ProxyError::NoServer { upstream: "u".into() },
            ProxyError::Connect {
                server: "s".into(),
                reason: "x".into(),
            },
            ProxyError::Upstream {
                server: "s".into(),
                reason: "x".into(),
            },
            ProxyError::Timeout {
                server: "s".into(),
                timeout_ms: 1,
            },
            ProxyError::ClientBody { reason: "x".into() },
            ProxyError::Protocol {
                server: "s".into(),
                reason: "x".into(),
            },
            ProxyError::BodyTooLarge { limit: 1 },
            ProxyError::BadRequest { reason: "x".into() },
            ProxyError::UpgradeUnsupported { upstream: "u".into() },
        ];
        for e in all {
            assert!(e.public_message().starts_with(e.status().as_str()), "{e:?}");
        }
    }
}
