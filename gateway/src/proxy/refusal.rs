//! Why a request to a route is answered here instead of forwarded: one [`Refusal`] for the data
//! plane, whether admission refused it before its body came ([`super::admission`]) or the reading of
//! its body did ([`super::inspect`]). It is counted (`mcp_gateway_auth_failures_total`, by reason)
//! and answered in one place.

use bytes::Bytes;
use pingora::proxy::Session;
use serde_json::{Value, json};

use super::bearer::{self, BearerError};
use super::respond::{self, Headers, json_error};
use super::{body_limit, cors};
use crate::config::Route;
use crate::telemetry::metrics::METRICS;

pub(super) enum Refusal {
    /// 431: the header section is larger than `limits.max_request_header_bytes`.
    HeadersTooLarge,
    /// 403: a browser `Origin` that is not allowed.
    Origin,
    /// A CORS preflight, answered here: what the origin may do, or `None` for a header MCP does not
    /// use (403).
    Preflight(Option<Headers>),
    /// 413: a declared body larger than `limits.max_request_body_bytes`.
    BodyTooLarge { cors: Headers },
    /// 400, 401 or 403 with a `WWW-Authenticate` challenge.
    Bearer { error: BearerError, cors: Headers },
    /// 404: a session another user opened, or that the gateway never saw opened.
    ForeignSession { cors: Headers },
    /// 400: `Mcp-Session-Id` sent twice, or with a character other than visible ASCII, which a
    /// session id may not hold: the backend could read another copy than the one checked here.
    BadSessionId { cors: Headers },
    /// 400: an `Upgrade` to another protocol, which would turn the request into a tunnel that no
    /// later request's admission sees.
    Upgrade,

    // Refused once its body is read before forwarding.
    /// 413: a body too large to read before forwarding, on a route with a policy.
    TooLarge,
    /// 408: the body did not arrive in time.
    Slow,
    /// 400: a body on a route with a policy, sent with another method than POST.
    BodyNotPosted,
    /// 400, JSON-RPC -32700: a body that is not JSON-RPC, on a route with a policy.
    Unreadable,
    /// 400, JSON-RPC -32600: a body another parser would read as another message (why).
    Ambiguous(String),
    /// 400, JSON-RPC -32020: `Mcp-Method` or `Mcp-Name` says other than the body.
    HeaderMismatch { id: Value, message: String },
    /// 403 `insufficient_scope`: a scope would allow what was asked.
    StepUp { scope: String },
    /// 200 with a JSON-RPC error for each request (202 when there is none): what was asked is not
    /// allowed.
    Denied(Bytes),

    // Refused for want of the caller's token at the backend (`credentials = "oauth"`).
    /// 502: the backend's authorization server cannot refresh the caller's token now.
    ConnectionUnavailable { cors: Headers },
    /// 502: the identity provider cannot exchange a token for the backend now.
    ExchangeUnavailable { cors: Headers },
}

impl Refusal {
    /// The `reason` label of `mcp_gateway_auth_failures_total` and of the span's `error.type`, for
    /// the refusals counted there (a malformed request, a preflight and a body too large to admit
    /// are not).
    pub(super) fn reason(&self) -> Option<&'static str> {
        match self {
            Refusal::Origin => Some("origin"),
            Refusal::Bearer { error, .. } => Some(error.reason()),
            Refusal::ForeignSession { .. } => Some("foreign_session"),
            Refusal::BadSessionId { .. } => Some("bad_session_id"),
            Refusal::HeadersTooLarge
            | Refusal::Preflight(_)
            | Refusal::BodyTooLarge { .. }
            | Refusal::Upgrade
            | Refusal::ConnectionUnavailable { .. }
            | Refusal::ExchangeUnavailable { .. } => None,
            Refusal::TooLarge => Some("body_too_large"),
            Refusal::Slow => Some("body_timeout"),
            Refusal::BodyNotPosted => Some("body_not_posted"),
            Refusal::Unreadable => Some("unreadable"),
            Refusal::Ambiguous(_) => Some("ambiguous"),
            Refusal::HeaderMismatch { .. } => Some("header_mismatch"),
            Refusal::StepUp { .. } => Some("insufficient_scope"),
            Refusal::Denied(_) => Some("denied"),
        }
    }

    /// Counts the refusal and writes its answer, with the CORS headers of `cors_origin` where the
    /// refusal has none of its own. Long because it is one arm per refusal: every answer the data
    /// plane refuses with reads here side by side, which is the point of one refusal type.
    pub(super) async fn answer(
        self,
        session: &mut Session,
        route: &Route,
        cors_origin: Option<&str>,
    ) -> pingora::Result<()> {
        if let Some(reason) = self.reason() {
            METRICS
                .auth_failures
                .with_label_values(&[route.path.as_str(), reason])
                .inc();
        }
        let cors = || cors::route_headers(cors_origin);
        let rpc_error = |id: Value, code: i64, message: &str| json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
        let (status, body, headers) = match self {
            Refusal::HeadersTooLarge => {
                let body = json_error(
                    "request_header_fields_too_large",
                    "The request headers are too large",
                );
                return respond::json(session, 431, &body, &[]).await;
            }
            Refusal::Origin => {
                let body = json_error("forbidden", "This Origin is not allowed");
                return respond::json(session, 403, &body, &[]).await;
            }
            Refusal::Preflight(Some(headers)) => {
                return respond::local(session, 204, Bytes::new(), &headers).await;
            }
            Refusal::Preflight(None) => {
                let body = json_error("forbidden", "A requested header is not allowed");
                return respond::json(session, 403, &body, &[]).await;
            }
            Refusal::BodyTooLarge { cors } => return body_limit::refuse(session, &cors).await,
            Refusal::Bearer { error, mut cors } => {
                if let Some(challenge) = error.challenge(route) {
                    cors.push(("www-authenticate", challenge));
                }
                return respond::json(session, error.status(), &error.body(), &cors).await;
            }
            Refusal::ConnectionUnavailable { cors } => {
                let body = json_error(
                    "temporarily_unavailable",
                    "The MCP server's sign-in cannot be reached to renew your access; try again shortly",
                );
                return respond::json(session, 502, &body, &cors).await;
            }
            Refusal::ExchangeUnavailable { cors } => {
                let body = json_error(
                    "temporarily_unavailable",
                    "The identity provider could not give a token for this MCP server; try again shortly",
                );
                return respond::json(session, 502, &body, &cors).await;
            }
            Refusal::BadSessionId { cors } => {
                let body = json_error(
                    "invalid_request",
                    "Send one Mcp-Session-Id, of visible ASCII characters",
                );
                return respond::json(session, 400, &body, &cors).await;
            }
            Refusal::Upgrade => {
                let body = json_error("invalid_request", "Upgrades are not served here");
                return respond::json(session, 400, &body, &[]).await;
            }
            Refusal::ForeignSession { cors } => {
                let body = rpc_error(Value::Null, -32001, "Session not found");
                return respond::json(session, 404, &body, &cors).await;
            }
            Refusal::TooLarge => (
                413,
                rpc_error(
                    Value::Null,
                    -32600,
                    "The request body is larger than this route reads before forwarding",
                ),
                cors(),
            ),
            Refusal::Slow => {
                let mut headers = cors();
                headers.push(("connection", "close".into()));
                (
                    408,
                    rpc_error(
                        Value::Null,
                        -32600,
                        "The request body did not arrive in time",
                    ),
                    headers,
                )
            }
            Refusal::BodyNotPosted => (
                400,
                rpc_error(
                    Value::Null,
                    -32600,
                    "Only a POST may carry a body on this route",
                ),
                cors(),
            ),
            Refusal::Unreadable => (
                400,
                rpc_error(
                    Value::Null,
                    -32700,
                    "Parse error: the body is not JSON-RPC that can be read unambiguously",
                ),
                cors(),
            ),
            Refusal::Ambiguous(why) => (
                400,
                rpc_error(
                    Value::Null,
                    -32600,
                    &format!("Invalid Request: the message can be read more than one way ({why})"),
                ),
                cors(),
            ),
            Refusal::HeaderMismatch { id, message } => {
                (400, rpc_error(id, -32020, &message), cors())
            }
            Refusal::StepUp { scope } => {
                let mut headers = cors();
                headers.push((
                    "www-authenticate",
                    bearer::insufficient_scope_challenge(route, &scope),
                ));
                (
                    403,
                    respond::json_error(
                        "insufficient_scope",
                        "The access token lacks a scope this call requires",
                    ),
                    headers,
                )
            }
            // Only notifications were refused: nothing to answer them with.
            Refusal::Denied(body) if body.is_empty() => {
                return respond::local(session, 202, body, &cors()).await;
            }
            Refusal::Denied(body) => return respond::local(session, 200, body, &cors()).await,
        };
        respond::json(session, status, &body, &headers).await
    }
}
