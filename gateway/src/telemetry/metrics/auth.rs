//! The authorization server's metrics and those of what it depends on: authorizations, logins,
//! tokens, registrations and revocations; the identity provider's and the store's calls, timed; and
//! the signing key's age. Every label value comes from a fixed set (endpoints, grants, results, the
//! store's operations, the provider's calls).

use std::sync::LazyLock;

use pingora_prometheus::prometheus::core::{Collector, Desc};
use pingora_prometheus::prometheus::proto::MetricFamily;
use pingora_prometheus::prometheus::{
    Gauge, HistogramVec, IntCounter, IntCounterVec, Opts, register, register_histogram_vec,
    register_int_counter, register_int_counter_vec,
};

use super::LATENCY_BUCKETS;

pub(crate) struct AuthMetrics {
    /// `/authorize` requests that passed every check and began a sign-in.
    pub authorizations_started: IntCounter,
    /// Authorizations that ended, by result: `approved` (a code for the client), `denied` (by the
    /// user, an allowlist or the provider), `failed` (the provider could not be reached).
    pub authorizations_completed: IntCounterVec,
    /// Sign-in attempts, by provider and result.
    pub logins: IntCounterVec,
    /// Access tokens issued, by grant.
    pub tokens_issued: IntCounterVec,
    /// A rotated refresh token presented again: its grant is revoked.
    pub refresh_reuse: IntCounter,
    /// An authorization code presented a second time: its grant is revoked.
    pub code_replays: IntCounter,
    /// Dynamic client registrations, by result (`created`, `refused`).
    pub registrations: IntCounterVec,
    /// Tokens revoked at `/revoke`.
    pub revocations: IntCounter,
    /// OAuth errors answered, by endpoint and error code.
    pub oauth_errors: IntCounterVec,
    pub idp_duration: HistogramVec,
    /// Identity provider calls, by provider, call and result (`ok`, `refused`, `not_allowed`,
    /// `unavailable`).
    pub idp_calls: IntCounterVec,
    pub store_duration: HistogramVec,
    /// Store calls that failed, by operation and kind (`unreachable`, `error`).
    pub store_errors: IntCounterVec,
}

pub(crate) static AUTH: LazyLock<AuthMetrics> = LazyLock::new(|| {
    let metrics = AuthMetrics {
        authorizations_started: register_int_counter!(
            "mcp_gateway_authorizations_started_total",
            "Authorization requests that passed every check and began a sign-in."
        )
        .expect("registers once"),
        authorizations_completed: register_int_counter_vec!(
            "mcp_gateway_authorizations_completed_total",
            "Authorizations that ended, by result: approved (a code went to the client), denied (by the user, an allowlist or the provider), failed (the provider could not be reached).",
            &["result"]
        )
        .expect("registers once"),
        logins: register_int_counter_vec!(
            "mcp_gateway_logins_total",
            "Sign-in attempts, by provider (local, github, oidc) and result (success, wrong_password, rate_limited, not_allowed, refused, unavailable).",
            &["provider", "result"]
        )
        .expect("registers once"),
        tokens_issued: register_int_counter_vec!(
            "mcp_gateway_tokens_issued_total",
            "Access tokens issued at the token endpoint, by grant (authorization_code, refresh_token).",
            &["grant"]
        )
        .expect("registers once"),
        refresh_reuse: register_int_counter!(
            "mcp_gateway_refresh_token_reuse_total",
            "Rotated refresh tokens presented again (stolen or replayed); each revokes its grant."
        )
        .expect("registers once"),
        code_replays: register_int_counter!(
            "mcp_gateway_authorization_code_replays_total",
            "Authorization codes presented a second time; each revokes the grant the first use made."
        )
        .expect("registers once"),
        registrations: register_int_counter_vec!(
            "mcp_gateway_client_registrations_total",
            "Dynamic client registrations, by result (created, refused).",
            &["result"]
        )
        .expect("registers once"),
        revocations: register_int_counter!(
            "mcp_gateway_revocations_total",
            "Revocation requests at /revoke that were answered 200."
        )
        .expect("registers once"),
        oauth_errors: register_int_counter_vec!(
            "mcp_gateway_oauth_errors_total",
            "Errors the authorization server answered, by endpoint and OAuth error code (or page for an error page).",
            &["endpoint", "error"]
        )
        .expect("registers once"),
        idp_duration: register_histogram_vec!(
            "mcp_gateway_idp_request_duration_seconds",
            "Time of each call to the identity provider, by provider and call (sign_in, recheck, refresh, authorize_url), its HTTP requests together.",
            &["provider", "call"],
            LATENCY_BUCKETS.to_vec()
        )
        .expect("registers once"),
        idp_calls: register_int_counter_vec!(
            "mcp_gateway_idp_requests_total",
            "Calls to the identity provider, by provider, call and result (ok, refused, not_allowed, unavailable).",
            &["provider", "call", "result"]
        )
        .expect("registers once"),
        store_duration: register_histogram_vec!(
            "mcp_gateway_store_operation_duration_seconds",
            "Time of each store operation, by operation.",
            &["operation"],
            LATENCY_BUCKETS.to_vec()
        )
        .expect("registers once"),
        store_errors: register_int_counter_vec!(
            "mcp_gateway_store_errors_total",
            "Store operations that failed, by operation and kind (unreachable, error).",
            &["operation", "kind"]
        )
        .expect("registers once"),
    };
    // The series alerts divide by or watch exist from the start, at 0, rather than appearing with
    // their first event (when `rate()` cannot yet see them rise).
    for result in ["approved", "denied", "failed"] {
        metrics
            .authorizations_completed
            .with_label_values(&[result]);
    }
    for grant in ["authorization_code", "refresh_token"] {
        metrics.tokens_issued.with_label_values(&[grant]);
    }
    for result in ["created", "refused"] {
        metrics.registrations.with_label_values(&[result]);
    }
    metrics
});

/// Starts the login series of `provider` at 0, for each result it can have.
pub(crate) fn count_logins_of(provider: &str) {
    let results: &[&str] = if provider == "local" {
        &["success", "wrong_password", "rate_limited"]
    } else {
        &["success", "not_allowed", "refused", "unavailable"]
    };
    for result in results {
        AUTH.logins.with_label_values(&[provider, result]);
    }
}

/// `mcp_gateway_signing_key_age_seconds`, computed at each scrape from when the active key was made.
struct SigningKeyAge {
    desc: Desc,
    created_at: u64,
}

impl Collector for SigningKeyAge {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let gauge = Gauge::with_opts(Opts::new(self.desc.fq_name.clone(), self.desc.help.clone()))
            .expect("valid options");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        gauge.set(now.saturating_sub(self.created_at) as f64);
        gauge.collect()
    }
}

/// Publishes the active signing key's age; `created_at` in Unix seconds.
pub(crate) fn register_signing_key_age(created_at: u64) {
    let name = "mcp_gateway_signing_key_age_seconds";
    let help =
        "Seconds since the signing key in use was made (a key file: since it was last written).";
    let desc = Desc::new(name.into(), help.into(), Vec::new(), Default::default())
        .expect("a valid description");
    if let Err(error) = register(Box::new(SigningKeyAge { desc, created_at })) {
        tracing::warn!("cannot publish the signing key's age: {error}");
    }
}
