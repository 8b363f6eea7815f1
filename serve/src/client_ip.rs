//! Who the client is: the peer address, or what trusted proxies say in `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The client's address.
///
/// `X-Forwarded-For` is believed only when the peer is inside one of `trusted_proxies`. The
/// list is then walked from the right (the hop our proxy appended) past addresses that are
/// themselves trusted proxies; the first other address is the client. Entries left of it
/// are the client's own say and are never read. A malformed entry met on the way means the
/// proxies cannot be followed, so the peer is the answer. If every hop is a trusted proxy,
/// the leftmost one is the client (a request from inside our own network).
///
/// IPv4-mapped IPv6 addresses are returned as IPv4.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted_proxies: &[IpNet]) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    let trusted = |ip: IpAddr| trusted_proxies.iter().any(|net| net.contains(&ip));
    if !trusted(peer_ip) {
        return peer_ip;
    }
    // Several `X-Forwarded-For` headers count as one list, in order. Split as bytes: the
    // client's own entries may be anything (not even text), and only the hops the walk
    // reaches are read.
    let hops: Vec<&[u8]> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .collect();
    let mut client = peer_ip;
    for hop in hops.iter().rev() {
        let Some(ip) = std::str::from_utf8(hop).ok().and_then(parse_hop) else {
            return peer_ip;
        };
        client = ip;
        if !trusted(ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`) as some proxies write it.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))?;
    Some(ip.to_canonical())
}

/// A network for `--trusted-proxy`: a CIDR such as `10.0.0.0/8`, or a bare address (taken
/// as /32 or /128). Host bits are cleared: `10.1.2.3/8` is `10.0.0.0/8`.
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{s:?} is neither a CIDR network (like 10.0.0.0/8) nor an IP address"))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| parse_cidr(s).unwrap()).collect()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn peer(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 40000)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn header_from_an_untrusted_peer_is_ignored() {
        let got = client_ip(
            peer("203.0.113.9"),
            &xff(&["198.51.100.1"]),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let got = client_ip(peer("10.0.0.1"), &xff(&["198.51.100.1"]), &[]);
        assert_eq!(got, ip("10.0.0.1"));
    }

    #[test]
    fn trusted_peer_without_header_is_the_client() {
        let got = client_ip(peer("10.0.0.1"), &HeaderMap::new(), &nets(&["10.0.0.0/8"]));
        assert_eq!(got, ip("10.0.0.1"));
    }

    #[test]
    fn rightmost_untrusted_hop_is_the_client_and_spoofed_entries_are_skipped() {
        // The client claimed 1.1.1.1; our edge proxy 10.0.0.2 appended the real address,
        // and the inner proxy 10.0.0.1 appended the edge proxy.
        let got = client_ip(
            peer("10.0.0.1"),
            &xff(&["1.1.1.1, 198.51.100.7, 10.0.0.2"]),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn several_headers_form_one_list() {
        let got = client_ip(
            peer("10.0.0.1"),
            &xff(&["1.1.1.1", "198.51.100.7", "10.0.0.2"]),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn malformed_entry_before_the_client_falls_back_to_the_peer() {
        for value in ["bogus", "198.51.100.7, ", "198.51.100.7, unknown"] {
            let got = client_ip(peer("10.0.0.1"), &xff(&[value]), &nets(&["10.0.0.0/8"]));
            assert_eq!(got, ip("10.0.0.1"), "{value}");
        }
    }

    #[test]
    fn garbage_left_of_the_client_is_never_read() {
        let got = client_ip(
            peer("10.0.0.1"),
            &xff(&["not-an-ip, 198.51.100.7"]),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn bytes_that_are_not_text_left_of_the_client_are_never_read() {
        // Before, any non-ASCII byte in the header made the proxy the client: a client could
        // choose to share the proxy's rate-limit bucket.
        let mut headers = HeaderMap::new();
        headers.append(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes("é, 9.9.9.1x, 198.51.100.7".as_bytes()).unwrap(),
        );
        let got = client_ip(peer("10.0.0.1"), &headers, &nets(&["10.0.0.0/8"]));
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn hops_with_ports_and_ipv6_are_understood() {
        let trusted = nets(&["10.0.0.0/8", "fd00::/8"]);
        let got = client_ip(peer("fd00::1"), &xff(&["[2001:db8::5]:443"]), &trusted);
        assert_eq!(got, ip("2001:db8::5"));
        let got = client_ip(peer("10.0.0.1"), &xff(&["198.51.100.7:1234"]), &trusted);
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn ipv4_mapped_addresses_are_treated_as_ipv4() {
        let trusted = nets(&["10.0.0.0/8"]);
        let got = client_ip(
            peer("::ffff:10.0.0.1"),
            &xff(&["::ffff:198.51.100.7"]),
            &trusted,
        );
        assert_eq!(got, ip("198.51.100.7"));
        let got = client_ip(peer("::ffff:203.0.113.9"), &HeaderMap::new(), &trusted);
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn all_hops_trusted_gives_the_leftmost() {
        let got = client_ip(
            peer("10.0.0.1"),
            &xff(&["10.9.9.9, 10.0.0.2"]),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(got, ip("10.9.9.9"));
    }

    #[test]
    fn parse_cidr_accepts_networks_and_bare_addresses() {
        assert_eq!(parse_cidr("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(
            parse_cidr(" 10.1.2.3/8 ").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(parse_cidr("192.0.2.1").unwrap().to_string(), "192.0.2.1/32");
        assert_eq!(
            parse_cidr("2001:db8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert_eq!(
            parse_cidr("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
    }

    #[test]
    fn parse_cidr_rejects_garbage() {
        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0/8", "::1/129"] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
    }
}
