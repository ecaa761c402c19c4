//! A pending authorization, from `/authorize` to the code: the browser bound to it by a cookie, its
//! continuation by the login, consent and callback pages, the detour to the identity provider, and
//! its end, a code or an error sent back to the client's redirect URI (with `iss`, RFC 9207).

use super::errors::OAuthError;
use super::pages::error_page;
use super::response;
use super::response::WithHeader as _;
use super::{AuthServer, Request, Response, hash_secret, random_token};
use crate::clock::now;
use crate::connections::{ConnectionError, Waiting};
use crate::store::records::UserIdentity;
use crate::store::{CodeRecord, PendingAuthorization};
use crate::telemetry::metrics::auth::AUTH;

/// The cookie that binds a browser to the authorization it started.
pub(super) const AUTH_COOKIE: &str = "__Host-mcpgw-auth";

/// Keeps `pending` with a fresh PKCE verifier for the request to the identity provider, and returns
/// where to send the browser: the provider's authorization page.
pub(super) async fn to_identity_provider(
    server: &AuthServer,
    id: &str,
    pending: &mut PendingAuthorization,
) -> Result<String, OAuthError> {
    let idp = server
        .idp
        .as_ref()
        .expect("an identity provider with a sign-in page");
    let verifier = random_token(32);
    let nonce = random_token(16);
    let location = idp
        .authorize_url(id, &verifier, &nonce, &pending.resource)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "the identity provider is unavailable");
            page(
                502,
                "The identity provider cannot be reached; try again later",
            )
        })?;
    pending.idp_verifier = Some(verifier);
    pending.idp_nonce = Some(nonce);
    server.store.put_pending(id, pending).await?;
    Ok(location)
}

/// The `Set-Cookie` value binding this browser to a pending authorization by its secret (`max_age` 0
/// clears it).
pub(super) fn auth_cookie(secret: &str, max_age: u64) -> String {
    format!("{AUTH_COOKIE}={secret}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}")
}

/// The client's redirect URI with `extra` parameters added to its query, plus `iss` (RFC 9207).
pub(super) fn client_redirect(
    server: &AuthServer,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(url) => url,
        Err(_) => return redirect_uri.to_owned(),
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in extra {
            query.append_pair(k, v);
        }
        query.append_pair("iss", &server.config.start.tokens.issuer);
    }
    url.to_string()
}

pub(super) fn error_redirect(
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

/// Ends a pending authorization the user approved: issues the code and sends the browser back; or,
/// for a route whose backend the user must connect to first, sends the browser there, to come back
/// here once connected ([`super::connect`]).
pub(super) async fn issue_code(
    server: &AuthServer,
    pending: &PendingAuthorization,
    user: UserIdentity,
    idp_tokens: Option<String>,
) -> Result<Response, OAuthError> {
    if let Some(onwards) = to_backend(server, pending, &user, &idp_tokens).await? {
        return Ok(onwards);
    }
    let code = random_token(32);
    let route = server.route_for(&pending.resource);
    let scope = super::scope::for_user(route, &user, &pending.client_id, &pending.scope);
    if scope != pending.scope {
        tracing::info!(user = %user.sub, asked = %pending.scope, granted = %scope, "scopes the route's policy reserves for others were not granted");
    }
    let record = CodeRecord {
        client_id: pending.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        redirect_uri_given: pending.redirect_uri_given,
        code_challenge: pending.code_challenge.clone(),
        scope,
        resource: pending.resource.clone(),
        user,
        expires_at: now() + server.config.auth.code_lifetime.as_secs(),
        idp_tokens,
    };
    server.store.put_code(&hash_secret(&code), &record).await?;
    completed("approved");
    let mut extra = vec![("code", code.as_str())];
    if let Some(state) = &pending.state {
        extra.push(("state", state));
    }
    Ok(
        response::redirect(&client_redirect(server, &pending.redirect_uri, &extra))
            .with_header(http::header::SET_COOKIE, &auth_cookie("", 0)),
    )
}

/// Where an approved sign-in goes next: to the backend's authorization server when the route
/// connects users and this one is not connected there yet (`Some`, a redirect), else on to its code.
pub(super) async fn to_backend(
    server: &AuthServer,
    pending: &PendingAuthorization,
    user: &UserIdentity,
    idp_tokens: &Option<String>,
) -> Result<Option<Response>, OAuthError> {
    let (Some(connections), Some(route)) =
        (&server.connections, server.route_for(&pending.resource))
    else {
        return Ok(None);
    };
    let Some(settings) = &route.connection else {
        return Ok(None);
    };
    if connections
        .is_connected(&user.sub, route)
        .await
        .map_err(connection_store_error)?
    {
        return Ok(None);
    }
    let waiting = Waiting {
        pending: pending.clone(),
        user: user.clone(),
        idp_tokens: idp_tokens.clone(),
    };
    match connections.begin(route, settings, waiting).await {
        Ok(location) => Ok(Some(response::redirect(&location))),
        Err(error) => {
            tracing::warn!(route = %route.path, %error, "a user could not be sent to connect to a backend");
            crate::telemetry::metrics::connections::failed(&route.path, error.reason());
            completed("failed");
            Ok(Some(response::redirect(&error_redirect(
                server,
                &pending.redirect_uri,
                "temporarily_unavailable",
                // The cause, for the user to pass on: the backend's and its server's public URLs
                // at most, never a token or a secret.
                &format!("The MCP server's sign-in cannot be reached: {error}"),
                pending.state.as_deref(),
            ))))
        }
    }
}

fn connection_store_error(error: ConnectionError) -> OAuthError {
    match error {
        ConnectionError::Store(error) => error.into(),
        other => OAuthError::TemporarilyUnavailable(other.to_string()),
    }
}

/// Counts an authorization that ended: `approved`, `denied` or `failed`.
pub(super) fn completed(result: &'static str) {
    AUTH.authorizations_completed
        .with_label_values(&[result])
        .inc();
}

/// What a login or consent request must prove besides the browser's cookie.
pub(super) enum Proof<'a> {
    /// A page view (GET): the cookie is enough.
    PageView,
    /// A form submission (POST): it must carry the page's CSRF token.
    Form(Option<&'a String>),
}

/// The pending authorization a login or consent request continues, checked against the browser's
/// cookie and, for a form, its CSRF token.
pub(super) async fn continued(
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

fn page(status: u16, message: &str) -> OAuthError {
    OAuthError::Page(Box::new(error_page(status, message)))
}
