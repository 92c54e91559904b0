//! An HTTP/1.1 upstream's end-to-end header fields kept as the lines it sent.
//!
//! Building a header map for a response only to write it out again was the largest single cost of a proxied
//! request (hashing and inserting every field, then iterating the map). When the upstream writes its fields in the
//! canonical `name: value` form, as common servers do, the fast path copies the lines as they are instead; a map
//! is built from them only when something needs one (header rules, hyper's side of a connection).

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

use super::controls::{Controls, Role};
use super::decode::FieldSpan;

/// End-to-end header field lines of a response head, each `name: value\r\n`; hop-by-hop ones are cut out.
///
/// httparse has checked every name and value against the grammar `http` enforces for [`HeaderName`] and
/// [`HeaderValue`], so they always convert.
#[derive(Debug, Clone)]
pub(crate) struct RawFields {
    lines: Bytes,
    summary: Summary,
}

/// What a run of kept lines holds, as far as the writer and the request-id check need to know.
#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    /// A `Date` line is among them.
    date: bool,
    /// A `Content-Length` line is among them.
    length: bool,
    /// One bit per line, chosen by [`name_bit`]: most names can be ruled out without reading the lines.
    names: u64,
}

impl Summary {
    /// Notes a kept line named `name`, and of `role`.
    fn note(&mut self, name: &[u8], role: Role) {
        self.date |= name.eq_ignore_ascii_case(b"date");
        self.length |= role == Role::ContentLength;
        self.names |= name_bit(name);
    }
}

/// Where the passed-on lines lie in a head, and what they hold.
#[derive(Debug, Clone, Copy)]
pub(super) struct Kept {
    start: usize,
    end: usize,
    summary: Summary,
}

impl Kept {
    fn at(start: usize) -> Self {
        Kept {
            start,
            end: start,
            summary: Summary::default(),
        }
    }
}

/// A field name's bit in [`RawFields`]' summary of names: from its length and first letter, in any case.
fn name_bit(name: &[u8]) -> u64 {
    let first = name.first().map_or(0, |b| b.to_ascii_lowercase());
    1 << ((name.len() * 7 + usize::from(first)) % 64)
}

/// How a head's passed-on field lines lie, as [`survey`] found them.
#[derive(Debug, Clone, Copy)]
pub(super) enum Shape {
    /// All canonical, and one run: the lines between `start` and `end` can be taken as they are.
    Run(Kept),
    /// All canonical, with lines the next hop must not see between them: [`compact`] moves them together.
    Gaps,
    /// Some line is not in the canonical `name: value\r\n` form (other whitespace, a bare LF, an empty value).
    Other,
}

/// Reads the framing and connection fields of a head's `fields` (parsed from `base`) and how its passed-on lines
/// lie, in one pass and without storing anything per field: for the usual response, that is all decoding needs.
pub(super) fn survey(fields: &[httparse::Header<'_>], base: &[u8]) -> (Controls, Shape) {
    let mut controls = Controls::default();
    let origin = base.as_ptr().addr();
    let mut kept: Option<Kept> = None;
    let mut gaps = false;
    let mut canonical = true;
    for field in fields {
        let role = Role::of(field.name.as_bytes());
        controls.note(role, field.value);
        if !role.passed_on() || !canonical {
            continue;
        }
        // httparse's slices lie in `base`; an empty value's may not, and is not canonical anyway.
        let name_start = field.name.as_ptr().addr().wrapping_sub(origin);
        let name_end = name_start.wrapping_add(field.name.len());
        let value_start = field.value.as_ptr().addr().wrapping_sub(origin);
        let value_end = value_start.wrapping_add(field.value.len());
        canonical = !field.value.is_empty()
            && base.get(name_end..value_start) == Some(b": ")
            && base.get(value_end..value_end.wrapping_add(2)) == Some(b"\r\n");
        let line_end = value_end.wrapping_add(2);
        let run = kept.get_or_insert_with(|| Kept::at(name_start));
        gaps |= run.end != name_start;
        run.end = line_end;
        run.summary.note(field.name.as_bytes(), role);
    }
    let shape = match kept {
        _ if !canonical => Shape::Other,
        _ if gaps => Shape::Gaps,
        Some(run) => Shape::Run(run),
        None => Shape::Run(Kept::at(0)),
    };
    (controls, shape)
}

/// Moves the passed-on field lines of `head` (as `spans` locates them, all canonical) together, over the lines the
/// next hop must not see.
pub(super) fn compact(head: &mut BytesMut, spans: &[FieldSpan]) -> Kept {
    let mut kept = Kept::at(spans.first().map_or(0, |span| span.name().start));
    for span in spans.iter().filter(|span| span.role.passed_on()) {
        kept.summary.note(&head[span.name()], span.role);
        let line = span.name().start..span.value().end + 2;
        let len = line.len();
        if line.start != kept.end {
            head.copy_within(line, kept.end);
        }
        kept.end += len;
    }
    kept
}

impl RawFields {
    /// The lines `kept` locates in the frozen `head`.
    pub(super) fn new(head: &Bytes, kept: &Kept) -> Self {
        RawFields {
            lines: head.slice(kept.start..kept.end),
            summary: kept.summary,
        }
    }

    /// The lines, ready to be written after a status line.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.lines
    }

    /// A `Date` field is among them.
    pub(crate) fn has_date(&self) -> bool {
        self.summary.date
    }

    /// A `Content-Length` field is among them.
    pub(crate) fn has_length(&self) -> bool {
        self.summary.length
    }

    /// Some field is named `name`.
    pub(crate) fn contains(&self, name: &HeaderName) -> bool {
        let name = name.as_str().as_bytes();
        if self.summary.names & name_bit(name) == 0 {
            return false;
        }
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
