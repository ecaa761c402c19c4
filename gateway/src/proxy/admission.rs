//! Admission: every rule a request to a route must pass before it is forwarded — the size of its
//! headers, its browser `Origin` (and the CORS preflight), its declared body size, its bearer token
//! ([`super::bearer`]), the revocation of its grant, and its session's owner. The result is one
//! [`Admitted`] or one [`Refusal`], which is answered (and counted) in one place
//! ([`super::refusal`]).

use std::sync::Arc;

use pingora::http::RequestHeader;
use pingora::proxy::Session;

use super::bearer::{self, BearerError};
use super::body_limit;
use super::cors;
use super::ctx::{RequestCtx, SessionState};
use super::refusal::Refusal;
use super::sessions::{Order, session_key, session_owner};
use super::state::Gateway;
use crate::clock::now;
use crate::config::Route;
use crate::mcp::SESSION_ID;
use crate::tokens::access::{AccessClaims, TokenError};

/// A request that may go to the backend.
pub(super) struct Admitted {
    pub caller: Arc<AccessClaims>,
    /// The allowed browser origin it came from.
    pub cors_origin: Option<String>,
    /// The length its body declares ([`super::body_limit`]), within the limit.
    pub declared_length: Option<u64>,
    /// Where it stands in its session, if it has one.
    pub session: SessionState,
}

/// Checks every rule, in order, for a request to `route`.
pub(super) async fn admit(
    gateway: &Gateway,
    session: &Session,
    route: &Route,
) -> Result<Admitted, Refusal> {
    let header = session.req_header();
    let config = &gateway.config;
    if header_bytes(header) > config.server.max_request_header_bytes {
        return Err(Refusal::HeadersTooLarge);
    }
    let cors_origin = match cors::origin(&header.headers) {
        Some(origin) if !cors::is_allowed(origin, &config.server.allowed_origins) => {
            return Err(Refusal::Origin);
        }
        origin => origin.map(str::to_owned),
    };
    // An upgrade would turn the request into a tunnel no later request's admission sees.
    if header.headers.contains_key(http::header::UPGRADE) {
        return Err(Refusal::Upgrade);
    }
    if header.method == http::Method::OPTIONS {
        return Err(Refusal::Preflight(cors::route_preflight(
            cors_origin.as_deref(),
            &header.headers,
        )));
    }
    let cors = || cors::route_headers(cors_origin.as_deref());
    let declared_length = body_limit::declared_length(&header.headers);
    if declared_length.is_some_and(|len| body_limit::exceeds(len, config)) {
        return Err(Refusal::BodyTooLarge { cors: cors() });
    }
    let caller = bearer::check(
        &gateway.verifier,
        &gateway.external,
        route,
        &header.headers,
        header.uri.query(),
        now(),
    )
    .await
    .map_err(|error| Refusal::Bearer {
        error,
        cors: cors(),
    })?;
    // A grant revoked before a restart: the store remembers what the verifier forgot.
    if let (Some(auth), Some(grant)) = (&gateway.auth, &caller.gid)
        && auth.grant_revoked(grant).await
    {
        return Err(Refusal::Bearer {
            error: BearerError::InvalidToken(TokenError::Revoked),
            cors: cors(),
        });
    }
    let id = session_id(header).map_err(|()| Refusal::BadSessionId { cors: cors() })?;
    let session = match id {
        // Who owns the session is made (another issuer's caller's, a string) only for a request
        // in one.
        Some(id) => {
            let owner = session_owner(&gateway.config.start.tokens.issuer, &caller);
            place_in_session(gateway, header, id, route, &owner).await
        }
        None => Some(SessionState::default()),
    }
    .ok_or_else(|| Refusal::ForeignSession { cors: cors() })?;
    Ok(Admitted {
        caller,
        cors_origin,
        declared_length,
        session,
    })
}

/// The `Mcp-Session-Id` a request names, if any: one copy, of visible ASCII (MCP's rule for a
/// session id), or `Err`.
fn session_id(header: &RequestHeader) -> Result<Option<&str>, ()> {
    let mut values = header.headers.get_all(&SESSION_ID).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let visible = |b: &u8| (0x21..=0x7e).contains(b);
    if values.next().is_some() || value.is_empty() || !value.as_bytes().iter().all(visible) {
        return Err(());
    }
    Ok(Some(value.to_str().map_err(|_| ())?))
}

/// Drops an `Upgrade` to `h2c` (and its settings), which a server may ignore (RFC 9110 §7.8): left
/// in place, Pingora would read the request as an upgrade. Any other upgrade stays, to be refused.
pub(super) fn ignore_h2c_upgrade(header: &mut RequestHeader) {
    let h2c_only = {
        let mut values = header
            .headers
            .get_all(http::header::UPGRADE)
            .iter()
            .peekable();
        values.peek().is_some()
            && values.all(|v| {
                v.to_str()
                    .is_ok_and(|v| v.split(',').all(|p| p.trim().eq_ignore_ascii_case("h2c")))
            })
    };
    if h2c_only {
        header.remove_header(&http::header::UPGRADE);
        header.remove_header("http2-settings");
    }
}

/// Where a request of `sub` stands in the session `id` of `route`, keyed by both (the default
/// without one); `None` for a session another user opened, or that the gateway never saw opened
/// on this route.
async fn place_in_session(
    gateway: &Gateway,
    header: &RequestHeader,
    id: &str,
    route: &Route,
    sub: &str,
) -> Option<SessionState> {
    let id = &session_key(&route.path, id);
    let opens_stream = header.method == http::Method::GET;
    let mut place = SessionState::default();
    let order = match gateway.sessions.admit(id, sub, opens_stream) {
        Some(order) => order,
        // Not opened through this replica, perhaps through another that shares the store.
        None => {
            let store = gateway.shared_store.as_ref()?;
            let owner = store.session_owner(id).await.ok().flatten()?;
            if owner != sub {
                return None;
            }
            gateway.sessions.bind(id, sub);
            gateway.sessions.admit(id, sub, opens_stream)?
        }
    };
    match order {
        Order::OpensStream(opening) => place.opening_stream = Some(opening),
        // The session's id is copied only when a later phase needs it.
        Order::After(pending) => place.after_stream = pending.map(|p| (p, id.to_owned())),
    }
    if header.method == http::Method::DELETE {
        place.ending = Some(id.to_owned());
    }
    Some(place)
}

impl Admitted {
    /// Keeps what later phases need in the request's state.
    pub(super) fn record(self, ctx: &mut RequestCtx) {
        ctx.caller = Some(self.caller);
        ctx.cors_origin = self.cors_origin;
        ctx.message.declared_length = self.declared_length;
        ctx.session = self.session;
    }
}

/// The size of a request's header section, roughly as it came on the wire.
fn header_bytes(header: &RequestHeader) -> usize {
    let target = header
        .uri
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    target
        + header
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>()
}
