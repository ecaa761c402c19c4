//! Redirect URIs at the authorization server: whether one presented at `/authorize` matches a
//! registered one (exactly; for loopback, any port), and where it sends the user. Which may be
//! registered is the operator's policy, in [`crate::config::redirects`].

use url::Url;

use crate::config::redirects::is_loopback;
pub(super) use crate::config::redirects::registration_problem;

/// How a redirect URI hands the code over, for the consent page.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Destination {
    /// A web site (https), or this computer (loopback http): the host.
    Host(String),
    /// An app on the user's device, by its private-use scheme: the whole URI, since its "host" is
    /// whatever the app made up.
    App(String),
}

/// Where the code goes when the browser is sent to `uri`: as the browser will read it (parsed, so
/// that no invisible or look-alike character hides what it is).
pub(super) fn destination(uri: &str) -> Destination {
    match Url::parse(uri) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            Destination::Host(url.host_str().unwrap_or(uri).to_owned())
        }
        Ok(url) => Destination::App(url.into()),
        Err(_) => Destination::App(uri.to_owned()),
    }
}

/// Whether `presented` matches `registered`: byte for byte, except that a loopback redirect may use any
/// port (the client picks a free one when it starts).
pub(super) fn matches(registered: &str, presented: &str) -> bool {
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
    fn the_destination_of_an_app_scheme_is_the_whole_uri() {
        assert_eq!(
            destination("https://claude.ai/api/mcp/auth_callback"),
            Destination::Host("claude.ai".into())
        );
        assert_eq!(
            destination("http://127.0.0.1:6274/oauth/callback"),
            Destination::Host("127.0.0.1".into())
        );
        assert_eq!(
            destination("cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback"),
            Destination::App("cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback".into())
        );
        assert_eq!(
            destination("cursor://evil\u{202e}moc.example/cb"),
            Destination::App("cursor://evil%E2%80%AEmoc.example/cb".into()),
            "shown as the browser will read it"
        );
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
        assert!(!matches("cursor://x/cb", "cursor://x/cb2"));
        assert!(!matches("cursor://x:1/cb", "cursor://x:2/cb"));
    }
}
