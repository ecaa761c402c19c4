//! The `local` provider's login page: a form whose username and password the users file
//! ([`crate::idp::local`]) checks.

use super::errors::OAuthError;
use super::pages::{error_page, login_page};
use super::pending::{Proof, completed, continued, issue_code};
use super::response;
use super::response::WithHeader as _;
use super::{AsEndpoint, AuthServer, Request, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::Digest as _;

use crate::clock::now;
use crate::store::records::UserIdentity;
use crate::store::{PendingAuthorization, count_against};
use crate::telemetry::metrics::auth::AUTH;

/// Wrong passwords allowed per authorization request before it is abandoned.
const MAX_FAILED_LOGINS: u32 = 5;

pub(super) async fn handle(server: &AuthServer, request: &Request) -> Result<Response, OAuthError> {
    if request.method == http::Method::GET {
        let params = request.query_params();
        let (id, pending) =
            continued(server, request, params.get("pending"), Proof::PageView).await?;
        let label = server.client_label(&pending.client_id).await?;
        return Ok(login_page(
            &id,
            &pending.csrf,
            &label,
            &pending.redirect_uri,
            None,
        ));
    }
    let form = request.form();
    let proof = Proof::Form(form.get("csrf"));
    let (id, mut pending) = continued(server, request, form.get("pending"), proof).await?;
    let username = form.get("username").map(String::as_str).unwrap_or_default();
    let password = form.get("password").map(String::as_str).unwrap_or_default();
    if let Err(wait) = attempt_allowed(server, username).await {
        tracing::warn!("sign-in attempts for one user name are over the limit");
        login("rate_limited");
        let label = server.client_label(&pending.client_id).await?;
        let problem =
            format!("Too many sign-in attempts for this user name; try again in {wait} seconds.");
        let mut page = login_page(
            &id,
            &pending.csrf,
            &label,
            &pending.redirect_uri,
            Some(&problem),
        );
        *page.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
        return Ok(page.with_header(http::header::RETRY_AFTER, &wait.to_string()));
    }
    let Some(identity) = server.users.sign_in(username, password).await else {
        login("wrong_password");
        return wrong_password(server, &id, pending).await;
    };
    login("success");
    // Signed in to one's own connections page: nothing to consent to, and no code.
    if pending.client_id == super::account::CLIENT {
        server.store.take_pending(&id, now()).await?;
        return Ok(super::account::signed_in(server, &identity));
    }
    if !asks_consent(server, &identity, &pending).await?
        && server.store.take_pending(&id, now()).await?.is_some()
    {
        return issue_code(server, &pending, identity, None).await;
    }
    pending.user = Some(identity);
    server.store.put_pending(&id, &pending).await?;
    let consent = server.url(AsEndpoint::Consent);
    Ok(response::redirect(&format!("{consent}?pending={id}")))
}

/// Counts a sign-in attempt with the `local` provider.
fn login(result: &'static str) {
    AUTH.logins.with_label_values(&["local", result]).inc();
}

/// `Err` with the seconds to wait when `username` has had its sign-in attempts for now, from any
/// address: guessing one user's password from many addresses is limited too. Replicas that share a
/// store count together.
async fn attempt_allowed(server: &AuthServer, username: &str) -> Result<(), u64> {
    // Hashed: a user name is anyone's string, of any length, and becomes a key here and in the store.
    let digest = sha2::Sha256::digest(username.trim().to_lowercase().as_bytes());
    let key = URL_SAFE_NO_PAD.encode(digest);
    let bucket = format!("login-user:{key}");
    let shared = server.store.is_shared().then_some(server.store.as_ref());
    count_against(shared, &bucket, &server.login_limiter, key).await
}

/// The login page again, saying so; after [`MAX_FAILED_LOGINS`], the authorization is abandoned.
async fn wrong_password(
    server: &AuthServer,
    id: &str,
    mut pending: PendingAuthorization,
) -> Result<Response, OAuthError> {
    tracing::warn!("a login failed");
    pending.failed_logins += 1;
    if pending.failed_logins >= MAX_FAILED_LOGINS {
        server.store.take_pending(id, now()).await?;
        completed("denied");
        let message = "Too many wrong passwords; start again from the app";
        return Ok(error_page(401, message));
    }
    server.store.put_pending(id, &pending).await?;
    let label = server.client_label(&pending.client_id).await?;
    let problem = Some("The username or password is wrong.");
    Ok(login_page(
        id,
        &pending.csrf,
        &label,
        &pending.redirect_uri,
        problem,
    ))
}

/// Whether the user must consent: not for consent given before for at least these scopes, nor for a
/// first-party client the operator configured so.
async fn asks_consent(
    server: &AuthServer,
    user: &UserIdentity,
    pending: &PendingAuthorization,
) -> Result<bool, OAuthError> {
    let first_party = server
        .client(&pending.client_id)
        .await?
        .is_some_and(|c| c.skip_consent && c.origin == "config");
    if first_party {
        return Ok(false);
    }
    let approved = server
        .store
        .consent(&user.sub, &pending.client_id, &pending.resource)
        .await?
        .is_some_and(|approved| {
            pending
                .scope
                .split_ascii_whitespace()
                .all(|s| approved.split_ascii_whitespace().any(|a| a == s))
        });
    Ok(!approved)
}
