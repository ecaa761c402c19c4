//! The spans of a request, as every part makes them: `tracing` spans of the target [`SPANS`], which
//! only the OpenTelemetry layer wants (when `[telemetry]` names a collector; the log never shows
//! them). Without that layer no subscriber is interested in the target, so each span costs the
//! hot path one cached check and nothing is built. Here too: the W3C `traceparent` a request brings
//! (its header, or a message's `_meta`), and the one a backend is sent.

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The target of every span meant for traces.
pub(crate) const SPANS: &str = "spans";

/// The W3C trace context header.
pub(crate) const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

/// Takes up the trace whose `traceparent` (and `tracestate`) `headers` carry, if they do: continued
/// when it comes from a trusted proxy, whose word on sampling is the gateway's; linked otherwise,
/// so that any client may say where its call belongs, but none may have every request it makes
/// traced (a `sampled` flag would force it past `sample_ratio`).
pub(crate) fn continue_from(span: &Span, headers: &http::HeaderMap, trusted: bool) {
    if span.is_disabled() || !headers.contains_key(TRACEPARENT) {
        return;
    }
    let parent =
        TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    let context = parent.span().span_context().clone();
    if !context.is_valid() {
        return;
    }
    if trusted {
        let _ = span.set_parent(parent);
    } else {
        span.add_link(context);
    }
}

/// What a trace says of an MCP session: a hash of its id, which is a bearer of the session's state
/// and must not travel to wherever traces are kept.
pub(crate) fn session_hash(session: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(session.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Links `span` to the trace a message's `_meta.traceparent` names (MCP 2026-07-28): a request
/// span has begun by the time its body is read, so the message's trace is linked, not continued.
pub(crate) fn link_to(span: &Span, traceparent: &str) {
    if span.is_disabled() {
        return;
    }
    let carrier =
        std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let linked = TraceContextPropagator::new().extract(&carrier);
    let linked = linked.span().span_context().clone();
    if linked.is_valid() {
        span.add_link(linked);
    }
}

/// The `traceparent` (and `tracestate`) naming `span`, for the backend: none when not traced.
pub(crate) fn headers_for(span: &Span) -> std::collections::HashMap<String, String> {
    let mut carrier = std::collections::HashMap::new();
    if !span.is_disabled() {
        TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    }
    carrier
}

/// Awaits `$future` within `$span` when traces are sent; otherwise awaits it as it is, where it is
/// built, rather than moving it into an `Instrumented` wrapper first: a future of kilobytes copied
/// twice on every request was most of what tracing cost while off.
macro_rules! traced {
    ($span:expr, $future:expr) => {{
        let span: &tracing::Span = &$span;
        if span.is_disabled() {
            $future.await
        } else {
            tracing::Instrument::instrument($future, span.clone()).await
        }
    }};
}
pub(crate) use traced;
