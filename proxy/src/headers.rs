//! Header rules of a proxy hop: drop hop-by-hop headers (RFC 9110 §7.6.1) and add the `x-forwarded-*` set.

use http::HeaderMap;
use http::header::Entry;
use http::header::{
    CONNECTION, HeaderName, HeaderValue, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRANSFER_ENCODING, UPGRADE,
};

/// `x-forwarded-for`: the chain of client addresses.
pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `x-forwarded-proto`: the scheme the client used.
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `x-forwarded-host`: the host the client asked for.
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The hop-by-hop fields every message loses, besides those its `Connection` header names.
static HOP_BY_HOP: [&HeaderName; 8] = [
    &CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &TE,
    &TRANSFER_ENCODING,
    &UPGRADE,
    &PROXY_AUTHENTICATE,
    &PROXY_AUTHORIZATION,
];

/// Removes hop-by-hop headers: the fixed list and every header the `Connection` header names. Says whether
/// any was there.
///
/// `Trailer` stays: RFC 9110 makes it end-to-end, and an HTTP/1.1 hop only sends the trailer fields it declares,
/// so dropping it would drop a gRPC status.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) -> bool {
    // One pass over the (few) names present, compared without hashing, instead of a hashed removal per listed
    // name: most messages carry none of them, or only `Connection`, and this runs twice per request.
    let mut present = 0_u8;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|hop| *hop == name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return false;
    }
    // Names listed in `Connection` are only known at run time; `close` and `keep-alive` are options, not fields
    // to look for (and `keep-alive` is on the fixed list anyway).
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|token| !token.eq_ignore_ascii_case("close") && !token.eq_ignore_ascii_case("keep-alive"))
        .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(*name);
        }
    }
    true
}

/// Appends the client address to `x-forwarded-for` (joining earlier values into one) and sets
/// `x-forwarded-proto` and `x-forwarded-host`.
pub(crate) fn add_forwarded(
    headers: &mut HeaderMap,
    client_ip: &HeaderValue,
    proto: &'static str,
    host: Option<HeaderValue>,
) {
    // One lookup (the name is hashed once) whether or not the client sent a chain.
    match headers.entry(&X_FORWARDED_FOR) {
        Entry::Vacant(slot) => {
            slot.insert(client_ip.clone());
        }
        Entry::Occupied(mut slot) => {
            let mut chain: Vec<u8> = Vec::with_capacity(64);
            for value in slot.iter() {
                chain.extend_from_slice(value.as_bytes());
                chain.extend_from_slice(b", ");
            }
            chain.extend_from_slice(client_ip.as_bytes());
            slot.insert(HeaderValue::from_bytes(&chain).unwrap_or_else(|_| client_ip.clone()));
        }
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST.clone(), host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_fixed_list_and_connection_named_headers() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, X-Secret-Hop"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(PROXY_AUTHORIZATION, HeaderValue::from_static("Basic x"));
        h.insert("x-kept", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-kept"], "yes");
    }

    #[test]
    fn connection_header_in_several_lines() {
        let mut h = HeaderMap::new();
        h.append(CONNECTION, HeaderValue::from_static("a"));
        h.append(CONNECTION, HeaderValue::from_static("b , c"));
        for n in ["a", "b", "c", "d"] {
            h.insert(n, HeaderValue::from_static("1"));
        }
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["d"]);
    }

    #[test]
    fn forwarded_for_is_appended() {
        let ip = HeaderValue::from_static("127.0.0.1");
        let mut h = HeaderMap::new();
        add_forwarded(&mut h, &ip, "http", Some(HeaderValue::from_static("example.com")));
        assert_eq!(h[&X_FORWARDED_FOR], "127.0.0.1");
        assert_eq!(h[&X_FORWARDED_PROTO], "http");
        assert_eq!(h[&X_FORWARDED_HOST], "example.com");

        let mut h = HeaderMap::new();
        h.append(&X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        h.append(&X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.2"));
        add_forwarded(&mut h, &ip, "http", None);
        assert_eq!(h.get_all(&X_FORWARDED_FOR).iter().count(), 1);
        assert_eq!(h[&X_FORWARDED_FOR], "10.0.0.1, 10.0.0.2, 127.0.0.1");
        assert!(!h.contains_key(&X_FORWARDED_HOST));
    }
}
