//! The in-memory store: one mutex around plain maps. State is lost on restart. What it keeps of
//! users' connections is in [`connections`].

mod connections;

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    ClientRecord, CodeRecord, CodeTake, ConnectFlow, ConnectionRecord, GrantRecord,
    PendingAuthorization, RefreshRotation, RegistrationRecord, Rotation, Store, StoreResult,
    StoredKey,
};

#[derive(Default)]
pub(crate) struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<String, ClientRecord>,
    pending: HashMap<String, PendingAuthorization>,
    /// Code hash -> (record, used, grant redeemed for).
    codes: HashMap<String, (CodeRecord, bool, Option<String>)>,
    grants: HashMap<String, GrantRecord>,
    refresh: HashMap<String, RefreshEntry>,
    consents: HashMap<(String, String, String), String>,
    keys: Vec<StoredKey>,
    revocations: u64,
    /// By (user, route).
    connections: HashMap<(String, String), ConnectionRecord>,
    /// By (issuer, redirect URI).
    registrations: HashMap<(String, String), RegistrationRecord>,
    /// By the hash of their state.
    connect_flows: HashMap<String, ConnectFlow>,
    /// One-time identifiers used, until when.
    used_once: HashMap<String, u64>,
}

struct RefreshEntry {
    grant_id: String,
    expires_at: u64,
    rotated_at: Option<u64>,
    /// What it was rotated to: a replay within the grace gets the same successor.
    rotated_to: Option<String>,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("not poisoned")
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn put_client(&self, client: &ClientRecord) -> StoreResult<()> {
        self.lock()
            .clients
            .insert(client.client_id.clone(), client.clone());
        Ok(())
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        Ok(self.lock().clients.get(client_id).cloned())
    }

    async fn retain_config_clients(&self, keep: &[String]) -> StoreResult<Vec<String>> {
        let mut removed = Vec::new();
        self.lock().clients.retain(|id, client| {
            let stays = client.origin != "config" || keep.contains(id);
            if !stays {
                removed.push(id.clone());
            }
            stays
        });
        Ok(removed)
    }

    async fn put_pending(&self, id: &str, pending: &PendingAuthorization) -> StoreResult<()> {
        self.lock().pending.insert(id.to_owned(), pending.clone());
        Ok(())
    }

    async fn pending(&self, id: &str, now: u64) -> StoreResult<Option<PendingAuthorization>> {
        Ok(self
            .lock()
            .pending
            .get(id)
            .filter(|p| p.expires_at > now)
            .cloned())
    }

    async fn take_pending(&self, id: &str, now: u64) -> StoreResult<Option<PendingAuthorization>> {
        Ok(self
            .lock()
            .pending
            .remove(id)
            .filter(|p| p.expires_at > now))
    }

    async fn put_code(&self, code_hash: &str, code: &CodeRecord) -> StoreResult<()> {
        self.lock()
            .codes
            .insert(code_hash.to_owned(), (code.clone(), false, None));
        Ok(())
    }

    async fn take_code(&self, code_hash: &str, now: u64) -> StoreResult<CodeTake> {
        let mut inner = self.lock();
        Ok(match inner.codes.get_mut(code_hash) {
            Some((_, true, grant)) => CodeTake::Replayed {
                grant_id: grant.clone(),
            },
            Some((record, used, _)) if record.expires_at > now => {
                *used = true;
                CodeTake::Taken(Box::new(record.clone()))
            }
            _ => CodeTake::Missing,
        })
    }

    async fn set_code_grant(&self, code_hash: &str, grant_id: &str) -> StoreResult<()> {
        if let Some((_, _, grant)) = self.lock().codes.get_mut(code_hash) {
            *grant = Some(grant_id.to_owned());
        }
        Ok(())
    }

    async fn put_grant(&self, grant: &GrantRecord) -> StoreResult<()> {
        let mut inner = self.lock();
        let revoked = inner.grants.get(&grant.grant_id).is_some_and(|g| g.revoked);
        let mut grant = grant.clone();
        // A revocation is never undone by writing the grant again.
        grant.revoked |= revoked;
        inner.grants.insert(grant.grant_id.clone(), grant);
        Ok(())
    }

    async fn grant(&self, grant_id: &str) -> StoreResult<Option<GrantRecord>> {
        Ok(self.lock().grants.get(grant_id).cloned())
    }

    async fn grants(&self) -> StoreResult<Vec<GrantRecord>> {
        Ok(self.lock().grants.values().cloned().collect())
    }

    async fn revoke_grant(&self, grant_id: &str) -> StoreResult<()> {
        let mut inner = self.lock();
        if let Some(grant) = inner.grants.get_mut(grant_id) {
            grant.revoked = true;
        }
        inner.refresh.retain(|_, r| r.grant_id != grant_id);
        inner.revocations += 1;
        Ok(())
    }

    async fn revocation_epoch(&self) -> StoreResult<u64> {
        Ok(self.lock().revocations)
    }

    async fn put_refresh(
        &self,
        token_hash: &str,
        grant_id: &str,
        expires_at: u64,
    ) -> StoreResult<()> {
        self.lock().refresh.insert(
            token_hash.to_owned(),
            RefreshEntry {
                grant_id: grant_id.to_owned(),
                expires_at,
                rotated_at: None,
                rotated_to: None,
            },
        );
        Ok(())
    }

    async fn rotate_refresh(&self, rotation: RefreshRotation<'_>) -> StoreResult<Rotation> {
        let (old_hash, new_hash, now) = (rotation.old_hash, rotation.new_hash, rotation.now);
        let mut inner = self.lock();
        let Some(entry) = inner
            .refresh
            .get_mut(old_hash)
            .filter(|e| e.expires_at > now)
        else {
            return Ok(Rotation::Unknown);
        };
        let grant_id = entry.grant_id.clone();
        match entry.rotated_at {
            None => {}
            // A concurrent refresh: the successor the first caller got, never a second chain.
            Some(at) if now.saturating_sub(at) < rotation.grace_secs => {
                return Ok(if entry.rotated_to.as_deref() == Some(new_hash) {
                    Rotation::RotatedWithinGrace { grant_id }
                } else {
                    Rotation::Unknown
                });
            }
            Some(_) => return Ok(Rotation::Reused { grant_id }),
        }
        if inner.grants.get(&grant_id).is_none_or(|g| g.revoked) {
            return Ok(Rotation::Unknown);
        }
        if let Some(grant) = inner.grants.get_mut(&grant_id) {
            grant.refreshed_at = Some(now);
        }
        let entry = inner.refresh.get_mut(old_hash).expect("found above");
        entry.rotated_at = Some(now);
        entry.rotated_to = Some(new_hash.to_owned());
        let outcome = Rotation::Rotated {
            grant_id: grant_id.clone(),
        };
        inner.refresh.insert(
            new_hash.to_owned(),
            RefreshEntry {
                grant_id,
                expires_at: rotation.new_expires_at,
                rotated_at: None,
                rotated_to: None,
            },
        );
        Ok(outcome)
    }

    async fn refresh_token(
        &self,
        token_hash: &str,
        now: u64,
    ) -> StoreResult<Option<(String, bool)>> {
        Ok(self
            .lock()
            .refresh
            .get(token_hash)
            .filter(|e| e.expires_at > now)
            .map(|e| (e.grant_id.clone(), e.rotated_at.is_some())))
    }

    async fn put_consent(
        &self,
        sub: &str,
        client_id: &str,
        resource: &str,
        scope: &str,
    ) -> StoreResult<()> {
        self.lock().consents.insert(
            (sub.to_owned(), client_id.to_owned(), resource.to_owned()),
            scope.to_owned(),
        );
        Ok(())
    }

    async fn consent(
        &self,
        sub: &str,
        client_id: &str,
        resource: &str,
    ) -> StoreResult<Option<String>> {
        Ok(self
            .lock()
            .consents
            .get(&(sub.to_owned(), client_id.to_owned(), resource.to_owned()))
            .cloned())
    }

    async fn put_key(&self, key: &StoredKey) -> StoreResult<()> {
        let mut inner = self.lock();
        inner.keys.retain(|k| k.kid != key.kid);
        inner.keys.push(key.clone());
        inner.keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        Ok(())
    }

    async fn keys(&self) -> StoreResult<Vec<StoredKey>> {
        Ok(self.lock().keys.clone())
    }

    async fn purge_expired(&self, now: u64) -> StoreResult<()> {
        let mut inner = self.lock();
        inner.pending.retain(|_, p| p.expires_at > now);
        // Used codes are kept a while past expiry, so that a late replay is still recognised.
        inner.codes.retain(|_, (c, _, _)| c.expires_at + 3600 > now);
        inner.refresh.retain(|_, r| r.expires_at > now);
        inner.clients.retain(|_, c| !c.expired(now));
        inner.connect_flows.retain(|_, f| f.expires_at > now);
        inner.used_once.retain(|_, until| *until > now);
        Ok(())
    }

    async fn use_once(&self, id: &str, until: u64, now: u64) -> StoreResult<bool> {
        let mut inner = self.lock();
        match inner.used_once.get(id) {
            Some(kept) if *kept > now => Ok(false),
            _ => {
                inner.used_once.insert(id.to_owned(), until);
                Ok(true)
            }
        }
    }
}
