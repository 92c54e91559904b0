//! The bearer token that mutating calls need, read from `[admin] token_file` and compared in constant time.

use std::fmt;
use std::path::Path;

use http::HeaderMap;
use http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{AdminError, ApiError};

/// Reads the admin token from `path`: the file's content without surrounding whitespace. An empty file, or a token
/// that cannot be sent in an `Authorization` header, is an error naming the file.
pub fn load_token(path: &Path) -> Result<String, AdminError> {
    let text = std::fs::read_to_string(path).map_err(|source| AdminError::TokenIo {
        path: path.to_owned(),
        source,
    })?;
    let token = text.trim();
    let invalid = |message: &str| AdminError::TokenInvalid {
        path: path.to_owned(),
        message: message.to_owned(),
    };
    if token.is_empty() {
        return Err(invalid(
            "the file is empty; put the bearer token that mutating admin calls need in it",
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "the token contains spaces, control or non-ASCII characters, which an `Authorization: Bearer` header \
             cannot carry; use printable ASCII only",
        ));
    }
    Ok(token.to_owned())
}

/// The configured token, kept only as its SHA-256 digest: comparing fixed-size digests in constant time reveals
/// neither the token's bytes nor its length, and a `Debug` print of the admin state cannot leak it.
pub(crate) struct Token {
    digest: [u8; 32],
}

impl Token {
    pub(crate) fn new(token: &str) -> Token {
        Token { digest: digest(token) }
    }

    /// Whether the request carries `Authorization: Bearer <this token>`.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Err(ApiError::Unauthorized(
                "this call needs `Authorization: Bearer <token>` (the admin token file)",
            ));
        };
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty());
        let Some(presented) = presented else {
            return Err(ApiError::Unauthorized(
                "the `Authorization` header is not `Bearer <token>`",
            ));
        };
        if bool::from(digest(presented).ct_eq(&self.digest)) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized("wrong bearer token"))
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, authorization.parse().unwrap());
        headers
    }

    #[test]
    fn only_the_right_bearer_token_passes() {
        let token = Token::new("s3cret");
        assert!(token.check(&headers("Bearer s3cret")).is_ok());
        assert!(token.check(&headers("bearer s3cret")).is_ok());
        assert!(token.check(&headers("Bearer s3cre")).is_err());
        assert!(token.check(&headers("Bearer s3cret2")).is_err());
        assert!(token.check(&headers("Basic s3cret")).is_err());
        assert!(token.check(&headers("s3cret")).is_err());
        assert!(token.check(&HeaderMap::new()).is_err());
    }

    #[test]
    fn an_empty_token_matches_nothing() {
        let token = Token::new("");
        assert!(token.check(&headers("Bearer ")).is_err());
        assert!(token.check(&headers("Bearer  ")).is_err());
    }

    #[test]
    fn debug_does_not_show_the_token() {
        assert_eq!(format!("{:?}", Token::new("s3cret")), "Token(<redacted>)");
    }

    #[test]
    fn token_file_is_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        std::fs::write(&path, "  abc123\n").unwrap();
        assert_eq!(load_token(&path).unwrap(), "abc123");
        std::fs::write(&path, " \n").unwrap();
        let err = load_token(&path).unwrap_err().to_string();
        assert!(err.contains("admin.token") && err.contains("empty"), "{err}");
        std::fs::write(&path, "two words").unwrap();
        assert!(load_token(&path).is_err());
        let err = load_token(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
    }
}
