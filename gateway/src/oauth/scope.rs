//! Which of the scopes a client asks for are granted.
//!
//! Clients add scopes of OAuth and OpenID Connect that this server does not issue: `offline_access`
//! when they want refresh tokens (SDK 2.x adds it whenever the client may refresh), `openid`,
//! `profile` and `email` out of OIDC habit. RFC 6749 §3.3 lets an authorization server grant less
//! than was asked, so those are dropped rather than failing the request (refresh tokens follow the
//! client's grant types, as always); any other scope the resource does not offer is refused.
//!
//! A scope a route's policy reserves (an allow rule requires it) is granted only to the users that
//! rule names: the rest are granted the other scopes they asked for ([`for_user`]).

use crate::config::Route;
use crate::policy::{Caller, may_be_granted};
use crate::store::records::UserIdentity;

/// Standard scopes the gateway never issues, unless a route offers one of that name itself.
const DROPPED: &[&str] = &["offline_access", "openid", "profile", "email"];

/// The scopes of `asked` (space-separated) to grant on a resource offering `offered`, in the order
/// asked and each once; empty when nothing grantable was asked. `Err` names a scope that is neither
/// offered nor one that is dropped.
pub(super) fn grantable<'a>(
    asked: &'a str,
    offered: &[impl AsRef<str>],
) -> Result<Vec<&'a str>, &'a str> {
    let mut granted: Vec<&str> = Vec::new();
    for scope in asked.split_ascii_whitespace() {
        if offered.iter().any(|o| o.as_ref() == scope) {
            if !granted.contains(&scope) {
                granted.push(scope);
            }
        } else if !DROPPED.contains(&scope) {
            return Err(scope);
        }
    }
    Ok(granted)
}

/// Of `scope` (space-separated), what `user`, through `client_id`, may be granted on `route`.
pub(super) fn for_user(
    route: Option<&Route>,
    user: &UserIdentity,
    client_id: &str,
    scope: &str,
) -> String {
    let Some(policy) = route.and_then(|r| r.policy.as_ref()) else {
        return scope.to_owned();
    };
    let caller = Caller::of_user(user, client_id);
    scope
        .split_ascii_whitespace()
        .filter(|s| may_be_granted(policy, &caller, s))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFERED: &[&str] = &["mcp", "files:read"];

    #[test]
    fn standard_scopes_the_gateway_does_not_issue_are_dropped() {
        assert_eq!(grantable("mcp offline_access", OFFERED), Ok(vec!["mcp"]));
        assert_eq!(grantable("openid mcp", OFFERED), Ok(vec!["mcp"]));
        assert_eq!(
            grantable("openid profile email offline_access", OFFERED),
            Ok(vec![]),
            "nothing grantable asked: the caller grants its default"
        );
        assert_eq!(grantable("", OFFERED), Ok(vec![]));
        assert_eq!(
            grantable("files:read  mcp files:read", OFFERED),
            Ok(vec!["files:read", "mcp"])
        );
    }

    #[test]
    fn any_other_unknown_scope_is_refused() {
        assert_eq!(grantable("mcp admin", OFFERED), Err("admin"));
        assert_eq!(grantable("offline_access admin", OFFERED), Err("admin"));
        assert_eq!(
            grantable("MCP", OFFERED),
            Err("MCP"),
            "scopes are case-sensitive"
        );
    }

    #[test]
    fn a_route_that_offers_a_standard_scope_grants_it() {
        assert_eq!(
            grantable("email mcp", &["mcp", "email"]),
            Ok(vec!["email", "mcp"])
        );
    }
}
