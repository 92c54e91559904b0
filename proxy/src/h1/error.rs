//! Why an exchange on an upstream HTTP/1.1 connection failed.

use crate::body::RequestBodyError;

use super::decode::DecodeError;

/// An upstream HTTP/1.1 exchange failed. The display text leaves the cause to `source()`, which error chains add.
#[derive(Debug, thiserror::Error)]
pub(crate) enum H1Error {
    /// Reading from or writing to the connection failed.
    #[error("connection failed")]
    Io(#[source] std::io::Error),
    /// The server closed the connection before a complete response head.
    #[error("the server closed the connection before sending a complete response head")]
    ClosedBeforeHead,
    /// The server closed the connection before the response body was complete.
    #[error("the server closed the connection in the middle of the response body")]
    ClosedMidBody,
    /// The server's response is not valid HTTP/1.1.
    #[error("invalid response")]
    Decode(#[source] DecodeError),
    /// No complete response head arrived before the deadline (`[timeouts] response_header`).
    #[error("no response head before the deadline")]
    TimedOut,
    /// The client's request body failed (it hung up mid-upload, or went over the size limit).
    #[error("request body")]
    RequestBody(#[source] RequestBodyError),
}

impl From<std::io::Error> for H1Error {
    fn from(err: std::io::Error) -> Self {
        H1Error::Io(err)
    }
}

impl From<DecodeError> for H1Error {
    fn from(err: DecodeError) -> Self {
        H1Error::Decode(err)
    }
}
