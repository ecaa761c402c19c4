//! The request the backend sees, and how it is reached: the client's credentials and every
//! client-sent copy of the internal headers removed, the route's credentials added, path and `Host`
//! rewritten for the backend; the peer with the route's timeouts.

use std::net::SocketAddr;

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

/// Headers only the gateway may set, and client credentials the backend must never see. Removal is by
/// name, so it takes every copy whatever its case. Parsed names, so that removing them parses nothing
/// per request; a static, so that a use does not build and drop a copy of the array.
static STRIPPED: [HeaderName; 9] = [
    http::header::AUTHORIZATION,
    http::header::PROXY_AUTHORIZATION,
    http::header::COOKIE,
    TOKEN,
    USER,
    EMAIL,
    USERNAME,
    ASSERTION,
    REQUEST_ID,
];

/// The peer for `route`'s backend at `address`, with the route's timeouts.
pub fn peer(route: &Route, address: SocketAddr) -> HttpPeer {
    let backend = &route.backend;
    let mut peer = HttpPeer::new(address, backend.tls, backend.host.clone());
    peer.options.connection_timeout = Some(backend.connect_timeout);
    peer.options.read_timeout = Some(backend.read_timeout);
    peer.options.write_timeout = Some(backend.write_timeout);
    peer.options.idle_timeout = Some(std::time::Duration::from_secs(60));
    peer
}

/// Rewrites `request` for `route`'s backend with the caller's `credentials`.
///
/// The request is rewritten as plain `http` parts and handed back to Pingora without the record of
/// its header names' original case, so the backend sees them in lower case (title case for the
/// common ones), as HTTP/2 would carry them; names are case-insensitive (RFC 9110, section 5.1).
/// Pingora's own `insert_header` parses and copies each name and keeps a second map in step, about
/// 2,000 instructions per header; here an insert is one hash-map insert of a pre-parsed name.
pub fn prepare(
    request: &mut RequestHeader,
    route: &Route,
    credentials: Option<&BackendCredentials>,
    request_id: &HeaderValue,
) -> pingora::Result<()> {
    let placeholder = RequestHeader::from(http::Request::new(()).into_parts().0);
    let mut parts = http::request::Parts::from(std::mem::replace(request, placeholder));
    let rewritten = rewrite(&mut parts, route, credentials, request_id);
    *request = RequestHeader::from(parts);
    rewritten
}

fn rewrite(
    parts: &mut http::request::Parts,
    route: &Route,
    credentials: Option<&BackendCredentials>,
    request_id: &HeaderValue,
) -> pingora::Result<()> {
    strip(&mut parts.headers);
    parts.uri = target(&parts.uri, route)?;
    let headers = &mut parts.headers;
    // At most seven inserts follow: one growth of the map instead of several.
    headers.reserve(7);
    headers.insert(http::header::HOST, route.backend.host_header.clone());
    headers.insert(REQUEST_ID, request_id.clone());
    match (route.credentials, credentials) {
        (Credentials::Headers, Some(c)) => insert_identity(headers, c)?,
        (Credentials::Bearer, Some(c)) => {
            headers.insert(http::header::AUTHORIZATION, c.bearer_backend_token.clone());
        }
        (Credentials::Assertion, Some(c)) => {
            headers.insert(http::header::AUTHORIZATION, c.bearer_assertion.clone());
        }
        _ => {}
    }
    Ok(())
}

/// Removes every [`STRIPPED`] header. One pass over the request's few names finds which are to go,
/// instead of a lookup for each of the nine; one removal then takes every value under a name,
/// whatever its case.
fn strip(headers: &mut http::HeaderMap) {
    let mut carried = 0u16;
    for name in headers.keys() {
        if let Some(i) = STRIPPED.iter().position(|stripped| stripped == name) {
            carried |= 1 << i;
        }
    }
    for (i, name) in STRIPPED.iter().enumerate() {
        if carried & (1 << i) != 0 {
            headers.remove(name);
        }
    }
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
