//! The validated model of a route's sticky sessions (`[routes.sticky]`) and match rules (`[[routes.match]]`).
//!
//! Plain data: regexes are kept as their source text and key material as bytes, so the model stays `Eq` and can be
//! compared across reloads. The data plane compiles them when it builds its route table.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How a route keeps a client on one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sticky {
    /// Bucket (hash the session key) or pin (a signed cookie names the version).
    pub mode: StickyMode,
    /// Where the session key comes from; `None` means the proxy-issued `sluice_id` cookie. Bucket mode only.
    pub key: Option<SessionKey>,
    /// `Max-Age` of the `sluice_id` cookie, and lifetime of a pin cookie.
    pub cookie_max_age: Duration,
    /// Mixed into the hash, so two routes (or two sluice fleets) can split the same users differently; the route's
    /// name unless set. The same salt gives the same answer in every process.
    pub salt: String,
}

/// The sticky mode of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StickyMode {
    /// The session key hashes into 10,000 buckets laid out on anchored version ranges.
    Bucket,
    /// The first response sets a signed, expiring cookie naming the version.
    Pin(PinKeyFiles),
}

/// The HMAC keys of pin mode, read from their files when the config is loaded.
#[derive(Clone, PartialEq, Eq)]
pub struct PinKeyFiles {
    /// The file the signing key was read from (resolved against the config file's directory).
    pub key_file: PathBuf,
    /// The signing key, surrounding whitespace trimmed; at least [`PIN_KEY_MIN_LEN`] bytes.
    pub key: Vec<u8>,
    /// The previous key, still accepted when verifying during a rotation.
    pub previous_key_file: Option<PathBuf>,
    /// Its bytes, trimmed like `key`.
    pub previous_key: Option<Vec<u8>>,
}

/// The shortest pin key accepted, in bytes: HMAC-SHA256 is only as strong as a key of its output size.
pub const PIN_KEY_MIN_LEN: usize = 32;

/// Never print key material.
impl fmt::Debug for PinKeyFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinKeyFiles")
            .field("key_file", &self.key_file)
            .field("key", &"<redacted>")
            .field("previous_key_file", &self.previous_key_file)
            .field("previous_key", &self.previous_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The part of a request that identifies a session: `header:NAME`, `cookie:NAME` or `query:NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionKey {
    /// A request header; the name is lower-cased.
    Header(String),
    /// A cookie, by exact name.
    Cookie(String),
    /// A query parameter, by exact raw name.
    Query(String),
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionKey::Header(name) => write!(f, "header:{name}"),
            SessionKey::Cookie(name) => write!(f, "cookie:{name}"),
            SessionKey::Query(name) => write!(f, "query:{name}"),
        }
    }
}

/// Requests meeting `on` go to `version`, before the weighted split, whatever its weight. Rules are tried in file
/// order; the first match wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchRule {
    /// What part of the request is compared (its name; for headers lower-cased).
    pub on: SessionKey,
    /// How its value is compared. An absent or empty value never matches.
    pub value: MatchValue,
    /// An existing upstream. If the route's weights do not name it, the route still reaches it through this rule
    /// (as a version of weight 0).
    pub version: String,
}

/// How a match rule compares a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchValue {
    /// Byte-for-byte equal.
    Exact(String),
    /// A regex (Rust `regex` syntax, checked at load) that must match the whole value.
    Regex(String),
}
