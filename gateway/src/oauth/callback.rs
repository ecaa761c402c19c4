//! `/callback`: the return from the identity provider (GitHub or OIDC). Trades its code for its tokens, learns who the
//! user is, records their consent, and finishes the authorization with the client's code.

use super::errors::OAuthError;
use super::pages::error_page;
use super::pending::{Proof, completed, continued, error_redirect, issue_code};
use super::response;
use super::{AuthServer, Request, Response};
use crate::clock::now;
use crate::idp::IdpError;
use crate::telemetry::metrics::auth::AUTH;

pub(super) async fn handle(server: &AuthServer, request: &Request) -> Result<Response, OAuthError> {
    let Some(idp) = &server.idp else {
        return Ok(error_page(404, "This gateway signs users in itself"));
    };
    let params = request.query_params();
    let (id, pending) = continued(server, request, params.get("state"), Proof::PageView).await?;
    // Whatever happens next, this pending authorization is over.
    if server.store.take_pending(&id, now()).await?.is_none() {
        let message = "This authorization request was already completed";
        return Ok(error_page(400, message));
    }
    let back = |error: &str, description: &str| {
        Ok(response::redirect(&error_redirect(
            server,
            &pending.redirect_uri,
            error,
            description,
            pending.state.as_deref(),
        )))
    };
    let provider = idp.label();
    if !pending.consented {
        completed("denied");
        return back("access_denied", "The user did not approve the client");
    }
    if let Some(error) = params.get("error") {
        tracing::info!(%error, client_id = %pending.client_id, "the identity provider did not sign the user in");
        login(provider, "refused");
        completed("denied");
        return back(
            "access_denied",
            "The sign-in at the identity provider did not complete",
        );
    }
    let (Some(code), Some(verifier)) = (params.get("code"), pending.idp_verifier.as_deref()) else {
        login(provider, "refused");
        completed("denied");
        return back("access_denied", "The identity provider returned no code");
    };
    let nonce = pending.idp_nonce.as_deref().unwrap_or_default();
    let outcome = idp.sign_in(code, verifier, nonce, now()).await;
    let (tokens, user) = match outcome {
        Ok(found) => found,
        Err(IdpError::NotAllowed(reason)) => {
            tracing::warn!(%reason, "a sign-in was refused by the allowlists");
            login(provider, "not_allowed");
            completed("denied");
            return back("access_denied", &reason);
        }
        Err(error) => {
            tracing::warn!(%error, "the sign-in at the identity provider failed");
            let (result, ended) = match error {
                IdpError::Refused(_) => ("refused", "denied"),
                _ => ("unavailable", "failed"),
            };
            login(provider, result);
            completed(ended);
            return back(
                "server_error",
                "The sign-in at the identity provider failed",
            );
        }
    };
    login(provider, "success");
    if pending.client_id == super::account::CLIENT {
        return Ok(super::account::signed_in(server, &user));
    }
    let (client_id, resource) = (&pending.client_id, &pending.resource);
    let store = &server.store;
    store
        .put_consent(&user.sub, client_id, resource, &pending.scope)
        .await?;
    tracing::info!(user = %user.sub, client_id = %pending.client_id, "signed in through the identity provider");
    issue_code(server, &pending, user, Some(idp.seal(&tokens))).await
}

/// Counts a sign-in at the identity provider.
fn login(provider: &'static str, result: &'static str) {
    AUTH.logins.with_label_values(&[provider, result]).inc();
}
