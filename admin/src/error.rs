//! What can go wrong: [`AdminError`] at startup, [`ApiError`] per request. This is the one place that maps errors,
//! including the store's [`WriteError`], to HTTP statuses.

use std::path::PathBuf;

use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use sluice_config::WriteError;

use crate::reply;

/// The admin API cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The token file could not be read.
    #[error("admin token file {}: cannot read it: {source}", path.display())]
    TokenIo {
        /// The token file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The token file holds no usable token.
    #[error("admin token file {}: {message}", path.display())]
    TokenInvalid {
        /// The token file.
        path: PathBuf,
        /// What is wrong with its content.
        message: String,
    },
}

/// A request that failed: a status and a message naming what is wrong, sent as `{"error": "..."}`.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// 400.
    BadRequest(String),
    /// 401, with `www-authenticate: Bearer`.
    Unauthorized(&'static str),
    /// 404.
    NotFound(String),
    /// 405 with the methods the path allows.
    MethodNotAllowed { allow: &'static str },
    /// 409.
    Conflict(String),
    /// 413: the body is over the limit.
    TooLarge(String),
    /// 422: the configuration file is invalid.
    Unprocessable(String),
    /// 500.
    Internal(String),
    /// 503: the part of sluice that would answer is not running.
    Unavailable(String),
}

/// Which call a [`WriteError`] came from: an unknown upstream is a bad body field for weights but a missing
/// resource in a path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Call {
    /// `PUT /api/v1/routes/{route}/weights`.
    Weights,
    /// `POST .../servers/{addr}/drain` or `enable`.
    Server,
    /// `POST /api/v1/reload`.
    Reload,
}

impl ApiError {
    /// The status for a change the store refused.
    pub(crate) fn from_write(err: WriteError, call: Call) -> ApiError {
        let message = err.to_string();
        match err {
            WriteError::UnknownRoute { .. } | WriteError::UnknownServer { .. } => ApiError::NotFound(message),
            WriteError::UnknownUpstream { .. } => match call {
                Call::Weights => ApiError::BadRequest(message),
                Call::Server | Call::Reload => ApiError::NotFound(message),
            },
            WriteError::NoWeights => ApiError::BadRequest(message),
            WriteError::Config(_) => ApiError::Unprocessable(message),
            WriteError::NoFile => ApiError::Conflict(message),
            WriteError::Persist(_) | WriteError::Build(_) => ApiError::Internal(message),
            _ => ApiError::Internal(message),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::TooLarge(m)
            | ApiError::Unprocessable(m)
            | ApiError::Internal(m)
            | ApiError::Unavailable(m) => m.clone(),
            ApiError::Unauthorized(m) => (*m).to_owned(),
            ApiError::MethodNotAllowed { allow } => format!("method not allowed here; this path takes {allow}"),
        }
    }

    /// The response: `{"error": "..."}` with the status and the headers the status needs.
    pub(crate) fn into_response(self) -> Response<Full<Bytes>> {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), "admin api: {}", self.message());
        }
        let mut response = reply::json(status, &serde_json::json!({ "error": self.message() }));
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthorized(_) => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::MethodNotAllowed { allow } => {
                headers.insert(ALLOW, HeaderValue::from_static(allow));
            }
            // The rest of the body was not read: the connection cannot carry another request.
            ApiError::TooLarge(_) => {
                headers.insert(CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}
