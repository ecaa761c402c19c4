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
use crate::config::{Credentials, Route};
use crate::tokens::access::AccessClaims;
use crate::tokens::backend::BackendCredentials;

/// The credentials for `caller` on route number `index`; `None` for a route that sends none.
pub(super) async fn for_caller(
    gateway: &Gateway,
    route: &Route,
    index: usize,
    caller: &AccessClaims,
) -> pingora::Result<Option<Arc<BackendCredentials>>> {
    match route.credentials {
        Credentials::None => return Ok(None),
        // The caller's own token at the backend ([`connected`]), and nothing of the gateway's.
        Credentials::OAuth => return Ok(None),
        _ => {}
    }
    // With GitHub or an OIDC provider, the grant holds the user's token there, and the backend
    // expects it: without it the request fails (502) rather than carry a token of the gateway's
    // own in its place.
    let idp_token = match &gateway.auth {
        Some(auth) if auth.keeps_idp_tokens() => {
            let token = match &caller.gid {
                Some(grant) => auth.idp_token(grant).await,
                None => None,
            };
            if token.is_none() {
                return Err(Error::explain(
                    ErrorType::HTTPStatus(502),
                    "the caller's token at the identity provider is not available",
                ));
            }
            token
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
