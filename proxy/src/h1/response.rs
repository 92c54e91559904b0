//! Writing a response head to a client on the HTTP/1.1 fast path.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{CONTENT_LENGTH, DATE};
use http::{StatusCode, response::Parts};

use super::encode::field;
use super::fields::RawFields;

/// How the response body is delimited for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delimit {
    /// No body is sent (HEAD, 1xx, 204, 304).
    NoBody,
    /// `Content-Length`, as the upstream said or as known here.
    Length,
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// How the body of a response (`parts` and the `fields` kept as lines) to a HEAD request (or not), with a body of
/// `exact` length (when known), is delimited, and the length to announce when it is known but unstated.
pub(crate) fn delimit(
    head_request: bool,
    parts: &Parts,
    fields: Option<&RawFields>,
    exact: Option<u64>,
) -> (Delimit, Option<u64>) {
    let status = parts.status;
    if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        (Delimit::NoBody, None)
    } else if fields.is_some_and(RawFields::has_length) || parts.headers.contains_key(CONTENT_LENGTH) {
        (Delimit::Length, None)
    } else if let Some(n) = exact {
        (Delimit::Length, Some(n))
    } else {
        (Delimit::Chunked, None)
    }
}

/// Appends the status line and header fields of `parts` (after the `fields` kept as lines) to `out`, with the
/// framing `delimit` and `length` ask for, a `Date` when the response has none (as hyper adds), and
/// `connection: close` when the connection ends after it.
pub(crate) fn head(
    out: &mut Vec<u8>,
    parts: &Parts,
    fields: Option<&RawFields>,
    delimit: Delimit,
    length: Option<u64>,
    close: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(fields) = fields {
        out.extend_from_slice(fields.as_bytes());
    }
    for (name, value) in &parts.headers {
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if let Some(n) = length {
        field(out, b"content-length", n.to_string().as_bytes());
    }
    if delimit == Delimit::Chunked {
        field(out, b"transfer-encoding", b"chunked");
    }
    if !fields.is_some_and(RawFields::has_date) && !parts.headers.contains_key(DATE) {
        DATE_CACHE.with(|cache| field(out, b"date", cache.borrow_mut().now()));
    }
    if close {
        field(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    /// Formatting an HTTP date per response costs more than the rest of the head: once a second per thread.
    static DATE_CACHE: RefCell<DateCache> = const { RefCell::new(DateCache { second: u64::MAX, text: String::new() }) };
}

struct DateCache {
    second: u64,
    text: String,
}

impl DateCache {
    fn now(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second {
            self.second = second;
            self.text = httpdate::fmt_http_date(now);
        }
        self.text.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use http::Response;

    use super::*;

    fn parts(status: u16, headers: &[(&str, &str)]) -> Parts {
        let mut builder = Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("response").into_parts().0
    }

    fn text(out: &[u8]) -> &str {
        std::str::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn framing_follows_the_request_the_status_and_the_body() {
        let ok = parts(200, &[]);
        assert_eq!(delimit(true, &ok, None, Some(3)), (Delimit::NoBody, None));
        assert_eq!(delimit(false, &parts(204, &[]), None, None), (Delimit::NoBody, None));
        assert_eq!(delimit(false, &parts(304, &[]), None, None), (Delimit::NoBody, None));
        assert_eq!(
            delimit(false, &parts(200, &[("content-length", "3")]), None, None),
            (Delimit::Length, None)
        );
        assert_eq!(delimit(false, &ok, None, Some(3)), (Delimit::Length, Some(3)));
        assert_eq!(delimit(false, &ok, None, None), (Delimit::Chunked, None));
    }

    #[test]
    fn fields_kept_as_lines_come_first_and_count_for_length_and_date() {
        let raw = "HTTP/1.1 200 OK\r\nDate: then\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n";
        let upstream = super::super::decode::parse_head(&mut bytes::BytesMut::from(raw), &http::Method::GET)
            .expect("valid")
            .expect("complete");
        let fields = upstream.fields.as_ref();
        assert!(fields.is_some());
        let mut parts = upstream.parts;
        parts
            .headers
            .insert("x-request-id", http::HeaderValue::from_static("7"));
        assert_eq!(delimit(false, &parts, fields, Some(2)), (Delimit::Length, None));
        let mut out = Vec::new();
        head(&mut out, &parts, fields, Delimit::Length, None, false);
        assert_eq!(
            text(&out),
            "HTTP/1.1 200 OK\r\nDate: then\r\nContent-Length: 2\r\nx-request-id: 7\r\n\r\n"
        );
    }

    #[test]
    fn head_has_status_fields_framing_date_and_close() {
        let mut out = Vec::new();
        head(
            &mut out,
            &parts(404, &[("x-a", "1")]),
            None,
            Delimit::Length,
            Some(12),
            true,
        );
        let written = text(&out);
        assert!(
            written.starts_with("HTTP/1.1 404 Not Found\r\nx-a: 1\r\ncontent-length: 12\r\ndate: "),
            "{written}"
        );
        assert!(written.ends_with(" GMT\r\nconnection: close\r\n\r\n"), "{written}");

        let mut out = Vec::new();
        head(
            &mut out,
            &parts(200, &[("date", "then")]),
            None,
            Delimit::Chunked,
            None,
            false,
        );
        assert_eq!(
            text(&out),
            "HTTP/1.1 200 OK\r\ndate: then\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }
}
