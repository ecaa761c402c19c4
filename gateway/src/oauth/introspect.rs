//! `/introspect` (RFC 7662), for backends that check tokens by asking: confidential clients only; a
//! token is active only if it would be taken where it is used (an access token by the data plane, a
//! refresh token by `/token`): an unknown, expired, revoked or rotated one is `{"active": false}`
//! and nothing more.

use serde_json::json;

use super::client_auth::authenticate;
use super::errors::OAuthError;
use super::response;
use super::{AuthServer, Request, Response, hash_secret};
use crate::clock::now;
use crate::tokens::access::Audience;

pub(super) async fn handle(server: &AuthServer, request: &Request) -> Result<Response, OAuthError> {
    if request.method != http::Method::POST {
        return Err(OAuthError::invalid_request("Use POST for /introspect"));
    }
    let form = request.form();
    let client = authenticate(server, request, &form).await?;
    if client.secret_hash.is_none() {
        return Err(OAuthError::InvalidClient(
            "Introspection needs a confidential client".into(),
        ));
    }
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("No token"))?;
    // Active only if the data plane and the token endpoint would take it: a grant revoked before
    // a restart, or on another replica, is asked of the store.
    // Asking about the grant also learns the tokens revoked on their own on other replicas, so the
    // token is verified again after it.
    if let Ok(claims) = server.verifier.verify(token, now())
        && !match &claims.gid {
            Some(grant) => server.grant_revoked(grant).await,
            None => false,
        }
        && server.verifier.verify(token, now()).is_ok()
    {
        let aud = match &claims.aud {
            Audience::One(aud) => json!(aud),
            Audience::Many(auds) => json!(auds),
        };
        let mut body = json!({
            "active": true,
            "token_type": "Bearer",
            "scope": claims.scope,
            "client_id": claims.client_id,
            "sub": claims.sub,
            "aud": aud,
            "iss": claims.iss,
            "exp": claims.exp,
            "iat": claims.iat,
            "jti": claims.jti,
        });
        if let Some(username) = &claims.preferred_username {
            body["username"] = json!(username);
        }
        return Ok(response::json(200, &body));
    }
    if let Some(grant_id) = server
        .store
        .current_refresh_grant(&hash_secret(token), now())
        .await?
        && let Some(grant) = server.store.grant(&grant_id).await?.filter(|g| {
            !g.revoked && g.created_at + server.config.auth.grant_max_lifetime.as_secs() > now()
        })
    {
        return Ok(response::json(
            200,
            &json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": grant.scope,
                "client_id": grant.client_id,
                "sub": grant.user.sub,
                "aud": grant.resource,
                "iss": server.config.start.tokens.issuer,
            }),
        ));
    }
    Ok(response::json(200, &json!({ "active": false })))
}
