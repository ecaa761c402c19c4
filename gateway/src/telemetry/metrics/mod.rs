//! The Prometheus metrics, in the default registry that `pingora-prometheus` serves on its own
//! listener. Every label value comes from a bounded set: configured route paths, a fixed list of
//! methods, numeric statuses, the auth failure reasons, known MCP methods, and at most
//! [`MAX_TOOL_NAMES`] tool names. These are the data plane's; the authorization server's are in
//! [`auth`].

pub(crate) mod auth;
pub(crate) mod connections;

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use pingora_prometheus::prometheus::{
    Histogram, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, register_histogram_vec,
    register_int_counter_vec, register_int_gauge, register_int_gauge_vec,
};

/// The route label of the gateway's own endpoints.
pub(crate) const GATEWAY_ROUTE: &str = "_gateway";
pub(crate) const MAX_TOOL_NAMES: usize = 100;

pub(crate) struct Metrics {
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub backend_duration: HistogramVec,
    pub auth_failures: IntCounterVec,
    pub active_streams: IntGaugeVec,
    pub mcp_requests: IntCounterVec,
    pub policy_decisions: IntCounterVec,
    /// Reloads of the config, by result (`applied`, `refused`).
    pub config_reloads: IntCounterVec,
    /// When the config in force was read (at start, or by the last reload applied).
    pub config_loaded: IntGauge,
    /// 1 when the last reload was applied (or none was tried), 0 when it was refused.
    pub config_reload_ok: IntGauge,
    /// Tool names are few (at most [`MAX_TOOL_NAMES`]), so a client choosing them cannot make
    /// lookups slow: foldhash rather than SipHash.
    tools_seen: Mutex<HashSet<String, foldhash::fast::RandomState>>,
}

/// The series of one route label, looked up once: `with_label_values` hashes the labels and takes a
/// lock on every call.
pub(crate) struct RouteMetrics {
    pub request_duration: Histogram,
    pub backend_duration: Histogram,
    pub active_streams: IntGauge,
}

impl RouteMetrics {
    pub(crate) fn new(route: &str) -> Self {
        Self {
            request_duration: METRICS.request_duration.with_label_values(&[route]),
            backend_duration: METRICS.backend_duration.with_label_values(&[route]),
            active_streams: METRICS.active_streams.with_label_values(&[route]),
        }
    }
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

pub(crate) static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    Metrics {
    requests: register_int_counter_vec!(
        "mcp_gateway_requests_total",
        "Requests answered, by route, HTTP method and status.",
        &["route", "method", "status"]
    )
    .expect("registers once"),
    request_duration: register_histogram_vec!(
        "mcp_gateway_request_duration_seconds",
        "Time from the request's arrival to the end of its response, by route.",
        &["route"],
        LATENCY_BUCKETS.to_vec()
    )
    .expect("registers once"),
    // Named `upstream` in Pingora's sense (the peer proxied to), as dashboards already know it.
    backend_duration: register_histogram_vec!(
        "mcp_gateway_upstream_duration_seconds",
        "Time from sending a request to the backend to the end of the backend's response, by route.",
        &["route"],
        LATENCY_BUCKETS.to_vec()
    )
    .expect("registers once"),
    auth_failures: register_int_counter_vec!(
        "mcp_gateway_auth_failures_total",
        "Requests refused admission, by route and reason.",
        &["route", "reason"]
    )
    .expect("registers once"),
    active_streams: register_int_gauge_vec!(
        "mcp_gateway_active_streams",
        "Server-sent event streams open through the gateway, by route.",
        &["route"]
    )
    .expect("registers once"),
    mcp_requests: register_int_counter_vec!(
        "mcp_gateway_mcp_requests_total",
        "MCP messages forwarded, by route, MCP method and tool.",
        &["route", "mcp_method", "tool"]
    )
    .expect("registers once"),
    policy_decisions: register_int_counter_vec!(
        "mcp_gateway_policy_decisions_total",
        "MCP messages a route's policy decided, by route, kind (tool, resource, prompt, list), tool and decision (allow, deny, step_up).",
        &["route", "kind", "tool", "decision"]
    )
    .expect("registers once"),
    config_reloads: {
        let reloads = register_int_counter_vec!(
            "mcp_gateway_config_reloads_total",
            "Config reloads (SIGHUP, or a change of the watched files), by result (applied, refused).",
            &["result"]
        )
        .expect("registers once");
        for result in ["applied", "refused"] {
            reloads.with_label_values(&[result]);
        }
        reloads
    },
    config_loaded: register_int_gauge!(
        "mcp_gateway_config_last_reload_success_timestamp_seconds",
        "When the config in force was read, at start or by the last reload applied (Unix seconds)."
    )
    .expect("registers once"),
    config_reload_ok: register_int_gauge!(
        "mcp_gateway_config_last_reload_successful",
        "1 when the last config reload was applied (or none was tried), 0 when it was refused: the file differs from what is served."
    )
    .expect("registers once"),
    tools_seen: Mutex::new(HashSet::default()),
}
});

/// When the certificate the HTTPS listener serves expires: registered on first use, so that without
/// `server.tls` there is no series (a 0 would look like an expired certificate to an alert).
pub(crate) static TLS_CERTIFICATE_EXPIRY: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "mcp_gateway_tls_certificate_expiry_timestamp_seconds",
        "When the certificate the gateway's HTTPS listener serves expires, in Unix seconds."
    )
    .expect("registers once")
});

/// The HTTP method as a bounded label.
pub(crate) fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::DELETE => "DELETE",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::HEAD => "HEAD",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// MCP methods counted by name; any other is "other".
const MCP_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "elicitation/create",
    "sampling/createMessage",
    "roots/list",
    "tasks/get",
    "tasks/list",
    "tasks/cancel",
    "tasks/result",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
];

pub(crate) fn mcp_method_label(method: &str) -> &'static str {
    MCP_METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

impl Metrics {
    /// The config just read is in force: at start, or after a reload applied.
    pub(crate) fn config_in_force(&self) {
        self.config_loaded.set(crate::clock::now() as i64);
        self.config_reload_ok.set(1);
    }

    /// A tool name as a label if it already is one, else "other".
    pub(crate) fn known_tool_label<'a>(&self, name: &'a str) -> &'a str {
        if self.tools_seen.lock().expect("not poisoned").contains(name) {
            name
        } else {
            "other"
        }
    }

    /// A tool name as a label: well-formed names up to the cap, then "other".
    pub(crate) fn tool_label<'a>(&self, name: &'a str) -> &'a str {
        let well_formed = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b));
        if !well_formed {
            return "other";
        }
        let mut seen = self.tools_seen.lock().expect("not poisoned");
        if seen.contains(name) {
            return name;
        }
        if seen.len() < MAX_TOOL_NAMES {
            seen.insert(name.to_owned());
            return name;
        }
        "other"
    }
}
