//! The MCP messages of a request, read before it is forwarded when something must be decided on
//! them: a route with a policy (who may use which tool, resource and prompt), or a request that
//! carries the 2026-07-28 `Mcp-Method` / `Mcp-Name` headers, which must say what its body says.
//! Policy is decided on the body, never on a header alone.
//!
//! The body is read whole (Pingora keeps a copy and forwards it unchanged), at most 64 KiB: that
//! is the copy's limit. A larger body on a route with a policy is refused; on a route without one
//! it goes on unread, as before, and the backend checks its headers itself.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora::proxy::Session;
use serde_json::{Value, json};

use super::ctx::{AuditEntry, RequestCtx};
use super::list_filter::ListFilter;
use super::mcp_message::{self, MCP_METHOD, MCP_NAME, Messages};
use super::mcp_peek::McpPeek;
use super::observe::count_decision;
use super::respond;
use crate::config::Route;
use crate::metrics::mcp_method_label;
use crate::policy::{self, Caller, Decision};

/// The most of a body read before it is forwarded: Pingora's copy for resending holds no more.
pub const MAX_INSPECTED: usize = 64 * 1024;

/// The longest a client may take to send a body that is read before forwarding.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request is answered here instead of forwarded.
pub enum Refusal {
    /// 413: a body too large to read before forwarding, on a route with a policy.
    TooLarge,
    /// 408: the body did not arrive in time.
    Slow,
    /// 400, JSON-RPC -32700: a body the policy cannot read unambiguously.
    Unreadable,
    /// 400, JSON-RPC -32020: `Mcp-Method` or `Mcp-Name` says other than the body.
    HeaderMismatch { id: Value, message: String },
    /// 403 `insufficient_scope`: a scope would allow what was asked.
    StepUp { scope: String },
    /// 200 with a JSON-RPC error for each request: what was asked is not allowed.
    Denied(Bytes),
}

/// Whether the request carries `Mcp-Method` or `Mcp-Name`.
fn has_mcp_headers(session: &Session) -> bool {
    let headers = &session.req_header().headers;
    headers.contains_key(&MCP_METHOD) || headers.contains_key(&MCP_NAME)
}

/// Reads and decides on the request's messages when it must; `Ok(None)` lets it go on. With
/// `auditing`, each decision is kept for the audit trail.
pub async fn inspect(
    session: &mut Session,
    route: &Route,
    ctx: &mut RequestCtx,
    auditing: bool,
) -> pingora::Result<Option<Refusal>> {
    let mcp_headers = has_mcp_headers(session);
    let must_read = session.req_header().method == http::Method::POST
        && (route.policy.is_some() || mcp_headers);
    if !must_read {
        ctx.peek = McpPeek::from_headers(&session.req_header().headers);
        return Ok(None);
    }
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let policy = route.policy.as_ref();
    if declared.is_some_and(|len| len > MAX_INSPECTED) || (declared.is_none() && policy.is_none()) {
        // Without a policy, headers are checked only on a body that can be held.
        if policy.is_some() {
            return Ok(Some(Refusal::TooLarge));
        }
        ctx.peek = McpPeek::from_headers(&session.req_header().headers);
        return Ok(None);
    }
    let body = match read_body(session).await? {
        Ok(body) => body,
        Err(refusal) => return Ok(Some(refusal)),
    };
    ctx.body_read = true;
    ctx.body_bytes = body.len() as u64;
    let Some(messages) = mcp_message::parse(&body) else {
        if policy.is_some() {
            return Ok(Some(Refusal::Unreadable));
        }
        return Ok(None);
    };
    ctx.peek = McpPeek::known(&messages);
    if mcp_headers
        && let Err(mismatch) = mcp_message::check_headers(&session.req_header().headers, &messages)
    {
        let id = match messages.messages.as_slice() {
            [one] if !messages.batch => one.id.clone().unwrap_or(Value::Null),
            _ => Value::Null,
        };
        return Ok(Some(Refusal::HeaderMismatch {
            id,
            message: mismatch.0,
        }));
    }
    let (Some(policy), Some(claims)) = (policy, ctx.caller.clone()) else {
        return Ok(None);
    };
    let caller = Caller::of(&claims);
    let mut denied = false;
    let mut step_up: Vec<&str> = Vec::new();
    let mut lists = Vec::new();
    let mut decisions = Vec::with_capacity(messages.messages.len());
    for message in &messages.messages {
        let method = message.method.as_deref().unwrap_or_default();
        if let (Some(kind), Some(id)) = (message.list(), &message.id) {
            lists.push((id.clone(), kind));
        }
        let Some(target) = message.target() else {
            decisions.push(None);
            continue;
        };
        let decision = policy::decide(policy, &caller, method, target);
        match &decision {
            Decision::Allow(_) => {}
            Decision::Deny(_) => denied = true,
            Decision::StepUp { scopes, .. } => {
                for scope in *scopes {
                    if !step_up.contains(&scope.as_str()) {
                        step_up.push(scope);
                    }
                }
            }
        }
        count_decision(
            &route.path,
            Some(target.kind),
            target.name,
            decision.outcome(),
        );
        if auditing {
            ctx.audit.push(AuditEntry {
                method: mcp_method_label(method),
                kind: Some(target.kind),
                name: target.name.to_owned(),
                outcome: decision.outcome(),
                rule: Some(decision.reason()),
                hidden: None,
            });
        }
        decisions.push(Some(decision));
    }
    if denied {
        return Ok(Some(Refusal::Denied(denial(&messages, &decisions))));
    }
    if !step_up.is_empty() {
        // The scopes the call needs: the route's, the token's, and the rule's (clients of
        // 2025-11-25 ask for exactly what the challenge names).
        let mut scopes: Vec<&str> = route.required_scopes.iter().map(String::as_str).collect();
        for scope in caller.scopes().chain(step_up) {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        return Ok(Some(Refusal::StepUp {
            scope: scopes.join(" "),
        }));
    }
    for message in &messages.messages {
        if let (Some(kind), Some(method)) = (message.list(), message.method.as_deref()) {
            count_decision(&route.path, None, "", "allow");
            if !auditing {
                continue;
            }
            ctx.audit.push(AuditEntry {
                method: mcp_method_label(method),
                kind: Some(kind),
                name: String::new(),
                outcome: "allow",
                rule: None,
                hidden: Some(0),
            });
        }
    }
    if !lists.is_empty() {
        ctx.list_filter = Some(ListFilter::new(lists));
    }
    Ok(None)
}

/// Reads the whole body into Pingora's copy (and ours), within the size and time allowed.
async fn read_body(session: &mut Session) -> pingora::Result<Result<Bytes, Refusal>> {
    session.enable_retry_buffering();
    // Most bodies come whole in the first read, which Pingora's own read timeout bounds, and are
    // kept as they came.
    let Some(first) = session.read_request_body().await? else {
        return Ok(Ok(Bytes::new()));
    };
    if first.len() > MAX_INSPECTED {
        return Ok(Err(Refusal::TooLarge));
    }
    if session.is_body_done() {
        return Ok(Ok(first));
    }
    // The rest must come within the time allowed, however it trickles in.
    let rest = async {
        let mut joined = BytesMut::from(&first[..]);
        while let Some(chunk) = session.read_request_body().await? {
            joined.extend_from_slice(&chunk);
            if joined.len() > MAX_INSPECTED {
                return Ok(Err(Refusal::TooLarge));
            }
        }
        Ok(Ok(joined.freeze()))
    };
    match pingora_timeout::fast_timeout::fast_timeout(READ_TIMEOUT, rest).await {
        Ok(result) => result,
        Err(_) => Ok(Err(Refusal::Slow)),
    }
}

/// The JSON-RPC answer to a refused body: each request's error, one object or a batch's array.
fn denial(messages: &Messages, decisions: &[Option<Decision>]) -> Bytes {
    let errors: Vec<Value> = messages
        .messages
        .iter()
        .zip(decisions)
        .filter_map(|(message, decision)| {
            let id = message.id.clone()?;
            let text = match (message.target(), decision) {
                (Some(target), Some(decision)) if !decision.allows() => format!(
                    "Not allowed: the {} {:?} may not be used by this caller",
                    target.kind.as_str(),
                    target.name
                ),
                _ => "Not processed: another message of the batch was not allowed".into(),
            };
            Some(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": text}}))
        })
        .collect();
    let body = match (messages.batch, errors.as_slice()) {
        (_, []) => return Bytes::new(),
        (false, [one]) => one.clone(),
        _ => Value::Array(errors),
    };
    Bytes::from(serde_json::to_vec(&body).expect("JSON"))
}

impl Refusal {
    /// The `reason` label of the refusal's metric and the access line.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::TooLarge => "body_too_large",
            Refusal::Slow => "body_timeout",
            Refusal::Unreadable => "unreadable",
            Refusal::HeaderMismatch { .. } => "header_mismatch",
            Refusal::StepUp { .. } => "insufficient_scope",
            Refusal::Denied(_) => "denied",
        }
    }

    /// Writes the answer.
    pub async fn answer(
        self,
        session: &mut Session,
        route: &Route,
        ctx: &RequestCtx,
    ) -> pingora::Result<()> {
        let mut headers = super::cors::route_headers(ctx.cors_origin.as_deref());
        let rpc_error = |id: Value, code: i64, message: &str| json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
        match self {
            Refusal::TooLarge => {
                let body = rpc_error(
                    Value::Null,
                    -32600,
                    "The request body is larger than this route reads (64 KiB)",
                );
                respond::json(session, 413, &body, &headers).await
            }
            Refusal::Slow => {
                let body = rpc_error(
                    Value::Null,
                    -32600,
                    "The request body did not arrive in time",
                );
                headers.push(("connection", "close".into()));
                respond::json(session, 408, &body, &headers).await
            }
            Refusal::Unreadable => {
                let body = rpc_error(
                    Value::Null,
                    -32700,
                    "Parse error: the body is not JSON-RPC that can be read unambiguously",
                );
                respond::json(session, 400, &body, &headers).await
            }
            Refusal::HeaderMismatch { id, message } => {
                let body = rpc_error(id, -32020, &message);
                respond::json(session, 400, &body, &headers).await
            }
            Refusal::StepUp { scope } => {
                headers.push((
                    "www-authenticate",
                    super::bearer::insufficient_scope_challenge(route, &scope),
                ));
                let body = respond::json_error(
                    "insufficient_scope",
                    "The access token lacks a scope this call requires",
                );
                respond::json(session, 403, &body, &headers).await
            }
            // Only notifications were refused: nothing to answer them with.
            Refusal::Denied(body) if body.is_empty() => {
                respond::local(session, 202, body, &headers).await
            }
            Refusal::Denied(body) => {
                headers.push(("content-type", "application/json".into()));
                headers.push(("cache-control", "no-store".into()));
                respond::exact(session, 200, body, &headers).await
            }
        }
    }
}
