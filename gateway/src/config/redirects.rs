//! Which redirect URIs clients may register: https; http on a loopback address (RFC 8252 §7.3);
//! and the private-use schemes of native apps (RFC 8252 §7.1). The policy is the operator's
//! (`auth.private_use_redirect_schemes`), so it lives here, and both `[[clients]]` and the
//! authorization server check URIs against it.
//!
//! RFC 8252 asks apps for reverse-domain schemes (`com.example.app:/cb`), but clients in the field
//! use short ones with an authority (`cursor://anysphere.cursor-retrieval/…`, `vscode://…`), and
//! refusing them locks their users out. (The MCP spec asks for localhost or https redirects; native
//! apps cannot meet it, so this follows RFC 8252 instead.) So by default a reverse-domain scheme, or
//! any scheme in that `app://host/…` shape, is accepted; the operator can name the accepted schemes
//! instead. Never accepted, whatever the config: schemes the browser itself runs or reads
//! ([`BROWSER_SCHEMES`]: the code would go to a script or a local file), and those of the operating
//! system's own handlers ([`is_system_scheme`]: a redirect would launch a file share, a shell, a
//! diagnostic tool or another browser, never an MCP client).

use url::Url;

use super::{ConfigError, Errors};

/// The private-use schemes of native apps (RFC 8252 §7.1) that redirect URIs may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrivateUseSchemes {
    /// The default: a reverse-domain scheme (`com.example.app:/cb`), or any scheme in the
    /// `app://host/…` shape that apps in the field use.
    Any,
    /// Only these, lower case; empty: none.
    Only(Vec<String>),
}

impl PrivateUseSchemes {
    /// Whether a redirect URI with `scheme` (lower case, as URLs are parsed), with or without an
    /// authority, is accepted.
    pub(crate) fn accepts(&self, scheme: &str, has_authority: bool) -> bool {
        match self {
            PrivateUseSchemes::Any => scheme.contains('.') || has_authority,
            PrivateUseSchemes::Only(schemes) => schemes.iter().any(|s| s == scheme),
        }
    }

    /// The accepted schemes, for an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            PrivateUseSchemes::Any => {
                "a reverse-domain scheme (com.example.app:/cb) or app://host/… form".into()
            }
            PrivateUseSchemes::Only(schemes) if schemes.is_empty() => "(no app schemes)".into(),
            PrivateUseSchemes::Only(schemes) => schemes.join(", "),
        }
    }
}

/// `auth.private_use_redirect_schemes`: each a URI scheme (RFC 3986 §3.1) that is neither http(s)
/// nor one the browser runs or reads itself.
pub(super) fn private_use_schemes(
    schemes: Option<&[String]>,
    errors: &Errors,
) -> Result<PrivateUseSchemes, ConfigError> {
    let Some(schemes) = schemes else {
        return Ok(PrivateUseSchemes::Any);
    };
    let mut accepted = Vec::with_capacity(schemes.len());
    for (i, scheme) in schemes.iter().enumerate() {
        let at = format!("auth.private_use_redirect_schemes[{i}]");
        let lower = scheme.to_ascii_lowercase();
        let well_formed = lower.starts_with(|c: char| c.is_ascii_alphabetic())
            && lower
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !well_formed {
            return Err(errors.at(&at, format!("{scheme:?} is not a URI scheme")));
        }
        if matches!(lower.as_str(), "http" | "https") {
            return Err(errors.at(
                &at,
                format!(
                    "{scheme:?} is not an app's scheme: https and loopback http are always accepted"
                ),
            ));
        }
        if BROWSER_SCHEMES.contains(&lower.as_str()) {
            return Err(errors.at(
                &at,
                format!("{scheme:?} is run or read by the browser itself, never an app's scheme"),
            ));
        }
        if is_system_scheme(&lower) {
            return Err(errors.at(
                &at,
                format!(
                    "{scheme:?} opens a program of the operating system, never an app's scheme"
                ),
            ));
        }
        accepted.push(lower);
    }
    Ok(PrivateUseSchemes::Only(accepted))
}

/// Schemes that run or read content in the browser rather than hand the URI to an app.
pub(crate) const BROWSER_SCHEMES: &[&str] = &[
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
pub(crate) fn is_system_scheme(scheme: &str) -> bool {
    scheme.starts_with("ms-") || SYSTEM_SCHEMES.contains(&scheme)
}

/// Why a redirect URI cannot be registered under `schemes`; `None` if it can.
pub(crate) fn registration_problem(raw: &str, schemes: &PrivateUseSchemes) -> Option<String> {
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

/// Whether a URL's host is a loopback address or `localhost`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
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
}
