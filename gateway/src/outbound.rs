//! Fetching from hosts that others name (a client's metadata document, a backend's authorization
//! server): one way, so that each such fetch has the same guards. The host must resolve only to
//! public addresses (unless the operator allows private networks), checked by the HTTP client's own
//! resolver, so the address connected to is the one checked whatever a second DNS answer says; no
//! redirects, no proxy; a time limit; and a bound on what is read.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// An HTTP client for hosts others name, and whether it may reach private addresses: a host name is
/// checked by the client's resolver, an address written in the URL (which no resolver sees) here.
pub(crate) struct Outbound {
    client: reqwest::Client,
    allow_private: bool,
}

impl Outbound {
    pub(crate) fn new(allow_private: bool, timeout: Duration) -> Self {
        Self {
            client: client(allow_private, timeout),
            allow_private,
        }
    }

    /// A request to `url`, or why it may not be made.
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("{url} is not a URL: {e}"))?;
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && !self.allow_private
            && !is_public(ip)
        {
            return Err(PrivateAddress(ip.to_string()).to_string());
        }
        Ok(self.client.request(method, parsed))
    }
}

/// An HTTP client for fetches from hosts others name, each within `timeout`.
pub(crate) fn client(allow_private: bool, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(std::sync::Arc::new(PublicOnly { allow_private }))
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the host again, past the resolver's check.
        .no_proxy()
        .timeout(timeout)
        .user_agent(concat!("mcp-auth-gateway/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("an HTTP client")
}

/// What a failed request is called in an error: never the URL's secrets, only what went wrong.
pub(crate) fn failure(error: &reqwest::Error) -> String {
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        if let Some(private) = inner.downcast_ref::<PrivateAddress>() {
            return private.to_string();
        }
        cause = inner.source();
    }
    if error.is_timeout() {
        "it took too long".to_owned()
    } else {
        "the connection failed".to_owned()
    }
}

/// A response's body: at most `max` bytes, each read within `timeout`.
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
    max: usize,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let chunk = tokio::time::timeout(timeout, response.chunk())
            .await
            .map_err(|_| "it took too long".to_owned())?
            .map_err(|_| "the connection failed".to_owned())?;
        let Some(chunk) = chunk else { break };
        body.extend_from_slice(&chunk);
        if body.len() > max {
            return Err(format!("it is larger than {max} bytes"));
        }
    }
    Ok(body)
}

/// The resolver's refusal of a host with a private address.
#[derive(Debug, thiserror::Error)]
#[error("the host {0} resolves to a private or reserved address")]
pub(crate) struct PrivateAddress(pub String);

/// The fetching client's resolver: a host resolves only if every address it has is public (unless
/// private networks are allowed), so that the address the connection goes to is one that was
/// checked, whatever a second DNS answer says.
struct PublicOnly {
    allow_private: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private && addresses.iter().any(|a| !is_public(a.ip())) {
                return Err(PrivateAddress(host).into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// Whether an address is on the public internet: not private, loopback, link-local, unspecified,
/// multicast, shared (CGNAT), documentation or otherwise reserved.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            let first = segments[0];
            // NAT64 (64:ff9b::/96, and the local-use 64:ff9b:1::/48 of RFC 8215), 6to4 (2002::/16)
            // and IPv4-compatible (::/96) addresses carry an IPv4 address that may be private.
            let nat64 =
                segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..3] == [0x64, 0xff9b, 1];
            let compatible = segments[..6] == [0; 6];
            !(nat64
                || first == 0x2002
                || compatible
                || v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a00:1",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
