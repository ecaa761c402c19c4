//! Consent, the confused-deputy protection: the user sees which client, where the answer goes (a
//! site's host, or the whole URI of an app's own scheme), which scopes and which resource, and
//! approves or denies; approval is remembered per user and client.

use super::errors::OAuthError;
use super::pages::{ConsentView, consent_page, error_page};
use super::pending::{Proof, auth_cookie, completed, continued, error_redirect, issue_code};
use super::response;
use super::response::WithHeader as _;
use super::{AuthServer, Request, Response};
use crate::clock::now;

pub(super) async fn handle(server: &AuthServer, request: &Request) -> Result<Response, OAuthError> {
    // A sign-in to the user's own page has nothing to consent to, and must not end in a code.
    let pending_id = match request.method {
        http::Method::GET => request.query_params().remove("pending"),
        _ => request.form().remove("pending"),
    };
    if let Some(id) = pending_id
        && server
            .store
            .pending(&id, crate::clock::now())
            .await?
            .is_some_and(|p| p.client_id == super::account::CLIENT)
    {
        return Ok(error_page(400, "There is nothing to consent to here"));
    }
    if request.method == http::Method::GET {
        show(server, request).await
    } else {
        the_users_answer(server, request).await
    }
}

/// The consent page of a pending authorization.
async fn show(server: &AuthServer, request: &Request) -> Result<Response, OAuthError> {
    let params = request.query_params();
    let (id, pending) = continued(server, request, params.get("pending"), Proof::PageView).await?;
    // With GitHub or OIDC the user is not known yet: they approve first, then sign in there.
    let user = match (&pending.user, &server.idp) {
        (Some(user), _) => user
            .preferred_username
            .clone()
            .unwrap_or_else(|| user.sub.clone()),
        (None, Some(_)) => "you (you sign in at the identity provider next)".to_owned(),
        (None, None) => return Ok(error_page(400, "Sign in first")),
    };
    // Where the form's answer leads: the client, or first the identity provider.
    let form_target = match &server.idp {
        Some(idp) if pending.user.is_none() => idp.authorize_origin().await.unwrap_or_default(),
        _ => pending.redirect_uri.clone(),
    };
    let client_name = server.client_label(&pending.client_id).await?;
    let route = server.route_for(&pending.resource);
    let scopes: Vec<&str> = pending.scope.split_ascii_whitespace().collect();
    Ok(consent_page(&ConsentView {
        pending_id: &id,
        csrf: &pending.csrf,
        client_name: &client_name,
        client_id: &pending.client_id,
        destination: super::redirect::destination(&pending.redirect_uri),
        scopes: &scopes,
        resource: &pending.resource,
        resource_name: route.map_or(pending.resource.as_str(), |r| r.resource_name.as_str()),
        user: &user,
        redirect_uri: &form_target,
        warning: anyones_warning(server, &pending.client_id).await?,
    }))
}

/// A warning for a client that described itself (CIMD) and can only redirect to this machine: it
/// may be anyone's.
async fn anyones_warning(
    server: &AuthServer,
    client_id: &str,
) -> Result<Option<&'static str>, OAuthError> {
    let local = |uri: &String| {
        url::Url::parse(uri)
            .is_ok_and(|u| matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")))
    };
    Ok(server
        .client(client_id)
        .await?
        .filter(|c| c.origin == "metadata_document" && c.redirect_uris.iter().all(local))
        .map(|_| {
            "This client only returns to this computer (localhost): anyone can publish such a \
             description. Allow it only if you started it yourself."
        }))
}

/// The user's answer: a code for the client, or `access_denied`.
async fn the_users_answer(server: &AuthServer, request: &Request) -> Result<Response, OAuthError> {
    let form = request.form();
    let proof = Proof::Form(form.get("csrf"));
    let (id, pending) = continued(server, request, form.get("pending"), proof).await?;
    let decision = form.get("decision").map(String::as_str);
    let Some(user) = pending.user.clone() else {
        return decision_before_sign_in(server, id, pending, decision).await;
    };
    // Taking it makes the decision final: a second submission finds nothing.
    if server.store.take_pending(&id, now()).await?.is_none() {
        let message = "This authorization request was already completed";
        return Ok(error_page(400, message));
    }
    if decision != Some("approve") {
        completed("denied");
        let location = error_redirect(
            server,
            &pending.redirect_uri,
            "access_denied",
            "The user denied the request",
            pending.state.as_deref(),
        );
        return Ok(response::redirect(&location)
            .with_header(http::header::SET_COOKIE, &auth_cookie("", 0)));
    }
    let (client_id, scope) = (&pending.client_id, &pending.scope);
    let store = &server.store;
    store
        .put_consent(&user.sub, client_id, &pending.resource, scope)
        .await?;
    tracing::info!(user = %user.sub, %client_id, %scope, "consent given");
    issue_code(server, &pending, user, None).await
}

/// The decision before the sign-in at the identity provider: on approval, remember it in a cookie
/// bound to the client and go to the provider; on denial, back to the client.
async fn decision_before_sign_in(
    server: &AuthServer,
    id: String,
    mut pending: crate::store::PendingAuthorization,
    decision: Option<&str>,
) -> Result<Response, OAuthError> {
    if server.idp.is_none() {
        return Ok(error_page(400, "Sign in first"));
    }
    if decision != Some("approve") {
        server.store.take_pending(&id, now()).await?;
        completed("denied");
        return Ok(response::redirect(&error_redirect(
            server,
            &pending.redirect_uri,
            "access_denied",
            "The user denied the request",
            pending.state.as_deref(),
        ))
        .with_header(http::header::SET_COOKIE, &auth_cookie("", 0)));
    }
    pending.consented = true;
    let location = super::pending::to_identity_provider(server, &id, &mut pending).await?;
    let approval = super::consent_cookie::Approval {
        client_id: &pending.client_id,
        resource: &pending.resource,
        scope: &pending.scope,
    };
    let cookie = super::consent_cookie::set(&server.consent_key, &approval, now());
    Ok(response::redirect(&location).with_header(http::header::SET_COOKIE, &cookie))
}
