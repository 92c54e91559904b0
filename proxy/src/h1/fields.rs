//! An HTTP/1.1 upstream's end-to-end header fields kept as the lines it sent.
//!
//! Building a header map for a response only to write it out again was the largest single cost of a proxied
//! request (hashing and inserting every field, then iterating the map). When the upstream writes its fields in the
//! canonical `name: value` form, as common servers do, the fast path copies the lines as they are instead; a map
//! is built from them only when something needs one (header rules, hyper's side of a connection).

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

use super::controls::Role;
use super::decode::FieldSpan;

/// End-to-end header field lines of a response head, each `name: value\r\n`; hop-by-hop ones are cut out.
///
/// httparse has checked every name and value against the grammar `http` enforces for [`HeaderName`] and
/// [`HeaderValue`], so they always convert.
#[derive(Debug, Clone)]
pub(crate) struct RawFields {
    lines: Bytes,
    /// A `Date` line is among them.
    date: bool,
    /// A `Content-Length` line is among them.
    length: bool,
}

/// Where the kept lines lie in a head after [`compact`], before the head is frozen.
pub(super) struct Kept {
    start: usize,
    end: usize,
    date: bool,
    length: bool,
}

/// Moves the passed-on field lines of `head` (as `spans` locates them) together, over the lines the next hop must
/// not see. `None`: some passed-on line is not in the canonical `name: value\r\n` form (other whitespace, a bare
/// LF, an empty value), and the head is left as it was.
pub(super) fn compact(head: &mut BytesMut, spans: &[FieldSpan]) -> Option<Kept> {
    let canonical = |span: &FieldSpan| {
        let ((name_start, name_end), (value_start, value_end)) = (span.name, span.value);
        name_start < name_end
            && head.get(name_end..value_start) == Some(b": ")
            && head.get(value_end..value_end + 2) == Some(b"\r\n")
    };
    let passed = || spans.iter().filter(|span| span.role.passed_on());
    if !passed().all(canonical) {
        return None;
    }
    let start = spans.first().map_or(0, |span| span.name.0);
    let mut kept = Kept {
        start,
        end: start,
        date: false,
        length: false,
    };
    for span in passed() {
        kept.date |= head[span.name.0..span.name.1].eq_ignore_ascii_case(b"date");
        kept.length |= span.role == Role::ContentLength;
        let line = span.name.0..span.value.1 + 2;
        let len = line.len();
        if line.start != kept.end {
            head.copy_within(line, kept.end);
        }
        kept.end += len;
    }
    Some(kept)
}

impl RawFields {
    /// The lines [`compact`] kept, in the frozen `head`.
    pub(super) fn new(head: &Bytes, kept: &Kept) -> Self {
        RawFields {
            lines: head.slice(kept.start..kept.end),
            date: kept.date,
            length: kept.length,
        }
    }

    /// The lines, ready to be written after a status line.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.lines
    }

    /// A `Date` field is among them.
    pub(crate) fn has_date(&self) -> bool {
        self.date
    }

    /// A `Content-Length` field is among them.
    pub(crate) fn has_length(&self) -> bool {
        self.length
    }

    /// Some field is named `name`.
    pub(crate) fn contains(&self, name: &HeaderName) -> bool {
        let name = name.as_str().as_bytes();
        self.fields().any(|(field, _)| field.eq_ignore_ascii_case(name))
    }

    /// Appends every field to `map`, values sharing the lines' memory.
    pub(crate) fn append_to(&self, map: &mut HeaderMap) {
        map.reserve(self.fields().count());
        for (name, value) in self.fields() {
            let name = HeaderName::from_bytes(name);
            let value = HeaderValue::from_maybe_shared(self.lines.slice_ref(value));
            if let (Ok(name), Ok(value)) = (name, value) {
                map.append(name, value);
            } else {
                debug_assert!(false, "httparse passed a field http refuses");
            }
        }
    }

    /// Each line's name and value.
    fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        // Lines end in CRLF, and neither names nor values can hold CR or LF.
        self.lines
            .split(|&b| b == b'\n')
            .filter_map(|line| line.strip_suffix(b"\r"))
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                Some((&line[..colon], line.get(colon + 2..).unwrap_or_default()))
            })
    }
}
