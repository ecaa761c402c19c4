//! What every request leaves behind when it ends: its metrics, its access line, and the audit
//! lines of what a policy decided of its messages.

use std::cell::RefCell;

use pingora::Error;
use pingora::proxy::Session;
use pingora_prometheus::prometheus::IntCounter;

use super::ctx::{RequestCtx, Ruling};
use super::state::Gateway;
use crate::config::{Kind, Policy};
use crate::telemetry::access_log::AccessLine;
use crate::telemetry::audit::{AuditLine, AuditLog};
use crate::telemetry::metrics::{METRICS, mcp_method_label, method_label};

/// Counts the request in its route's metrics and writes its access line.
pub(super) fn record(
    gateway: &Gateway,
    session: &Session,
    error: Option<&Error>,
    ctx: &RequestCtx,
) {
    let route = gateway.route_label(ctx.endpoint);
    let written = session.response_written().map(|r| r.status);
    let status = written.map_or(0, |s| s.as_u16());
    let method = method_label(&session.req_header().method);
    let elapsed = ctx.started.elapsed();
    count(
        gateway,
        ctx,
        [route, method, written.as_ref().map_or("0", |s| s.as_str())],
        elapsed,
    );
    let caller = ctx.caller.as_deref();
    let (user, client_id) = caller.map_or(("-", "-"), |c| (c.sub.as_str(), c.client_id.as_str()));
    if let Some(audit) = &gateway.access_log.audit {
        let policy = gateway.route(ctx.endpoint).and_then(|r| r.policy.as_ref());
        let mut line = AuditLine {
            request_id: ctx.telemetry.request_id.to_str().unwrap_or("-"),
            route,
            user,
            client_id,
            status,
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            method: "",
            kind: None,
            name: "",
            decision: "",
            rule: "",
            hidden: None,
        };
        write_audit(audit, policy, ctx, &mut line);
    }
    let client_ip = ctx.client.and_then(super::forward::forwarded_for_value);
    AccessLine {
        request_id: ctx.telemetry.request_id.to_str().unwrap_or("-"),
        route,
        method: session.req_header().method.as_str(),
        path: session.req_header().uri.path(),
        client_ip: client_ip
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-"),
        status,
        duration_ms: elapsed.as_secs_f64() * 1000.0,
        user,
        client_id,
        error: error.map(|e| e.etype().as_str()).unwrap_or("-"),
    }
    .emit(&gateway.access_log);
    if !ctx.telemetry.span.is_disabled() {
        finish_span(session, ctx, status, error);
    }
}

/// Counts the request in the gateway's and its route's metrics, `labels` being its route, method
/// and status, and the MCP message it forwarded.
fn count(gateway: &Gateway, ctx: &RequestCtx, labels: [&str; 3], elapsed: std::time::Duration) {
    METRICS.requests.with_label_values(&labels).inc();
    let series = gateway.route_metrics(ctx.endpoint);
    series.request_duration.observe(elapsed.as_secs_f64());
    if let Some(started) = ctx.backend.started {
        series
            .backend_duration
            .observe(started.elapsed().as_secs_f64());
    }
    if ctx.backend.stream_open {
        series.active_streams.dec();
    }
    // Messages forwarded: not those the gateway answered itself.
    if ctx.caller.is_some()
        && ctx.backend.started.is_some()
        && let Some(method) = ctx.message.peek.method.as_deref()
    {
        let mcp_method = mcp_method_label(method);
        let tool = match (mcp_method, ctx.message.peek.tool.as_deref()) {
            ("tools/call", Some(name)) => METRICS.tool_label(name),
            _ => "",
        };
        METRICS
            .mcp_requests
            .with_label_values(&[labels[0], mcp_method, tool])
            .inc();
    }
}

/// Ends the request's span with what it came to: status, failure, the MCP method and tool, its
/// session (as sent, or as the backend named it), its user.
fn finish_span(session: &Session, ctx: &RequestCtx, status: u16, error: Option<&Error>) {
    let session_id = |headers: &http::HeaderMap| {
        headers
            .get(&crate::mcp::SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let session_id = session_id(&session.req_header().headers).or_else(|| {
        session
            .response_written()
            .and_then(|r| session_id(&r.headers))
    });
    super::span::finish(
        &ctx.telemetry.span,
        &super::span::Outcome {
            status,
            failed: error.is_some_and(|e| !super::failure::client_went_away(e)),
            mcp_method: ctx.message.peek.method.as_deref(),
            tool: ctx.message.peek.tool.as_deref(),
            session: session_id.as_deref(),
            user: ctx.caller.as_deref().map(|c| c.sub.as_str()),
        },
    );
}

/// The audit lines of what the route's `policy` decided of the request's messages: `line` holds
/// what they share (the request's), each entry adds its own.
fn write_audit<'a>(
    audit: &AuditLog,
    policy: Option<&'a Policy>,
    ctx: &'a RequestCtx,
    line: &mut AuditLine<'a>,
) {
    // Every list of the request shares the count: they are answered together.
    let hidden = ctx.message.list_filter.as_ref().map_or(0, |f| f.hidden);
    for entry in &ctx.telemetry.audit {
        line.method = entry.method;
        line.kind = entry.kind.map(Kind::as_str);
        line.name = &entry.name;
        line.decision = entry.outcome;
        (line.rule, line.hidden) = match (entry.ruling, policy) {
            (Ruling::Policy(reason), Some(policy)) => (reason.name(policy), None),
            (Ruling::Refused(why), _) => (why, None),
            _ => ("filtered", Some(hidden)),
        };
        audit.write(line);
    }
}

thread_local! {
    /// The series of the last policy decision counted on this thread: a run of one tool's calls
    /// counts without hashing its labels each time.
    static LAST_DECISION: RefCell<Option<(DecisionLabels, IntCounter)>> = const { RefCell::new(None) };
}

#[derive(PartialEq, Eq)]
struct DecisionLabels {
    route: String,
    kind: Option<Kind>,
    tool: String,
    outcome: &'static str,
}

/// Counts one decision in `mcp_gateway_policy_decisions_total`; `kind` is `None` for a list.
pub(super) fn count_decision(route: &str, kind: Option<Kind>, name: &str, outcome: &'static str) {
    let tool = match kind {
        Some(Kind::Tool) => name,
        _ => "",
    };
    LAST_DECISION.with_borrow_mut(|last| {
        if let Some((labels, counter)) = last.as_ref()
            && labels.route == route
            && labels.kind == kind
            && labels.tool == tool
            && labels.outcome == outcome
        {
            counter.inc();
            return;
        }
        // A name the caller was refused may be any name: it is labelled only if the tool is known
        // (was called before), so that made-up names cannot use up the labels of real tools.
        let label = match outcome {
            _ if tool.is_empty() => "",
            "allow" => METRICS.tool_label(tool),
            _ => METRICS.known_tool_label(tool),
        };
        let counter = METRICS.policy_decisions.with_label_values(&[
            route,
            kind.map_or("list", |k| k.as_str()),
            label,
            outcome,
        ]);
        counter.inc();
        let labels = DecisionLabels {
            route: route.to_owned(),
            kind,
            tool: tool.to_owned(),
            outcome,
        };
        *last = Some((labels, counter));
    });
}
