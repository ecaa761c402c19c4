//! The request the upstream sees: the client's credentials and every client-sent copy of the internal
//! headers removed, the route's credentials added, path and `Host` rewritten for the upstream.

use http::HeaderName;
use pingora::http::RequestHeader;

use crate::config::{Credentials, Route};
use crate::tokens::access::AccessClaims;
use crate::tokens::backend::BackendCredentials;

pub const TOKEN_HEADER: &str = "x-forwarded-access-token";
pub const USER_HEADER: &str = "x-forwarded-user";
pub const EMAIL_HEADER: &str = "x-forwarded-email";
pub const USERNAME_HEADER: &str = "x-forwarded-preferred-username";
pub const ASSERTION_HEADER: &str = gateway_assertion::ASSERTION_HEADER;
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Headers only the gateway may set, and client credentials the upstream must never see. Removal is by
/// name, so it takes every copy whatever its case. Parsed names, so that removing them parses nothing
/// per request.
const STRIPPED: [HeaderName; 9] = [
    http::header::AUTHORIZATION,
    http::header::PROXY_AUTHORIZATION,
    http::header::COOKIE,
    HeaderName::from_static(TOKEN_HEADER),
    HeaderName::from_static(USER_HEADER),
    HeaderName::from_static(EMAIL_HEADER),
    HeaderName::from_static(USERNAME_HEADER),
    HeaderName::from_static(ASSERTION_HEADER),
    HeaderName::from_static(REQUEST_ID_HEADER),
];

/// Rewrites `request` for `route`'s upstream on behalf of `caller`.
pub fn prepare(
    request: &mut RequestHeader,
    route: &Route,
    caller: &AccessClaims,
    credentials: Option<&BackendCredentials>,
    request_id: &str,
) -> pingora::Result<()> {
    for name in &STRIPPED {
        // One removal takes every value under the name.
        request.remove_header(name);
    }
    let target = match request.uri.query() {
        None => route.upstream.target.clone(),
        Some(q) => {
            let path = &route.upstream.path;
            let joined = if path.contains('?') {
                format!("{path}&{q}")
            } else {
                format!("{path}?{q}")
            };
            joined.parse().map_err(|_| {
                pingora::Error::explain(
                    pingora::ErrorType::InvalidHTTPHeader,
                    "the request target cannot be rewritten",
                )
            })?
        }
    };
    request.set_uri(target);
    request.insert_header(http::header::HOST, route.upstream.host_header.clone())?;
    request.insert_header(REQUEST_ID_HEADER, request_id)?;
    match (route.credentials, credentials) {
        (Credentials::Headers, Some(c)) => {
            request.insert_header(TOKEN_HEADER, c.upstream_token.clone())?;
            request.insert_header(ASSERTION_HEADER, c.assertion.clone())?;
            request.insert_header(USER_HEADER, caller.sub.as_str())?;
            if let Some(email) = &caller.email {
                request.insert_header(EMAIL_HEADER, email.as_str())?;
            }
            if let Some(username) = &caller.preferred_username {
                request.insert_header(USERNAME_HEADER, username.as_str())?;
            }
        }
        (Credentials::Bearer, Some(c)) => {
            request.insert_header(http::header::AUTHORIZATION, c.bearer_upstream_token.clone())?;
        }
        (Credentials::Assertion, Some(c)) => {
            request.insert_header(http::header::AUTHORIZATION, c.bearer_assertion.clone())?;
        }
        _ => {}
    }
    Ok(())
}
