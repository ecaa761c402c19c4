//! Redirect URIs: which may be registered, and whether one presented at `/authorize` matches a
//! registered one (exactly; for loopback, any port).
//!
//! Accepted: https; http on a loopback address (RFC 8252 §7.3); and the private-use schemes of native
//! apps (RFC 8252 §7.1). RFC 8252 asks apps for reverse-domain schemes (`com.example.app:/cb`), but
//! clients in the field use short ones with an authority (`cursor://anysphere.cursor-retrieval/…`,
//! `vscode://…`), and refusing them locks their users out. (The MCP spec asks for localhost or https
//! redirects; native apps cannot meet it, so this follows RFC 8252 instead.) So by default a
//! reverse-domain scheme, or any scheme in that `app://host/…` shape, is accepted; the operator can
//! name the accepted schemes instead (`auth.private_use_redirect_schemes`). Never accepted, whatever
//! the config: schemes the browser itself runs or reads ([`BROWSER_SCHEMES`]: the code would go to a
//! script or a local file), and those of the operating system's own handlers ([`is_system_scheme`]:
//! a redirect would launch a file share, a shell, a diagnostic tool or another browser, never an MCP
//! client).

use url::Url;

use crate::config::runtime::PrivateUseSchemes;

/// Schemes that run or read content in the browser rather than hand the URI to an app.
pub const BROWSER_SCHEMES: &[&str] = &[
    "javascript",
    "vbscript",
    "data",
    "file",
    "blob",
    "about",
    "filesystem",
    "view-source",
    "jar",
    "ftp",
    "chrome",
    "resource",
    "mhtml",
    "ws",
    "wss",
];

/// Schemes of the operating system's own handlers, besides every `ms-…` (Windows' own: `ms-msdt`,
/// `ms-officecmd`, `ms-settings`, …).
const SYSTEM_SCHEMES: &[&str] = &[
    "smb",
    "afp",
    "nfs",
    "sftp",
    "ftps",
    "ssh",
    "telnet",
    "rdp",
    "vnc",
    "ldap",
    "ldaps",
    "mailto",
    "tel",
    "sms",
    "callto",
    "facetime",
    "facetime-audio",
    "skype",
    "shell",
    "search",
    "search-ms",
    "intent",
    "android-app",
    "microsoft-edge",
    "x-safari-http",
    "x-safari-https",
    "googlechrome",
    "googlechromes",
    "firefox",
    "chrome-extension",
    "moz-extension",
];

/// Whether `scheme` (lower case) belongs to one of the operating system's own handlers.
pub fn is_system_scheme(scheme: &str) -> bool {
    scheme.starts_with("ms-") || SYSTEM_SCHEMES.contains(&scheme)
}

/// How a redirect URI hands the code over, for the consent page.
#[derive(Debug, PartialEq, Eq)]
pub enum Destination {
    /// A web site (https), or this computer (loopback http): the host.
    Host(String),
    /// An app on the user's device, by its private-use scheme: the whole URI, since its "host" is
    /// whatever the app made up.
    App(String),
}

/// Why a redirect URI cannot be registered under `schemes`; `None` if it can.
pub fn registration_problem(raw: &str, schemes: &PrivateUseSchemes) -> Option<String> {
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
        scheme if BROWSER_SCHEMES.contains(&scheme) => Some(format!(
            "{raw:?} uses the scheme {scheme}, which the browser runs or reads itself; a redirect URI \
             must be https, loopback http or an app's own scheme"
        )),
        scheme if is_system_scheme(scheme) => Some(format!(
            "{raw:?} uses the scheme {scheme}, which opens a program of the operating system, not an \
             app's own scheme"
        )),
        scheme if schemes.accepts(scheme, url.has_authority()) => None,
        scheme => Some(format!(
            "{raw:?} uses the scheme {scheme}, which this server does not accept for apps; a \
             redirect URI must be https, loopback http or one of: {}",
            schemes.describe()
        )),
    }
}

/// Where the code goes when the browser is sent to `uri`: as the browser will read it (parsed, so
/// that no invisible or look-alike character hides what it is).
pub fn destination(uri: &str) -> Destination {
    match Url::parse(uri) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            Destination::Host(url.host_str().unwrap_or(uri).to_owned())
        }
        Ok(url) => Destination::App(url.into()),
        Err(_) => Destination::App(uri.to_owned()),
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

    const ANY: PrivateUseSchemes = PrivateUseSchemes::Any;

    #[test]
    fn https_loopback_and_app_schemes_register() {
        assert_eq!(registration_problem("https://app.example/cb", &ANY), None);
        assert_eq!(registration_problem("http://127.0.0.1:3000/cb", &ANY), None);
        assert_eq!(registration_problem("http://localhost/cb", &ANY), None);
        assert_eq!(registration_problem("http://[::1]:1/cb", &ANY), None);
        assert_eq!(registration_problem("com.example.app:/cb", &ANY), None);
        assert_eq!(
            registration_problem(
                "cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback",
                &ANY
            ),
            None
        );
        assert_eq!(
            registration_problem(
                "vscode://vscode.github-authentication/did-authenticate",
                &ANY
            ),
            None
        );
        assert!(registration_problem("http://app.example/cb", &ANY).is_some());
        assert!(
            registration_problem("myapp:/cb", &ANY).is_some(),
            "a short scheme without an authority is not an app's redirect by default"
        );
        assert!(registration_problem("https://app.example/cb#x", &ANY).is_some());
        assert!(registration_problem("cursor://cb#x", &ANY).is_some());
        assert!(registration_problem("/relative", &ANY).is_some());
        assert!(registration_problem("not a uri", &ANY).is_some());
    }

    #[test]
    fn schemes_the_browser_runs_or_reads_never_register() {
        for uri in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "vbscript:msgbox(1)",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
            "blob:https://app.example/0b6c",
            "about:blank",
            "filesystem:https://app.example/temporary/x",
            "view-source:https://app.example/",
        ] {
            let problem =
                registration_problem(uri, &ANY).unwrap_or_else(|| panic!("{uri} was accepted"));
            assert!(problem.contains("browser runs or reads"), "{problem}");
            let only = PrivateUseSchemes::Only(vec!["javascript".into(), "data".into()]);
            assert!(
                registration_problem(uri, &only).is_some(),
                "{uri} accepted because the config named it"
            );
        }
    }

    #[test]
    fn schemes_of_the_operating_system_never_register() {
        for uri in [
            "ms-msdt:/id PCWDiagnostic /skip force",
            "ms-officecmd:{}",
            "MS-Settings:privacy",
            "search-ms:query=x&crumb=location:\\\\evil\\share",
            "smb://evil.example/share",
            "ssh://evil.example/",
            "mailto:someone@example.com",
            "tel:+15555550100",
            "microsoft-edge:https://evil.example/",
            "x-safari-https://evil.example/",
            "intent://scan/#Intent;scheme=zxing;end",
            "chrome-extension://abc/cb",
        ] {
            let problem =
                registration_problem(uri, &ANY).unwrap_or_else(|| panic!("{uri} was accepted"));
            assert!(
                problem.contains("operating system") || problem.contains("fragment"),
                "{uri}: {problem}"
            );
        }
    }

    #[test]
    fn an_operator_can_narrow_the_app_schemes() {
        let only = PrivateUseSchemes::Only(vec!["cursor".into()]);
        assert_eq!(registration_problem("cursor://x/cb", &only), None);
        assert_eq!(registration_problem("CURSOR://x/cb", &only), None);
        assert_eq!(registration_problem("https://app.example/cb", &only), None);
        assert_eq!(registration_problem("http://127.0.0.1:9/cb", &only), None);
        let problem = registration_problem("vscode://x/cb", &only).unwrap();
        assert!(problem.contains("one of: cursor"), "{problem}");
        let short = PrivateUseSchemes::Only(vec!["myapp".into()]);
        assert_eq!(
            registration_problem("myapp:/cb", &short),
            None,
            "a scheme the operator named need not have an authority"
        );
        let none = PrivateUseSchemes::Only(Vec::new());
        assert!(registration_problem("cursor://x/cb", &none).is_some());
        assert_eq!(registration_problem("https://app.example/cb", &none), None);
    }

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
