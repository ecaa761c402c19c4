//! The authorization server's part in connecting users to backends with their own authorization
//! server ([`crate::connections`]): a sign-in for such a route goes on, once approved, to the
//! backend's server ([`super::pending::to_backend`]) and comes back at `/connect/callback`
//! ([`handle`]), and only then does the client get its code; and the gateway's Client ID Metadata
//! Document ([`client_metadata`]).

use super::errors::OAuthError;
use super::pages::error_page;
use super::pending::{AUTH_COOKIE, completed, error_redirect, issue_code};
use super::response::{self, WithHeader as _};
use super::{AuthServer, Request, Response, hash_secret, secrets_equal};
use crate::connections::ConnectionError;

/// `/connect/callback`: the browser back from a backend's authorization server. The flow its
/// `state` names is taken once; the browser must be the one that signed in; then the client gets
/// its code, or the error.
pub(super) async fn handle(server: &AuthServer, request: &Request) -> Result<Response, OAuthError> {
    let Some(connections) = &server.connections else {
        return Ok(error_page(404, "No route here connects to another server"));
    };
    let params = request.query_params();
    let config = server.config.clone();
    let route_of = |path: &str| config.routes.iter().find(|r| r.path == path).cloned();
    // The browser that signed in, and no other, finishes the sign-in.
    let browser = request
        .cookie(AUTH_COOKIE)
        .map(|secret| hash_secret(&secret));
    let same_browser = |flow: &crate::store::ConnectFlow| match (&flow.pending, &browser) {
        (Some(pending), Some(browser)) => secrets_equal(browser, &pending.browser_hash),
        _ => false,
    };
    let (flow, outcome) = match connections.finish(&params, same_browser, route_of).await {
        Ok(finished) => finished,
        Err(ConnectionError::Store(error)) => return Err(error.into()),
        Err(error) => return Ok(error_page(400, &error.to_string())),
    };
    if let Err(ConnectionError::OtherBrowser) = outcome {
        return Ok(error_page(400, &ConnectionError::OtherBrowser.to_string()));
    }
    let (Some(pending), Some(user)) = (flow.pending, flow.user) else {
        return Ok(error_page(
            400,
            "This connection was not started by a sign-in",
        ));
    };
    if let Err(error) = outcome {
        let (code, description) = match &error {
            ConnectionError::Refused(reason) => (
                "access_denied",
                format!("The MCP server's sign-in did not complete: {reason}"),
            ),
            ConnectionError::Unavailable(_) | ConnectionError::Store(_) => (
                "temporarily_unavailable",
                "The MCP server's sign-in cannot be reached; try again later".to_owned(),
            ),
            other => (
                "server_error",
                format!("The MCP server's sign-in failed: {other}"),
            ),
        };
        completed("failed");
        return Ok(response::redirect(&error_redirect(
            server,
            &pending.redirect_uri,
            code,
            &description,
            pending.state.as_deref(),
        ))
        .with_header(
            http::header::SET_COOKIE,
            &super::pending::auth_cookie("", 0),
        ));
    }
    issue_code(server, &pending, user, flow.idp_tokens).await
}

/// The gateway's Client ID Metadata Document.
pub(super) fn client_metadata(server: &AuthServer) -> Result<Response, OAuthError> {
    match server
        .connections
        .as_ref()
        .and_then(|c| c.client_metadata())
    {
        Some(document) => Ok(response::json(200, &document)),
        None => Ok(error_page(
            404,
            "This gateway serves no client metadata document",
        )),
    }
}
