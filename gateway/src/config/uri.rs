//! Resource URIs as a policy compares them: normalised as RFC 3986 §6.2.2 says two equivalent URIs
//! are (the scheme and host in lower case, percent-encodings of unreserved characters decoded and
//! the others' hex digits in upper case), so that `FILE:///srv/%7Eops` is `file:///srv/~ops`; and
//! the forms one server reads as a path another does not, which are refused where a rule would
//! match them: dot segments (`/../`, `/%2e%2e/`) and encoded or back slashes (`%2F`, `\`).

use std::borrow::Cow;

/// `uri`, normalised (RFC 3986 §6.2.2). Wildcards in a rule's pattern pass as they are.
pub(crate) fn normalise(uri: &str) -> Cow<'_, str> {
    let (scheme, rest) = match uri.split_once(':') {
        Some((scheme, rest)) if is_scheme(scheme) => (Some(scheme), rest),
        _ => (None, uri),
    };
    // The authority, after `//`, up to the path.
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            (Some(&after[..end]), &after[end..])
        }
        None => (None, rest),
    };
    let lower_scheme = scheme.is_some_and(|s| s.bytes().any(|b| b.is_ascii_uppercase()));
    let lower_host = authority.is_some_and(|a| host_of(a).bytes().any(|b| b.is_ascii_uppercase()));
    if !lower_scheme && !lower_host && !uri.contains('%') {
        return Cow::Borrowed(uri);
    }
    let mut out = String::with_capacity(uri.len());
    if let Some(scheme) = scheme {
        out.push_str(&scheme.to_ascii_lowercase());
        out.push(':');
    }
    if let Some(authority) = authority {
        out.push_str("//");
        let host = host_of(authority);
        let at = authority.len()
            - authority
                .rsplit_once('@')
                .map_or(authority.len(), |(_, h)| h.len());
        out.push_str(&percent(&authority[..at]));
        out.push_str(&percent(&host.to_ascii_lowercase()));
        out.push_str(&authority[at + host.len()..]);
    }
    out.push_str(&percent(path));
    Cow::Owned(out)
}

/// Whether a normalised URI holds what servers read differently as a path: a dot segment, an
/// encoded slash or backslash, or a backslash (which some read as a slash).
pub(crate) fn is_ambiguous(uri: &str) -> bool {
    let upper = uri.to_ascii_uppercase();
    if upper.contains("%2F") || upper.contains("%5C") || uri.contains('\\') {
        return true;
    }
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    path.split('/')
        .any(|segment| segment == "." || segment == "..")
}

/// What a server that reads encoded and back slashes as slashes, and resolves dot segments (RFC
/// 3986 §5.2.4), takes a normalised URI's path for: where a read of it may really lead.
pub(crate) fn resolved(uri: &str) -> String {
    let slashes = uri
        .replace("%2F", "/")
        .replace("%2f", "/")
        .replace("%5C", "/")
        .replace("%5c", "/")
        .replace('\\', "/");
    let (head, tail) = match slashes.find(['?', '#']) {
        Some(at) => slashes.split_at(at),
        None => (slashes.as_str(), ""),
    };
    // The path starts after the scheme and authority.
    let path_start = match head.find("://") {
        Some(at) => head[at + 3..].find('/').map_or(head.len(), |p| at + 3 + p),
        None => head.find(':').map_or(0, |at| at + 1),
    };
    let (prefix, path) = head.split_at(path_start);
    let mut kept: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {}
            ".." => {
                if kept.len() > 1 || kept.first().is_some_and(|s| !s.is_empty()) {
                    kept.pop();
                }
            }
            other => kept.push(other),
        }
        // A path ending in a dot segment ends in a slash.
        if i == segments.len() - 1 && matches!(*segment, "." | "..") {
            kept.push("");
        }
    }
    format!("{prefix}{}{tail}", kept.join("/"))
}

fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
}

/// The host (with its port) of an authority: what follows any userinfo.
fn host_of(authority: &str) -> &str {
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

/// Percent-encodings normalised: an unreserved character's decoded, others' hex in upper case.
fn percent(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit));
        match escape {
            Some(hex) => {
                let value = u8::from_str_radix(std::str::from_utf8(hex).expect("hex"), 16)
                    .expect("two hex digits");
                if value.is_ascii_alphanumeric() || b"-._~".contains(&value) {
                    out.push(value);
                } else {
                    out.push(b'%');
                    out.extend(hex.iter().map(u8::to_ascii_uppercase));
                }
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8(out).expect("only ASCII was decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_uris_normalise_alike() {
        for (uri, normal) in [
            ("file:///srv/runbooks/a.md", "file:///srv/runbooks/a.md"),
            ("FILE:///srv/%7Eops/a.md", "file:///srv/~ops/a.md"),
            (
                "HTTPS://Docs.Example.COM/A%2fb",
                "https://docs.example.com/A%2Fb",
            ),
            ("docs://runbooks/%61%62", "docs://runbooks/ab"),
            ("file:///srv/%2e%2e/etc", "file:///srv/../etc"),
            ("https://u%3a@Host:8443/x", "https://u%3A@host:8443/x"),
            ("file:///srv/runbooks/*", "file:///srv/runbooks/*"),
            ("not a uri %zz", "not a uri %zz"),
        ] {
            assert_eq!(normalise(uri), normal, "{uri}");
        }
        assert!(matches!(normalise("file:///a/b"), Cow::Borrowed(_)));
    }

    #[test]
    fn paths_read_two_ways_are_ambiguous() {
        for uri in [
            "file:///srv/runbooks/../../etc/shadow",
            "file:///srv/runbooks/./a",
            "file:///srv/runbooks/..",
            "file:///srv/runbooks%2F..%2Fetc",
            "file:///srv/runbooks%5c..",
            "file:///srv\\runbooks",
        ] {
            assert!(is_ambiguous(&normalise(uri)), "{uri}");
        }
        assert!(is_ambiguous(&normalise("file:///srv/%2e%2e/etc")));
        for uri in [
            "file:///srv/runbooks/a.md",
            "docs://x/..a/b..",
            "https://h/a?x=../b",
        ] {
            assert!(!is_ambiguous(&normalise(uri)), "{uri}");
        }
    }

    #[test]
    fn a_path_resolves_where_a_lenient_server_would_take_it() {
        for (uri, to) in [
            (
                "file:///srv/runbooks/../../etc/shadow",
                "file:///etc/shadow",
            ),
            ("file:///srv/runbooks/./a.md", "file:///srv/runbooks/a.md"),
            ("file:///srv/runbooks%2F..%2F..%2Fetc", "file:///etc"),
            ("file:///srv\\..\\etc", "file:///etc"),
            ("https://h/a/b/..", "https://h/a/"),
            ("https://h/../../x?q=../y", "https://h/x?q=../y"),
            ("docs:a/../b", "docs:b"),
        ] {
            assert_eq!(resolved(uri), to, "{uri}");
        }
    }
}
