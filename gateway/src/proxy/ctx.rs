//! Per-request state, carried from phase to phase.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::concurrency::Held;
use super::router::Endpoint;
use super::sessions::{PendingStream, StreamOpening};
use super::state::Gateway;
use super::watchdog::{WatchHandle, Watchdog, Watched};
use crate::config::Kind;
use crate::mcp::list_filter::ListFilter;
use crate::mcp::peek::McpPeek;
use crate::policy::Reason;
use crate::tokens::access::AccessClaims;
use crate::tokens::backend::BackendCredentials;

pub(crate) struct RequestCtx {
    /// The gateway of the config in force when the request arrived, which serves it to its end
    /// (out of here while one of its phases runs: [`super::live`]).
    pub gateway: Option<Arc<Gateway>>,
    pub started: Instant,
    pub endpoint: Endpoint,
    /// Whom the request comes from, by address ([`super::client_address`]).
    pub client: Option<IpAddr>,
    /// The request's place among those its client address has in flight.
    pub in_flight: Option<Held<IpAddr>>,
    /// Known once the token is checked, so that a later failure is logged with whom it failed for.
    pub caller: Option<Arc<AccessClaims>>,
    /// The allowed browser origin to answer with CORS headers.
    pub cors_origin: Option<String>,
    /// A watch over a body still to come, or a stream to end when its access does.
    pub watch: Option<WatchHandle>,
    pub session: SessionState,
    pub message: MessageState,
    pub backend: BackendCall,
    pub telemetry: RequestTelemetry,
}

/// Where the request stands in its MCP session.
#[derive(Default)]
pub(crate) struct SessionState {
    /// A `DELETE` of this session: forget its binding once the backend agrees.
    pub ending: Option<String>,
    /// A GET of a session: held until the backend has answered it, so that the session's other
    /// requests do not overtake it (see [`super::sessions`]).
    pub opening_stream: Option<StreamOpening>,
    /// The session's GET stream that this request must not overtake, and the session.
    pub after_stream: Option<(PendingStream, String)>,
}

/// What is known of the request's body and its MCP messages.
#[derive(Default)]
pub(crate) struct MessageState {
    pub peek: McpPeek,
    /// The length the body declares, read once at admission ([`super::body_limit`]).
    pub declared_length: Option<u64>,
    pub body_bytes: u64,
    /// The body was read whole before forwarding ([`super::inspect`]): counted and peeked at.
    pub body_read: bool,
    /// The body read before forwarding, on a route with a policy: what a stream carries.
    pub inspected_body: Option<bytes::Bytes>,
    /// The list answers to cut down to what the caller may use.
    pub list_filter: Option<ListFilter>,
}

/// The call to the backend: what it carries, when it began, what it answered.
#[derive(Default)]
pub(crate) struct BackendCall {
    pub credentials: Option<Arc<BackendCredentials>>,
    /// `Bearer <the caller's own token at the backend>`, on a route that connects users.
    pub connection_bearer: Option<http::HeaderValue>,
    /// What became of the backend refusing that token: the gateway sends a request again at most
    /// once, with the token renewed ([`super::response::retry_refused`]).
    pub refused: Refused,
    pub started: Option<Instant>,
    /// The response is an SSE stream, counted among the route's active streams.
    pub stream_open: bool,
    /// The descriptor of the backend connection, while the request holds it.
    pub fd: Option<std::os::fd::RawFd>,
}

/// Whether the backend refused the caller's own token at it, and what the gateway did.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Refused {
    #[default]
    No,
    /// Renewed: the request is to be sent again.
    Retrying,
    /// Sent again, or noted and not to be sent again: the next refusal goes to the client.
    Noted,
}

/// What the request leaves for its operators: its spans, its id, its audit entries.
pub(crate) struct RequestTelemetry {
    /// The request's span, and the backend call's within it ([`crate::telemetry::trace`];
    /// disabled unless traces are sent).
    pub span: tracing::Span,
    pub backend_span: tracing::Span,
    /// A v4 UUID, kept as the header value the backend is sent.
    pub request_id: http::HeaderValue,
    /// What the route's policy decided of each message, for the audit trail.
    pub audit: Vec<AuditEntry>,
}

impl RequestCtx {
    pub(crate) fn new(gateway: Arc<Gateway>) -> Self {
        Self {
            gateway: Some(gateway),
            started: Instant::now(),
            endpoint: Endpoint::NotFound,
            client: None,
            in_flight: None,
            caller: None,
            cors_origin: None,
            watch: None,
            session: SessionState::default(),
            message: MessageState::default(),
            backend: BackendCall::default(),
            telemetry: RequestTelemetry {
                span: tracing::Span::none(),
                backend_span: tracing::Span::none(),
                request_id: new_request_id(),
                audit: Vec::new(),
            },
        }
    }
}

impl RequestCtx {
    /// The request's watch ([`super::watchdog`]), made (with its body due by `body_deadline`) when
    /// it has none, and told of its backend connection when it has one.
    pub(crate) fn watched(
        &mut self,
        watchdog: &Arc<Watchdog>,
        body_deadline: Option<Instant>,
    ) -> &Watched {
        let fd = self.backend.fd;
        let watch = self.watch.get_or_insert_with(|| {
            let watch = watchdog.watch(body_deadline);
            if let Some(fd) = fd {
                watch.watched.connected(fd);
            }
            watch
        });
        &watch.watched
    }
}

/// One message a policy decided.
pub(crate) struct AuditEntry {
    /// One of the MCP methods a policy decides on (all known by name).
    pub method: &'static str,
    /// What it uses; `None` for a list.
    pub kind: Option<Kind>,
    /// The tool, resource or prompt ("" for a list).
    pub name: String,
    /// "allow", "deny" or "step_up".
    pub outcome: &'static str,
    /// The rule that decided, or why the message was not decided on.
    pub ruling: Ruling,
}

/// What an audit entry says decided.
#[derive(Clone, Copy)]
pub(crate) enum Ruling {
    /// A rule of the route's policy, or its default.
    Policy(Reason),
    /// A list, filtered in the answer.
    Filtered,
    /// A message refused unread: `ambiguous` (another parser would read another message) or
    /// `unreadable` (not JSON-RPC).
    Refused(&'static str),
}

/// A new request id: a v4 UUID written straight into its header value.
fn new_request_id() -> http::HeaderValue {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
    http::HeaderValue::from_str(text).expect("a UUID is a header value")
}
