//! [`Metered`]: any store, with each operation timed and its failures counted by operation
//! (`mcp_gateway_store_operation_duration_seconds`, `mcp_gateway_store_errors_total`). Every
//! operation of [`Store`] is forwarded, the defaults too, so the inner store's own versions run.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{
    ClientRecord, CodeRecord, CodeTake, GrantRecord, PendingAuthorization, Rotation, Store,
    StoreResult, StoredKey,
};
use crate::metrics::auth::AUTH;

pub struct Metered(Arc<dyn Store>);

impl Metered {
    /// Wraps `store`; its error series start at 0, so that they exist before the first failure.
    pub fn new(store: Arc<dyn Store>) -> Self {
        for operation in OPERATIONS {
            for kind in ["unreachable", "error"] {
                AUTH.store_errors.with_label_values(&[operation, kind]);
            }
        }
        Self(store)
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

/// The forwarding `impl Store for Metered`, from each operation's name, arguments and result, and
/// the list of their names.
macro_rules! metered {
    ($($operation:ident($($arg:ident: $type:ty),*) -> $result:ty;)*) => {
        /// Every operation's name, as its label.
        const OPERATIONS: &[&str] = &[$(stringify!($operation)),*];

        #[async_trait]
        impl Store for Metered {
            $(
                async fn $operation(&self, $($arg: $type),*) -> StoreResult<$result> {
                    let started = Instant::now();
                    let result = self.0.$operation($($arg),*).await;
                    observe(stringify!($operation), started, &result);
                    result
                }
            )*

            fn is_shared(&self) -> bool {
                self.0.is_shared()
            }
        }
    };
}

metered! {
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
    revoke_grant(grant_id: &str) -> ();
    put_refresh(token_hash: &str, grant_id: &str, expires_at: u64) -> ();
    rotate_refresh(
        old_hash: &str,
        new_hash: &str,
        new_expires_at: u64,
        now: u64,
        grace_secs: u64
    ) -> Rotation;
    refresh_token(token_hash: &str, now: u64) -> Option<(String, bool)>;
    refresh_grant(token_hash: &str, now: u64) -> Option<String>;
    current_refresh_grant(token_hash: &str, now: u64) -> Option<String>;
    put_consent(sub: &str, client_id: &str, resource: &str, scope: &str) -> ();
    consent(sub: &str, client_id: &str, resource: &str) -> Option<String>;
    put_key(key: &StoredKey) -> ();
    keys() -> Vec<StoredKey>;
    purge_expired(now: u64) -> ();
    put_session(session: &str, sub: &str, expires_at: u64) -> ();
    session_owner(session: &str) -> Option<String>;
    end_session(session: &str) -> ();
    try_lock(name: &str, holder: &str, ttl_ms: u64) -> bool;
    unlock(name: &str, holder: &str) -> ();
    revoke_token(grant_id: &str, jti: &str, until: u64) -> ();
    revoked_tokens(grant_id: &str, now: u64) -> Vec<(String, u64)>;
    count_hit(bucket: &str, window_secs: u64) -> (u64, u64);
}
