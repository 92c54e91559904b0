//! Writing a request head and body in HTTP/1.1 framing.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, request::Parts};

/// How the request body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// No body at all.
    None,
    /// `Content-Length` says how long it is.
    Length,
    /// `Transfer-Encoding: chunked`: the length is unknown until the client's body ends.
    Chunked,
}

/// Methods whose requests carry a body by definition: an empty one is announced as `content-length: 0`, as
/// servers that insist on a length for them expect.
fn expects_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

/// Encodes the request line and headers of `parts` (origin-form target) for a body of `exact` length (when
/// known) that is `empty` or not; returns the bytes and the body's framing. Framing headers the client sent are
/// kept when they agree with the body; otherwise they are set here.
pub(crate) fn head(parts: &Parts, exact: Option<u64>, empty: bool) -> (Vec<u8>, BodyFraming) {
    let headers = &parts.headers;
    let mut extra: Option<(&'static [u8], Bytes)> = None;
    let framing = if empty && exact.is_none_or(|n| n == 0) {
        if expects_body(&parts.method) && !headers.contains_key(CONTENT_LENGTH) {
            extra = Some((b"content-length", Bytes::from_static(b"0")));
        }
        BodyFraming::None
    } else if headers.contains_key(CONTENT_LENGTH) {
        // hyper's server checked the client's length: the body is exactly that long.
        BodyFraming::Length
    } else if let Some(n) = exact {
        extra = Some((b"content-length", Bytes::from(n.to_string())));
        BodyFraming::Length
    } else {
        extra = Some((TRANSFER_ENCODING.as_str().as_bytes(), Bytes::from_static(b"chunked")));
        BodyFraming::Chunked
    };
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut out = Vec::with_capacity(64 + target.len() + estimate(headers));
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        // The body's framing is ours to state: the client's transfer-coding was hop-by-hop and is gone already.
        if framing == BodyFraming::Chunked && name == CONTENT_LENGTH {
            continue;
        }
        field(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    if let Some((name, value)) = extra {
        field(&mut out, name, &value);
    }
    out.extend_from_slice(b"\r\n");
    (out, framing)
}

/// Appends one `name: value` line.
pub(super) fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn estimate(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

/// Appends the size line of a chunk of `len` bytes (the data and its CRLF follow).
pub(crate) fn chunk_start(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(format!("{len:x}\r\n").as_bytes());
}

/// Appends the last chunk and the trailer section (`trailers` may be empty).
pub(crate) fn chunked_end(out: &mut Vec<u8>, trailers: Option<&HeaderMap>) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request").into_parts().0
    }

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn get_without_body_has_no_framing_headers() {
        let (out, framing) = head(&parts(Method::GET, "/a?b=c", &[("host", "x")]), Some(0), true);
        assert_eq!(text(&out), "GET /a?b=c HTTP/1.1\r\nhost: x\r\n\r\n");
        assert_eq!(framing, BodyFraming::None);
    }

    #[test]
    fn empty_post_says_content_length_zero() {
        let (out, framing) = head(&parts(Method::POST, "/", &[]), Some(0), true);
        assert_eq!(text(&out), "POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(framing, BodyFraming::None);
    }

    #[test]
    fn known_length_is_kept_or_added() {
        let (out, framing) = head(&parts(Method::PUT, "/", &[("content-length", "5")]), Some(5), false);
        assert_eq!(text(&out), "PUT / HTTP/1.1\r\ncontent-length: 5\r\n\r\n");
        assert_eq!(framing, BodyFraming::Length);
        let (out, framing) = head(&parts(Method::POST, "/", &[]), Some(7), false);
        assert_eq!(text(&out), "POST / HTTP/1.1\r\ncontent-length: 7\r\n\r\n");
        assert_eq!(framing, BodyFraming::Length);
    }

    #[test]
    fn unknown_length_is_chunked() {
        let (out, framing) = head(&parts(Method::POST, "/up", &[("x-a", "1")]), None, false);
        assert_eq!(
            text(&out),
            "POST /up HTTP/1.1\r\nx-a: 1\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        assert_eq!(framing, BodyFraming::Chunked);
    }

    #[test]
    fn repeated_fields_stay_on_their_own_lines() {
        let (out, _) = head(&parts(Method::GET, "/", &[("x-a", "1"), ("x-a", "2")]), Some(0), true);
        assert_eq!(text(&out), "GET / HTTP/1.1\r\nx-a: 1\r\nx-a: 2\r\n\r\n");
    }

    #[test]
    fn chunks_and_trailers() {
        let mut out = Vec::new();
        chunk_start(&mut out, 26);
        out.extend_from_slice(b"abcdefghijklmnopqrstuvwxyz\r\n");
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().expect("value"));
        chunked_end(&mut out, Some(&trailers));
        assert_eq!(
            text(&out),
            "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\ngrpc-status: 0\r\n\r\n"
        );
        let mut out = Vec::new();
        chunked_end(&mut out, None);
        assert_eq!(text(&out), "0\r\n\r\n");
    }
}
