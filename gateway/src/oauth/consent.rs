//! Consent, the confused-deputy protection: the user sees which client, which redirect host, which
//! scopes and which resource, and approves or denies; approval is remembered per user and client.

use super::authorize::{Proof, auth_cookie, continued, error_redirect, issue_code};
use super::errors::OAuthError;
use super::login::client_label;
use super::pages::{ConsentView, consent_page, error_page};
use super::{AuthServer, Request, Response};
use crate::tokens::now;

pub async fn handle(server: &AuthServer, request: &Request) -> Result<Response, OAuthError> {
    if request.method == http::Method::GET {
        let params = request.query_params();
        let (id, pending) =
            continued(server, request, params.get("pending"), Proof::PageView).await?;
        let Some(user) = &pending.user else {
            return Ok(error_page(400, "Sign in first"));
        };
        let client_name = client_label(server, &pending.client_id).await?;
        let redirect_host = url::Url::parse(&pending.redirect_uri)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| pending.redirect_uri.clone());
        let route = super::authorize::route_for(server, &pending.resource);
        let scopes: Vec<&str> = pending.scope.split_ascii_whitespace().collect();
        return Ok(consent_page(&ConsentView {
            pending_id: &id,
            csrf: &pending.csrf,
            client_name: &client_name,
            client_id: &pending.client_id,
            redirect_host: &redirect_host,
            scopes: &scopes,
            resource: &pending.resource,
            resource_name: route.map_or(pending.resource.as_str(), |r| r.resource_name.as_str()),
            user: user.preferred_username.as_deref().unwrap_or(&user.sub),
            redirect_uri: &pending.redirect_uri,
        }));
    }
    let form = request.form();
    let (id, pending) = continued(
        server,
        request,
        form.get("pending"),
        Proof::Form(form.get("csrf")),
    )
    .await?;
    let Some(user) = pending.user.clone() else {
        return Ok(error_page(400, "Sign in first"));
    };
    // Taking it makes the decision final: a second submission finds nothing.
    if server.store.take_pending(&id, now()).await?.is_none() {
        return Ok(error_page(
            400,
            "This authorization request was already completed",
        ));
    }
    match form.get("decision").map(String::as_str) {
        Some("approve") => {
            server
                .store
                .put_consent(&user.sub, &pending.client_id, &pending.scope)
                .await?;
            tracing::info!(user = %user.sub, client_id = %pending.client_id, scope = %pending.scope, "consent given");
            issue_code(server, &pending, user).await
        }
        _ => Ok(Response::redirect(error_redirect(
            server,
            &pending.redirect_uri,
            "access_denied",
            "The user denied the request",
            pending.state.as_deref(),
        ))
        .with_header("set-cookie", auth_cookie("", 0))),
    }
}
