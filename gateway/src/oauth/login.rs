//! The `local` provider's login page: a form whose username and password the users file
//! ([`crate::idp::local`]) checks.

use super::errors::OAuthError;
use super::pages::{error_page, login_page};
use super::pending::{Proof, continued, issue_code};
use super::{AsEndpoint, AuthServer, Request, Response};
use crate::clock::now;
use crate::store::PendingAuthorization;
use crate::store::records::UserIdentity;

/// Wrong passwords allowed per authorization request before it is abandoned.
const MAX_FAILED_LOGINS: u32 = 5;

pub async fn handle(server: &AuthServer, request: &Request) -> Result<Response, OAuthError> {
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
    let Some(identity) = server.users.sign_in(username, password).await else {
        return wrong_password(server, &id, pending).await;
    };
    if !asks_consent(server, &identity, &pending).await?
        && server.store.take_pending(&id, now()).await?.is_some()
    {
        return issue_code(server, &pending, identity, None).await;
    }
    pending.user = Some(identity);
    server.store.put_pending(&id, &pending).await?;
    let consent = server.url(AsEndpoint::Consent);
    Ok(Response::redirect(format!("{consent}?pending={id}")))
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
