//! The bearer token of a request to a protected route: find it, check it, check its audience and
//! scopes. Every refusal is one [`BearerError`], mapped in one place to a status, a `WWW-Authenticate`
//! challenge (RFC 6750 §3, RFC 9728 §5.1) and a JSON body.
//!
//! Never 400, 404 or 405 for an auth failure: clients read those as "legacy transport". The one
//! exception is a token in the query string, which RFC 6750 and the MCP spec forbid outright.

use std::sync::Arc;

use http::HeaderMap;

use crate::config::Route;
use crate::tokens::access::{AccessClaims, AccessTokenVerifier, TokenError, has_scopes};
use crate::tokens::external::ExternalVerifier;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum BearerError {
    /// No credentials: challenge without an `error` (RFC 6750 §3.1).
    #[error("Authorization needed")]
    NoToken,
    #[error("Access tokens are not accepted in the query string")]
    TokenInQuery,
    #[error("{0}")]
    InvalidToken(TokenError),
    #[error("The access token lacks a scope this resource requires")]
    InsufficientScope,
    /// The caller is not (or no longer) connected to the route's backend: signing in again
    /// connects them.
    #[error("Sign in again to connect to this MCP server")]
    NotConnected,
    /// The token's issuer could not be asked about it (introspection): not the caller's fault.
    #[error("{}", TokenError::IssuerUnavailable)]
    IssuerUnavailable,
}

impl BearerError {
    fn of_token(error: TokenError) -> Self {
        match error {
            TokenError::IssuerUnavailable => BearerError::IssuerUnavailable,
            other => BearerError::InvalidToken(other),
        }
    }

    pub(super) fn status(&self) -> u16 {
        match self {
            BearerError::NoToken | BearerError::InvalidToken(_) | BearerError::NotConnected => 401,
            BearerError::TokenInQuery => 400,
            BearerError::InsufficientScope => 403,
            BearerError::IssuerUnavailable => 503,
        }
    }

    /// The bounded `reason` label of `mcp_gateway_auth_failures_total`.
    pub(super) fn reason(&self) -> &'static str {
        match self {
            BearerError::NoToken => "no_token",
            BearerError::TokenInQuery => "token_in_query",
            BearerError::InvalidToken(e) => e.reason(),
            BearerError::InsufficientScope => "insufficient_scope",
            BearerError::NotConnected => "not_connected",
            BearerError::IssuerUnavailable => "issuer_unavailable",
        }
    }

    /// The `WWW-Authenticate` value: the Bearer challenge alone, so it is the first one clients see;
    /// none where the credentials are not what failed.
    pub(super) fn challenge(&self, route: &Route) -> Option<String> {
        let metadata = &route.metadata_url;
        let needed = route.required_scopes.join(" ");
        Some(match self {
            BearerError::NoToken => {
                if needed.is_empty() {
                    format!("Bearer resource_metadata=\"{metadata}\"")
                } else {
                    format!("Bearer resource_metadata=\"{metadata}\", scope=\"{needed}\"")
                }
            }
            BearerError::TokenInQuery => format!(
                "Bearer error=\"invalid_request\", error_description=\"{self}\", resource_metadata=\"{metadata}\""
            ),
            BearerError::InvalidToken(_) | BearerError::NotConnected => format!(
                "Bearer error=\"invalid_token\", error_description=\"{self}\", resource_metadata=\"{metadata}\""
            ),
            BearerError::InsufficientScope => insufficient_scope_challenge(route, &needed),
            BearerError::IssuerUnavailable => return None,
        })
    }

    /// The JSON body that goes with the challenge.
    pub(super) fn body(&self) -> serde_json::Value {
        let error = match self {
            BearerError::NoToken => "unauthorized",
            BearerError::TokenInQuery => "invalid_request",
            BearerError::InvalidToken(_) | BearerError::NotConnected => "invalid_token",
            BearerError::InsufficientScope => "insufficient_scope",
            BearerError::IssuerUnavailable => "temporarily_unavailable",
        };
        super::respond::json_error(error, &self.to_string())
    }
}

/// The challenge of a 403 for want of `scope` (space-separated): what a client steps up to.
pub(super) fn insufficient_scope_challenge(route: &Route, scope: &str) -> String {
    format!(
        "Bearer error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{}\", error_description=\"{}\"",
        route.metadata_url,
        BearerError::InsufficientScope
    )
}

/// Checks the bearer token of a request to `route`, returning the caller's verified claims: the
/// gateway's own token, or one of the route's other issuers' (by the `iss` it claims; where the
/// route takes only theirs, every token is checked as theirs).
pub(super) async fn check(
    verifier: &AccessTokenVerifier,
    external: &ExternalVerifier,
    route: &Route,
    headers: &HeaderMap,
    query: Option<&str>,
    now: u64,
) -> Result<Arc<AccessClaims>, BearerError> {
    if query.is_some_and(has_token_parameter) {
        return Err(BearerError::TokenInQuery);
    }
    let token = bearer_token(headers)?;
    let claims = if route.issuers.is_empty() {
        own(verifier.verify_bytes(token, now), route)?
    } else if let Some(kept) = route
        .gateway_tokens
        .then(|| verifier.verify_kept(token, now))
        .flatten()
    {
        // The gateway's own tokens, the common case on a route that takes others' too, are found
        // in its cache before anything is decoded.
        own(kept, route)?
    } else {
        match external.check(route, token, now).await {
            // Their audience is checked there: the route's resource, or an alias of theirs.
            Some(theirs) => theirs.map_err(BearerError::of_token)?,
            None => own(verifier.verify_bytes(token, now), route)?,
        }
    };
    if !has_scopes(claims.scopes(), &route.required_scopes) {
        return Err(BearerError::InsufficientScope);
    }
    Ok(claims)
}

/// A gateway-issued token's verdict, for `route`'s audience.
fn own(
    verdict: Result<Arc<AccessClaims>, TokenError>,
    route: &Route,
) -> Result<Arc<AccessClaims>, BearerError> {
    let claims = verdict.map_err(BearerError::InvalidToken)?;
    if !claims.is_for(&route.resource) {
        return Err(BearerError::InvalidToken(TokenError::WrongAudience));
    }
    Ok(claims)
}

/// The token of the one `Authorization: Bearer` header. No header, or another scheme, is no token; two
/// headers, or a Bearer header with no token, is an invalid one. The token is returned as the
/// header's bytes, all visible ASCII.
fn bearer_token(headers: &HeaderMap) -> Result<&[u8], BearerError> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(BearerError::NoToken);
    };
    if values.next().is_some() {
        return Err(BearerError::InvalidToken(TokenError::Malformed));
    }
    // Visible ASCII, space and tab only (what `HeaderValue::to_str` allows). The checks below fold
    // over every byte without an early exit, so that they compile to vector code: a token is most of
    // a kilobyte, and they run on every request.
    let bytes = value.as_bytes();
    let visible = bytes.iter().fold(true, |ok, &b| {
        ok & ((0x20..0x7f).contains(&b) | (b == b'\t'))
    });
    if !visible {
        return Err(BearerError::InvalidToken(TokenError::Malformed));
    }
    let value = bytes.trim_ascii();
    let (scheme, token) = match value.iter().position(|&b| b == b' ') {
        Some(space) => (&value[..space], &value[space + 1..]),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(BearerError::NoToken);
    }
    let token = token.trim_ascii();
    // Visible ASCII without space (tab is not in the range either).
    let unbroken = token
        .iter()
        .fold(true, |ok, &b| ok & (0x21..0x7f).contains(&b));
    if token.is_empty() || !unbroken {
        return Err(BearerError::InvalidToken(TokenError::Malformed));
    }
    Ok(token)
}

/// Whether a query string carries `access_token` (RFC 6750 §2.3).
fn has_token_parameter(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(name, _)| name == "access_token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_found_only_in_one_bearer_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), Err(BearerError::NoToken));
        headers.insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
        assert_eq!(bearer_token(&headers), Err(BearerError::NoToken));
        headers.insert("authorization", "bearer  abc ".parse().unwrap());
        assert_eq!(bearer_token(&headers), Ok(&b"abc"[..]));
        headers.insert("authorization", "Bearer".parse().unwrap());
        assert!(matches!(
            bearer_token(&headers),
            Err(BearerError::InvalidToken(_))
        ));
        // Bytes a header may carry but a token may not: obs-text, inner whitespace.
        for bad in [
            &b"Bearer abc\xffdef"[..],
            b"Bearer abc\tdef",
            b"Bearer abc def",
        ] {
            headers.insert("authorization", http::HeaderValue::from_bytes(bad).unwrap());
            assert_eq!(
                bearer_token(&headers),
                Err(BearerError::InvalidToken(TokenError::Malformed)),
                "{bad:?}"
            );
        }
        headers.insert("authorization", "Bearer \tabc\t".parse().unwrap());
        assert_eq!(bearer_token(&headers), Ok(&b"abc"[..]));
        headers.insert("authorization", "Bearer a".parse().unwrap());
        headers.append("authorization", "Bearer b".parse().unwrap());
        assert!(matches!(
            bearer_token(&headers),
            Err(BearerError::InvalidToken(_))
        ));
    }

    #[test]
    fn query_tokens_are_spotted_in_any_encoding() {
        assert!(has_token_parameter("access_token=x"));
        assert!(has_token_parameter("a=1&access%5Ftoken=x"));
        assert!(!has_token_parameter("token=x&access_tokens=y"));
    }

    #[test]
    fn descriptions_cannot_confuse_challenge_parsers() {
        for error in [
            BearerError::NoToken,
            BearerError::TokenInQuery,
            BearerError::InvalidToken(TokenError::Expired),
            BearerError::InvalidToken(TokenError::WrongAudience),
            BearerError::InsufficientScope,
        ] {
            let text = error.to_string();
            assert!(!text.contains('=') && !text.contains('"'), "{text}");
        }
    }
}
