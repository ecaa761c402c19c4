//! `/token`: the `authorization_code` grant (PKCE, single-use codes, replay revokes the grant) and the
//! `refresh_token` grant (rotation on every use; reuse revokes the grant, except within a short grace
//! for concurrent refreshes); a machine client's `client_credentials` and an enterprise-managed
//! sign-in's jwt-bearer grant are [`super::machine`]'s. Replies and errors as RFC 6749 §5.1 and §5.2.

use std::collections::HashMap;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::client_auth::authenticate;
use super::errors::OAuthError;
use super::issue::{Issued, issue};
use super::response;
use super::{AuthServer, Request, Response, hash_secret, pkce, random_token, scope};
use crate::clock::now;
use crate::config::{CLIENT_CREDENTIALS, JWT_BEARER};
use crate::idp::IdpError;
use crate::store::records::UserIdentity;
use crate::store::{CodeRecord, CodeTake, GrantRecord, Rotation};
use crate::telemetry::metrics::auth::AUTH;

pub(super) async fn handle(server: &AuthServer, request: &Request) -> Result<Response, OAuthError> {
    if request.method != http::Method::POST {
        return Err(OAuthError::invalid_request("Use POST for /token"));
    }
    if let Some(name) = super::repeated(&request.body) {
        return Err(OAuthError::invalid_request(format!(
            "The parameter {name} was given more than once"
        )));
    }
    let form = request.form();
    let client = authenticate(server, request, &form).await?;
    let grant_type = form
        .get("grant_type")
        .map(String::as_str)
        .unwrap_or_default();
    if !client.grant_types.iter().any(|g| g == grant_type)
        && matches!(
            grant_type,
            "authorization_code" | "refresh_token" | CLIENT_CREDENTIALS | JWT_BEARER
        )
    {
        return Err(OAuthError::UnauthorizedClient(format!(
            "The client may not use the {grant_type} grant"
        )));
    }
    let issued = match grant_type {
        "authorization_code" => {
            let refreshable = client.grant_types.iter().any(|g| g == "refresh_token");
            authorization_code(server, &client.client_id, refreshable, &form).await
        }
        "refresh_token" => refresh_token(server, &client.client_id, &form).await,
        CLIENT_CREDENTIALS => super::machine::client_credentials(server, &client, &form).await,
        JWT_BEARER => super::machine::enterprise_sign_in(server, &client, &form).await,
        "" => Err(OAuthError::invalid_request("No grant_type")),
        other => Err(OAuthError::UnsupportedGrantType(format!(
            "The {other} grant is not supported"
        ))),
    }?;
    let label = if grant_type == JWT_BEARER {
        "jwt_bearer"
    } else {
        grant_type
    };
    AUTH.tokens_issued.with_label_values(&[label]).inc();
    Ok(issued)
}

async fn authorization_code(
    server: &AuthServer,
    client_id: &str,
    refreshable: bool,
    form: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("No code"))?;
    let verifier = form
        .get("code_verifier")
        .ok_or_else(|| OAuthError::invalid_request("No code_verifier: PKCE is required"))?;
    let code_hash = hash_secret(code);
    let record = take_code(server, client_id, &code_hash).await?;
    check_code(&record, client_id, form, verifier)?;
    let grant = GrantRecord {
        grant_id: random_token(16),
        client_id: client_id.to_owned(),
        scope: record.scope,
        resource: record.resource,
        user: record.user,
        created_at: now(),
        revoked: false,
        idp_tokens: record.idp_tokens,
        refreshed_at: None,
    };
    server.store.put_grant(&grant).await?;
    server
        .store
        .set_code_grant(&code_hash, &grant.grant_id)
        .await?;
    // A refresh token only for a client that may use one.
    let refresh = refreshable.then(|| random_token(32));
    if let Some(refresh) = &refresh {
        let refresh_expires = now() + server.config.auth.refresh_token_lifetime.as_secs();
        server
            .store
            .put_refresh(&hash_secret(refresh), &grant.grant_id, refresh_expires)
            .await?;
    }
    let (user, grant_id) = (&grant.user.sub, &grant.grant_id);
    tracing::info!(client_id, %user, grant = %grant_id, "issued tokens for a code");
    token_response(server, &grant, &grant.scope, refresh.as_deref())
}

/// The code's record, taken so that it is used once. A code used twice was stolen or replayed:
/// nothing issued from it may live on.
async fn take_code(
    server: &AuthServer,
    client_id: &str,
    code_hash: &str,
) -> Result<CodeRecord, OAuthError> {
    match server.store.take_code(code_hash, now()).await? {
        CodeTake::Taken(record) => Ok(*record),
        CodeTake::Replayed { grant_id } => {
            AUTH.code_replays.inc();
            if let Some(grant_id) = grant_id {
                revoke_grant(server, &grant_id).await?;
            }
            tracing::warn!(
                client_id,
                "an authorization code was replayed; its grant is revoked"
            );
            Err(OAuthError::InvalidGrant("The code was already used".into()))
        }
        CodeTake::Missing => Err(OAuthError::InvalidGrant(
            "The code is unknown or expired".into(),
        )),
    }
}

/// The code was issued to this client, for this redirect URI (sent again only if it was sent then),
/// for this PKCE verifier and resource.
fn check_code(
    record: &CodeRecord,
    client_id: &str,
    form: &HashMap<String, String>,
    verifier: &str,
) -> Result<(), OAuthError> {
    if record.client_id != client_id {
        return Err(OAuthError::InvalidGrant(
            "The code was issued to another client".into(),
        ));
    }
    let redirect_ok = match form.get("redirect_uri") {
        Some(uri) => *uri == record.redirect_uri,
        None => !record.redirect_uri_given,
    };
    if !redirect_ok {
        return Err(OAuthError::InvalidGrant(
            "The redirect_uri differs from the authorization request's".into(),
        ));
    }
    if !pkce::verify(verifier, &record.code_challenge) {
        return Err(OAuthError::InvalidGrant(
            "The code_verifier does not match the code_challenge".into(),
        ));
    }
    check_resource(form, &record.resource)
}

async fn refresh_token(
    server: &AuthServer,
    client_id: &str,
    form: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let old = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("No refresh_token"))?;
    let old_hash = hash_secret(old);
    // The token's grant must be this client's before anything is rotated.
    let grant_id = server
        .store
        .refresh_grant(&old_hash, now())
        .await?
        .ok_or_else(|| {
            OAuthError::InvalidGrant("The refresh token is unknown, expired or revoked".into())
        })?;
    let grant = server
        .store
        .grant(&grant_id)
        .await?
        .filter(|g| !g.revoked)
        .ok_or_else(|| OAuthError::InvalidGrant("The grant was revoked".into()))?;
    if grant.client_id != client_id {
        return Err(OAuthError::InvalidGrant(
            "The refresh token was issued to another client".into(),
        ));
    }
    check_resource(form, &grant.resource)?;
    // A grant ends at its maximum age, however often it was refreshed, and with the user's right to
    // sign in: a refresh asks again whether today's rules let them in.
    let ends_at = grant.created_at + server.config.auth.grant_max_lifetime.as_secs();
    if now() >= ends_at {
        return Err(OAuthError::InvalidGrant(
            "The grant has reached its maximum age; sign in again".into(),
        ));
    }
    let mut grant = grant;
    // The users file or the provider may say otherwise of the user since (their groups, their
    // email): tokens carry today's, and a reserved scope goes on only while the policy grants it.
    if let Some(today) = still_allowed(server, &grant).await? {
        grant.user = today;
    }
    let scope = scope::for_user(
        server.route_for(&grant.resource),
        &grant.user,
        &grant.client_id,
        &narrowed_scope(form, &grant.scope)?,
    );
    let new = successor(&server.refresh_key, old);
    let expires = (now() + server.config.auth.refresh_token_lifetime.as_secs()).min(ends_at);
    let grace = server.config.auth.refresh_grace.as_secs();
    match server
        .store
        .rotate_refresh(crate::store::RefreshRotation {
            old_hash: &old_hash,
            new_hash: &hash_secret(&new),
            new_expires_at: expires,
            now: now(),
            grace_secs: grace,
        })
        .await?
    {
        Rotation::Rotated { .. } | Rotation::RotatedWithinGrace { .. } => {
            token_response(server, &grant, &scope, Some(&new))
        }
        Rotation::Reused { grant_id } => {
            AUTH.refresh_reuse.inc();
            revoke_grant(server, &grant_id).await?;
            tracing::warn!(client_id, grant = %grant_id, "a rotated refresh token was reused; the grant is revoked");
            Err(OAuthError::InvalidGrant(
                "The refresh token was already used".into(),
            ))
        }
        Rotation::Unknown => Err(OAuthError::InvalidGrant(
            "The refresh token is unknown, expired or revoked".into(),
        )),
    }
}

/// Whether the grant's user would still be let in: still in the users file, or, at GitHub or an OIDC
/// provider, still passing the allowlists and still giving what a policy reads. One who no longer
/// is loses the grant. `Ok` holds who the user is today, where that was learnt again.
async fn still_allowed(
    server: &AuthServer,
    grant: &GrantRecord,
) -> Result<Option<UserIdentity>, OAuthError> {
    let policies = server
        .config
        .routes
        .iter()
        .filter_map(|r| r.policy.as_ref());
    let depends = crate::idp::Depends {
        groups: policies.clone().any(|p| p.uses_groups()),
        email: policies.clone().any(|p| p.uses_emails()),
    };
    let verdict = match &server.idp {
        None => match server.users.identity(&grant.user.sub) {
            Some(today) => Ok(Some(today)),
            None => Err(IdpError::NotAllowed(
                "The user is no longer in the users file".into(),
            )),
        },
        // The grant is worth nothing without the user's token at the provider, which the backends
        // are sent: one that cannot be read (its key changed, the provider revoked it) ends it, so
        // that the client signs in again rather than refresh into a 502 on every request.
        Some(idp) => match server.idp_token(&grant.grant_id).await {
            None => Err(IdpError::NotAllowed(
                "The user's sign-in at the identity provider is no longer available".into(),
            )),
            Some(token) => idp.recheck(&grant.user, Some(&token), depends).await,
        },
    };
    match verdict {
        Ok(groups) => Ok(groups),
        Err(IdpError::Unavailable(reason)) => Err(OAuthError::TemporarilyUnavailable(reason)),
        Err(refusal) => {
            revoke_grant(server, &grant.grant_id).await?;
            let (user, grant_id) = (&grant.user.sub, &grant.grant_id);
            tracing::info!(%user, grant = %grant_id, reason = %refusal, "a grant ended: its user may no longer sign in");
            Err(OAuthError::InvalidGrant(refusal.to_string()))
        }
    }
}

/// The refresh token that succeeds `old`: derived, not drawn, so that every concurrent refresh
/// within the grace (on any replica) is handed the same one, and the grant keeps one chain. Only
/// the holder of `old` can ask for it, and only the gateway's key makes it.
fn successor(key: &[u8; 32], old: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(old.as_bytes());
    super::URL_SAFE_NO_PAD_ENGINE.encode(mac.finalize().into_bytes())
}

/// The scope a refresh asks for: the grant's, or fewer; never more.
fn narrowed_scope(form: &HashMap<String, String>, granted: &str) -> Result<String, OAuthError> {
    let granted_list: Vec<&str> = granted.split_ascii_whitespace().collect();
    let asked = form.get("scope").map_or("", String::as_str);
    match scope::grantable(asked, &granted_list) {
        Ok(asked) if asked.is_empty() => Ok(granted.to_owned()),
        Ok(asked) => Ok(asked.join(" ")),
        Err(_) => Err(OAuthError::InvalidScope(
            "A refresh cannot widen the granted scope".into(),
        )),
    }
}

/// A `resource` sent at the token endpoint must be the one authorized (trailing slash tolerated).
fn check_resource(form: &HashMap<String, String>, authorized: &str) -> Result<(), OAuthError> {
    match form.get("resource") {
        Some(resource) if resource.strip_suffix('/').unwrap_or(resource) != authorized => Err(
            OAuthError::InvalidTarget("The resource differs from the one authorized".into()),
        ),
        _ => Ok(()),
    }
}

/// Revokes a grant in the store and, at once, every access token issued under it.
pub(super) async fn revoke_grant(server: &AuthServer, grant_id: &str) -> Result<(), OAuthError> {
    server.store.revoke_grant(grant_id).await?;
    let until = now()
        + server.config.auth.access_token_lifetime.as_secs()
        + server.config.start.tokens.clock_skew.as_secs();
    server.verifier.revocations.revoke(grant_id, until, now());
    Ok(())
}

fn token_response(
    server: &AuthServer,
    grant: &GrantRecord,
    scope: &str,
    refresh: Option<&str>,
) -> Result<Response, OAuthError> {
    let issued = Issued {
        user: &grant.user,
        client_id: &grant.client_id,
        resource: &grant.resource,
        scope,
        grant_id: Some(&grant.grant_id),
    };
    let mut body = issue(server, &issued)?;
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    Ok(response::json(200, &body))
}
