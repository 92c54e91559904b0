//! Where a request's session key comes from, and the proxy-issued session cookie.
//!
//! Lookups return slices of the request (raw bytes, no percent-decoding) and allocate nothing.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use http::header::{COOKIE, HeaderMap, HeaderName, HeaderValue};

/// The part of a request that identifies a session, written `header:<name>`, `cookie:<name>` or `query:<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    Header(HeaderName),
    Cookie(String),
    Query(String),
}

/// Why a key source did not parse; the message names the valid forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeySourceError {
    #[error("session key {0:?} has no kind: expected header:<name>, cookie:<name> or query:<name>")]
    NoKind(String),
    #[error("session key {0:?} has an unknown kind: expected header:<name>, cookie:<name> or query:<name>")]
    UnknownKind(String),
    #[error("session key {0:?} has an empty name: expected e.g. header:x-user-id, cookie:session or query:uid")]
    EmptyName(String),
    #[error("session key {0:?}: the name is not a valid {1} name")]
    InvalidName(String, &'static str),
}

impl FromStr for KeySource {
    type Err = KeySourceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, name) = s.split_once(':').ok_or_else(|| KeySourceError::NoKind(s.to_owned()))?;
        if !matches!(kind, "header" | "cookie" | "query") {
            return Err(KeySourceError::UnknownKind(s.to_owned()));
        }
        if name.is_empty() {
            return Err(KeySourceError::EmptyName(s.to_owned()));
        }
        let invalid = |what| KeySourceError::InvalidName(s.to_owned(), what);
        match kind {
            "header" => HeaderName::from_bytes(name.as_bytes())
                .map(Self::Header)
                .map_err(|_| invalid("header")),
            "cookie" if is_cookie_name(name) => Ok(Self::Cookie(name.to_owned())),
            "cookie" => Err(invalid("cookie")),
            _ if is_query_name(name) => Ok(Self::Query(name.to_owned())),
            _ => Err(invalid("query parameter")),
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(name) => write!(f, "header:{name}"),
            Self::Cookie(name) => write!(f, "cookie:{name}"),
            Self::Query(name) => write!(f, "query:{name}"),
        }
    }
}

impl KeySource {
    /// The session key of `req`, or `None` if it is absent or empty. Allocation-free.
    ///
    /// With several headers of the name, or several cookies or query parameters of the name, the first non-empty
    /// one counts.
    pub(crate) fn extract<'a, B>(&self, req: &'a http::Request<B>) -> Option<&'a [u8]> {
        match self {
            Self::Header(name) => header_value(req.headers(), name),
            Self::Cookie(name) => cookie_value(req.headers(), name),
            Self::Query(name) => query_value(req.uri().query()?, name),
        }
    }
}

/// The first non-empty value of header `name`. Allocation-free.
pub(crate) fn header_value<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a [u8]> {
    headers
        .get_all(name)
        .iter()
        .map(HeaderValue::as_bytes)
        .find(|v| !v.is_empty())
}

/// The first non-empty value of cookie `name` across every `Cookie` header, as sent (quotes included, if any).
/// Allocation-free.
pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers.get_all(COOKIE).iter().find_map(|header| {
        header.as_bytes().split(|&b| b == b';').find_map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            let value = pair[eq + 1..].trim_ascii();
            (pair[..eq].trim_ascii() == name.as_bytes() && !value.is_empty()).then_some(value)
        })
    })
}

/// The first non-empty value of parameter `name` in a raw query string (not percent-decoded). Allocation-free.
pub(crate) fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a [u8]> {
    query.split('&').find_map(|pair| {
        let (n, value) = pair.split_once('=')?;
        (n == name && !value.is_empty()).then_some(value.as_bytes())
    })
}

/// A fresh session id for the proxy-issued `sluice_id` cookie: 128 random bits from the thread's CSPRNG, as 32
/// lowercase hex digits.
pub(crate) fn new_session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A `Set-Cookie` value: `name=value; Path=/; Max-Age=N; HttpOnly; SameSite=Lax[; Secure]`.
///
/// # Panics
/// If `name` or `value` holds a control character, which no valid config produces: names come from the config
/// (validate them with [`is_cookie_name`]) and values are session ids or pin cookies built from route and version
/// names (validate those with [`is_cookie_value`]).
pub(crate) fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> HeaderValue {
    debug_assert!(is_cookie_name(name), "invalid cookie name {name:?}");
    debug_assert!(is_cookie_value(value), "invalid cookie value {value:?}");
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{name}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        max_age.as_secs()
    );
    HeaderValue::try_from(cookie).expect("cookie names and values are validated printable ASCII")
}

/// Whether `name` is a cookie name (an RFC 6265 token).
pub(crate) fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

/// Whether `value` can be a cookie value unquoted (RFC 6265 cookie-octets: printable ASCII except space, `"`, `,`,
/// `;` and `\`).
pub(crate) fn is_cookie_value(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_graphic() && !b"\",;\\".contains(&b))
}

fn is_query_name(name: &str) -> bool {
    name.bytes().all(|b| b.is_ascii_graphic() && !b"&=#".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, headers: &[(&str, &str)]) -> http::Request<()> {
        let mut b = http::Request::builder().uri(uri);
        for &(n, v) in headers {
            b = b.header(n, v);
        }
        b.body(()).unwrap()
    }

    fn key(source: &str, req: &http::Request<()>) -> Option<Vec<u8>> {
        source.parse::<KeySource>().unwrap().extract(req).map(<[u8]>::to_vec)
    }

    #[test]
    fn parses_and_displays_the_three_forms() {
        for s in ["header:x-user-id", "cookie:session", "query:uid"] {
            assert_eq!(s.parse::<KeySource>().unwrap().to_string(), s);
        }
        assert_eq!(
            "header:X-User-Id".parse::<KeySource>().unwrap(),
            KeySource::Header(HeaderName::from_static("x-user-id"))
        );
    }

    #[test]
    fn parse_errors_name_the_valid_forms() {
        for (s, err) in [
            ("x-user-id", KeySourceError::NoKind("x-user-id".into())),
            ("body:uid", KeySourceError::UnknownKind("body:uid".into())),
            ("Header:uid", KeySourceError::UnknownKind("Header:uid".into())),
            ("cookie:", KeySourceError::EmptyName("cookie:".into())),
            (
                "header:x user",
                KeySourceError::InvalidName("header:x user".into(), "header"),
            ),
            ("cookie:a;b", KeySourceError::InvalidName("cookie:a;b".into(), "cookie")),
            (
                "query:a&b",
                KeySourceError::InvalidName("query:a&b".into(), "query parameter"),
            ),
        ] {
            assert_eq!(s.parse::<KeySource>(), Err(err));
        }
        let msg = "nope".parse::<KeySource>().unwrap_err().to_string();
        assert!(msg.contains("header:<name>, cookie:<name> or query:<name>"), "{msg}");
    }

    #[test]
    fn header_key() {
        let r = req("/", &[("x-user-id", ""), ("x-user-id", "42"), ("x-user-id", "43")]);
        assert_eq!(key("header:x-user-id", &r), Some(b"42".to_vec()));
        assert_eq!(key("header:x-other", &r), None);
        assert_eq!(key("header:x-user-id", &req("/", &[("x-user-id", "")])), None);
    }

    #[test]
    fn cookie_key_across_headers_and_pairs() {
        let r = req(
            "/",
            &[
                ("cookie", "a=1; session=; sessionx=no"),
                ("cookie", "b=2;session=abc ; c=3"),
            ],
        );
        assert_eq!(key("cookie:session", &r), Some(b"abc".to_vec()));
        assert_eq!(key("cookie:a", &r), Some(b"1".to_vec()));
        assert_eq!(key("cookie:c", &r), Some(b"3".to_vec()));
        assert_eq!(key("cookie:sess", &r), None);
        assert_eq!(key("cookie:session", &req("/", &[("cookie", "session")])), None);
        assert_eq!(key("cookie:session", &req("/", &[])), None);
    }

    #[test]
    fn cookie_value_keeps_equals_signs_in_the_value() {
        let r = req("/", &[("cookie", "sluice_id=ab==; x=1")]);
        assert_eq!(cookie_value(r.headers(), "sluice_id"), Some(&b"ab=="[..]));
    }

    #[test]
    fn query_key_is_raw() {
        let r = req("/p?a=1&uid=&uid=u%20x&uidx=9&flag", &[]);
        assert_eq!(key("query:uid", &r), Some(b"u%20x".to_vec()));
        assert_eq!(key("query:a", &r), Some(b"1".to_vec()));
        assert_eq!(key("query:flag", &r), None);
        assert_eq!(key("query:uid", &req("/p", &[])), None);
    }

    #[test]
    fn extracted_key_borrows_the_request() {
        let r = req("/", &[("cookie", "session=abc")]);
        let k = KeySource::Cookie("session".into()).extract(&r).unwrap();
        let value = r.headers()[COOKIE].as_bytes();
        assert!(
            value.as_ptr_range().contains(&k.as_ptr()),
            "the key is a slice of the header, not a copy"
        );
    }

    #[test]
    fn session_ids_are_128_bit_hex_and_differ() {
        let (a, b) = (new_session_id(), new_session_id());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn set_cookie_attributes() {
        let v = set_cookie("sluice_id", "abc", Duration::from_secs(86_400), false);
        assert_eq!(v, "sluice_id=abc; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax");
        let v = set_cookie("sluice_pin", "v1.r.canary.1.sig", Duration::from_millis(1500), true);
        assert_eq!(
            v,
            "sluice_pin=v1.r.canary.1.sig; Path=/; Max-Age=1; HttpOnly; SameSite=Lax; Secure"
        );
    }

    #[test]
    fn cookie_name_and_value_rules() {
        assert!(is_cookie_name("sluice_id"));
        assert!(!is_cookie_name("a=b") && !is_cookie_name("") && !is_cookie_name("a b"));
        assert!(is_cookie_value("v1.checkout.canary.1700000000.AbC-_9") && is_cookie_value(""));
        assert!(!is_cookie_value("a;b") && !is_cookie_value("a b") && !is_cookie_value("\"a\""));
    }
}
