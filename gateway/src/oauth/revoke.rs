//! `/revoke` (RFC 7009): 200 for any token. A refresh token revokes its whole grant; an access token is
//! refused by the data plane from the next request on (by other replicas of a shared store, within
//! a second).

use super::client_auth::authenticate;
use super::errors::OAuthError;
use super::response;
use super::token::revoke_grant;
use super::{AuthServer, Request, Response, hash_secret};
use crate::clock::now;

pub(super) async fn handle(server: &AuthServer, request: &Request) -> Result<Response, OAuthError> {
    if request.method != http::Method::POST {
        return Err(OAuthError::invalid_request("Use POST for /revoke"));
    }
    let form = request.form();
    let client = authenticate(server, request, &form).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("No token"))?;

    if let Some(grant_id) = server
        .store
        .refresh_grant(&hash_secret(token), now())
        .await?
        && let Some(grant) = server.store.grant(&grant_id).await?
        && grant.client_id == client.client_id
    {
        revoke_grant(server, &grant_id).await?;
        tracing::info!(client_id = %client.client_id, grant = %grant_id, "revoked a grant by its refresh token");
    } else if let Ok(claims) = server.verifier.verify(token, now())
        && claims.client_id == client.client_id
    {
        let until = claims.exp + server.config.start.tokens.clock_skew.as_secs();
        server
            .verifier
            .revocations
            .revoke(&claims.jti, until, now());
        // Other replicas learn it when they next ask the store about the token's grant.
        if let Some(grant_id) = &claims.gid {
            server
                .store
                .revoke_token(grant_id, &claims.jti, until)
                .await?;
        }
        tracing::info!(client_id = %client.client_id, "revoked an access token");
    }
    // RFC 7009 §2.2: the same answer whether or not the token was valid.
    Ok(response::json(200, &serde_json::json!({})))
}
