//! [`Metered`]: any store, with each operation timed and its failures counted by operation
//! (`mcp_gateway_store_operation_duration_seconds`, `mcp_gateway_store_errors_total`), and a span
//! for each one a traced request makes. Every operation of [`Store`] and [`ConnectionStore`] is
//! forwarded, the defaults too, so the inner store's own versions run.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tracing::Span;

use super::connections::{ConnectFlow, ConnectionRecord, ConnectionStore, RegistrationRecord};
use super::{
    ClientRecord, CodeRecord, CodeTake, GrantRecord, PendingAuthorization, RefreshRotation,
    Rotation, Store, StoreResult, StoredKey,
};
use crate::telemetry::metrics::auth::AUTH;
use crate::telemetry::trace::{SPANS, traced};

pub(crate) struct Metered {
    inner: Arc<dyn Store>,
    /// `sqlite`, `redis` or `memory`, as spans name the database.
    system: &'static str,
}

impl Metered {
    /// Wraps `store`; its error series start at 0, so that they exist before the first failure.
    pub(crate) fn new(inner: Arc<dyn Store>, system: &'static str) -> Self {
        for operation in STORE_OPERATIONS.iter().chain(CONNECTION_OPERATIONS) {
            for kind in ["unreachable", "error"] {
                AUTH.store_errors.with_label_values(&[operation, kind]);
            }
        }
        Self { inner, system }
    }

    /// The span of an operation, within a traced request only: the background purge is no trace.
    fn span(&self, operation: &'static str) -> Span {
        if Span::current().is_disabled() {
            return Span::none();
        }
        tracing::info_span!(
            target: SPANS,
            "store",
            otel.name = %format_args!("store {operation}"),
            otel.kind = "client",
            db.system.name = self.system,
            db.operation.name = operation,
        )
    }
}

/// Records one operation's time, and its failure.
fn observe<T>(operation: &'static str, started: Instant, result: &StoreResult<T>) {
    AUTH.store_duration
        .with_label_values(&[operation])
        .observe(started.elapsed().as_secs_f64());
    if let Err(error) = result {
        let kind = if error.is_unreachable() {
            "unreachable"
        } else {
            "error"
        };
        AUTH.store_errors
            .with_label_values(&[operation, kind])
            .inc();
    }
}

/// The forwarding `impl $trait for Metered`, from each operation's name, arguments and result (and
/// `$extra`, items forwarded by hand), and the list of their names, `$names`.
macro_rules! metered {
    ($trait:ident, $names:ident, { $($extra:tt)* }
     $($operation:ident($($arg:ident: $type:ty),*) -> $result:ty;)*) => {
        /// Every operation's name, as its label.
        const $names: &[&str] = &[$(stringify!($operation)),*];

        #[async_trait]
        impl $trait for Metered {
            $(
                async fn $operation(&self, $($arg: $type),*) -> StoreResult<$result> {
                    let started = Instant::now();
                    let span = self.span(stringify!($operation));
                    let result = traced!(span, self.inner.$operation($($arg),*));
                    observe(stringify!($operation), started, &result);
                    result
                }
            )*

            $($extra)*
        }
    };
}

metered! {
    Store, STORE_OPERATIONS, {
        fn is_shared(&self) -> bool {
            self.inner.is_shared()
        }
    }
    put_client(client: &ClientRecord) -> ();
    client(client_id: &str) -> Option<ClientRecord>;
    retain_config_clients(keep: &[String]) -> Vec<String>;
    put_pending(id: &str, pending: &PendingAuthorization) -> ();
    pending(id: &str, now: u64) -> Option<PendingAuthorization>;
    take_pending(id: &str, now: u64) -> Option<PendingAuthorization>;
    put_code(code_hash: &str, code: &CodeRecord) -> ();
    take_code(code_hash: &str, now: u64) -> CodeTake;
    set_code_grant(code_hash: &str, grant_id: &str) -> ();
    put_grant(grant: &GrantRecord) -> ();
    grant(grant_id: &str) -> Option<GrantRecord>;
    grants() -> Vec<GrantRecord>;
    revoke_grant(grant_id: &str) -> ();
    put_refresh(token_hash: &str, grant_id: &str, expires_at: u64) -> ();
    rotate_refresh(rotation: RefreshRotation<'_>) -> Rotation;
    refresh_token(token_hash: &str, now: u64) -> Option<(String, bool)>;
    refresh_grant(token_hash: &str, now: u64) -> Option<String>;
    current_refresh_grant(token_hash: &str, now: u64) -> Option<String>;
    put_consent(sub: &str, client_id: &str, resource: &str, scope: &str) -> ();
    consent(sub: &str, client_id: &str, resource: &str) -> Option<String>;
    put_key(key: &StoredKey) -> ();
    keys() -> Vec<StoredKey>;
    purge_expired(now: u64) -> ();
    use_once(id: &str, until: u64, now: u64) -> bool;
    put_session(session: &str, sub: &str, expires_at: u64) -> ();
    session_owner(session: &str) -> Option<String>;
    end_session(session: &str) -> ();
    try_lock(name: &str, holder: &str, ttl_ms: u64) -> bool;
    unlock(name: &str, holder: &str) -> ();
    revoke_token(grant_id: &str, jti: &str, until: u64) -> ();
    revoked_tokens(grant_id: &str, now: u64) -> Vec<(String, u64)>;
    count_hit(bucket: &str, window_secs: u64) -> (u64, u64);
    revocation_epoch() -> u64;
}

metered! {
    ConnectionStore, CONNECTION_OPERATIONS, {}
    put_connection(connection: &ConnectionRecord) -> ();
    connection(sub: &str, route: &str) -> Option<ConnectionRecord>;
    connections(sub: &str) -> Vec<ConnectionRecord>;
    replace_connection(refreshed: &ConnectionRecord) -> bool;
    delete_connection(sub: &str, route: &str) -> Option<ConnectionRecord>;
    put_registration(registration: &RegistrationRecord) -> ();
    registration(issuer: &str, redirect_uri: &str) -> Option<RegistrationRecord>;
    delete_registration(issuer: &str, redirect_uri: &str) -> ();
    put_connect_flow(state_hash: &str, flow: &ConnectFlow) -> ();
    take_connect_flow(state_hash: &str, now: u64) -> Option<ConnectFlow>;
}
