//! The real client address behind trusted proxies, from `X-Forwarded-For`.
//!
//! Every hop appends the address it saw to the right, so only the right-hand part that trusted hops wrote can be
//! believed: walk from the right past trusted addresses and stop at the first one that is not. Anything to the left
//! of that may have been written by the client itself.

use std::net::{IpAddr, SocketAddr};

/// The client address for a request from `peer` carrying the `X-Forwarded-For` header values `xff` (in the order
/// they appear in the request).
///
/// - an untrusted peer's own address, whatever the header says;
/// - otherwise the right-most entry that `trusted` rejects;
/// - if every entry is trusted, the left-most one;
/// - an entry that is not an IP address (`unknown`, garbage, empty) stops the walk: the last trusted hop seen wins.
pub(crate) fn client_ip(peer: IpAddr, xff: &[&str], trusted: &dyn Fn(IpAddr) -> bool) -> IpAddr {
    // A dual-stack listener reports IPv4 clients as `::ffff:a.b.c.d`; judge them as the IPv4 address they are.
    let peer = peer.to_canonical();
    if !trusted(peer) {
        return peer;
    }
    let mut last_trusted = peer;
    let entries = xff.iter().rev().flat_map(|value| value.rsplit(','));
    for entry in entries {
        let Some(ip) = parse_entry(entry.trim()) else {
            return last_trusted;
        };
        if !trusted(ip) {
            return ip;
        }
        last_trusted = ip;
    }
    last_trusted
}

/// An address as proxies write it: `1.2.3.4`, `2001:db8::1`, and tolerated forms with a port, `1.2.3.4:80` and
/// `[2001:db8::1]:80`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trusts 10.0.0.0/8 and ::1, like `trusted_proxies = ["10.0.0.0/8", "::1/128"]`.
    fn trusted(ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => v4.octets()[0] == 10,
            IpAddr::V6(v6) => v6.is_loopback(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_cannot_spoof() {
        let peer = ip("198.51.100.7");
        assert_eq!(client_ip(peer, &["1.1.1.1"], &trusted), peer);
        assert_eq!(client_ip(peer, &["10.0.0.5"], &trusted), peer);
        assert_eq!(client_ip(peer, &[], &trusted), peer);
    }

    #[test]
    fn trusted_peer_without_header_is_the_client() {
        assert_eq!(client_ip(ip("10.0.0.2"), &[], &trusted), ip("10.0.0.2"));
    }

    #[test]
    fn right_most_untrusted_entry_wins_over_a_spoofed_left_part() {
        // The client sent `X-Forwarded-For: 6.6.6.6`; the balancer appended the address it saw.
        let got = client_ip(ip("10.0.0.2"), &["6.6.6.6, 203.0.113.9"], &trusted);
        assert_eq!(got, ip("203.0.113.9"));
        // Trusted hops to the right are skipped.
        let got = client_ip(ip("10.0.0.2"), &["6.6.6.6, 203.0.113.9, 10.1.1.1,10.2.2.2"], &trusted);
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn several_header_lines_are_one_list_in_order() {
        let got = client_ip(ip("10.0.0.2"), &["6.6.6.6, 203.0.113.9", "10.1.1.1"], &trusted);
        assert_eq!(got, ip("203.0.113.9"));
        let got = client_ip(ip("10.0.0.2"), &["6.6.6.6", "203.0.113.9, 10.1.1.1"], &trusted);
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn all_trusted_gives_the_left_most() {
        let got = client_ip(ip("10.0.0.2"), &["10.9.9.9, 10.1.1.1"], &trusted);
        assert_eq!(got, ip("10.9.9.9"));
    }

    #[test]
    fn invalid_entry_stops_at_the_last_trusted_hop() {
        let got = client_ip(ip("10.0.0.2"), &["203.0.113.9, unknown, 10.1.1.1"], &trusted);
        assert_eq!(got, ip("10.1.1.1"));
        let got = client_ip(ip("10.0.0.2"), &["203.0.113.9, garbage"], &trusted);
        assert_eq!(got, ip("10.0.0.2"));
        let got = client_ip(ip("10.0.0.2"), &["203.0.113.9,,10.1.1.1"], &trusted);
        assert_eq!(got, ip("10.1.1.1"));
    }

    #[test]
    fn ipv6_ports_and_mapped_addresses() {
        let got = client_ip(ip("::1"), &["2001:db8::9"], &trusted);
        assert_eq!(got, ip("2001:db8::9"));
        let got = client_ip(ip("10.0.0.2"), &["[2001:db8::9]:4711, 10.1.1.1:80"], &trusted);
        assert_eq!(got, ip("2001:db8::9"));
        // An IPv4-mapped IPv6 entry is judged (and returned) as the IPv4 address it is.
        let got = client_ip(ip("10.0.0.2"), &["203.0.113.9, ::ffff:10.1.1.1"], &trusted);
        assert_eq!(got, ip("203.0.113.9"));
    }
}
