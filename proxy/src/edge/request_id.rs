//! Request ids: 128 random bits as 32 lower-case hex characters, to follow a request through services.

use bytes::Bytes;
use http::HeaderValue;

/// A fresh request id. Formats on the stack; the only allocation is the header value itself, which is
/// reference-counted from the start: the id is cloned into the request, the response and the log, and a value
/// copied from a slice would allocate again on its first clone.
pub(crate) fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits: u128 = rand::random();
    let mut buf = [0u8; 32];
    for (i, byte) in buf.iter_mut().enumerate() {
        let nibble = (bits >> (124 - 4 * i)) & 0xf;
        *byte = HEX[nibble as usize];
    }
    HeaderValue::from_maybe_shared(Bytes::from_owner(buf)).expect("hex digits are valid header value bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn is_32_lower_hex_and_fresh_each_time() {
        let ids: HashSet<String> = (0..1000)
            .map(|_| new_request_id().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 32, "{id}");
            assert!(id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{id}");
        }
    }

    #[test]
    fn all_128_bits_vary() {
        // Every hex position takes more than one value across ids, so no nibble is stuck.
        let ids: Vec<Vec<u8>> = (0..200).map(|_| new_request_id().as_bytes().to_vec()).collect();
        for pos in 0..32 {
            let seen: HashSet<u8> = ids.iter().map(|id| id[pos]).collect();
            assert!(seen.len() > 1, "position {pos} never changes");
        }
    }
}
