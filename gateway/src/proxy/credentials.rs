//! What an admitted caller's request carries to the backend: the route's credentials, made (or taken
//! from the signer's cache) for the caller, with the identity provider's token of the caller's grant
//! when GitHub or an OIDC provider issued one; or, on a route that connects users to its backend's
//! own authorization server, the caller's own token there.

use std::sync::Arc;

use http::HeaderValue;
use pingora::{Error, ErrorType};

use super::bearer::BearerError;
use super::refusal::Refusal;
use super::state::Gateway;
use crate::clock::now;
use crate::config::{Credentials, Route, SubjectToken};
use crate::tokens::access::AccessClaims;
use crate::tokens::backend::BackendCredentials;
use crate::tokens::exchange::{ExchangeError, Subject};

/// The credentials for `caller` on route number `index`; `None` for a route that sends none.
pub(super) async fn for_caller(
    gateway: &Gateway,
    route: &Route,
    index: usize,
    caller: &AccessClaims,
) -> pingora::Result<Option<Arc<BackendCredentials>>> {
    match route.credentials {
        Credentials::None => return Ok(None),
        // The caller's own token at the backend ([`connected`]), or one exchanged for them
        // ([`exchanged`]), and nothing of the gateway's.
        Credentials::OAuth | Credentials::Exchange => return Ok(None),
        _ => {}
    }
    // With GitHub or an OIDC provider, the grant holds the user's token there, and the backend
    // expects it: without it the request fails (502) rather than carry a token of the gateway's
    // own in its place.
    let idp_token = match &gateway.auth {
        Some(auth) if auth.keeps_idp_tokens() => {
            // A caller with no grant (a machine client, an enterprise sign-in, another issuer's
            // token) has no token there to send.
            match &caller.gid {
                Some(grant) => Some(auth.idp_token(grant).await.ok_or_else(|| {
                    Error::explain(
                        ErrorType::HTTPStatus(502),
                        "the caller's token at the identity provider is not available",
                    )
                })?),
                None => None,
            }
        }
        _ => None,
    };
    gateway
        .signer
        .credentials(
            caller,
            index,
            &route.backend_audience,
            idp_token.as_deref(),
            // In `assertion` mode no token goes with the assertion, so it binds none.
            route.credentials != Credentials::Assertion,
            now(),
        )
        .map(Some)
        .map_err(|e| Error::because(ErrorType::InternalError, "signing backend credentials", e))
}

/// `Authorization: Bearer` with the caller's own token at `route`'s backend (`credentials =
/// "oauth"`), or the refusal: 401 when they are not connected there (signing in again connects
/// them: their grant for the route ends, so that a refresh cannot stand in for the sign-in), 502
/// when the backend's server cannot renew the token now.
pub(super) async fn connected(
    gateway: &Gateway,
    route: &Route,
    caller: &AccessClaims,
    cors_origin: Option<&str>,
) -> Result<HeaderValue, Refusal> {
    let cors = super::cors::route_headers(cors_origin);
    let Some(auth) = &gateway.auth else {
        return Err(Refusal::ConnectionUnavailable { cors });
    };
    match auth.connection_bearer(caller, route).await {
        Ok(Some(token)) => HeaderValue::try_from(format!("Bearer {token}"))
            .map(|mut value| {
                value.set_sensitive(true);
                value
            })
            .map_err(|_| Refusal::ConnectionUnavailable { cors }),
        Ok(None) => Err(Refusal::Bearer {
            error: BearerError::NotConnected,
            cors,
        }),
        Err(error) => {
            tracing::warn!(route = %route.path, %error, "a caller's token at the backend is not available");
            Err(Refusal::ConnectionUnavailable { cors })
        }
    }
}

/// `Authorization: Bearer` with a token for `route`'s backend exchanged for `caller` at the
/// organisation's identity provider (`credentials = "exchange"`), or the refusal: 401 when the
/// provider no longer takes what stands for the user (their grant ends, so that they sign in
/// again), 502 when it cannot exchange now.
pub(super) async fn exchanged(
    gateway: &Gateway,
    route: &Route,
    index: usize,
    caller: &AccessClaims,
    headers: &http::HeaderMap,
    cors_origin: Option<&str>,
) -> Result<HeaderValue, Refusal> {
    let cors = super::cors::route_headers(cors_origin);
    let Some(settings) = &route.exchange else {
        return Err(Refusal::ExchangeUnavailable { cors });
    };
    let sign_in_again = |cors| Refusal::Bearer {
        error: BearerError::NotConnected,
        cors,
    };
    let gateway_issuer = &gateway.config.start.tokens.issuer;
    let held: Arc<str>;
    let (token, is_assertion) = match settings.subject {
        SubjectToken::IdentityProvider => {
            let token = match (&gateway.auth, &caller.gid) {
                (Some(auth), Some(grant)) => auth.idp_token(grant).await,
                _ => None,
            };
            held = token.ok_or_else(|| sign_in_again(cors.clone()))?;
            (&*held, false)
        }
        SubjectToken::Assertion => {
            let made = gateway
                .signer
                .credentials(caller, index, &settings.audience, None, false, now())
                .map_err(|_| Refusal::ExchangeUnavailable { cors: cors.clone() })?;
            held = Arc::from(made.assertion.to_str().unwrap_or_default());
            (&*held, true)
        }
        // The token the caller presented, which another issuer made: never one of the gateway's.
        SubjectToken::Caller if caller.iss != *gateway_issuer => {
            let presented = headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' ').map(|(_, t)| t.trim()))
                .unwrap_or_default();
            held = Arc::from(presented);
            (&*held, false)
        }
        SubjectToken::Caller => return Err(sign_in_again(cors)),
    };
    let owner = super::sessions::session_owner(gateway_issuer, caller);
    let subject = Subject {
        token,
        is_assertion,
    };
    match gateway
        .exchanges
        .bearer(route, settings, &owner, subject, now())
        .await
    {
        Ok(bearer) => Ok(bearer),
        Err(ExchangeError::Refused(why)) => {
            tracing::info!(route = %route.path, user = %caller.sub, %why, "the identity provider refused a token exchange; the caller signs in again");
            if let Some(auth) = &gateway.auth {
                auth.to_sign_in_again(caller).await;
            }
            Err(sign_in_again(cors))
        }
        Err(error) => {
            tracing::warn!(route = %route.path, %error, "a backend's token could not be exchanged");
            Err(Refusal::ExchangeUnavailable { cors })
        }
    }
}
