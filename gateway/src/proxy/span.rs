//! The data plane's spans ([`crate::telemetry::trace`]): the request's, a server span named
//! `<METHOD> <route>` with the MCP attributes of the semantic conventions (method, tool, a hash of
//! the session's id, the user's id; never a token), and within it the admission's, the body inspection's and the
//! backend call's, a client span whose context the backend is sent as its `traceparent`.

use pingora::http::RequestHeader;
use tracing::Span;
use tracing::field::Empty;

use super::router::Endpoint;
use super::state::Gateway;
use crate::config::Route;
use crate::telemetry::trace::SPANS;

/// The request's span, named `<METHOD> <route>`, taking up the trace the client names: continued
/// from a trusted proxy (`trusted`), linked from anyone else.
pub(super) fn request(
    header: &RequestHeader,
    gateway: &Gateway,
    endpoint: Endpoint,
    trusted: bool,
) -> Span {
    // The gateway's own endpoints by their path; any other path is not worth a name.
    let route = || match endpoint {
        Endpoint::Mcp(_) | Endpoint::NotFound => gateway.route_label(endpoint),
        _ => header.uri.path(),
    };
    let span = tracing::info_span!(
        target: SPANS,
        "request",
        otel.name = %format_args!("{} {}", header.method, route()),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %header.method,
        url.path = header.uri.path(),
        http.route = route(),
        http.response.status_code = Empty,
        mcp.method.name = Empty,
        gen_ai.tool.name = Empty,
        mcp.session.id = Empty,
        enduser.id = Empty,
        error.type = Empty,
    );
    crate::telemetry::trace::continue_from(&span, &header.headers, trusted);
    span
}

/// The admission of a request to a route (the token, the origin, the session).
pub(super) fn admission() -> Span {
    tracing::info_span!(target: SPANS, "admission", error.type = Empty)
}

/// The body read before forwarding, and what the route's policy decided of it.
pub(super) fn inspection() -> Span {
    tracing::info_span!(target: SPANS, "inspection", error.type = Empty)
}

/// The call to the route's backend, within the request's span.
pub(super) fn backend(parent: &Span, route: &Route) -> Span {
    tracing::info_span!(
        target: SPANS,
        parent: parent,
        "backend",
        otel.name = %format_args!("backend {}", route.path),
        otel.kind = "client",
        server.address = %route.backend.host,
        server.port = route.backend.port,
        http.response.status_code = Empty,
    )
}

/// What is known of a request once it is over.
pub(super) struct Outcome<'a> {
    pub status: u16,
    pub failed: bool,
    pub mcp_method: Option<&'a str>,
    pub tool: Option<&'a str>,
    pub session: Option<&'a str>,
    pub user: Option<&'a str>,
}

/// Records a request's outcome on its span.
pub(super) fn finish(span: &Span, outcome: &Outcome<'_>) {
    if span.is_disabled() {
        return;
    }
    span.record("http.response.status_code", outcome.status);
    if let Some(method) = outcome.mcp_method {
        span.record("mcp.method.name", method);
    }
    if let Some(tool) = outcome.tool {
        span.record("gen_ai.tool.name", tool);
    }
    if let Some(session) = outcome.session {
        span.record(
            "mcp.session.id",
            crate::telemetry::trace::session_hash(session),
        );
    }
    if let Some(user) = outcome.user {
        span.record("enduser.id", user);
    }
    if outcome.failed || outcome.status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}
