//! The `local` provider's login: a form checked against the users file's argon2id hashes.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};

use super::authorize::{Proof, continued, issue_code};
use super::errors::OAuthError;
use super::pages::login_page;
use super::{AsEndpoint, AuthServer, Request, Response};
use crate::store::records::UserIdentity;

/// Wrong passwords allowed per authorization request before it is abandoned.
const MAX_FAILED_LOGINS: u32 = 5;

/// Checked when the username is unknown, so that a wrong name costs as long as a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("not a password").expect("hashing works"));

/// An argon2id PHC string for `password` (what `mcp-auth-gateway hash-password` prints).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

pub async fn handle(server: &AuthServer, request: &Request) -> Result<Response, OAuthError> {
    if request.method == http::Method::GET {
        let params = request.query_params();
        let (id, pending) =
            continued(server, request, params.get("pending"), Proof::PageView).await?;
        return Ok(login_page(
            &id,
            &pending.csrf,
            &client_label(server, &pending.client_id).await?,
            &pending.redirect_uri,
            None,
        ));
    }
    let form = request.form();
    let (id, mut pending) = continued(
        server,
        request,
        form.get("pending"),
        Proof::Form(form.get("csrf")),
    )
    .await?;
    let username = form.get("username").map(String::as_str).unwrap_or_default();
    let password = form.get("password").map(String::as_str).unwrap_or_default();
    let user = server.users.iter().find(|u| u.username == username);
    let hash = user.map_or(DUMMY_HASH.as_str(), |u| u.password_hash.as_str());
    // Hashing is deliberately slow: off the proxy's worker threads.
    let (hash, attempt) = (hash.to_owned(), password.to_owned());
    let verified = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                argon2::Argon2::default()
                    .verify_password(attempt.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    let Some(user) = user.filter(|_| verified) else {
        tracing::warn!("a login failed");
        pending.failed_logins += 1;
        if pending.failed_logins >= MAX_FAILED_LOGINS {
            server.store.take_pending(&id, crate::clock::now()).await?;
            return Ok(super::pages::error_page(
                401,
                "Too many wrong passwords; start again from the app",
            ));
        }
        server.store.put_pending(&id, &pending).await?;
        let label = client_label(server, &pending.client_id).await?;
        return Ok(login_page(
            &id,
            &pending.csrf,
            &label,
            &pending.redirect_uri,
            Some("The username or password is wrong."),
        ));
    };
    let identity = UserIdentity {
        sub: user.username.clone(),
        email: user.email.clone(),
        preferred_username: Some(user.username.clone()),
    };
    // Consent given before, for at least these scopes, is not asked again; nor is it asked for a
    // first-party client the operator configured so.
    let first_party = server
        .client(&pending.client_id)
        .await?
        .is_some_and(|c| c.skip_consent && c.origin == "config");
    let approved = server
        .store
        .consent(&identity.sub, &pending.client_id, &pending.resource)
        .await?
        .is_some_and(|approved| {
            pending
                .scope
                .split_ascii_whitespace()
                .all(|s| approved.split_ascii_whitespace().any(|a| a == s))
        });
    if (first_party || approved)
        && server
            .store
            .take_pending(&id, crate::clock::now())
            .await?
            .is_some()
    {
        return issue_code(server, &pending, identity, None).await;
    }
    pending.user = Some(identity);
    server.store.put_pending(&id, &pending).await?;
    Ok(Response::redirect(format!(
        "{}?pending={id}",
        server.url(AsEndpoint::Consent)
    )))
}

/// How a client is named to the user.
pub async fn client_label(server: &AuthServer, client_id: &str) -> Result<String, OAuthError> {
    Ok(server
        .client(client_id)
        .await?
        .and_then(|c| c.client_name)
        .unwrap_or_else(|| client_id.to_owned()))
}
