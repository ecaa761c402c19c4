//! Redirect URIs: which may be registered (https, or http on a loopback address: RFC 8252 §7.3), and
//! whether one presented at `/authorize` matches a registered one (exactly; for loopback, any port).

use url::Url;

/// Why a redirect URI cannot be registered; `None` if it can.
pub fn registration_problem(raw: &str) -> Option<String> {
    let Ok(url) = Url::parse(raw) else {
        return Some(format!("{raw:?} is not an absolute URI"));
    };
    if url.fragment().is_some() {
        return Some(format!("{raw:?} has a fragment"));
    }
    match url.scheme() {
        "https" => None,
        "http" if is_loopback(&url) => None,
        "http" => Some(format!(
            "{raw:?} is plain http on a host that is not loopback"
        )),
        // Private-use schemes of native apps (RFC 8252 §7.1): reverse-domain, so with a dot.
        scheme if scheme.contains('.') => None,
        scheme => Some(format!(
            "{raw:?} uses the scheme {scheme}, which is not https, loopback http or a reverse-domain app scheme"
        )),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether `presented` matches `registered`: byte for byte, except that a loopback redirect may use any
/// port (the client picks a free one when it starts).
pub fn matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(r), Ok(p)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    r.scheme() == "http"
        && p.scheme() == "http"
        && is_loopback(&r)
        && r.host() == p.host()
        && r.path() == p.path()
        && r.query() == p.query()
        && p.fragment().is_none()
        && r.username() == p.username()
        && r.password().is_none()
        && p.password().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_loopback_and_app_schemes_register() {
        assert_eq!(registration_problem("https://app.example/cb"), None);
        assert_eq!(registration_problem("http://127.0.0.1:3000/cb"), None);
        assert_eq!(registration_problem("http://localhost/cb"), None);
        assert_eq!(registration_problem("http://[::1]:1/cb"), None);
        assert_eq!(registration_problem("com.example.app:/cb"), None);
        assert!(registration_problem("http://app.example/cb").is_some());
        assert!(registration_problem("javascript:alert(1)").is_some());
        assert!(registration_problem("https://app.example/cb#x").is_some());
        assert!(registration_problem("/relative").is_some());
    }

    #[test]
    fn matching_is_exact_but_loopback_ports_vary() {
        assert!(matches("https://app.example/cb", "https://app.example/cb"));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example/cb/"
        ));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example:8443/cb"
        ));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example/cb?x=1"
        ));
        assert!(matches(
            "http://127.0.0.1:3000/cb",
            "http://127.0.0.1:49152/cb"
        ));
        assert!(matches("http://localhost/cb", "http://localhost:5000/cb"));
        assert!(!matches(
            "http://127.0.0.1:3000/cb",
            "http://127.0.0.1:3000/other"
        ));
        assert!(!matches(
            "http://127.0.0.1:3000/cb",
            "http://localhost:3000/cb"
        ));
        assert!(!matches("http://127.0.0.1/cb", "http://evil.example/cb"));
    }
}
