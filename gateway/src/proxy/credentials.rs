//! What an admitted caller's request carries to the backend: the route's credentials, made (or taken
//! from the signer's cache) for the caller, with the identity provider's token of the caller's grant
//! when GitHub or an OIDC provider issued one.

use std::sync::Arc;

use pingora::{Error, ErrorType};

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
        // The connect flow is being built (issue 25): until it is, nothing is forwarded to a
        // backend that would get no user's token, and no identity of the gateway's in its place.
        Credentials::OAuth => {
            return Err(Error::explain(
                ErrorType::HTTPStatus(501),
                "routes with credentials = \"oauth\" are not served by this build yet",
            ));
        }
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
