//! The request the backend sees, and how it is reached: the client's credentials, every client-sent
//! copy of the internal headers and every claim about the client's address removed, the route's
//! credentials and the gateway's own `X-Forwarded-For`/`-Proto`/`-Host` added, path and `Host`
//! rewritten for the backend; the peer with the route's timeouts.

use std::net::{IpAddr, SocketAddr};

use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;

use crate::config::{Credentials, Route};
use crate::tokens::backend::BackendCredentials;

use gateway_assertion::{
    ASSERTION_HEADER, EMAIL_HEADER, REQUEST_ID_HEADER, TOKEN_HEADER, USER_HEADER, USERNAME_HEADER,
};

const TOKEN: HeaderName = HeaderName::from_static(TOKEN_HEADER);
const USER: HeaderName = HeaderName::from_static(USER_HEADER);
const EMAIL: HeaderName = HeaderName::from_static(EMAIL_HEADER);
const USERNAME: HeaderName = HeaderName::from_static(USERNAME_HEADER);
const ASSERTION: HeaderName = HeaderName::from_static(ASSERTION_HEADER);
const REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

/// Headers only the gateway may set, and client credentials the backend must never see, besides every
/// `X-Forwarded-*` (the identity headers among them): lower case, as names are held.
const STRIPPED: [&[u8]; 7] = [
    b"authorization",
    b"proxy-authorization",
    b"cookie",
    b"forwarded",
    b"x-real-ip",
    ASSERTION_HEADER.as_bytes(),
    REQUEST_ID_HEADER.as_bytes(),
];

/// The start of the names of every header a backend may take as a proxy's word about the client.
const FORWARDED_PREFIX: &[u8] = b"x-forwarded-";

const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The `X-Forwarded-For` value of a client's address. The last one made on this thread is kept: a
/// connection's requests come from one client, and formatting an address on every request cost
/// more than the rest of the header's handling.
pub(super) fn forwarded_for_value(client: IpAddr) -> Option<HeaderValue> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(IpAddr, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((ip, value)) if *ip == client => Some(value.clone()),
        _ => {
            let value = HeaderValue::from_str(&client.to_string()).ok()?;
            *last = Some((client, value.clone()));
            Some(value)
        }
    })
}

/// What the gateway tells the backend about the client's request: the client's address (as
/// [`super::client_address`] found it), and the scheme and host it reached the gateway at.
pub(super) struct ForwardedFor<'a> {
    pub client: Option<&'a HeaderValue>,
    pub proto: &'a HeaderValue,
    pub host: &'a HeaderValue,
}

/// The peer for `route`'s backend at `address`, with the route's timeouts.
pub(super) fn peer(route: &Route, address: SocketAddr) -> HttpPeer {
    let backend = &route.backend;
    let mut peer = HttpPeer::new(address, backend.tls, backend.host.clone());
    peer.options.connection_timeout = Some(backend.connect_timeout);
    peer.options.read_timeout = Some(backend.read_timeout);
    peer.options.write_timeout = Some(backend.write_timeout);
    peer.options.idle_timeout = Some(std::time::Duration::from_secs(60));
    peer
}

/// What a request carries to its backend for the caller: the credentials the gateway made, or the
/// caller's own token at the backend (`credentials = "oauth"`).
#[derive(Clone, Copy)]
pub(super) struct Credentialed<'a> {
    pub made: Option<&'a BackendCredentials>,
    pub connection: Option<&'a HeaderValue>,
}

/// Rewrites `request` for `route`'s backend with the caller's `credentials`.
///
/// The request is rewritten as plain `http` parts and handed back to Pingora without the record of
/// its header names' original case, so the backend sees them in lower case (title case for the
/// common ones), as HTTP/2 would carry them; names are case-insensitive (RFC 9110, section 5.1).
/// Pingora's own `insert_header` parses and copies each name and keeps a second map in step, about
/// 2,000 instructions per header; here an insert is one hash-map insert of a pre-parsed name.
pub(super) fn prepare(
    request: &mut RequestHeader,
    route: &Route,
    credentials: Credentialed<'_>,
    request_id: &HeaderValue,
    forwarded: &ForwardedFor,
) -> pingora::Result<()> {
    let placeholder = RequestHeader::from(http::Request::new(()).into_parts().0);
    let mut parts = http::request::Parts::from(std::mem::replace(request, placeholder));
    let rewritten = rewrite(&mut parts, route, credentials, request_id, forwarded);
    *request = RequestHeader::from(parts);
    rewritten
}

fn rewrite(
    parts: &mut http::request::Parts,
    route: &Route,
    credentials: Credentialed<'_>,
    request_id: &HeaderValue,
    forwarded: &ForwardedFor,
) -> pingora::Result<()> {
    strip(&mut parts.headers);
    parts.uri = target(&parts.uri, route)?;
    let headers = &mut parts.headers;
    // At most ten inserts follow: one growth of the map instead of several.
    headers.reserve(10);
    headers.insert(http::header::HOST, route.backend.host_header.clone());
    headers.insert(REQUEST_ID, request_id.clone());
    if let Some(client) = forwarded.client {
        headers.insert(FORWARDED_FOR, client.clone());
    }
    headers.insert(FORWARDED_PROTO, forwarded.proto.clone());
    headers.insert(FORWARDED_HOST, forwarded.host.clone());
    match (route.credentials, credentials.made) {
        (Credentials::Headers, Some(c)) => insert_identity(headers, c)?,
        (Credentials::Bearer, Some(c)) => {
            headers.insert(http::header::AUTHORIZATION, c.bearer_backend_token.clone());
        }
        (Credentials::Assertion, Some(c)) => {
            headers.insert(http::header::AUTHORIZATION, c.bearer_assertion.clone());
        }
        (Credentials::OAuth | Credentials::Exchange, _) => {
            if let Some(bearer) = credentials.connection {
                headers.insert(http::header::AUTHORIZATION, bearer.clone());
            }
        }
        _ => {}
    }
    Ok(())
}

/// Removes every header the backend must not take from the client: [`STRIPPED`] and every
/// `X-Forwarded-*`, each compared with `_` as `-`, since WSGI and CGI servers fold both to one
/// variable (`X_Forwarded_User` would reach a Python backend as `X-Forwarded-User`). One pass over
/// the request's few names finds which are to go; one removal then takes every value under a name.
fn strip(headers: &mut http::HeaderMap) {
    // On the stack: a request carries few such names (its Authorization, at least), and this runs
    // on every request.
    let mut doomed: [Option<HeaderName>; 8] = Default::default();
    let mut more = Vec::new();
    for (i, name) in headers.keys().filter(|n| is_stripped(n)).enumerate() {
        match doomed.get_mut(i) {
            Some(slot) => *slot = Some(name.clone()),
            None => more.push(name.clone()),
        }
    }
    for name in doomed.iter().flatten().chain(&more) {
        headers.remove(name);
    }
}

fn is_stripped(name: &HeaderName) -> bool {
    let name = name.as_str().as_bytes();
    let folded = |b: u8| if b == b'_' { b'-' } else { b };
    let starts = |prefix: &[u8]| {
        name.len() >= prefix.len() && name.iter().zip(prefix).all(|(a, b)| folded(*a) == *b)
    };
    starts(FORWARDED_PREFIX) || STRIPPED.iter().any(|s| s.len() == name.len() && starts(s))
}

/// The backend's path, with the request's query.
fn target(uri: &http::Uri, route: &Route) -> pingora::Result<http::Uri> {
    let Some(query) = uri.query() else {
        return Ok(route.backend.target.clone());
    };
    let path = &route.backend.path;
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}{query}").parse().map_err(|_| {
        pingora::Error::explain(
            pingora::ErrorType::InvalidHTTPHeader,
            "the request target cannot be rewritten",
        )
    })
}

/// The `headers` mode: the backend token, the assertion, and the caller's identity.
fn insert_identity(
    headers: &mut http::HeaderMap,
    credentials: &BackendCredentials,
) -> pingora::Result<()> {
    let identity = credentials.identity.as_ref().ok_or_else(|| {
        pingora::Error::explain(
            pingora::ErrorType::InvalidHTTPHeader,
            "the caller's identity cannot be sent in a header",
        )
    })?;
    headers.insert(TOKEN, credentials.backend_token.clone());
    headers.insert(ASSERTION, credentials.assertion.clone());
    headers.insert(USER, identity.user.clone());
    if let Some(email) = &identity.email {
        headers.insert(EMAIL, email.clone());
    }
    if let Some(username) = &identity.preferred_username {
        headers.insert(USERNAME, username.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_look_alike_of_a_stripped_name_goes_and_nothing_else() {
        let stripped = [
            "authorization",
            "cookie",
            "x-forwarded-user",
            "x_forwarded_user",
            "x-forwarded_email",
            "x_forwarded_for",
            "x-forwarded-host",
            "x-forwarded-anything",
            "forwarded",
            "x-real-ip",
            "x_real_ip",
            "x-gateway_assertion",
            "x_request_id",
            "proxy_authorization",
        ];
        let kept = [
            "accept",
            "content-type",
            "mcp-session-id",
            "x-forwarded",
            "x-realip",
        ];
        let mut headers = http::HeaderMap::new();
        for name in stripped.iter().chain(&kept) {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                "v".parse().unwrap(),
            );
        }
        strip(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, kept);
    }

    #[test]
    fn the_forwarded_for_value_is_the_address_asked_for_whatever_was_kept() {
        for ip in ["192.0.2.1", "192.0.2.1", "2001:db8::1", "192.0.2.1"] {
            let value = forwarded_for_value(ip.parse().unwrap()).unwrap();
            assert_eq!(value, ip);
        }
    }
}
