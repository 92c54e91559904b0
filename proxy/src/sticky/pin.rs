//! Pin cookies: a signed, expiring statement "this client uses version V of route R".
//!
//! Value: `v1.<route>.<version>.<expiry_unix_secs>.<base64url(HMAC-SHA256(key, "v1|route|version|expiry"))>`.
//! Route names must not contain `.` or `|`, and both names must be valid cookie octets
//! ([`super::key::is_cookie_value`]); the config validates that.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "v1";
/// HMAC-SHA256 tags are 32 bytes, 43 characters in unpadded base64url.
const TAG_LEN: usize = 32;

/// Why a pin cookie was not accepted. The router treats every kind alike (assign anew, never an error page) and logs
/// the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PinError {
    #[error("pin cookie is malformed")]
    Malformed,
    #[error("pin cookie signature matches no key")]
    BadSignature,
    #[error("pin cookie has expired")]
    Expired,
    #[error("pin cookie was issued for another route")]
    OtherRoute,
}

/// The HMAC keys for pin cookies: sign with `primary`, accept `primary` or `previous`, so keys can be rotated without
/// unpinning everyone. Keys should be at least 32 random bytes; the config checks that.
#[derive(Clone)]
pub(crate) struct PinKeys {
    primary: Vec<u8>,
    previous: Option<Vec<u8>>,
}

/// Never print key material.
impl fmt::Debug for PinKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinKeys")
            .field("primary", &"<redacted>")
            .field("previous", &self.previous.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl PinKeys {
    pub(crate) fn new(primary: Vec<u8>, previous: Option<Vec<u8>>) -> Self {
        Self { primary, previous }
    }

    /// A pin cookie value for `version` of `route`, valid until `expires` (whole seconds, rounded down).
    pub(crate) fn sign(&self, route: &str, version: &str, expires: SystemTime) -> String {
        let expiry = unix_secs(expires).to_string();
        let tag = mac(&self.primary, route, version, &expiry).finalize().into_bytes();
        format!("{PREFIX}.{route}.{version}.{expiry}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The version a pin cookie `value` names, if it was signed by one of the keys for `route` and has not expired
    /// at `now`. Allocation-free; the signature is compared in constant time.
    pub(crate) fn verify<'a>(&self, value: &'a str, route: &str, now: SystemTime) -> Result<&'a str, PinError> {
        let (rest, tag) = value.rsplit_once('.').ok_or(PinError::Malformed)?;
        let (rest, expiry) = rest.rsplit_once('.').ok_or(PinError::Malformed)?;
        let names = rest
            .strip_prefix(PREFIX)
            .and_then(|r| r.strip_prefix('.'))
            .ok_or(PinError::Malformed)?;
        if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PinError::Malformed);
        }
        let expiry_secs: u64 = expiry.parse().map_err(|_| PinError::Malformed)?;
        let version = match names.strip_prefix(route).and_then(|r| r.strip_prefix('.')) {
            Some(version) if !version.is_empty() => version,
            Some(_) => return Err(PinError::Malformed),
            None if names
                .split_once('.')
                .is_some_and(|(r, v)| !r.is_empty() && !v.is_empty()) =>
            {
                return Err(PinError::OtherRoute);
            }
            None => return Err(PinError::Malformed),
        };
        let mut buf = [0u8; TAG_LEN + 3];
        let n = URL_SAFE_NO_PAD
            .decode_slice(tag, &mut buf)
            .map_err(|_| PinError::Malformed)?;
        let tag = &buf[..n];
        let signed_by = |key: &[u8]| mac(key, route, version, expiry).verify_slice(tag).is_ok();
        if !(signed_by(&self.primary) || self.previous.as_deref().is_some_and(signed_by)) {
            return Err(PinError::BadSignature);
        }
        if unix_secs(now) >= expiry_secs {
            return Err(PinError::Expired);
        }
        Ok(version)
    }
}

/// The MAC state after "v1|route|version|expiry", fed piecewise so that verifying allocates nothing.
fn mac(key: &[u8], route: &str, version: &str, expiry: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in [PREFIX, "|", route, "|", version, "|", expiry] {
        mac.update(part.as_bytes());
    }
    mac
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const ROUTE: &str = "checkout";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn keys() -> PinKeys {
        PinKeys::new(b"primary key, 32 bytes or more...".to_vec(), None)
    }

    #[test]
    fn round_trip() {
        let value = keys().sign(ROUTE, "canary", at(2_000));
        assert!(value.starts_with("v1.checkout.canary.2000."), "{value}");
        assert!(super::super::key::is_cookie_value(&value));
        assert_eq!(keys().verify(&value, ROUTE, at(1_999)), Ok("canary"));
    }

    #[test]
    fn mac_is_standard_hmac_sha256() {
        // RFC 4231 test case 2, so pins can be checked outside sluice.
        let tag = HmacSha256::new_from_slice(b"Jefe")
            .unwrap()
            .chain_update(b"what do ya want for nothing?")
            .finalize()
            .into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn tampering_is_rejected() {
        let value = keys().sign(ROUTE, "canary", at(2_000));
        let mut tag = value.rsplit_once('.').unwrap().1.to_owned();
        tag.replace_range(0..1, if tag.starts_with('A') { "B" } else { "A" });
        for forged in [
            value.replace(".canary.", ".blue."),
            value.replace(".2000.", ".9000."),
            format!("v1.checkout.canary.2000.{tag}"),
            format!("v1.checkout.canary.2000.{}", URL_SAFE_NO_PAD.encode([0u8; 32])),
        ] {
            assert_eq!(
                keys().verify(&forged, ROUTE, at(1_000)),
                Err(PinError::BadSignature),
                "{forged}"
            );
        }
    }

    #[test]
    fn expired_is_rejected() {
        let value = keys().sign(ROUTE, "canary", at(2_000));
        assert_eq!(keys().verify(&value, ROUTE, at(2_000)), Err(PinError::Expired));
        assert_eq!(keys().verify(&value, ROUTE, at(5_000)), Err(PinError::Expired));
    }

    #[test]
    fn previous_key_accepted_unknown_key_rejected() {
        let old = PinKeys::new(b"old key, also long enough.......".to_vec(), None);
        let value = old.sign(ROUTE, "green", at(2_000));
        let rotated = PinKeys::new(keys().primary, Some(old.primary));
        assert_eq!(rotated.verify(&value, ROUTE, at(1_000)), Ok("green"));
        assert_eq!(keys().verify(&value, ROUTE, at(1_000)), Err(PinError::BadSignature));
        // After rotation, new cookies are signed with the new primary key.
        assert_eq!(
            keys().verify(&rotated.sign(ROUTE, "blue", at(2_000)), ROUTE, at(1_000)),
            Ok("blue")
        );
    }

    #[test]
    fn other_route_is_told_apart() {
        let value = keys().sign("search", "canary", at(2_000));
        assert_eq!(keys().verify(&value, ROUTE, at(1_000)), Err(PinError::OtherRoute));
        // A route whose name is a prefix of another is not confused with it.
        assert_eq!(keys().verify(&value, "sea", at(1_000)), Err(PinError::OtherRoute));
    }

    #[test]
    fn malformed_is_rejected() {
        let tag = URL_SAFE_NO_PAD.encode([0u8; 32]);
        for bad in [
            String::new(),
            "garbage".to_owned(),
            format!("v2.checkout.canary.2000.{tag}"),
            format!("v1.checkout.canary..{tag}"),
            format!("v1.checkout.canary.+2000.{tag}"),
            format!("v1.checkout.canary.99999999999999999999999.{tag}"),
            format!("v1.checkout..2000.{tag}"),
            format!("v1.checkout.2000.{tag}"),
            "v1.checkout.canary.2000.not*base64".to_owned(),
            format!("v1.checkout.canary.2000.{tag}{tag}"),
        ] {
            assert_eq!(
                keys().verify(&bad, ROUTE, at(1_000)),
                Err(PinError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_hides_keys() {
        let shown = format!("{:?}", PinKeys::new(b"secret".to_vec(), Some(b"older".to_vec())));
        assert!(!shown.contains("115") && !shown.contains("secret"), "{shown}");
    }
}
