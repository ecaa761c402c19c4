//! The authorization server's state behind one trait, so that the embedded stores ([`sqlite`], the
//! default, and [`memory`]) and the shared one several replicas use ([`redis`]) are interchangeable.
//!
//! Every operation is one atomic step a shared store can also do atomically: a code or a pending
//! login is *taken* exactly once, a refresh token is *rotated* by compare-and-swap, and whatever
//! expires carries its own expiry, so a store with TTLs can drop it unaided. Secrets are never stored
//! in the clear: codes and refresh tokens by SHA-256, client secrets by SHA-256 of a high-entropy
//! value. Whichever it is runs [`metered`], each operation timed. What is kept of users' connections
//! to backends with their own authorization server is a trait of its own, [`connections`].

pub(crate) mod connections;
pub(crate) mod memory;
pub(crate) mod metered;
pub(crate) mod records;
pub(crate) mod redis;
pub(crate) mod sqlite;

use async_trait::async_trait;

pub(crate) use connections::{ConnectFlow, ConnectionRecord, ConnectionStore, RegistrationRecord};
pub(crate) use records::{ClientRecord, CodeRecord, GrantRecord, PendingAuthorization, StoredKey};

/// A store failure, with what caused it kept as it came: the database's or Redis's own error, a
/// record that no longer parses, a file that cannot be made. A shared store that cannot be reached
/// is [`StoreError::is_unreachable`], which clients are told to retry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    // The causes below are kept, and written in the message rather than given as its source: the
    // one-line error at start (`{:#}`) would write them twice.
    #[error("store: {0}")]
    Sqlite(rusqlite::Error),
    #[error("store: Redis: {error}")]
    Redis {
        error: ::redis::RedisError,
        /// Not reached, or no answer in time: the same request may work later.
        unreachable: bool,
    },
    #[error("store: a record does not parse: {0}")]
    Record(serde_json::Error),
    #[error("store: cannot create {}: {error}", dir.display())]
    Directory {
        dir: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error(
        "store: the database has schema version {found}, newer than this gateway knows ({known})"
    )]
    NewerSchema { found: usize, known: usize },
    /// The task that ran a SQLite step on the blocking pool did not finish it.
    #[error("store: the store's task failed: {0}")]
    Task(tokio::task::JoinError),
    #[error("store: the connection lock is poisoned")]
    Poisoned,
    /// The store could not be opened at start, and why.
    #[error("opening the store {}", path.display())]
    Opening {
        path: std::path::PathBuf,
        #[source]
        source: Box<StoreError>,
    },
    #[error("connecting to Redis at {url}")]
    Connecting {
        url: String,
        #[source]
        source: Box<StoreError>,
    },
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Sqlite(error)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError::Record(error)
    }
}

impl From<tokio::task::JoinError> for StoreError {
    fn from(error: tokio::task::JoinError) -> Self {
        StoreError::Task(error)
    }
}

impl StoreError {
    /// The store could not be reached (or did not answer in time); the same request may work later.
    pub(crate) fn is_unreachable(&self) -> bool {
        match self {
            StoreError::Redis { unreachable, .. } => *unreachable,
            StoreError::Connecting { source, .. } => source.is_unreachable(),
            _ => false,
        }
    }
}

pub(crate) type StoreResult<T> = Result<T, StoreError>;

/// What taking an authorization code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CodeTake {
    /// The code, now used up.
    Taken(Box<CodeRecord>),
    /// The code was used before: a replay. Holds the grant it was redeemed for, if any.
    Replayed { grant_id: Option<String> },
    /// No such code, or it expired.
    Missing,
}

/// A refresh token's rotation: `old_hash` to `new_hash` (valid until `new_expires_at`), the
/// grant stamped as refreshed `now`. A token rotated less than `grace_secs` ago to this same
/// `new_hash` reports so (a concurrent refresh); 0 allows no grace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RefreshRotation<'a> {
    pub old_hash: &'a str,
    pub new_hash: &'a str,
    pub new_expires_at: u64,
    pub now: u64,
    pub grace_secs: u64,
}

/// What rotating a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rotation {
    /// The token was current: it is now rotated to the new one.
    Rotated { grant_id: String },
    /// The token was rotated moments ago (within the grace period) to this same successor: a
    /// concurrent refresh by the same client, which gets what the first caller got; the grant
    /// stands.
    RotatedWithinGrace { grant_id: String },
    /// The token was rotated long ago: it was stolen or replayed. The caller revokes the grant.
    Reused { grant_id: String },
    /// No such token, it expired, its grant is revoked, or it was rotated moments ago to another
    /// successor (never a second chain).
    Unknown,
}

#[async_trait]
pub(crate) trait Store: ConnectionStore {
    async fn put_client(&self, client: &ClientRecord) -> StoreResult<()>;
    async fn client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>>;
    /// Removes the clients the config once declared (`origin` "config") that are not in `keep`,
    /// and returns their ids: a client taken out of the config stops working.
    async fn retain_config_clients(&self, keep: &[String]) -> StoreResult<Vec<String>>;

    /// Keeps an authorization in progress (between `/authorize` and the code) until `expires_at`.
    async fn put_pending(&self, id: &str, pending: &PendingAuthorization) -> StoreResult<()>;
    async fn pending(&self, id: &str, now: u64) -> StoreResult<Option<PendingAuthorization>>;
    /// Removes and returns it: each pending authorization completes at most once.
    async fn take_pending(&self, id: &str, now: u64) -> StoreResult<Option<PendingAuthorization>>;

    async fn put_code(&self, code_hash: &str, code: &CodeRecord) -> StoreResult<()>;
    /// Takes a code exactly once; a second take reports the replay.
    async fn take_code(&self, code_hash: &str, now: u64) -> StoreResult<CodeTake>;
    /// Records which grant a code was redeemed for, so that a replay can revoke it.
    async fn set_code_grant(&self, code_hash: &str, grant_id: &str) -> StoreResult<()>;

    /// Keeps a grant; a revoked one stays revoked, whatever copy is written over it.
    async fn put_grant(&self, grant: &GrantRecord) -> StoreResult<()>;
    async fn grant(&self, grant_id: &str) -> StoreResult<Option<GrantRecord>>;
    /// Every grant, revoked or not: what `mcp-auth-gateway grants` lists and `revoke` looks in.
    async fn grants(&self) -> StoreResult<Vec<GrantRecord>>;
    /// Revokes a grant and with it every refresh token issued under it.
    async fn revoke_grant(&self, grant_id: &str) -> StoreResult<()>;

    async fn put_refresh(
        &self,
        token_hash: &str,
        grant_id: &str,
        expires_at: u64,
    ) -> StoreResult<()>;
    /// Rotates a refresh token by compare-and-swap ([`RefreshRotation`]), and stamps the grant as
    /// refreshed.
    async fn rotate_refresh(&self, rotation: RefreshRotation<'_>) -> StoreResult<Rotation>;
    /// A live refresh token's grant, and whether the token has been rotated.
    async fn refresh_token(
        &self,
        token_hash: &str,
        now: u64,
    ) -> StoreResult<Option<(String, bool)>>;
    /// The grant of a live refresh token, rotated or not, for revocation.
    async fn refresh_grant(&self, token_hash: &str, now: u64) -> StoreResult<Option<String>> {
        Ok(self
            .refresh_token(token_hash, now)
            .await?
            .map(|(grant, _)| grant))
    }
    /// The grant of a live refresh token that has not been rotated: one the token endpoint would
    /// still take as the client's current token, for introspection.
    async fn current_refresh_grant(
        &self,
        token_hash: &str,
        now: u64,
    ) -> StoreResult<Option<String>> {
        let token = self.refresh_token(token_hash, now).await?;
        Ok(token.and_then(|(grant, rotated)| (!rotated).then_some(grant)))
    }

    async fn put_consent(
        &self,
        sub: &str,
        client_id: &str,
        resource: &str,
        scope: &str,
    ) -> StoreResult<()>;
    /// The scope a user approved for a client on a resource, if they did.
    async fn consent(
        &self,
        sub: &str,
        client_id: &str,
        resource: &str,
    ) -> StoreResult<Option<String>>;

    async fn put_key(&self, key: &StoredKey) -> StoreResult<()>;
    /// Signing keys, newest first.
    async fn keys(&self) -> StoreResult<Vec<StoredKey>>;

    /// Drops whatever has expired.
    async fn purge_expired(&self, now: u64) -> StoreResult<()>;

    /// Records that the one-time identifier `id` (an assertion's `jti`, with its issuer) is used,
    /// until `until`, when what carried it expires: `Ok(false)` if it was used already. Shared
    /// stores answer for every replica at once, so that a replay at another is refused too.
    async fn use_once(&self, id: &str, until: u64, now: u64) -> StoreResult<bool>;

    /// Whether other gateway replicas share this store, so that what one of them changes (a
    /// revocation) must be read again rather than remembered.
    fn is_shared(&self) -> bool {
        false
    }

    /// Records that the MCP session `session` belongs to `sub` until `expires_at`, for the other
    /// replicas of a shared store; a local store keeps nothing (the process's own bindings do).
    async fn put_session(&self, _session: &str, _sub: &str, _expires_at: u64) -> StoreResult<()> {
        Ok(())
    }

    /// Whom `session` belongs to, if a replica recorded it.
    async fn session_owner(&self, _session: &str) -> StoreResult<Option<String>> {
        Ok(None)
    }

    /// Forgets `session` (the client ended it).
    async fn end_session(&self, _session: &str) -> StoreResult<()> {
        Ok(())
    }

    /// Takes the lock `name` for at most `ttl_ms`, as `holder`, unless another holds it: `Ok(false)`.
    /// A local store has nothing to lock across processes: the process's own lock suffices.
    async fn try_lock(&self, _name: &str, _holder: &str, _ttl_ms: u64) -> StoreResult<bool> {
        Ok(true)
    }

    /// Releases the lock `name` if `holder` still holds it.
    async fn unlock(&self, _name: &str, _holder: &str) -> StoreResult<()> {
        Ok(())
    }

    /// Records, for the other replicas of a shared store, that the access token `jti` of
    /// `grant_id` was revoked on its own, until `until` (when it would have expired).
    async fn revoke_token(&self, _grant_id: &str, _jti: &str, _until: u64) -> StoreResult<()> {
        Ok(())
    }

    /// The access tokens of `grant_id` revoked on their own and not yet expired, with until when.
    async fn revoked_tokens(&self, _grant_id: &str, _now: u64) -> StoreResult<Vec<(String, u64)>> {
        Ok(Vec::new())
    }

    /// A number that grows with every revocation (of a grant, or of an access token on its own),
    /// so that a gateway learns that one was made elsewhere — by another replica, or by
    /// `mcp-auth-gateway revoke` — by reading one value.
    async fn revocation_epoch(&self) -> StoreResult<u64> {
        Ok(0)
    }

    /// Counts one hit on `bucket`, in a window of `window_secs` that starts at its first hit:
    /// the hits so far in the window, and the seconds left in it. Only shared stores count; the
    /// data plane limits on its own otherwise.
    async fn count_hit(&self, _bucket: &str, _window_secs: u64) -> StoreResult<(u64, u64)> {
        Ok((0, 0))
    }
}

/// Opens the store `settings` name, timed and counted ([`metered`]): a SQLite file (made, and
/// migrated, if need be), a Redis node or Cluster (connected to), or memory.
pub(crate) async fn open(
    settings: &crate::config::StoreSettings,
) -> StoreResult<std::sync::Arc<dyn Store>> {
    use crate::config::StoreSettings;
    use std::sync::Arc;
    let (store, system): (Arc<dyn Store>, _) = match settings {
        StoreSettings::Sqlite(path) => {
            let store = sqlite::SqliteStore::open(path).map_err(|source| StoreError::Opening {
                path: path.clone(),
                source: Box::new(source),
            })?;
            (Arc::new(store), "sqlite")
        }
        StoreSettings::Memory => (Arc::new(memory::MemoryStore::default()), "memory"),
        StoreSettings::Redis(redis) => {
            let store = redis::RedisStore::connect(redis).await.map_err(|source| {
                StoreError::Connecting {
                    url: redis.printable_url(),
                    source: Box::new(source),
                }
            })?;
            (Arc::new(store), "redis")
        }
    };
    Ok(Arc::new(metered::Metered::new(store, system)))
}

/// Counts a hit on `key` against `limiter`: `Ok` to go ahead, `Err(seconds)` to wait. Replicas
/// that share a store count together there, under `bucket` (a window from its first hit); without
/// one, or while it cannot count, each limits on its own in `limiter`'s buckets.
pub(crate) async fn count_against<K: std::hash::Hash + Eq + Clone>(
    shared: Option<&dyn Store>,
    bucket: &str,
    limiter: &crate::rate_limit::RateLimiter<K>,
    key: K,
) -> Result<(), u64> {
    let per_minute = u64::from(limiter.per_minute());
    if let (Some(store), true) = (shared, per_minute > 0) {
        match store.count_hit(bucket, 60).await {
            Ok((hits, _)) if hits <= per_minute => return Ok(()),
            Ok((_, left)) => return Err(left.max(1)),
            Err(error) => {
                tracing::warn!(%error, "rate limits are counted per replica while the store cannot count")
            }
        }
    }
    limiter.check(key, std::time::Instant::now())
}

/// A record as the stores keep it: JSON.
fn json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    Ok(serde_json::to_string(value)?)
}

/// A record the stores kept, if there is one.
fn parse<T: serde::de::DeserializeOwned>(body: Option<String>) -> StoreResult<Option<T>> {
    body.map(|b| serde_json::from_str(&b))
        .transpose()
        .map_err(Into::into)
}

/// Drops expired codes, pending logins and refresh tokens every few minutes.
pub(crate) struct Purger(pub std::sync::Arc<dyn Store>);

#[async_trait]
impl pingora::services::background::BackgroundService for Purger {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(error) = self.0.purge_expired(crate::clock::now()).await {
                        tracing::warn!(%error, "purging expired state failed");
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod contract;
