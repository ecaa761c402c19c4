//! `/authorize`: check the request, then keep it as a pending authorization ([`super::pending`])
//! while the user signs in and consents.
//!
//! Errors found before the client and its redirect URI are known to be good show an error page: the
//! browser is never sent to a URI nobody vouched for. Later errors of the request go back to the
//! redirect URI with `error`, `state` and `iss` (RFC 9207) only for a client the operator
//! configured; a self-registered or metadata-document client's stay on the page until the user has
//! acted here (RFC 9700 §4.11.1).

use std::collections::HashMap;

use super::errors::OAuthError;
use super::pages::error_page;
use super::pending::{auth_cookie, error_redirect, to_identity_provider};
use super::response;
use super::response::WithHeader as _;
use super::{
    AsEndpoint, AuthServer, Request, Response, hash_secret, pkce, random_token, redirect, scope,
};
use crate::clock::now;
use crate::config::Route;
use crate::store::{ClientRecord, PendingAuthorization};
use crate::telemetry::metrics::auth::AUTH;

/// How long a user has to log in and consent.
const PENDING_SECS: u64 = 600;

/// An OAuth error code and its description, for the client's redirect URI.
type Refusal = (&'static str, &'static str);

/// What a request that passed every check asks for.
struct Checked<'a> {
    challenge: &'a str,
    route: &'a Route,
    scope: String,
}

pub(super) async fn handle(server: &AuthServer, request: &Request) -> Result<Response, OAuthError> {
    if request.method != http::Method::GET {
        return Err(page(405, "Use GET for /authorize"));
    }
    let raw = request.query.as_deref().unwrap_or_default();
    if let Some(name) = super::repeated(raw.as_bytes()) {
        let message = format!("The parameter {name} was given more than once");
        return Err(page(400, &message));
    }
    let params = request.query_params();
    let (client, redirect_uri) = client_and_redirect(server, &params).await?;
    // From here on, errors go back to the client.
    let state = params.get("state").cloned();
    let checked = match check(server, &params, &client) {
        Ok(checked) => checked,
        Err((error, description)) => {
            let answer = (&client, redirect_uri.as_str());
            return refuse(server, answer, error, description, state.as_deref());
        }
    };
    let browser = random_token(24);
    let pending = PendingAuthorization {
        client_id: client.client_id.clone(),
        redirect_uri_given: params.contains_key("redirect_uri"),
        redirect_uri,
        state,
        scope: checked.scope,
        resource: checked.route.resource.clone(),
        code_challenge: checked.challenge.to_owned(),
        csrf: random_token(24),
        // The cookie holds a secret of its own, not the id that also travels in URLs.
        browser_hash: hash_secret(&browser),
        user: None,
        expires_at: now() + PENDING_SECS,
        idp_verifier: None,
        idp_nonce: None,
        consented: false,
        failed_logins: 0,
    };
    let cookie = auth_cookie(&browser, PENDING_SECS);
    let next = next_step(server, request, pending).await?;
    AUTH.authorizations_started.inc();
    Ok(response::redirect(&next).with_header(http::header::SET_COOKIE, &cookie))
}

/// The client and the redirect URI the request may be answered at; any error is a page.
async fn client_and_redirect(
    server: &AuthServer,
    params: &HashMap<String, String>,
) -> Result<(ClientRecord, String), OAuthError> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| page(400, "The request names no client_id"))?;
    let client = match server.client_at_authorize(client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => return Err(page(400, "The client is not registered with this server")),
        // A metadata document that cannot be used: say why, on a page.
        Err(OAuthError::InvalidClient(reason)) => return Err(page(400, &reason)),
        Err(other) => return Err(other),
    };
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) => client
            .redirect_uris
            .iter()
            .any(|r| redirect::matches(r, uri))
            .then(|| uri.clone())
            .ok_or_else(|| page(400, "The redirect_uri is not one the client registered"))?,
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            let message = "The request names no redirect_uri and the client registered several";
            return Err(page(400, message));
        }
    };
    // Registered before the operator narrowed the app schemes: the narrower rule holds from now on.
    let schemes = &server.config.auth.private_use_schemes;
    if let Some(problem) = redirect::registration_problem(&redirect_uri, schemes) {
        return Err(page(400, &problem));
    }
    Ok((client, redirect_uri))
}

/// The request's response type, PKCE challenge, resource and scope, and the client's grant types.
fn check<'a>(
    server: &'a AuthServer,
    params: &'a HashMap<String, String>,
    client: &ClientRecord,
) -> Result<Checked<'a>, Refusal> {
    if params.get("response_type").map(String::as_str) != Some("code") {
        let description = "Only response_type=code is supported";
        return Err(("unsupported_response_type", description));
    }
    let challenge = params.get("code_challenge").ok_or((
        "invalid_request",
        "PKCE is required: send code_challenge with code_challenge_method=S256",
    ))?;
    if params.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return Err((
            "invalid_request",
            "Only code_challenge_method=S256 is accepted",
        ));
    }
    if !pkce::is_valid_challenge(challenge) {
        let description = "The code_challenge is not a base64url SHA-256";
        return Err(("invalid_request", description));
    }
    let route = match params.get("resource") {
        None => &server.config.routes[server.config.default_route],
        Some(resource) => server.route_for(resource).ok_or((
            "invalid_target",
            "The resource is not served by this gateway",
        ))?,
    };
    let asked = params.get("scope").map_or("", String::as_str);
    let scope = match scope::grantable(asked, &route.scopes_supported) {
        Ok(granted) if granted.is_empty() => route.scopes_supported.join(" "),
        Ok(granted) => granted.join(" "),
        Err(_) => {
            let description = "A requested scope is not supported by the resource";
            return Err(("invalid_scope", description));
        }
    };
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        let description = "The client may not use the authorization code grant";
        return Err(("unauthorized_client", description));
    }
    Ok(Checked {
        challenge,
        route,
        scope,
    })
}

/// An error for the client. Until the user has acted on one of this server's pages, a redirect goes
/// only to a client the operator configured: any other's redirect URI is whatever its registrant or
/// its metadata document chose, and a link to `/authorize` would make this server an open redirector
/// to it (RFC 9700 §4.11.1), or launch an app. Their errors stay on this server's page.
fn refuse(
    server: &AuthServer,
    (client, redirect_uri): (&ClientRecord, &str),
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Result<Response, OAuthError> {
    let app = matches!(
        redirect::destination(redirect_uri),
        redirect::Destination::App(_)
    );
    if app || client.origin != "config" {
        return Err(page(400, &format!("{description} ({error})")));
    }
    let location = error_redirect(server, redirect_uri, error, description, state);
    Ok(response::redirect(&location))
}

/// Keeps `pending` and says where the browser goes next: with the `local` provider, to sign in here
/// (then consent); with GitHub or OIDC, to consent first (the confused-deputy protection), unless
/// this browser already approved this client, then to the provider.
async fn next_step(
    server: &AuthServer,
    request: &Request,
    mut pending: PendingAuthorization,
) -> Result<String, OAuthError> {
    let id = random_token(24);
    if server.idp.is_none() {
        server.store.put_pending(&id, &pending).await?;
        return Ok(format!("{}?pending={id}", server.url(AsEndpoint::Login)));
    }
    let approval = super::consent_cookie::Approval {
        client_id: &pending.client_id,
        resource: &pending.resource,
        scope: &pending.scope,
    };
    let cookie_name = super::consent_cookie::name(&pending.client_id, &pending.resource);
    let approved = request.cookie(&cookie_name).is_some_and(|v| {
        super::consent_cookie::approves(&server.consent_key, &approval, &v, now())
    });
    if approved {
        pending.consented = true;
        return to_identity_provider(server, &id, &mut pending).await;
    }
    server.store.put_pending(&id, &pending).await?;
    Ok(format!("{}?pending={id}", server.url(AsEndpoint::Consent)))
}

fn page(status: u16, message: &str) -> OAuthError {
    OAuthError::Page(Box::new(error_page(status, message)))
}
