//! What a head's framing and connection fields say, read from the raw field lines before any header map exists.
//!
//! Decoding a message needs only these few fields, and a proxy passes none of the hop-by-hop ones on: reading
//! them here spares a hashed lookup per question, and lets the map be built without the fields the next hop
//! must not see.

/// The part a header field plays for the hop that reads it (RFC 9110 section 7.6.1, RFC 9112 section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Passed on unchanged.
    EndToEnd,
    /// `Content-Length`: frames this message, and is passed on.
    ContentLength,
    /// `Transfer-Encoding`: frames this message, hop-by-hop.
    TransferEncoding,
    /// `Connection`: persistence options, and the names of more hop-by-hop fields.
    Connection,
    /// The rest of the fixed hop-by-hop list: `Keep-Alive`, `Proxy-Connection`, `TE`, `Upgrade`,
    /// `Proxy-Authenticate`, `Proxy-Authorization`.
    HopByHop,
}

impl Role {
    /// The role of a field named `name` (any case).
    pub(super) fn of(name: &[u8]) -> Role {
        let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
        // Lengths first: nearly every field is end-to-end, and most are rejected without comparing bytes.
        match name.len() {
            2 if is("te") => Role::HopByHop,
            7 if is("upgrade") => Role::HopByHop,
            10 if is("connection") => Role::Connection,
            10 if is("keep-alive") => Role::HopByHop,
            14 if is("content-length") => Role::ContentLength,
            16 if is("proxy-connection") => Role::HopByHop,
            17 if is("transfer-encoding") => Role::TransferEncoding,
            18 if is("proxy-authenticate") => Role::HopByHop,
            19 if is("proxy-authorization") => Role::HopByHop,
            _ => Role::EndToEnd,
        }
    }

    /// Whether the next hop may see a field of this role.
    pub(super) fn passed_on(self) -> bool {
        matches!(self, Role::EndToEnd | Role::ContentLength)
    }
}

/// What `Content-Length` says.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum Length {
    /// No `Content-Length` field.
    #[default]
    Absent,
    /// Every element of every field is this number (RFC 9110 section 8.6 allows repeats of one value).
    Valid(u64),
    /// Not a number, or different numbers.
    Invalid,
}

/// The framing and connection fields of one head.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Controls {
    /// Some `Transfer-Encoding` field is present.
    pub(super) transfer_encoding: bool,
    /// The last transfer coding, across all `Transfer-Encoding` fields, is `chunked`.
    pub(super) chunked_last: bool,
    /// What `Content-Length` says.
    pub(super) length: Length,
    /// `Connection` lists `close`.
    pub(super) close: bool,
    /// `Connection` lists `keep-alive`.
    pub(super) keep_alive: bool,
    /// `Connection` lists something besides `close` and `keep-alive`: the names of more hop-by-hop fields.
    pub(super) names_fields: bool,
    /// Some field the next hop must not see is present.
    pub(super) hop_by_hop: bool,
}

impl Controls {
    /// Takes in the next field of the head, of `role`, with `value`.
    pub(super) fn note(&mut self, role: Role, value: &[u8]) {
        self.hop_by_hop |= !role.passed_on();
        match role {
            Role::EndToEnd | Role::HopByHop => {}
            Role::ContentLength => self.length = self.length.and(value),
            Role::TransferEncoding => {
                self.transfer_encoding = true;
                if let Some(last) = elements(value).last() {
                    self.chunked_last = last.eq_ignore_ascii_case(b"chunked");
                }
            }
            Role::Connection => {
                for option in elements(value) {
                    if option.eq_ignore_ascii_case(b"close") {
                        self.close = true;
                    } else if option.eq_ignore_ascii_case(b"keep-alive") {
                        self.keep_alive = true;
                    } else {
                        self.names_fields = true;
                    }
                }
            }
        }
    }
}

impl Length {
    /// This length after one more `Content-Length` field with `value`.
    fn and(self, value: &[u8]) -> Length {
        let mut length = self;
        // Empty elements are not skipped here: `Content-Length: 5,` is as broken as `5x`.
        for element in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            length = match (length, parse_number(element, 10)) {
                (Length::Invalid, _) | (_, None) => return Length::Invalid,
                (Length::Valid(seen), Some(n)) if seen != n => return Length::Invalid,
                (_, Some(n)) => Length::Valid(n),
            };
        }
        length
    }
}

/// The non-empty elements of a comma-separated list field, trimmed (RFC 9110 section 5.6.1).
fn elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|element| !element.is_empty())
}

/// Digits only, at least one: `str::parse` would also take a sign, which no length or chunk size has.
pub(super) fn parse_number(digits: &[u8], radix: u32) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0_u64, |n, &b| {
        let digit = char::from(b).to_digit(radix)?;
        n.checked_mul(u64::from(radix))?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(fields: &[(&str, &str)]) -> Controls {
        let mut controls = Controls::default();
        for (name, value) in fields {
            controls.note(Role::of(name.as_bytes()), value.as_bytes());
        }
        controls
    }

    #[test]
    fn roles_ignore_case_and_know_the_whole_hop_by_hop_list() {
        assert_eq!(Role::of(b"Content-Length"), Role::ContentLength);
        assert_eq!(Role::of(b"TRANSFER-ENCODING"), Role::TransferEncoding);
        assert_eq!(Role::of(b"connection"), Role::Connection);
        for name in [
            "te",
            "Upgrade",
            "keep-alive",
            "Proxy-Connection",
            "proxy-authenticate",
            "Proxy-Authorization",
        ] {
            assert_eq!(Role::of(name.as_bytes()), Role::HopByHop, "{name}");
        }
        for name in ["tE-x", "trailer", "host", "content-type", "x-connection", "keep-alive2"] {
            assert_eq!(Role::of(name.as_bytes()), Role::EndToEnd, "{name}");
        }
    }

    #[test]
    fn lengths_must_agree_across_elements_and_fields() {
        assert_eq!(read(&[]).length, Length::Absent);
        assert_eq!(read(&[("Content-Length", " 42 ")]).length, Length::Valid(42));
        assert_eq!(
            read(&[("Content-Length", "7, 7"), ("content-length", "7")]).length,
            Length::Valid(7)
        );
        for bad in [
            ["5", "6"],
            ["5,", "5"],
            ["+5", "5"],
            ["5", ""],
            ["99999999999999999999", "1"],
        ] {
            let fields = [("Content-Length", bad[0]), ("Content-Length", bad[1])];
            assert_eq!(read(&fields).length, Length::Invalid, "{bad:?}");
        }
    }

    #[test]
    fn the_last_coding_across_fields_decides_chunked() {
        let c = read(&[("Transfer-Encoding", "gzip"), ("Transfer-Encoding", " Chunked ,")]);
        assert!(c.transfer_encoding && c.chunked_last && c.hop_by_hop);
        let c = read(&[("Transfer-Encoding", "chunked, gzip")]);
        assert!(c.transfer_encoding && !c.chunked_last);
        let c = read(&[("Transfer-Encoding", "")]);
        assert!(c.transfer_encoding && !c.chunked_last);
    }

    #[test]
    fn connection_options_and_named_fields() {
        let c = read(&[("Connection", "Keep-Alive"), ("Host", "x")]);
        assert!(c.keep_alive && !c.close && !c.names_fields && c.hop_by_hop);
        let c = read(&[("connection", "close, X-Secret")]);
        assert!(c.close && c.names_fields);
        let c = read(&[("Host", "x"), ("Content-Length", "0")]);
        assert!(!c.hop_by_hop && !c.close && !c.keep_alive);
    }
}
