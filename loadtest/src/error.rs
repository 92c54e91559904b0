//! Why a load run could not start, and the kinds of transport error counted while it runs.

use std::io;
use std::net::SocketAddr;

use serde::Serialize;

/// A run that could not start. Failures of single requests are counted in the report, not returned.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The URL cannot be used.
    #[error("target `{url}`: {reason}")]
    InvalidTarget {
        /// The URL as given.
        url: String,
        /// What is wrong and what would work.
        reason: String,
    },
    /// The target is not on this machine and remote targets were not allowed.
    #[error(
        "refusing to send load to `{host}`: it is not this machine (127.0.0.0/8, ::1 or localhost); \
         pass --allow-remote if you really mean to load it"
    )]
    Remote {
        /// The host as written.
        host: String,
    },
    /// A number in the spec is out of range.
    #[error("{0}")]
    InvalidSpec(String),
    /// The host name did not resolve.
    #[error("cannot resolve `{host}`: {source}")]
    Resolve {
        /// The host as written.
        host: String,
        /// Why.
        source: io::Error,
    },
    /// The first connection failed, so nothing would have been measured.
    #[error("cannot connect to {addr}: {reason}; is the server running?")]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// Why it failed.
        reason: String,
    },
}

/// The kind of a failed request, as counted in [`crate::Report::errors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Opening the TCP connection or the HTTP handshake failed.
    Connect,
    /// No complete response within the timeout.
    Timeout,
    /// The server closed the connection before the response ended.
    Closed,
    /// The connection was reset.
    Reset,
    /// The server broke HTTP (bad status line, h2 protocol error, stream refused).
    Protocol,
    /// Another I/O error.
    Io,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [Self; 7] = [
        Self::Connect,
        Self::Timeout,
        Self::Closed,
        Self::Reset,
        Self::Protocol,
        Self::Io,
        Self::Other,
    ];

    /// The name used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Closed => "closed",
            Self::Reset => "reset",
            Self::Protocol => "protocol",
            Self::Io => "io",
            Self::Other => "other",
        }
    }

    /// Classify a hyper error from sending a request or reading its response.
    pub(crate) fn of_hyper(error: &hyper::Error) -> Self {
        if error.is_timeout() {
            return Self::Timeout;
        }
        if error.is_parse() || error.is_parse_status() || error.is_user() {
            return Self::Protocol;
        }
        if let Some(kind) = io_kind(error) {
            return Self::of_io(kind);
        }
        if error.is_incomplete_message() || error.is_closed() || error.is_canceled() {
            return Self::Closed;
        }
        Self::Other
    }

    /// Classify an I/O error kind.
    pub(crate) fn of_io(kind: io::ErrorKind) -> Self {
        match kind {
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => Self::Reset,
            io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof | io::ErrorKind::NotConnected => Self::Closed,
            io::ErrorKind::TimedOut => Self::Timeout,
            _ => Self::Io,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of the first I/O error in `error`'s source chain, if any.
fn io_kind(error: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        source = error.source();
    }
    None
}
