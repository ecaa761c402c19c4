//! The MCP messages of a request, read before it is forwarded when something must be decided on
//! them: a POST to a route with a policy (who may use which tool, resource and prompt), or one that
//! carries the 2026-07-28 `Mcp-Method` / `Mcp-Name` headers, which must say what its body says.
//! Policy is decided on the body, never on a header alone.
//!
//! The body is read whole (Pingora keeps a copy and forwards it unchanged), at most 64 KiB: that
//! is the copy's limit. A larger body on a route with a policy is refused; on a route without one
//! it goes on unread, as before, and the backend checks its headers itself. On a route with a
//! policy only a POST may carry a body, and a GET stream's lists are filtered too.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use pingora::proxy::Session;
use serde_json::{Value, json};

use super::ctx::{AuditEntry, RequestCtx, Ruling};
use super::observe::count_decision;
use super::refusal::Refusal;
use super::state::Gateway;
use crate::config::{Policy, Route};
use crate::mcp::headers;
use crate::mcp::list_filter::ListFilter;
use crate::mcp::message::{self, Messages, Unreadable};
use crate::mcp::peek::McpPeek;
use crate::mcp::{METHOD as MCP_METHOD, NAME as MCP_NAME};
use crate::policy::{self, Caller, Decision};
use crate::telemetry::metrics::mcp_method_label;

/// The most of a body read before it is forwarded: Pingora's copy for resending holds no more.
pub(super) const MAX_INSPECTED: usize = 64 * 1024;

/// Reads and decides on the request's messages when it must; `Ok(None)` lets it go on.
pub(super) async fn inspect(
    gateway: &Gateway,
    session: &mut Session,
    route: &Route,
    ctx: &mut RequestCtx,
) -> pingora::Result<Option<Refusal>> {
    let header = session.req_header();
    // What the headers name, until a body read whole says better.
    ctx.message.peek = McpPeek::from_headers(&header.headers);
    let mcp_headers =
        header.headers.contains_key(&MCP_METHOD) || header.headers.contains_key(&MCP_NAME);
    let policy = route.policy.as_ref();
    let deadline = ctx.started + gateway.config.server.body_timeout;
    if header.method != http::Method::POST {
        // However it is framed (a length, chunks, HTTP/2 frames), a body with anything in it.
        if policy.is_some() && !session.is_body_empty() {
            match read_body(session, 0, deadline).await? {
                Ok(_) => {}
                Err(Refusal::TooLarge) => return Ok(Some(Refusal::BodyNotPosted)),
                Err(refusal) => return Ok(Some(refusal)),
            }
        }
        let header = session.req_header();
        if policy.is_some() && header.method == http::Method::GET {
            // A resumed stream may replay the answer to a list.
            ctx.message.list_filter = Some(ListFilter::new(Vec::new()));
        }
        return Ok(None);
    }
    if !header.headers.contains_key(&MCP_METHOD) && headers::requires_method_header(&header.headers)
    {
        return Ok(Some(Refusal::HeaderMismatch {
            id: Value::Null,
            message:
                "Header mismatch: Mcp-Method header is required from protocol version 2026-07-28"
                    .into(),
        }));
    }
    if policy.is_none() && !mcp_headers {
        return Ok(None);
    }
    let limit = MAX_INSPECTED
        .min(usize::try_from(super::body_limit::max(&gateway.config)).unwrap_or(usize::MAX));
    let declared = ctx.message.declared_length;
    if declared.is_some_and(|len| len > limit as u64) || (declared.is_none() && policy.is_none()) {
        // Without a policy, headers are checked only on a body that can be held.
        return Ok(policy.map(|_| Refusal::TooLarge));
    }
    let body = match read_body(session, limit, deadline).await? {
        Ok(body) => body,
        Err(refusal) => return Ok(Some(refusal)),
    };
    if policy.is_some() {
        ctx.message.inspected_body = Some(body.clone());
    }
    ctx.message.body_read = true;
    ctx.message.body_bytes = body.len() as u64;
    let auditing = gateway.access_log.audit.is_some();
    let messages = match message::parse(&body) {
        Ok(messages) => messages,
        // Without a policy only the headers were to be checked, and the backend reads the rest.
        Err(Unreadable::NotJsonRpc) if policy.is_none() => return Ok(None),
        Err(unreadable) => return Ok(Some(refuse_unreadable(unreadable, ctx, auditing))),
    };
    ctx.message.peek = McpPeek::known(&messages);
    continue_trace(session, ctx, &messages);
    if mcp_headers && let Some(mismatch) = header_mismatch(session, &messages) {
        return Ok(Some(mismatch));
    }
    match (policy, ctx.caller.clone()) {
        (Some(policy), Some(claims)) => Ok(rule_on_messages(
            policy,
            route,
            &Caller::of(&claims),
            &messages,
            ctx,
            auditing,
        )),
        _ => Ok(None),
    }
}

/// The refusal of a body that cannot be read one way only, audited as such when audits are kept.
fn refuse_unreadable(unreadable: Unreadable, ctx: &mut RequestCtx, auditing: bool) -> Refusal {
    let (refusal, why) = match unreadable {
        Unreadable::NotJsonRpc => (Refusal::Unreadable, "unreadable"),
        Unreadable::Ambiguous(why) => (Refusal::Ambiguous(why.0), "ambiguous"),
    };
    if auditing {
        ctx.telemetry.audit.push(AuditEntry {
            method: "other",
            kind: None,
            name: String::new(),
            outcome: "deny",
            ruling: Ruling::Refused(why),
        });
    }
    refusal
}

/// Links the request's span to a trace its message names, when its headers named none (and
/// traces are sent at all).
fn continue_trace(session: &Session, ctx: &RequestCtx, messages: &Messages) {
    if !ctx.telemetry.span.is_disabled()
        && !session
            .req_header()
            .headers
            .contains_key(crate::telemetry::trace::TRACEPARENT)
        && let Some(traceparent) = messages
            .messages
            .iter()
            .find_map(|m| m.traceparent.as_deref())
    {
        crate::telemetry::trace::link_to(&ctx.telemetry.span, traceparent);
    }
}

/// The refusal of a body whose `Mcp-Method` or `Mcp-Name` header says other than it does.
fn header_mismatch(session: &Session, messages: &Messages) -> Option<Refusal> {
    let mismatch = headers::check_headers(&session.req_header().headers, messages).err()?;
    let id = match messages.messages.as_slice() {
        [one] if !messages.batch => one.id.clone().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    Some(Refusal::HeaderMismatch {
        id,
        message: mismatch.0,
    })
}

/// Applies the route's policy to every message; a refusal if any may not go, else the lists to
/// filter in the answer.
fn rule_on_messages(
    policy: &Policy,
    route: &Route,
    caller: &Caller,
    messages: &Messages,
    ctx: &mut RequestCtx,
    auditing: bool,
) -> Option<Refusal> {
    let mut denied = false;
    let mut step_up: Vec<&str> = Vec::new();
    let mut decisions = Vec::with_capacity(messages.messages.len());
    for message in &messages.messages {
        let method = message.method.as_deref().unwrap_or_default();
        let Some(target) = message.target() else {
            decisions.push(None);
            continue;
        };
        let decision = policy::decide(policy, caller, method, target);
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
            ctx.telemetry.audit.push(AuditEntry {
                method: mcp_method_label(method),
                kind: Some(target.kind),
                name: target.name.to_owned(),
                outcome: decision.outcome(),
                ruling: Ruling::Policy(decision.reason()),
            });
        }
        decisions.push(Some(decision));
    }
    if denied {
        return Some(Refusal::Denied(denial(messages, &decisions)));
    }
    if !step_up.is_empty() {
        return Some(Refusal::StepUp {
            scope: step_up_scope(route, caller, step_up),
        });
    }
    filter_lists(&route.path, messages, ctx, auditing);
    None
}

/// The scopes a call that needs `step_up` asks for: the route's, the token's, and the rules' (clients
/// of 2025-11-25 ask for exactly what the challenge names).
fn step_up_scope(route: &Route, caller: &Caller, step_up: Vec<&str>) -> String {
    let mut scopes: Vec<&str> = route.required_scopes.iter().map(String::as_str).collect();
    for scope in caller.scopes().chain(step_up) {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes.join(" ")
}

/// Has the answer to any list asked filtered, even to one asked without an id (a notification,
/// which a backend should not answer, but might).
fn filter_lists(route: &str, messages: &Messages, ctx: &mut RequestCtx, auditing: bool) {
    let mut lists = Vec::new();
    let mut asks_lists = false;
    for message in messages.messages.iter().filter(|m| m.list().is_some()) {
        asks_lists = true;
        count_decision(route, None, "", "allow");
        if auditing {
            ctx.telemetry.audit.push(AuditEntry {
                method: mcp_method_label(message.method.as_deref().unwrap_or_default()),
                kind: None,
                name: String::new(),
                outcome: "allow",
                ruling: Ruling::Filtered,
            });
        }
        lists.extend(message.id.clone());
    }
    if asks_lists {
        ctx.message.list_filter = Some(ListFilter::new(lists));
    }
}

/// Reads the whole body into Pingora's copy (and ours), within `limit` and by `deadline`.
async fn read_body(
    session: &mut Session,
    limit: usize,
    deadline: Instant,
) -> pingora::Result<Result<Bytes, Refusal>> {
    // A client waiting for leave to send its body gets it here: the body is read before the
    // backend is asked (and `Expect` is not forwarded).
    let expects = session
        .req_header()
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects {
        session.write_continue_response().await?;
    }
    session.enable_retry_buffering();
    // Over HTTP/1 Pingora bounds each read (by the body timeout) and the usual body comes whole in
    // the first, which then needs no timer of its own; the rest, and HTTP/2's reads, which Pingora
    // does not bound, must come by the deadline.
    let mut first = None;
    if !session.is_http2() {
        first = match session.read_request_body().await {
            Ok(first) => first,
            // Pingora's own bound on the read: the body did not come in time.
            Err(e) if e.etype() == &pingora::ErrorType::ReadTimedout => {
                return Ok(Err(Refusal::Slow));
            }
            Err(e) => return Err(e.into_down()),
        };
        if session.is_body_done() {
            return Ok(match first {
                Some(body) if body.len() > limit => Err(Refusal::TooLarge),
                body => Ok(body.unwrap_or_default()),
            });
        }
    }
    let read = async {
        let mut body: Option<Bytes> = None;
        let mut joined = BytesMut::new();
        while let Some(chunk) = match first.take() {
            Some(chunk) => Some(chunk),
            None => session
                .read_request_body()
                .await
                .map_err(|e| e.into_down())?,
        } {
            // The usual body comes in one chunk, kept as it came; more are put together.
            match body.take() {
                None if joined.is_empty() => body = Some(chunk),
                first => {
                    joined.extend_from_slice(&first.unwrap_or_default());
                    joined.extend_from_slice(&chunk);
                }
            }
            if body.as_ref().map_or(joined.len(), Bytes::len) > limit {
                return Ok(Err(Refusal::TooLarge));
            }
        }
        Ok(Ok(body.unwrap_or_else(|| joined.freeze())))
    };
    let left = deadline.saturating_duration_since(Instant::now());
    match pingora_timeout::fast_timeout::fast_timeout(left, read).await {
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
