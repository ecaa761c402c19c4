//! The metrics of users' connections to backends with their own authorization server: connections
//! started, completed and failed (by route and reason: discovery, registration, a refusal, …), and
//! the refreshes of their tokens by result. Routes come from the config; reasons and results from
//! fixed sets.

use std::sync::LazyLock;

use pingora_prometheus::prometheus::{IntCounterVec, register_int_counter_vec};

struct ConnectionMetrics {
    started: IntCounterVec,
    completed: IntCounterVec,
    failed: IntCounterVec,
    refreshes: IntCounterVec,
}

static CONNECTIONS: LazyLock<ConnectionMetrics> = LazyLock::new(|| {
    ConnectionMetrics {
    started: register_int_counter_vec!(
        "mcp_gateway_connections_started_total",
        "Users sent to a backend's authorization server to connect, by route.",
        &["route"]
    )
    .expect("registers once"),
    completed: register_int_counter_vec!(
        "mcp_gateway_connections_completed_total",
        "Users connected to a backend, by route.",
        &["route"]
    )
    .expect("registers once"),
    failed: register_int_counter_vec!(
        "mcp_gateway_connections_failed_total",
        "Connections that could not be made or kept, by route and reason (discovery, resource_mismatch, issuer_mismatch, no_pkce, not_allowed, registration, refused, bad_answer, unavailable, unknown_state, other_browser, wrong_issuer, store).",
        &["route", "reason"]
    )
    .expect("registers once"),
    refreshes: register_int_counter_vec!(
        "mcp_gateway_connection_refreshes_total",
        "Refreshes of users' tokens at backends, by route and result (ok, refused: the connection ended, unavailable: tried again later).",
        &["route", "result"]
    )
    .expect("registers once"),
}
});

/// Why a connection fails, as [`failed`] counts it.
pub(crate) const FAILURE_REASONS: &[&str] = &[
    "discovery",
    "resource_mismatch",
    "issuer_mismatch",
    "no_pkce",
    "not_allowed",
    "registration",
    "refused",
    "bad_answer",
    "unavailable",
    "unknown_state",
    "other_browser",
    "wrong_issuer",
    "store",
];

pub(crate) fn started(route: &str) {
    CONNECTIONS.started.with_label_values(&[route]).inc();
}

pub(crate) fn completed(route: &str) {
    CONNECTIONS.completed.with_label_values(&[route]).inc();
}

pub(crate) fn failed(route: &str, reason: &'static str) {
    CONNECTIONS.failed.with_label_values(&[route, reason]).inc();
}

pub(crate) fn refreshed(route: &str, result: &'static str) {
    CONNECTIONS
        .refreshes
        .with_label_values(&[route, result])
        .inc();
}

/// Makes each route's series exist before its first event, so that a dashboard sees zeros.
pub(crate) fn register_route(route: &str) {
    let metrics = &*CONNECTIONS;
    metrics.started.with_label_values(&[route]);
    metrics.completed.with_label_values(&[route]);
    for result in ["ok", "refused", "unavailable"] {
        metrics.refreshes.with_label_values(&[route, result]);
    }
    for reason in FAILURE_REASONS {
        metrics.failed.with_label_values(&[route, reason]);
    }
}
