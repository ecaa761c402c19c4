//! The gateway's access tokens as the token endpoint hands them out: RFC 9068 JWTs for one
//! resource, for a user through a client (or a machine client as itself), in the body of an
//! RFC 6749 §5.1 response.

use serde_json::{Value, json};

use super::errors::OAuthError;
use super::{AuthServer, random_token};
use crate::clock::now;
use crate::store::records::UserIdentity;
use crate::tokens::access::{AccessClaims, Audience, mint};

/// What an access token is issued for.
pub(super) struct Issued<'a> {
    pub user: &'a UserIdentity,
    pub client_id: &'a str,
    pub resource: &'a str,
    pub scope: &'a str,
    /// The grant it is issued under; none for a machine client's or an enterprise sign-in's,
    /// which are issued afresh each time and never refreshed.
    pub grant_id: Option<&'a str>,
}

/// An access token for `issued`, as the body of a token response (RFC 6749 §5.1).
pub(super) fn issue(server: &AuthServer, issued: &Issued<'_>) -> Result<Value, OAuthError> {
    let lifetime = server.config.auth.access_token_lifetime.as_secs();
    let now = now();
    let UserIdentity {
        sub,
        email,
        preferred_username,
        groups,
        groups_truncated,
    } = issued.user.clone();
    let claims = AccessClaims {
        iss: server.config.start.tokens.issuer.clone(),
        sub,
        aud: Audience::One(issued.resource.to_owned()),
        client_id: issued.client_id.to_owned(),
        scope: issued.scope.to_owned(),
        exp: now + lifetime,
        iat: now,
        nbf: None,
        jti: random_token(16),
        email,
        preferred_username,
        groups,
        groups_truncated,
        gid: issued.grant_id.map(str::to_owned),
    };
    let access = mint(&server.keys, &claims)?;
    Ok(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": issued.scope,
    }))
}
