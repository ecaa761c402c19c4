//! Who a request comes from, by address: the TCP peer, or, when the peer is one of the proxies the
//! operator trusts (`server.trusted_proxies`), the address those proxies saw, read from the one header
//! they write (`server.client_address_header`). A header from anyone else is ignored, so a client
//! cannot pick its own address. Limits count an IPv6 client by its /64, the block one host is given.

use std::net::{IpAddr, Ipv6Addr};

use http::HeaderMap;

use crate::config::{ClientAddressHeader, TrustedProxies};

/// The client's address: walking the proxies' chain from the nearest, the first address that is not
/// a trusted proxy. An entry that is not an address stops the walk at the proxy that wrote it, since
/// nothing further left can be believed.
pub(super) fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    proxies: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = peer.map(canonical)?;
    if !proxies.contains(peer) {
        return Some(peer);
    }
    let mut nearest = peer;
    let mut chain = Vec::new();
    match proxies.header {
        ClientAddressHeader::XForwardedFor => {
            for value in headers.get_all("x-forwarded-for") {
                let Ok(value) = value.to_str() else {
                    return Some(nearest);
                };
                chain.extend(value.split(',').map(|hop| parse_hop(hop.trim())));
            }
        }
        ClientAddressHeader::Forwarded => {
            for value in headers.get_all(http::header::FORWARDED) {
                let Ok(value) = value.to_str() else {
                    return Some(nearest);
                };
                chain.extend(value.split(',').map(forwarded_for));
            }
        }
    }
    for hop in chain.into_iter().rev() {
        let Some(address) = hop else {
            return Some(nearest);
        };
        if !proxies.contains(address) {
            return Some(address);
        }
        nearest = address;
    }
    Some(nearest)
}

/// The key limits count a client under: its IPv4 address, or its IPv6 /64.
pub(super) fn limit_key(address: IpAddr) -> IpAddr {
    match canonical(address) {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

/// An IPv4 client reached over an IPv6 socket is the IPv4 client.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps bracketed or with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(socket.ip()));
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse().ok())
        .map(canonical)
}

/// The `for=` of one `Forwarded` element (RFC 7239): `for=192.0.2.1`, `for="[2001:db8::1]:4711"`.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        parse_hop(value.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(cidrs: &[&str], header: ClientAddressHeader) -> TrustedProxies {
        TrustedProxies {
            networks: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            header,
        }
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy_and_only_up_to_the_first_untrusted_hop() {
        let trusted = proxies(&["10.0.0.0/8"], ClientAddressHeader::XForwardedFor);
        let spoofed = headers("x-forwarded-for", &["6.6.6.6"]);
        // From anyone else the header is ignored.
        assert_eq!(
            client_address(ip("203.0.113.9"), &spoofed, &trusted),
            ip("203.0.113.9")
        );
        // From the proxy: the rightmost address that is not a proxy; what the client wrote to
        // the left of it is not believed.
        let chain = headers("x-forwarded-for", &["6.6.6.6, 198.51.100.7", "10.1.1.1"]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &chain, &trusted),
            ip("198.51.100.7")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_address(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        // Garbage stops the walk at the proxy that passed it on.
        let garbage = headers("x-forwarded-for", &["198.51.100.7, unknown"]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &garbage, &trusted),
            ip("10.0.0.2")
        );
        // Ports, brackets and IPv4 in IPv6.
        let odd = headers("x-forwarded-for", &["[2001:db8::5]:443"]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &odd, &trusted),
            ip("2001:db8::5")
        );
        assert_eq!(
            client_address(
                ip("::ffff:10.0.0.2"),
                &headers("x-forwarded-for", &["192.0.2.8:9"]),
                &trusted
            ),
            ip("192.0.2.8")
        );
    }

    #[test]
    fn forwarded_is_read_when_it_is_the_header_the_proxies_write() {
        let trusted = proxies(&["10.0.0.0/8", "fd00::/8"], ClientAddressHeader::Forwarded);
        let value = r#"for=6.6.6.6;proto=https, For="[2001:db8::1]:4711";by=10.0.0.1, for=fd00::3"#;
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers("forwarded", &[value]), &trusted),
            ip("2001:db8::1")
        );
        // X-Forwarded-For is then just another header a client may have sent.
        let xff = headers("x-forwarded-for", &["198.51.100.7"]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &xff, &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn limits_count_an_ipv6_client_by_its_64() {
        assert_eq!(
            limit_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            limit_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            limit_key("192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }
}
