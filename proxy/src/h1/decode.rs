//! Decoding of upstream HTTP/1.x responses: the response head with its body framing, and chunked bodies.
//!
//! Header values and body data are slices of the read buffer, never copies: a proxy passes them on unchanged.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode, Version};
use smallvec::SmallVec;

use super::controls::{Controls, Length, Role, parse_number};
use super::fields::{self, RawFields, Shape};

/// The largest response head accepted (status line + headers); more is a protocol error.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// At most this many header fields in a response head or a trailer section.
pub(crate) const MAX_HEADERS: usize = 128;
/// The longest chunk-size line: extensions are ignored, so only a misbehaving upstream needs more.
const MAX_CHUNK_LINE: usize = 4096;

/// How the body of a response is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body, whatever the headers say.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding, decoded by [`Chunked`].
    Chunked,
    /// Everything until the upstream closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct Head {
    /// Status, version (HTTP/1.0 or HTTP/1.1) and the header fields as received, without the hop-by-hop ones
    /// (RFC 9110 section 7.6.1), which the next hop must not see. They stay when the response opens a tunnel (a
    /// protocol switch needs `Upgrade`), and when `Connection` names further fields: stripping those is left to
    /// the proxy's header rules.
    ///
    /// When `fields` holds the end-to-end fields as lines, the map is empty (with room for what the proxy adds).
    pub(crate) parts: http::response::Parts,
    /// The end-to-end fields as the upstream wrote them, when it wrote them in canonical form and no tunnel or
    /// `Connection`-named field needs them in the map.
    pub(crate) fields: Option<RawFields>,
    /// How the body that follows is delimited.
    pub(crate) framing: Framing,
    /// The connection can carry another request after this response's body (persistence, RFC 9112 section 9.3).
    pub(crate) keep_alive: bool,
}

/// Why a response could not be decoded (reasons are shown to operators in logs and 502 bodies).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    /// The status line or a header field line is malformed.
    #[error("invalid response head: {0}")]
    InvalidHead(httparse::Error),
    /// The status code is outside 100..=999.
    #[error("invalid response status code {0:03}")]
    InvalidStatus(u16),
    /// The response head exceeds [`MAX_HEAD`].
    #[error("response head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    /// The response head has more than [`MAX_HEADERS`] fields.
    #[error("more than {MAX_HEADERS} header fields in response head")]
    TooManyHeaders,
    /// A header field name or value that `http` refuses.
    #[error("invalid header field {name:?}")]
    InvalidHeader {
        /// The field's name, lossily decoded.
        name: String,
    },
    /// A `Content-Length` that is not one non-negative decimal number, or several different ones.
    #[error("invalid or conflicting Content-Length")]
    InvalidContentLength,
    /// A chunk-size line that is not hex digits, optional extensions and CRLF.
    #[error("invalid chunk size line")]
    InvalidChunkSize,
    /// A chunk-size line longer than `MAX_CHUNK_LINE`.
    #[error("chunk size line longer than {MAX_CHUNK_LINE} bytes")]
    ChunkLineTooLong,
    /// Chunk data not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    InvalidChunk,
    /// A malformed trailer section (or one with more than [`MAX_HEADERS`] fields).
    #[error("invalid chunked trailer section: {0}")]
    InvalidTrailers(httparse::Error),
    /// A trailer section larger than [`MAX_HEAD`].
    #[error("chunked trailer section larger than {MAX_HEAD} bytes")]
    TrailersTooLarge,
}

/// Parses one response head from the front of `buf`. `Ok(None)`: incomplete, read more (buf untouched).
/// On success the head's bytes are removed from `buf` (the body, if any, starts at buf[0]).
pub(crate) fn parse_head(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, DecodeError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let len =
        match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut response, buf, &mut fields) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(DecodeError::HeadTooLarge),
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(DecodeError::TooManyHeaders),
            Err(e) => return Err(DecodeError::InvalidHead(e)),
        };
    // A head that arrived in one read is held to the same bound as one that trickled in.
    if len > MAX_HEAD {
        return Err(DecodeError::HeadTooLarge);
    }
    let version = match response.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(DecodeError::InvalidHead(httparse::Error::Version)),
    };
    let code = response.code.unwrap_or_default();
    let status = StatusCode::from_u16(code).map_err(|_| DecodeError::InvalidStatus(code))?;
    let (controls, shape) = fields::survey(response.headers, buf);
    // A successful CONNECT turns the connection into a tunnel, like a 101.
    let tunnel = status == StatusCode::SWITCHING_PROTOCOLS || (method == Method::CONNECT && status.is_success());
    let (framing, keep_alive) = delimit(method, status, version, tunnel, &controls)?;
    // A tunnel keeps its hop-by-hop fields (a protocol switch needs `Upgrade`), and the fields `Connection` names
    // are stripped by the proxy's header rules: both need a map.
    let strip = controls.hop_by_hop && !tunnel && !controls.names_fields;
    // A `Content-Length` beside `Transfer-Encoding` is wrong for the decoded body the next hop gets, and would let
    // the body's bytes pass for a further response (RFC 9112 section 6.3): it is removed, from a map.
    let stale_length = controls.transfer_encoding && controls.length != Length::Absent;
    let as_lines = !tunnel && !controls.names_fields && !stale_length;
    let run = match shape {
        Shape::Run(run) if as_lines => Some(run),
        _ => None,
    };
    // The fields borrow `buf`, which must be split before they can become `Bytes`: keep positions only.
    let spans = if run.is_some() {
        Spans::new()
    } else {
        record_spans(response.headers, buf).0
    };
    let mut block = buf.split_to(len);
    let kept = match shape {
        Shape::Gaps if as_lines => Some(fields::compact(&mut block, &spans)),
        _ => run,
    };
    let block = block.freeze();
    let (headers, fields) = match kept {
        Some(kept) => (
            HeaderMap::with_capacity(RESPONSE_SPARE),
            Some(RawFields::new(&block, &kept)),
        ),
        None => {
            let mut headers = field_map(&block, &spans, RESPONSE_SPARE, strip)?;
            if stale_length {
                headers.remove(CONTENT_LENGTH);
            }
            (headers, None)
        }
    };
    let (mut parts, ()) = Response::new(()).into_parts();
    parts.status = status;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(Head {
        parts,
        fields,
        framing,
        keep_alive,
    }))
}

/// Framing and persistence of a response, from RFC 9112 sections 6.3 and 9.3.
fn delimit(
    method: &Method,
    status: StatusCode,
    version: Version,
    tunnel: bool,
    controls: &Controls,
) -> Result<(Framing, bool), DecodeError> {
    let framing = if method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || tunnel
    {
        Framing::Empty
    } else if controls.transfer_encoding {
        if controls.chunked_last {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else {
        match controls.length {
            Length::Valid(n) => Framing::Length(n),
            Length::Invalid => return Err(DecodeError::InvalidContentLength),
            Length::Absent => Framing::UntilClose,
        }
    };

    let persistent = !controls.close && (version == Version::HTTP_11 || controls.keep_alive);
    // RFC 9112 section 6.1: Transfer-Encoding next to Content-Length, or in HTTP/1.0, means framing cannot be
    // trusted (smuggling), so nothing after this response may be read from the connection.
    let faulty = controls.transfer_encoding && (controls.length != Length::Absent || version == Version::HTTP_10);
    let keep_alive = persistent && !faulty && !tunnel && framing != Framing::UntilClose;
    Ok((framing, keep_alive))
}

/// Where one field line's name and value lie in the buffer it was parsed from. Offsets are `u32`, far beyond any
/// head sluice reads ([`MAX_HEAD`] for responses, the configured limit for requests), so that the usual head's spans
/// stay small to build and to move.
#[derive(Clone, Copy)]
pub(super) struct FieldSpan {
    name: [u32; 2],
    value: [u32; 2],
    pub(super) role: Role,
}

impl FieldSpan {
    /// Where the name lies.
    pub(super) fn name(&self) -> Range<usize> {
        self.name[0] as usize..self.name[1] as usize
    }

    /// Where the value lies.
    pub(super) fn value(&self) -> Range<usize> {
        self.value[0] as usize..self.value[1] as usize
    }
}

/// The spans of one head: on the stack for the usual dozen or so fields (no allocation, and no zeroing of room for
/// all 128, which cost more than the whole parse), on the heap beyond.
pub(super) type Spans = SmallVec<[FieldSpan; 16]>;

/// Records where each parsed field lies in `base`, and what the framing and connection fields say.
pub(super) fn record_spans(fields: &[httparse::Header<'_>], base: &[u8]) -> (Spans, Controls) {
    let offsets = |part: &[u8]| {
        if part.is_empty() {
            return [0, 0];
        }
        // A part outside `base` (impossible with httparse) becomes a range `field_map` rejects.
        let start = part.as_ptr().addr().wrapping_sub(base.as_ptr().addr());
        let start = u32::try_from(start).unwrap_or(u32::MAX);
        let end = u32::try_from(part.len()).map_or(u32::MAX, |len| start.saturating_add(len));
        [start, end]
    };
    let mut controls = Controls::default();
    let spans = fields
        .iter()
        .map(|field| {
            let role = Role::of(field.name.as_bytes());
            controls.note(role, field.value);
            FieldSpan {
                name: offsets(field.name.as_bytes()),
                value: offsets(field.value),
                role,
            }
        })
        .collect();
    (spans, controls)
}

/// Room left in a response's header map for the fields the proxy adds (the request id and a sticky cookie):
/// growing a map reallocates both its tables, which costs more than building it. No more than that: a map of up
/// to about nine fields fits the allocator's small-block fast path, a larger one does not.
pub(super) const RESPONSE_SPARE: usize = 2;

/// Builds the header map of a head or trailer section, with room for `spare` more fields, and without the
/// hop-by-hop fields when `strip`; values share `block`'s memory.
pub(super) fn field_map(
    block: &Bytes,
    spans: &[FieldSpan],
    spare: usize,
    strip: bool,
) -> Result<HeaderMap, DecodeError> {
    let mut map = HeaderMap::with_capacity(spans.len() + spare);
    for span in spans.iter().filter(|span| !strip || span.role.passed_on()) {
        let name = block.get(span.name()).unwrap_or_default();
        let invalid = || DecodeError::InvalidHeader {
            name: String::from_utf8_lossy(name).into_owned(),
        };
        let value = block
            .get(span.value())
            .map(|value| block.slice_ref(value))
            .ok_or_else(invalid)?;
        let name = HeaderName::from_bytes(name).map_err(|_| invalid())?;
        let value = HeaderValue::from_maybe_shared(value).map_err(|_| invalid())?;
        map.append(name, value);
    }
    Ok(map)
}

/// Incremental chunked-body decoder (RFC 9112 section 7.1).
#[derive(Debug)]
pub(crate) struct Chunked {
    state: State,
}

/// Where in the chunked body the decoder is.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Reading a chunk-size line, of which `scanned` bytes are known to hold no LF.
    Size { scanned: usize },
    /// Inside a chunk's data, with this many bytes to go.
    Data(u64),
    /// Expecting the CRLF that ends a chunk's data.
    DataEnd,
    /// After the last chunk: reading the trailer section.
    Trailers,
    /// The body is complete.
    End,
}

/// One step of a chunked body.
#[derive(Debug, PartialEq)]
pub(crate) enum Decoded {
    /// Some body bytes, never empty.
    Data(Bytes),
    /// The trailer section, when it has at least one field.
    Trailers(HeaderMap),
    /// The body is complete.
    End,
}

impl Chunked {
    /// A decoder at the start of a chunked body.
    pub(crate) fn new() -> Self {
        Chunked {
            state: State::Size { scanned: 0 },
        }
    }

    /// Decodes what it can from the front of `buf`, consuming those bytes. `Ok(None)`: need more bytes.
    /// Never returns an empty `Data`.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        loop {
            match self.state {
                State::Size { scanned } => {
                    let Some(size) = chunk_size(buf, scanned)? else {
                        self.state = State::Size {
                            scanned: buf.len().min(MAX_CHUNK_LINE),
                        };
                        return Ok(None);
                    };
                    self.state = if size == 0 { State::Trailers } else { State::Data(size) };
                }
                State::Data(remaining) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    // Streamed: hand out whatever part of the chunk is here rather than wait for all of it.
                    let available = u64::try_from(buf.len()).unwrap_or(u64::MAX);
                    let take = remaining.min(available);
                    let left = remaining - take;
                    let data = buf.split_to(usize::try_from(take).unwrap_or(buf.len())).freeze();
                    self.state = if left == 0 { State::DataEnd } else { State::Data(left) };
                    return Ok(Some(Decoded::Data(data)));
                }
                State::DataEnd => match buf.get(..2) {
                    Some(b"\r\n") => {
                        buf.advance(2);
                        self.state = State::Size { scanned: 0 };
                    }
                    None if buf.first().is_none_or(|&b| b == b'\r') => return Ok(None),
                    _ => return Err(DecodeError::InvalidChunk),
                },
                State::Trailers => {
                    let Some(trailers) = trailer_section(buf)? else {
                        return Ok(None);
                    };
                    self.state = State::End;
                    if !trailers.is_empty() {
                        return Ok(Some(Decoded::Trailers(trailers)));
                    }
                }
                State::End => return Ok(Some(Decoded::End)),
            }
        }
    }
}

/// Consumes a chunk-size line and returns the size; the first `scanned` bytes are known to hold no LF.
fn chunk_size(buf: &mut BytesMut, scanned: usize) -> Result<Option<u64>, DecodeError> {
    let Some(lf) = buf
        .iter()
        .take(MAX_CHUNK_LINE)
        .skip(scanned)
        .position(|&b| b == b'\n')
        .map(|lf| lf + scanned)
    else {
        return if buf.len() >= MAX_CHUNK_LINE {
            Err(DecodeError::ChunkLineTooLong)
        } else {
            Ok(None)
        };
    };
    let line = buf.get(..lf).and_then(|line| line.strip_suffix(b"\r"));
    let size = line.and_then(parse_size_line).ok_or(DecodeError::InvalidChunkSize)?;
    buf.advance(lf + 1);
    Ok(Some(size))
}

/// Parses `chunk-size [ chunk-ext ]` (without CRLF); extensions are ignored.
fn parse_size_line(line: &[u8]) -> Option<u64> {
    // Parsers disagree on where a line with a bare CR or other control byte ends: refusing it avoids smuggling.
    if line.iter().any(|&b| b.is_ascii_control() && b != b'\t') {
        return None;
    }
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let (hex, rest) = line.split_at_checked(digits)?;
    let size = parse_number(hex, 16)?;
    let rest = rest.trim_ascii_start();
    (rest.is_empty() || rest.starts_with(b";")).then_some(size)
}

/// Consumes the trailer section; `Ok(None)`: incomplete. An empty map means there were no trailer fields.
fn trailer_section(buf: &mut BytesMut) -> Result<Option<HeaderMap>, DecodeError> {
    // Nearly every chunked body ends without trailers: skip the field parser and its buffers then.
    if buf.starts_with(b"\r\n") {
        buf.advance(2);
        return Ok(Some(HeaderMap::new()));
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (len, spans) = match httparse::parse_headers(buf, &mut fields) {
        Ok(httparse::Status::Complete((len, parsed))) => (len, record_spans(parsed, buf).0),
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(DecodeError::TrailersTooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(DecodeError::InvalidTrailers(e)),
    };
    if len > MAX_HEAD {
        return Err(DecodeError::TrailersTooLarge);
    }
    let block = buf.split_to(len).freeze();
    field_map(&block, &spans, 0, false).map(Some)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    fn head(raw: &str) -> Result<Option<Head>, DecodeError> {
        parse_head(&mut BytesMut::from(raw), &Method::GET)
    }

    /// The head of `raw`, with any fields kept as lines put in the map.
    fn complete(raw: &str, method: &Method) -> Head {
        let mut head = parse_head(&mut BytesMut::from(raw), method).unwrap().unwrap();
        if let Some(fields) = head.fields.take() {
            fields.append_to(&mut head.parts.headers);
        }
        head
    }

    /// The head of `raw`, as parsed.
    fn lines(raw: &str) -> Head {
        parse_head(&mut BytesMut::from(raw), &Method::GET).unwrap().unwrap()
    }

    #[test]
    fn canonical_fields_stay_lines_without_the_hop_by_hop_ones() {
        let raw = "HTTP/1.1 200 OK\r\nServer: nginx\r\nConnection: keep-alive\r\nDate: Mon, 23 Nov 2026 17:00:00 GMT\r\n\
                   Keep-Alive: timeout=5\r\nContent-Length: 3\r\nX-Request-Id: abc\r\n\r\nok\n";
        let mut buf = BytesMut::from(raw);
        let head = parse_head(&mut buf, &Method::GET).unwrap().unwrap();
        assert_eq!(&buf[..], b"ok\n", "the body stays in the buffer");
        assert!(head.parts.headers.is_empty());
        let fields = head.fields.expect("kept as lines");
        assert_eq!(
            std::str::from_utf8(fields.as_bytes()).unwrap(),
            "Server: nginx\r\nDate: Mon, 23 Nov 2026 17:00:00 GMT\r\nContent-Length: 3\r\nX-Request-Id: abc\r\n"
        );
        assert!(fields.has_date() && fields.has_length());
        assert!(fields.contains(&HeaderName::from_static("x-request-id")));
        assert!(!fields.contains(&HeaderName::from_static("x-request")));
        let mut map = HeaderMap::new();
        fields.append_to(&mut map);
        assert_eq!(map.len(), 4);
        assert_eq!(map["x-request-id"], "abc");

        let head = lines("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        let fields = head.fields.expect("kept as lines");
        assert!(fields.as_bytes().is_empty() && !fields.has_date() && !fields.has_length());
    }

    #[test]
    fn other_forms_tunnels_and_named_fields_go_in_the_map() {
        for raw in [
            "HTTP/1.1 200 OK\r\nX-A:1\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-A:  1\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-A: 1 \r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\nX-A: 1\nContent-Length: 0\n\n",
            "HTTP/1.1 200 OK\r\nX-A:\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nConnection: x-a\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX-A: 1\r\n\r\n",
        ] {
            let head = lines(raw);
            assert!(head.fields.is_none(), "{raw:?}");
            assert!(head.parts.headers.contains_key("x-a"), "{raw:?}");
        }
        // A line that is not passed on may take any form.
        let head = lines("HTTP/1.1 200 OK\r\nKeep-Alive:5\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            head.fields.expect("kept as lines").as_bytes(),
            b"X-A: 1\r\nContent-Length: 0\r\n"
        );
    }

    proptest::proptest! {
        /// Whatever fields a head has, and in whichever form, the fields that reach the next hop are the same.
        #[test]
        fn lines_and_map_carry_the_same_fields(
            fields in proptest::collection::vec(
                (proptest::sample::select(vec!["X-A", "x-b", "Date", "Set-Cookie", "Connection", "Keep-Alive",
                    "TE", "Upgrade", "Content-Length", "Transfer-Encoding"]),
                 "[a-z0-9=;]{1,8}"),
                0..12,
            )
        ) {
            let canonical: String = fields.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
            let other: String = fields.iter().map(|(n, v)| format!("{n}:{v}\r\n")).collect();
            let parse = |lines: &str| parse_head(&mut BytesMut::from(format!("HTTP/1.1 200 OK\r\n{lines}\r\n").as_str()), &Method::GET);
            match (parse(&canonical), parse(&other)) {
                (Ok(Some(mut kept)), Ok(Some(mut mapped))) => {
                    // Only lines that are not passed on may be kept in the other form.
                    if let Some(fields) = mapped.fields.take() {
                        fields.append_to(&mut mapped.parts.headers);
                    }
                    let has_date = kept.fields.as_ref().map(RawFields::has_date);
                    if let Some(fields) = kept.fields.take() {
                        fields.append_to(&mut kept.parts.headers);
                        proptest::prop_assert_eq!(has_date, Some(mapped.parts.headers.contains_key("date")));
                    }
                    proptest::prop_assert_eq!(kept.parts.headers, mapped.parts.headers);
                    proptest::prop_assert_eq!(kept.framing, mapped.framing);
                    proptest::prop_assert_eq!(kept.keep_alive, mapped.keep_alive);
                }
                (Err(_), Err(_)) => {}
                (a, b) => proptest::prop_assert!(false, "{a:?} vs {b:?}"),
            }
        }
    }

    fn framing(raw: &str) -> (Framing, bool) {
        let head = complete(raw, &Method::GET);
        (head.framing, head.keep_alive)
    }

    #[test]
    fn head_request_has_no_body() {
        let head = complete("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", &Method::HEAD);
        assert_eq!((head.framing, head.keep_alive), (Framing::Empty, true));
        let head = complete("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &Method::HEAD);
        assert_eq!(head.framing, Framing::Empty);
    }

    #[test]
    fn no_content_and_not_modified_have_no_body() {
        assert_eq!(framing("HTTP/1.1 204 No Content\r\n\r\n"), (Framing::Empty, true));
        assert_eq!(
            framing("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"),
            (Framing::Empty, true)
        );
    }

    #[test]
    fn informational_has_no_body() {
        assert_eq!(framing("HTTP/1.1 100 Continue\r\n\r\n"), (Framing::Empty, true));
        assert_eq!(
            framing("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"),
            (Framing::Empty, true)
        );
    }

    #[test]
    fn tunnels_end_persistence() {
        let raw = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(framing(raw), (Framing::Empty, false));
        let head = complete("HTTP/1.1 200 OK\r\n\r\n", &Method::CONNECT);
        assert_eq!((head.framing, head.keep_alive), (Framing::Empty, false));
    }

    #[test]
    fn transfer_encoding_chunked() {
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (Framing::Chunked, true)
        );
        let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: , CHUNKED \r\n\r\n";
        assert_eq!(framing(raw), (Framing::Chunked, true));
    }

    #[test]
    fn transfer_encoding_not_ending_in_chunked_reads_until_close() {
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            (Framing::UntilClose, false)
        );
        let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(framing(raw), (Framing::UntilClose, false));
    }

    #[test]
    fn transfer_encoding_with_content_length_closes() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(framing(raw), (Framing::Chunked, false));
    }

    #[test]
    fn transfer_encoding_in_http10_closes() {
        let raw = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(framing(raw), (Framing::Chunked, false));
    }

    #[test]
    fn content_length() {
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            (Framing::Length(5), true)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            (Framing::Length(0), true)
        );
        let max = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", u64::MAX);
        assert_eq!(framing(&max), (Framing::Length(u64::MAX), true));
    }

    #[test]
    fn hop_by_hop_fields_are_left_out_unless_a_tunnel_or_connection_names_more() {
        let raw = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
                   Transfer-Encoding: chunked\r\nX-Kept: 1\r\nContent-Type: text/plain\r\n\r\n";
        let head = complete(raw, &Method::GET);
        assert_eq!(head.framing, Framing::Chunked);
        let names: Vec<&str> = head.parts.headers.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["x-kept", "content-type"]);

        let raw = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
        let head = complete(raw, &Method::GET);
        assert_eq!(head.parts.headers["upgrade"], "websocket");
        assert_eq!(head.parts.headers["connection"], "Upgrade");

        // The fields `Connection` names are only known by name; the proxy's header rules strip them all.
        let raw = "HTTP/1.1 200 OK\r\nConnection: x-hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nContent-Length: 0\r\n\r\n";
        let head = complete(raw, &Method::GET);
        assert_eq!(head.parts.headers.len(), 4);
    }

    #[test]
    fn a_length_beside_a_transfer_coding_is_not_passed_on() {
        for coding in ["chunked", "gzip"] {
            for length in ["0", "abc"] {
                let raw = format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: {coding}\r\nContent-Length: {length}\r\nX-A: 1\r\n\r\n"
                );
                let head = lines(&raw);
                assert!(head.fields.is_none(), "{raw:?}");
                assert!(!head.parts.headers.contains_key(CONTENT_LENGTH), "{raw:?}");
                assert!(!head.keep_alive, "{raw:?}");
                assert_eq!(head.parts.headers["x-a"], "1");
            }
        }
    }

    #[test]
    fn repeated_equal_content_lengths_are_one() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\n";
        let head = complete(raw, &Method::GET);
        assert_eq!(head.framing, Framing::Length(5));
        assert_eq!(head.parts.headers.get_all(CONTENT_LENGTH).iter().count(), 2);
    }

    #[test]
    fn bad_content_lengths_are_errors() {
        let values = [
            "5\r\nContent-Length: 6",
            "5, 6",
            "+5",
            "-1",
            "18446744073709551616",
            "0x5",
            "5 5",
            "5,",
            "",
        ];
        for value in values {
            let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\n");
            assert!(
                matches!(head(&raw), Err(DecodeError::InvalidContentLength)),
                "{value:?}"
            );
        }
    }

    #[test]
    fn no_framing_reads_until_close() {
        assert_eq!(framing("HTTP/1.1 200 OK\r\n\r\n"), (Framing::UntilClose, false));
        assert_eq!(
            framing("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n"),
            (Framing::UntilClose, false)
        );
    }

    #[test]
    fn keep_alive_rules() {
        let cases = [
            ("HTTP/1.1", "", true),
            ("HTTP/1.1", "Connection: close\r\n", false),
            ("HTTP/1.1", "Connection: Keep-Alive, Upgrade\r\n", true),
            ("HTTP/1.1", "Connection: upgrade\r\nConnection: x, CLOSE\r\n", false),
            ("HTTP/1.0", "", false),
            ("HTTP/1.0", "Connection: keep-alive\r\n", true),
            ("HTTP/1.0", "Connection: Upgrade,KEEP-ALIVE\r\n", true),
            ("HTTP/1.0", "Connection: keep-alive, close\r\n", false),
        ];
        for (version, connection, keep_alive) in cases {
            let raw = format!("{version} 200 OK\r\n{connection}Content-Length: 0\r\n\r\n");
            assert_eq!(
                framing(&raw),
                (Framing::Length(0), keep_alive),
                "{version} {connection:?}"
            );
        }
    }

    #[test]
    fn status_version_and_headers() {
        let head = complete("HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n", &Method::GET);
        assert_eq!(head.parts.status, StatusCode::NOT_FOUND);
        assert_eq!(head.parts.version, Version::HTTP_10);
        let head = complete("HTTP/1.1 599\r\nContent-Length: 0\r\n\r\n", &Method::GET);
        assert_eq!(head.parts.status.as_u16(), 599);
        assert_eq!(head.parts.version, Version::HTTP_11);
    }

    #[test]
    fn invalid_heads() {
        assert!(matches!(
            head("HTTP/2.0 200 OK\r\n\r\n"),
            Err(DecodeError::InvalidHead(_))
        ));
        assert!(matches!(
            head("HTTP/1.1 2x0 OK\r\n\r\n"),
            Err(DecodeError::InvalidHead(_))
        ));
        assert!(matches!(
            head("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"),
            Err(DecodeError::InvalidHead(_))
        ));
        assert!(matches!(head("<html>\r\n\r\n"), Err(DecodeError::InvalidHead(_))));
        assert!(matches!(
            head("HTTP/1.1 099 Low\r\n\r\n"),
            Err(DecodeError::InvalidStatus(99))
        ));
        let message = head("HTTP/1.1 099 Low\r\n\r\n").unwrap_err().to_string();
        assert_eq!(message, "invalid response status code 099");
    }

    #[test]
    fn partial_head_is_not_consumed() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\n";
        for end in 0..raw.len() {
            let mut buf = BytesMut::from(&raw[..end]);
            assert!(parse_head(&mut buf, &Method::GET).unwrap().is_none(), "{end}");
            assert_eq!(&buf[..], &raw[..end]);
        }
    }

    #[test]
    fn head_too_large() {
        let mut partial = BytesMut::from("HTTP/1.1 200 OK\r\nX-Big: ");
        partial.resize(MAX_HEAD + 1, b'a');
        assert!(matches!(
            parse_head(&mut partial, &Method::GET),
            Err(DecodeError::HeadTooLarge)
        ));

        let mut whole = BytesMut::from("HTTP/1.1 200 OK\r\nX-Big: ");
        whole.resize(MAX_HEAD, b'a');
        whole.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(
            parse_head(&mut whole, &Method::GET),
            Err(DecodeError::HeadTooLarge)
        ));
    }

    fn many_fields(n: usize) -> String {
        let mut fields = String::new();
        for i in 0..n {
            write!(fields, "X-{i}: {i}\r\n").unwrap();
        }
        fields
    }

    #[test]
    fn too_many_headers() {
        let raw = format!("HTTP/1.1 200 OK\r\n{}\r\n", many_fields(MAX_HEADERS));
        assert_eq!(complete(&raw, &Method::GET).parts.headers.len(), MAX_HEADERS);
        let raw = format!("HTTP/1.1 200 OK\r\n{}\r\n", many_fields(MAX_HEADERS + 1));
        assert!(matches!(head(&raw), Err(DecodeError::TooManyHeaders)));
    }

    #[test]
    fn body_bytes_stay_in_buffer() {
        let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        let head = parse_head(&mut buf, &Method::GET).unwrap().unwrap();
        assert_eq!(head.framing, Framing::Length(5));
        assert_eq!(&buf[..], b"hello");
    }

    #[test]
    fn header_values_are_zero_copy_and_kept_in_order() {
        let raw = "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Empty:\r\nset-cookie: b=2\r\nX-Obs: caf\u{e9}\r\n\r\n";
        let mut buf = BytesMut::from(raw);
        let range = buf.as_ptr_range();
        let head = parse_head(&mut buf, &Method::GET).unwrap().unwrap();
        let headers = &head.parts.headers;
        assert_eq!(headers.len(), 4);
        let cookies: Vec<_> = headers
            .get_all("set-cookie")
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        assert_eq!(cookies, [b"a=1".as_slice(), b"b=2"]);
        assert_eq!(headers["x-empty"], "");
        assert_eq!(headers["x-obs"].as_bytes(), "caf\u{e9}".as_bytes());
        for value in headers.values().filter(|v| !v.is_empty()) {
            assert!(range.contains(&value.as_bytes().as_ptr()), "{value:?} was copied");
        }
    }

    /// What a chunked body decoded to.
    #[derive(Debug, PartialEq)]
    struct Body {
        data: Vec<u8>,
        trailers: Option<HeaderMap>,
        rest: Vec<u8>,
    }

    /// Feeds `pieces` in turn, decoding all it can after each, until `End`.
    fn decode_pieces<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Result<Body, DecodeError> {
        let mut decoder = Chunked::new();
        let mut buf = BytesMut::new();
        let mut body = Body {
            data: Vec::new(),
            trailers: None,
            rest: Vec::new(),
        };
        let mut ended = false;
        for piece in pieces {
            buf.extend_from_slice(piece);
            while !ended && let Some(step) = decoder.decode(&mut buf)? {
                match step {
                    Decoded::Data(data) => {
                        assert!(!data.is_empty());
                        body.data.extend_from_slice(&data);
                    }
                    Decoded::Trailers(trailers) => {
                        assert!(body.trailers.replace(trailers).is_none());
                        assert_eq!(decoder.decode(&mut buf)?, Some(Decoded::End));
                        ended = true;
                    }
                    Decoded::End => ended = true,
                }
            }
        }
        assert!(ended, "body did not end");
        let before = buf.len();
        assert_eq!(decoder.decode(&mut buf)?, Some(Decoded::End));
        assert_eq!(buf.len(), before);
        body.rest = buf.to_vec();
        Ok(body)
    }

    fn decode_whole(raw: &[u8]) -> Result<Body, DecodeError> {
        decode_pieces([raw])
    }

    fn body(data: &str) -> Body {
        Body {
            data: data.into(),
            trailers: None,
            rest: Vec::new(),
        }
    }

    const WITH_TRAILERS: &[u8] =
        b"5\r\nhello\r\n1;a=b\r\n \r\nB\r\nworld, and \r\n0\r\nX-Sum: abc\r\nx-sum: def\r\nETag: \"1\"\r\n\r\nHTTP/1.1";

    fn with_trailers() -> Body {
        let mut trailers = HeaderMap::new();
        trailers.append("x-sum", HeaderValue::from_static("abc"));
        trailers.append("x-sum", HeaderValue::from_static("def"));
        trailers.append("etag", HeaderValue::from_static("\"1\""));
        Body {
            data: b"hello world, and ".to_vec(),
            trailers: Some(trailers),
            rest: b"HTTP/1.1".to_vec(),
        }
    }

    #[test]
    fn chunked_simple() {
        let mut decoder = Chunked::new();
        let mut buf = BytesMut::from("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            Some(Decoded::Data(Bytes::from("hello")))
        );
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            Some(Decoded::Data(Bytes::from(" world")))
        );
        assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Decoded::End));
        assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Decoded::End));
        assert!(buf.is_empty());
        assert_eq!(decode_whole(b"0\r\n\r\n").unwrap(), body(""));
    }

    #[test]
    fn chunked_extensions_are_ignored() {
        let raw = b"5;name=value\r\nhello\r\n1 ; a ; b=\"c;d\"\r\n!\r\n0;last\r\n\r\n";
        assert_eq!(decode_whole(raw).unwrap(), body("hello!"));
    }

    #[test]
    fn chunked_hex_sizes() {
        assert_eq!(
            decode_whole(b"A\r\n0123456789\r\n0\r\n\r\n").unwrap(),
            body("0123456789")
        );
        assert_eq!(
            decode_whole(b"a\r\n0123456789\r\n0000\r\n\r\n").unwrap(),
            body("0123456789")
        );
        assert_eq!(decode_whole(b"0001\r\nx\r\n0\r\n\r\n").unwrap(), body("x"));
    }

    #[test]
    fn chunked_trailers() {
        assert_eq!(decode_whole(WITH_TRAILERS).unwrap(), with_trailers());
    }

    #[test]
    fn trailer_values_are_zero_copy() {
        let mut buf = BytesMut::from("0\r\nX-Sum: abc\r\n\r\n");
        let range = buf.as_ptr_range();
        let Some(Decoded::Trailers(trailers)) = Chunked::new().decode(&mut buf).unwrap() else {
            panic!("no trailers");
        };
        assert!(range.contains(&trailers["x-sum"].as_bytes().as_ptr()));
    }

    #[test]
    fn chunked_split_at_every_boundary() {
        for at in 0..=WITH_TRAILERS.len() {
            let (a, b) = WITH_TRAILERS.split_at(at);
            assert_eq!(decode_pieces([a, b]).unwrap(), with_trailers(), "split at {at}");
        }
    }

    #[test]
    fn chunked_byte_at_a_time() {
        assert_eq!(decode_pieces(WITH_TRAILERS.chunks(1)).unwrap(), with_trailers());
    }

    #[test]
    fn chunked_random_splits() {
        // xorshift: deterministic, so a failure reproduces.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % u64::try_from(bound).unwrap()).unwrap()
        };
        for _ in 0..500 {
            let mut pieces = Vec::new();
            let mut rest = WITH_TRAILERS;
            while !rest.is_empty() {
                let (piece, tail) = rest.split_at(next(rest.len()) + 1);
                pieces.push(piece);
                rest = tail;
            }
            assert_eq!(decode_pieces(pieces).unwrap(), with_trailers());
        }
    }

    #[test]
    fn large_chunk_is_streamed() {
        let size = 100_000;
        let mut decoder = Chunked::new();
        let mut buf = BytesMut::from(format!("{size:x}\r\n").as_str());
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        let mut received = 0;
        while received < size {
            let piece = (size - received).min(4096);
            buf.extend_from_slice(&vec![b'z'; piece]);
            let Some(Decoded::Data(data)) = decoder.decode(&mut buf).unwrap() else {
                panic!("no data after {received} bytes");
            };
            assert_eq!(data.len(), piece);
            assert!(buf.is_empty());
            received += piece;
        }
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Decoded::End));
    }

    #[test]
    fn invalid_chunk_sizes() {
        let lines: [&[u8]; 10] = [
            b"\r\n",
            b"x\r\n",
            b"5x\r\n",
            b"-5\r\n",
            b"+5\r\n",
            b"0x5\r\n",
            b"5\n",
            b"5\r\r\n",
            b"5;a\rb\r\n",
            b"10000000000000000\r\n",
        ];
        for line in lines {
            let result = decode_whole(line);
            assert!(
                matches!(result, Err(DecodeError::InvalidChunkSize)),
                "{line:?}: {result:?}"
            );
        }
    }

    #[test]
    fn largest_chunk_size_is_accepted() {
        let mut decoder = Chunked::new();
        let mut buf = BytesMut::from("ffffffffffffffff\r\nabc");
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            Some(Decoded::Data(Bytes::from("abc")))
        );
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn chunk_size_line_is_bounded() {
        let mut decoder = Chunked::new();
        let mut buf = BytesMut::from("5;");
        buf.resize(MAX_CHUNK_LINE - 1, b'a');
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"a");
        assert!(matches!(decoder.decode(&mut buf), Err(DecodeError::ChunkLineTooLong)));

        let mut longest = BytesMut::from("5;");
        longest.resize(MAX_CHUNK_LINE - 2, b'a');
        longest.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        assert_eq!(decode_whole(&longest).unwrap(), body("hello"));
    }

    #[test]
    fn missing_crlf_after_data() {
        let mut decoder = Chunked::new();
        let mut buf = BytesMut::from("5\r\nhelloX\r\n0\r\n\r\n");
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            Some(Decoded::Data(Bytes::from("hello")))
        );
        assert!(matches!(decoder.decode(&mut buf), Err(DecodeError::InvalidChunk)));
        assert!(matches!(
            decode_whole(b"5\r\nhello\n0\r\n\r\n"),
            Err(DecodeError::InvalidChunk)
        ));
        assert!(matches!(decode_whole(b"5\r\nhello\rX"), Err(DecodeError::InvalidChunk)));
    }

    #[test]
    fn invalid_trailers() {
        let result = decode_whole(b"0\r\nBad Name: x\r\n\r\n");
        assert!(matches!(result, Err(DecodeError::InvalidTrailers(_))), "{result:?}");
        let many = many_fields(MAX_HEADERS + 1);
        let result = decode_whole(format!("0\r\n{many}\r\n").as_bytes());
        assert!(matches!(
            result,
            Err(DecodeError::InvalidTrailers(httparse::Error::TooManyHeaders))
        ));

        let mut decoder = Chunked::new();
        let mut buf = BytesMut::from("0\r\nX-Big: ");
        buf.resize(MAX_HEAD + 4, b'a');
        assert!(matches!(decoder.decode(&mut buf), Err(DecodeError::TrailersTooLarge)));
    }
}
