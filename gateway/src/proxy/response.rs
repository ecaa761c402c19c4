//! The backend's response on its way to the client: what the gateway learns from it (the session
//! it opened or ended, an open GET stream, an initialized session, a stream to watch until its
//! access ends) and what it adds (no buffering of SSE, CORS).

use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use super::cors;
use super::credentials;
use super::ctx::{Refused, RequestCtx};
use super::router::Endpoint;
use super::sessions::{session_key, session_owner};
use super::state::Gateway;
use super::watchdog;
use crate::connections::BackendRefusal;
use crate::mcp::SESSION_ID;
use crate::mcp::message;

/// Takes note of `response` and sets the headers the client needs.
pub(super) async fn filter(
    gateway: &Gateway,
    session: &Session,
    response: &mut ResponseHeader,
    ctx: &mut RequestCtx,
) -> pingora::Result<()> {
    // The backend answered the GET: its stream is open there, and the session's other requests
    // may go.
    ctx.session.opening_stream = None;
    if let Some(route) = gateway.route(ctx.endpoint)
        && route.credentials == crate::config::Credentials::OAuth
        && matches!(response.status.as_u16(), 401 | 403)
    {
        refused_by_backend(gateway, route, response, ctx).await?;
    }
    // A backend that refuses the token exchanged for the caller gets a new one next time.
    if let (Some(route), Some(caller)) = (gateway.route(ctx.endpoint), ctx.caller.as_deref())
        && let Some(settings) = &route.exchange
        && response.status == http::StatusCode::UNAUTHORIZED
    {
        let owner = session_owner(&gateway.config.start.tokens.issuer, caller);
        gateway.exchanges.forget(route, settings, &owner);
    }
    let opened = (
        ctx.caller.as_deref(),
        response
            .headers
            .get(&SESSION_ID)
            .and_then(|v| v.to_str().ok()),
    );
    let route = gateway.route_label(ctx.endpoint);
    if let (Some(caller), Some(id)) = opened {
        let key = session_key(route, id);
        let owner = session_owner(&gateway.config.start.tokens.issuer, caller);
        if gateway.sessions.bind(&key, &owner) {
            share_session(gateway, &key, &owner).await;
        }
    }
    if let Some(id) = &ctx.session.ending
        && response.status.is_success()
    {
        gateway.sessions.end(id);
        if let Some(store) = &gateway.shared_store
            && let Err(error) = store.end_session(id).await
        {
            tracing::warn!(%error, "other replicas may still admit an ended session");
        }
    }
    // Told its session is initialized, the client opens its GET stream next.
    if response.status.is_success()
        && ctx.message.peek.method.as_deref() == Some("notifications/initialized")
        && let Some(id) = session
            .req_header()
            .headers
            .get(&SESSION_ID)
            .and_then(|v| v.to_str().ok())
    {
        gateway.sessions.expect_stream(&session_key(route, id));
    }
    if is_sse(response) {
        // Nothing between here and the client may buffer or compress the stream.
        response.insert_header("x-accel-buffering", "no")?;
        response.remove_header(&http::header::CONTENT_LENGTH);
        gateway.route_metrics(ctx.endpoint).active_streams.inc();
        ctx.backend.stream_open = true;
        watch_stream(gateway, ctx);
    }
    for (name, value) in cors::route_headers(ctx.cors_origin.as_deref()) {
        response.insert_header(name, value)?;
    }
    Ok(())
}

/// The backend of a route that connects users refused the caller's own token there (401), which the
/// gateway thought in force: the token is renewed at the backend's server and the request, held in
/// Pingora's copy of its body, is sent once more with it (Pingora asks [`retrying`] whether to),
/// so that the client sees only the second answer. When that cannot be (the body was too large to
/// hold, the token cannot be renewed, or this is the second answer), the refusal goes on to
/// [`filter`], which answers with the gateway's own 401.
pub(super) async fn retry_refused(
    gateway: &Gateway,
    session: &Session,
    response: &ResponseHeader,
    ctx: &mut RequestCtx,
) -> pingora::Result<()> {
    let Some(route) = gateway.route(ctx.endpoint) else {
        return Ok(());
    };
    if route.credentials != crate::config::Credentials::OAuth
        || response.status != http::StatusCode::UNAUTHORIZED
        || ctx.backend.refused != Refused::No
    {
        return Ok(());
    }
    let (Some(auth), Some(caller)) = (&gateway.auth, ctx.caller.clone()) else {
        return Ok(());
    };
    ctx.backend.refused = Refused::Noted;
    if !auth
        .backend_refused(&caller, route, &BackendRefusal::Token)
        .await
        || session.as_ref().retry_buffer_truncated()
    {
        return Ok(());
    }
    let cors_origin = ctx.cors_origin.clone();
    let Ok(renewed) = credentials::connected(gateway, route, &caller, cors_origin.as_deref()).await
    else {
        return Ok(());
    };
    ctx.backend.connection_bearer = Some(renewed);
    ctx.backend.refused = Refused::Retrying;
    Err(pingora::Error::explain(
        pingora::ErrorType::HTTPStatus(401),
        "the backend refused the caller's token: sent again with it renewed",
    ))
}

/// Whether the request is to be sent again ([`retry_refused`]): once.
pub(super) fn retrying(ctx: &mut RequestCtx) -> bool {
    let again = ctx.backend.refused == Refused::Retrying;
    if again {
        ctx.backend.refused = Refused::Noted;
    }
    again
}

/// The backend of a route that connects users refused the caller's own token there (401) or asked
/// for more scope (403 `insufficient_scope`): the gateway takes note, and the client is answered
/// with the gateway's own challenge, never the backend's (which names the backend's server, not
/// the gateway the client signs in at): `401 invalid_token`, after which the client refreshes its
/// token and tries again (the gateway refreshes the user's token at the backend first), or signs
/// in again when more scope is wanted (its grant for the route ended), which connects the user
/// again for that scope.
async fn refused_by_backend(
    gateway: &Gateway,
    route: &crate::config::Route,
    response: &mut ResponseHeader,
    ctx: &RequestCtx,
) -> pingora::Result<()> {
    let challenge = response
        .headers
        .get(http::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok());
    let Some(refusal) = BackendRefusal::of(response.status.as_u16(), challenge) else {
        // A plain 403 is the backend's answer about what was asked, not about the token.
        return Ok(());
    };
    // A 401 [`retry_refused`] took note of is not noted twice.
    let noted = refusal == BackendRefusal::Token && ctx.backend.refused == Refused::Noted;
    if let (Some(auth), Some(caller), false) = (&gateway.auth, ctx.caller.as_deref(), noted) {
        auth.backend_refused(caller, route, &refusal).await;
    }
    response.set_status(401)?;
    response.insert_header(
        http::header::WWW_AUTHENTICATE,
        format!(
            "Bearer error=\"invalid_token\", error_description=\"The MCP server refused the access; sign in again\", resource_metadata=\"{}\"",
            route.metadata_url
        ),
    )?;
    Ok(())
}

/// Watches a stream, to end it when its access does: its token, its grant, its route, the
/// calls it carries and the lists it filters are asked about again while it is open.
fn watch_stream(gateway: &Gateway, ctx: &mut RequestCtx) {
    let (Endpoint::Mcp(route), Some(claims)) = (ctx.endpoint, ctx.caller.clone()) else {
        return;
    };
    let calls = ctx
        .message
        .inspected_body
        .as_deref()
        .and_then(|body| message::parse(body).ok())
        .map(|messages| {
            messages
                .messages
                .iter()
                .filter_map(|m| m.target().map(|t| (t.kind, t.name.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let access = watchdog::StreamAccess {
        claims,
        config: gateway.config.clone(),
        route,
        calls,
        lists: ctx.message.list_filter.is_some(),
    };
    ctx.watched(&gateway.watchdog, None).stream(access);
}

/// Whether the response is an SSE stream (`text/event-stream`, in any case).
fn is_sse(response: &ResponseHeader) -> bool {
    const SSE: &[u8] = b"text/event-stream";
    response
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .as_bytes()
                .get(..SSE.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(SSE))
        })
}

/// Records a session this replica saw opened where the others look for it, when they share a store.
async fn share_session(gateway: &Gateway, id: &str, sub: &str) {
    if let Some(store) = &gateway.shared_store {
        let expires_at = crate::clock::now() + super::sessions::IDLE.as_secs();
        if let Err(error) = store.put_session(id, sub, expires_at).await {
            tracing::warn!(%error, "other replicas will not know this session");
        }
    }
}
