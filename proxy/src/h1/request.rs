//! Reading a client's request head on the HTTP/1.1 fast path, or deciding to leave the request to hyper.

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::{Method, Request, Uri, Version};

use super::decode::{DecodeError, MAX_HEADERS, field_map, record_spans};

/// Room left in a request's header map for the fields the proxy adds: `x-forwarded-for`, `-proto` and `-host`,
/// and the request id (see `decode::RESPONSE_SPARE` on why no more).
const REQUEST_SPARE: usize = 4;

/// The first bytes of an HTTP/2 connection with prior knowledge.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// What the front of a client's stream holds.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per request and unpacked at once; boxing the request would allocate per request"
)]
pub(crate) enum Parsed {
    /// A complete request without a body; its head has been taken off the buffer.
    Request {
        /// The request, its body empty.
        request: Request<()>,
        /// The client lets the connection carry another request after this one.
        keep_alive: bool,
    },
    /// A request the fast path leaves to hyper, with the buffer untouched: one with a body, an upgrade, an
    /// `Expect`, trailers asked for, CONNECT, HTTP/1.0, or HTTP/2's preface.
    HandOver,
}

/// A request head that cannot be served: the client gets `status` and the connection closes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// The head is larger than `[limits] max_header_bytes` (431).
    #[error("request head is larger than the {limit}-byte limit")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Not a valid HTTP/1.1 request head (400).
    #[error("invalid request head: {0}")]
    Invalid(String),
}

impl RequestError {
    /// The status the client is answered with.
    pub(crate) fn status(&self) -> http::StatusCode {
        match self {
            RequestError::TooLarge { .. } => http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            RequestError::Invalid(_) => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// Parses the request head at the front of `buf`; `Ok(None)`: incomplete, read more.
pub(crate) fn parse(buf: &mut BytesMut, max_head: usize) -> Result<Option<Parsed>, RequestError> {
    let prefix = buf.len().min(H2_PREFACE.len());
    if buf.get(..prefix) == H2_PREFACE.get(..prefix) {
        return Ok((prefix == H2_PREFACE.len()).then_some(Parsed::HandOver));
    }
    let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut request, buf, &mut fields)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > max_head => {
            return Err(RequestError::TooLarge { limit: max_head });
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::TooLarge { limit: max_head }),
        Err(err) => return Err(RequestError::Invalid(err.to_string())),
    };
    if len > max_head {
        return Err(RequestError::TooLarge { limit: max_head });
    }
    if request.version != Some(1) || request.method == Some("CONNECT") || request.headers.iter().any(needs_hyper) {
        return Ok(Some(Parsed::HandOver));
    }
    let method = Method::from_bytes(request.method.unwrap_or_default().as_bytes())
        .map_err(|err| RequestError::Invalid(err.to_string()))?;
    let path = request.path.unwrap_or_default().as_bytes();
    let path_at = path.as_ptr().addr().wrapping_sub(buf.as_ptr().addr());
    let path_end = path_at.wrapping_add(path.len());
    let (spans, controls) = record_spans(request.headers, buf);
    // Fields a `Connection` header names are left for the proxy's header rules to strip, with the rest.
    let strip = controls.hop_by_hop && !controls.names_fields;

    let block = buf.split_to(len).freeze();
    let target = block
        .get(path_at..path_end)
        .map(|path| block.slice_ref(path))
        .ok_or_else(|| RequestError::Invalid("request target".to_owned()))?;
    let uri = Uri::from_maybe_shared(target).map_err(|err| RequestError::Invalid(err.to_string()))?;
    let headers = field_map(&block, &spans, REQUEST_SPARE, strip).map_err(|err| match err {
        DecodeError::InvalidHeader { name } => RequestError::Invalid(format!("invalid header `{name}`")),
        other => RequestError::Invalid(other.to_string()),
    })?;
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    parts.headers = headers;
    Ok(Some(Parsed::Request {
        request: Request::from_parts(parts, ()),
        keep_alive: !controls.close,
    }))
}

/// A field that takes the request off the fast path: a body (`Content-Length` other than 0,
/// `Transfer-Encoding`), a protocol switch, `Expect: 100-continue`, or `TE: trailers` (hyper sends a response's
/// trailers only to clients that ask).
fn needs_hyper(field: &httparse::Header<'_>) -> bool {
    let name = field.name;
    if name.eq_ignore_ascii_case("content-length") {
        return field.value.trim_ascii() != b"0";
    }
    name.eq_ignore_ascii_case("transfer-encoding")
        || name.eq_ignore_ascii_case("upgrade")
        || name.eq_ignore_ascii_case("expect")
        || (name.eq_ignore_ascii_case("te") && has_token(field.value, b"trailers"))
        || (name.eq_ignore_ascii_case("connection") && has_token(field.value, b"upgrade"))
}

/// Whether a comma-separated field value lists `token` (case-insensitively).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Option<Parsed>, RequestError> {
        parse(&mut BytesMut::from(text), 16 * 1024)
    }

    fn request(text: &str) -> (Request<()>, bool) {
        match parse_str(text) {
            Ok(Some(Parsed::Request { request, keep_alive })) => (request, keep_alive),
            other => panic!("not a fast-path request: {other:?}"),
        }
    }

    fn handed_over(text: &str) -> bool {
        matches!(parse_str(text), Ok(Some(Parsed::HandOver)))
    }

    #[test]
    fn a_bodiless_request_is_parsed_and_its_head_consumed() {
        let mut buf = BytesMut::from("GET /a/b?c=d HTTP/1.1\r\nHost: x.test\r\nX-Two: 1\r\nX-Two: 2\r\n\r\nGET /next");
        let Ok(Some(Parsed::Request { request, keep_alive })) = parse(&mut buf, 1024) else {
            panic!("not parsed");
        };
        assert!(keep_alive);
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri(), "/a/b?c=d");
        assert_eq!(request.headers()["host"], "x.test");
        assert_eq!(request.headers().get_all("x-two").iter().count(), 2);
        assert_eq!(&buf[..], b"GET /next", "the next pipelined request stays");
    }

    #[test]
    fn connection_close_ends_keep_alive() {
        assert!(!request("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n").1);
        assert!(request("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").1);
    }

    #[test]
    fn hop_by_hop_fields_stay_with_this_hop() {
        let (req, keep_alive) = request("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\n\r\n");
        assert!(keep_alive);
        assert_eq!(req.headers().len(), 1, "{:?}", req.headers());
        // Named fields are only known by name: the proxy's header rules strip those, and the rest with them.
        let (req, _) = request("GET / HTTP/1.1\r\nConnection: x-hop\r\nX-Hop: 1\r\n\r\n");
        assert_eq!(req.headers().len(), 2);
    }

    #[test]
    fn absolute_form_targets_are_kept() {
        let (req, _) = request("GET http://x.test:8080/p HTTP/1.1\r\n\r\n");
        assert_eq!(req.uri().host(), Some("x.test"));
        assert_eq!(req.uri().path(), "/p");
    }

    #[test]
    fn bodies_upgrades_and_the_like_are_left_to_hyper_untouched() {
        for text in [
            "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
            "POST /grpc HTTP/1.1\r\nTE: trailers\r\n\r\n",
            "CONNECT x.test:443 HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.0\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            let mut buf = BytesMut::from(text);
            assert!(matches!(parse(&mut buf, 1024), Ok(Some(Parsed::HandOver))), "{text:?}");
            assert_eq!(&buf[..], text.as_bytes(), "the buffer is untouched for hyper");
        }
        assert!(!handed_over("GET / HTTP/1.1\r\nTE: gzip\r\n\r\n"));
    }

    #[test]
    fn partial_heads_and_preface_prefixes_wait_for_more() {
        assert!(matches!(parse_str("GET / HTTP/1.1\r\nHost: x"), Ok(None)));
        assert!(matches!(parse_str("PRI * HT"), Ok(None)));
    }

    #[test]
    fn garbage_is_400_and_oversized_heads_431() {
        let err = parse_str("PROXY TCP4 203.0.113.9 10.0.0.1 5555 80\r\n\r\n").expect_err("invalid");
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
        let big = format!("GET / HTTP/1.1\r\nx-big: {}\r\n", "a".repeat(2000));
        let err = parse(&mut BytesMut::from(big.as_str()), 1024).expect_err("too large");
        assert_eq!(err.status(), http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
}
