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
    /// The request's span, and the backend call's within it ([`crate::telemetry::trace`]; disabled unless
    /// traces are sent).
    pub span: tracing::Span,
    pub upstream_span: tracing::Span,
    pub started: Instant,
    /// Whom the request comes from, by address ([`super::client_address`]).
    pub client: Option<IpAddr>,
    /// A v4 UUID, kept as the header value the backend is sent.
    pub request_id: http::HeaderValue,
    pub endpoint: Endpoint,
    /// Known once the token is checked, so that a later failure is logged with whom it failed for.
    pub caller: Option<Arc<AccessClaims>>,
    pub credentials: Option<Arc<BackendCredentials>>,
    /// The allowed browser origin to answer with CORS headers.
    pub cors_origin: Option<String>,
    pub peek: McpPeek,
    /// The length the body declares, read once at admission ([`super::body_limit`]).
    pub declared_length: Option<u64>,
    pub body_bytes: u64,
    /// The body was read whole before forwarding ([`super::inspect`]): counted and peeked at.
    pub body_read: bool,
    /// What the route's policy decided of each message, for the audit trail.
    pub audit: Vec<AuditEntry>,
    /// The list answers to cut down to what the caller may use.
    pub list_filter: Option<ListFilter>,
    pub backend_started: Option<Instant>,
    /// The response is an SSE stream, counted among the route's active streams.
    pub stream_open: bool,
    /// A `DELETE` of this session: forget its binding once the backend agrees.
    pub ending_session: Option<String>,
    /// A GET of a session: held until the backend has answered it, so that the session's other
    /// requests do not overtake it (see [`super::sessions`]).
    pub opening_stream: Option<StreamOpening>,
    /// The session's GET stream that this request must not overtake, and the session.
    pub after_stream: Option<(PendingStream, String)>,
    /// The request's place among those its client address has in flight.
    pub in_flight: Option<Held<IpAddr>>,
    /// A watch over a body still to come, or a stream to end when its access does.
    pub watch: Option<WatchHandle>,
    /// The descriptor of the backend connection, while the request holds it.
    pub backend_fd: Option<std::os::fd::RawFd>,
    /// The body read before forwarding, on a route with a policy: what a stream carries.
    pub inspected_body: Option<bytes::Bytes>,
}

impl RequestCtx {
    pub(crate) fn new(gateway: Arc<Gateway>) -> Self {
        Self {
            gateway: Some(gateway),
            span: tracing::Span::none(),
            upstream_span: tracing::Span::none(),
            started: Instant::now(),
            client: None,
            request_id: new_request_id(),
            endpoint: Endpoint::NotFound,
            caller: None,
            credentials: None,
            cors_origin: None,
            peek: McpPeek::default(),
            declared_length: None,
            body_bytes: 0,
            body_read: false,
            audit: Vec::new(),
            list_filter: None,
            backend_started: None,
            stream_open: false,
            ending_session: None,
            opening_stream: None,
            after_stream: None,
            in_flight: None,
            watch: None,
            backend_fd: None,
            inspected_body: None,
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
        let fd = self.backend_fd;
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
