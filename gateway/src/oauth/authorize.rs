//! `/authorize`: check the request, then keep it as a pending authorization while the user logs in and
//! consents; finally issue the code.
//!
//! Errors found before the client and its redirect URI are known to be good show an error page: the
//! browser is never sent to a URI nobody vouched for. Later errors go back to the client's redirect URI
//! with `error`, `state` and `iss` (RFC 9207), as success does.

use super::errors::OAuthError;
use super::pages::error_page;
use super::{
    AsEndpoint, AuthServer, Request, Response, hash_secret, pkce, random_token, redirect, scope,
};
use crate::clock::now;
use crate::config::Route;
use crate::store::records::UserIdentity;
use crate::store::{CodeRecord, PendingAuthorization};

/// The cookie that binds a browser to the authorization it started.
pub const AUTH_COOKIE: &str = "__Host-mcpgw-auth";
/// How long a user has to log in and consent.
const PENDING_SECS: u64 = 600;

pub async fn handle(server: &AuthServer, request: &Request) -> Result<Response, OAuthError> {
    if request.method != http::Method::GET {
        return Err(page(405, "Use GET for /authorize"));
    }
    let raw = request.query.as_deref().unwrap_or_default();
    if let Some(name) = super::repeated(raw.as_bytes()) {
        return Err(page(
            400,
            &format!("The parameter {name} was given more than once"),
        ));
    }
    let params = request.query_params();
    let client_id = params
        .get("client_id")
        .ok_or_else(|| page(400, "The request names no client_id"))?;
    let client = match server.client(client_id).await {
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
            return Err(page(
                400,
                "The request names no redirect_uri and the client registered several",
            ));
        }
    };
    // Registered before the operator narrowed the app schemes: the narrower rule holds from now on.
    if let Some(problem) =
        redirect::registration_problem(&redirect_uri, &server.config.auth.private_use_schemes)
    {
        return Err(page(400, &problem));
    }

    // From here on, errors go back to the client; but a native app's redirect launches a program
    // outside the browser, so until the user has acted here its errors stay on this server's page
    // (RFC 9700 §4.11.1): a link cannot make the gateway launch an app.
    let state = params.get("state").cloned();
    let launches_app = matches!(
        redirect::destination(&redirect_uri),
        redirect::Destination::App(_)
    );
    let back = |error: &str, description: &str| {
        if launches_app {
            return Err(page(400, &format!("{description} ({error})")));
        }
        Ok(Response::redirect(error_redirect(
            server,
            &redirect_uri,
            error,
            description,
            state.as_deref(),
        )))
    };
    if params.get("response_type").map(String::as_str) != Some("code") {
        return back(
            "unsupported_response_type",
            "Only response_type=code is supported",
        );
    }
    let Some(challenge) = params.get("code_challenge") else {
        return back(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        );
    };
    if params.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return back(
            "invalid_request",
            "Only code_challenge_method=S256 is accepted",
        );
    }
    if !pkce::is_valid_challenge(challenge) {
        return back(
            "invalid_request",
            "The code_challenge is not a base64url SHA-256",
        );
    }
    let route = match params.get("resource") {
        None => &server.config.routes[server.config.default_route],
        Some(resource) => match route_for(server, resource) {
            Some(route) => route,
            None => {
                return back(
                    "invalid_target",
                    "The resource is not served by this gateway",
                );
            }
        },
    };
    let asked = params.get("scope").map_or("", String::as_str);
    let scope = match scope::grantable(asked, &route.scopes_supported) {
        Ok(granted) if granted.is_empty() => route.scopes_supported.join(" "),
        Ok(granted) => granted.join(" "),
        Err(_) => {
            return back(
                "invalid_scope",
                "A requested scope is not supported by the resource",
            );
        }
    };
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        return back(
            "unauthorized_client",
            "The client may not use the authorization code grant",
        );
    }

    let id = random_token(24);
    // The cookie holds a secret of its own, not the id that also travels in URLs.
    let browser = random_token(24);
    let pending = PendingAuthorization {
        client_id: client.client_id.clone(),
        redirect_uri_given: params.contains_key("redirect_uri"),
        redirect_uri,
        state,
        scope,
        resource: route.resource.clone(),
        code_challenge: challenge.clone(),
        csrf: random_token(24),
        browser_hash: hash_secret(&browser),
        user: None,
        expires_at: now() + PENDING_SECS,
        upstream_verifier: None,
        upstream_nonce: None,
        consented: false,
        failed_logins: 0,
    };
    let cookie = auth_cookie(&browser, PENDING_SECS);
    if server.upstream.is_none() {
        // The local provider: sign in here, then consent.
        server.store.put_pending(&id, &pending).await?;
        let login = format!("{}?pending={id}", server.url(AsEndpoint::Login));
        return Ok(Response::redirect(login).with_header("set-cookie", cookie));
    }
    // An upstream provider: consent comes first (the confused-deputy protection), unless this browser
    // already approved this client.
    let approval = super::consent_cookie::Approval {
        client_id: &client.client_id,
        resource: &pending.resource,
        scope: &pending.scope,
    };
    let approved = request
        .cookie(&super::consent_cookie::name(
            &client.client_id,
            &pending.resource,
        ))
        .is_some_and(|v| {
            super::consent_cookie::approves(&server.consent_key, &approval, &v, now())
        });
    if approved {
        let mut pending = pending;
        pending.consented = true;
        let location = to_upstream(server, &id, &mut pending).await?;
        return Ok(Response::redirect(location).with_header("set-cookie", cookie));
    }
    server.store.put_pending(&id, &pending).await?;
    let consent = format!("{}?pending={id}", server.url(AsEndpoint::Consent));
    Ok(Response::redirect(consent).with_header("set-cookie", cookie))
}

/// Keeps `pending` with a fresh PKCE verifier for the upstream request, and returns where to send the
/// browser: the upstream provider's authorization page.
pub async fn to_upstream(
    server: &AuthServer,
    id: &str,
    pending: &mut PendingAuthorization,
) -> Result<String, OAuthError> {
    let upstream = server.upstream.as_ref().expect("an upstream provider");
    let verifier = random_token(32);
    let nonce = random_token(16);
    let location = upstream
        .authorize_url(id, &verifier, &nonce, &pending.resource)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "the upstream provider is unavailable");
            page(
                502,
                "The identity provider cannot be reached; try again later",
            )
        })?;
    pending.upstream_verifier = Some(verifier);
    pending.upstream_nonce = Some(nonce);
    server.store.put_pending(id, pending).await?;
    Ok(location)
}

/// The route whose resource identifier `resource` names: exactly, or with a trailing slash.
pub fn route_for<'a>(server: &'a AuthServer, resource: &str) -> Option<&'a Route> {
    let trimmed = resource.strip_suffix('/').unwrap_or(resource);
    server.config.routes.iter().find(|r| r.resource == trimmed)
}

/// The `Set-Cookie` value binding this browser to a pending authorization by its secret (`max_age` 0
/// clears it).
pub fn auth_cookie(secret: &str, max_age: u64) -> String {
    format!("{AUTH_COOKIE}={secret}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}")
}

fn page(status: u16, message: &str) -> OAuthError {
    OAuthError::Page(Box::new(error_page(status, message)))
}

/// The client's redirect URI with `extra` parameters added to its query, plus `iss` (RFC 9207).
pub fn client_redirect(server: &AuthServer, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(url) => url,
        Err(_) => return redirect_uri.to_owned(),
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in extra {
            query.append_pair(k, v);
        }
        query.append_pair("iss", &server.config.tokens.issuer);
    }
    url.to_string()
}

pub fn error_redirect(
    server: &AuthServer,
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> String {
    let mut extra = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        extra.push(("state", state));
    }
    client_redirect(server, redirect_uri, &extra)
}

/// Ends a pending authorization the user approved: issues the code and sends the browser back.
pub async fn issue_code(
    server: &AuthServer,
    pending: &PendingAuthorization,
    user: UserIdentity,
    upstream: Option<String>,
) -> Result<Response, OAuthError> {
    let code = random_token(32);
    let record = CodeRecord {
        client_id: pending.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        redirect_uri_given: pending.redirect_uri_given,
        code_challenge: pending.code_challenge.clone(),
        scope: pending.scope.clone(),
        resource: pending.resource.clone(),
        user,
        expires_at: now() + server.config.auth.code_lifetime.as_secs(),
        upstream,
    };
    server.store.put_code(&hash_secret(&code), &record).await?;
    let mut extra = vec![("code", code.as_str())];
    if let Some(state) = &pending.state {
        extra.push(("state", state));
    }
    Ok(
        Response::redirect(client_redirect(server, &pending.redirect_uri, &extra))
            .with_header("set-cookie", auth_cookie("", 0)),
    )
}

/// What a login or consent request must prove besides the browser's cookie.
pub enum Proof<'a> {
    /// A page view (GET): the cookie is enough.
    PageView,
    /// A form submission (POST): it must carry the page's CSRF token.
    Form(Option<&'a String>),
}

/// The pending authorization a login or consent request continues, checked against the browser's
/// cookie and, for a form, its CSRF token.
pub async fn continued(
    server: &AuthServer,
    request: &Request,
    id: Option<&String>,
    proof: Proof<'_>,
) -> Result<(String, PendingAuthorization), OAuthError> {
    let id =
        id.ok_or_else(|| page(400, "This page was opened without an authorization request"))?;
    let pending = server.store.pending(id, now()).await?.ok_or_else(|| {
        page(
            400,
            "This authorization request expired or was already completed; start again from the app",
        )
    })?;
    if !request
        .cookie(AUTH_COOKIE)
        .is_some_and(|c| super::secrets_equal(&hash_secret(&c), &pending.browser_hash))
    {
        return Err(page(
            400,
            "This authorization request was started in another browser",
        ));
    }
    if let Proof::Form(csrf) = proof
        && !csrf.is_some_and(|csrf| super::secrets_equal(csrf, &pending.csrf))
    {
        return Err(page(403, "The form was not sent from this server's page"));
    }
    Ok((id.clone(), pending))
}
