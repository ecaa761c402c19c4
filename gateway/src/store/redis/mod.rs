//! The shared store: Redis, one node or a Cluster, so that several gateway replicas serve every
//! step of every flow. Each operation of the [`Store`] trait is one command or one script
//! ([`scripts`]), so it is atomic however many replicas race; whatever expires carries a Redis
//! expiry too, so nothing needs purging. Keys start with the configured prefix and are hash-tagged:
//! one slot per client, pending authorization, code or consent, and one slot for the grants and
//! their refresh tokens, whose rotation and revocation must see each other. What it keeps of
//! users' connections is in [`connections`].

mod client;
mod connections;
mod scripts;

pub(crate) use client::RedisStore;

use async_trait::async_trait;
use redis::AsyncCommands as _;

use super::{
    ClientRecord, CodeRecord, CodeTake, GrantRecord, PendingAuthorization, RefreshRotation,
    Rotation, Store, StoreResult, StoredKey, json, parse,
};

/// What is read of a grant's hash: its record, whether it is revoked, when it was last refreshed.
const GRANT_FIELDS: [&str; 3] = ["body", "revoked", "refreshed_at"];
type GrantFields = (Option<String>, Option<String>, Option<u64>);

/// A grant as its hash holds it.
fn grant_of((body, revoked, refreshed_at): GrantFields) -> StoreResult<Option<GrantRecord>> {
    Ok(parse::<GrantRecord>(body)?.map(|mut grant| {
        grant.revoked |= revoked.as_deref() == Some("1");
        grant.refreshed_at = grant.refreshed_at.max(refreshed_at);
        grant
    }))
}

/// The family of each grant's refresh tokens, sorted by expiry.
const TOKENS: &str = "tokens-by-expiry";
/// The plain set of them that versions before the sorted one kept: still read when a grant is
/// revoked, so that no token issued before an upgrade outlives its grant.
const LEGACY_TOKENS: &str = "tokens";

#[async_trait]
impl Store for RedisStore {
    async fn put_client(&self, client: &ClientRecord) -> StoreResult<()> {
        let key = self.key("client", &client.client_id);
        let body = json(client)?;
        let () = match client.expires_at {
            0 => self.conn().set(key, body).await?,
            at => {
                redis::cmd("SET")
                    .arg(key)
                    .arg(body)
                    .arg("EXAT")
                    .arg(at)
                    .query_async(&mut self.conn())
                    .await?
            }
        };
        // The config's clients are listed, so that one taken out of the config can be found.
        if client.origin == "config" {
            let _: i64 = self
                .conn()
                .sadd(self.config_clients(), &client.client_id)
                .await?;
        }
        Ok(())
    }

    async fn retain_config_clients(&self, keep: &[String]) -> StoreResult<Vec<String>> {
        let listed: Vec<String> = self.conn().smembers(self.config_clients()).await?;
        let removed: Vec<String> = listed.into_iter().filter(|id| !keep.contains(id)).collect();
        for id in &removed {
            let _: i64 = self.conn().del(self.key("client", id)).await?;
            let _: i64 = self.conn().srem(self.config_clients(), id).await?;
        }
        Ok(removed)
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        let body: Option<String> = self.conn().get(self.key("client", client_id)).await?;
        parse(body)
    }

    async fn put_pending(&self, id: &str, pending: &PendingAuthorization) -> StoreResult<()> {
        let key = self.key("pending", id);
        let (): () = redis::pipe()
            .atomic()
            .set(&key, json(pending)?)
            .ignore()
            .expire_at(&key, pending.expires_at as i64)
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn pending(&self, id: &str, now: u64) -> StoreResult<Option<PendingAuthorization>> {
        let body: Option<String> = self.conn().get(self.key("pending", id)).await?;
        Ok(parse::<PendingAuthorization>(body)?.filter(|p| p.expires_at > now))
    }

    async fn take_pending(&self, id: &str, now: u64) -> StoreResult<Option<PendingAuthorization>> {
        let body: Option<String> = self.conn().get_del(self.key("pending", id)).await?;
        Ok(parse::<PendingAuthorization>(body)?.filter(|p| p.expires_at > now))
    }

    async fn put_code(&self, code_hash: &str, code: &CodeRecord) -> StoreResult<()> {
        let key = self.key("code", code_hash);
        let fields = [
            ("body", json(code)?),
            ("exp", code.expires_at.to_string()),
            ("used", "0".to_owned()),
        ];
        let (): () = redis::pipe()
            .atomic()
            .hset_multiple(&key, &fields)
            .ignore()
            .expire_at(&key, code.expires_at as i64)
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn take_code(&self, code_hash: &str, now: u64) -> StoreResult<CodeTake> {
        let (outcome, detail): (String, Option<String>) = scripts::TAKE_CODE
            .key(self.key("code", code_hash))
            .arg(now)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(match outcome.as_str() {
            "taken" => match parse(detail)? {
                Some(record) => CodeTake::Taken(Box::new(record)),
                None => CodeTake::Missing,
            },
            "replayed" => CodeTake::Replayed {
                grant_id: detail.filter(|g| !g.is_empty()),
            },
            _ => CodeTake::Missing,
        })
    }

    async fn set_code_grant(&self, code_hash: &str, grant_id: &str) -> StoreResult<()> {
        let _: i64 = scripts::SET_CODE_GRANT
            .key(self.key("code", code_hash))
            .arg(grant_id)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn put_grant(&self, grant: &GrantRecord) -> StoreResult<()> {
        let _: i64 = scripts::PUT_GRANT
            .key(self.grant_slot("grant", &grant.grant_id))
            .arg(json(grant)?)
            .arg(if grant.revoked { "1" } else { "0" })
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn grant(&self, grant_id: &str) -> StoreResult<Option<GrantRecord>> {
        let key = self.grant_slot("grant", grant_id);
        let fields: GrantFields = redis::cmd("HMGET")
            .arg(key)
            .arg(&GRANT_FIELDS[..])
            .query_async(&mut self.conn())
            .await?;
        grant_of(fields)
    }

    async fn grants(&self) -> StoreResult<Vec<GrantRecord>> {
        let keys = self
            .scan_grants_slot(&format!("{}*", self.grants("grant")))
            .await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.cmd("HMGET").arg(key).arg(&GRANT_FIELDS[..]);
        }
        let all: Vec<GrantFields> = pipe.query_async(&mut self.conn()).await?;
        let mut grants = Vec::with_capacity(all.len());
        for fields in all {
            grants.extend(grant_of(fields)?);
        }
        Ok(grants)
    }

    async fn revoke_grant(&self, grant_id: &str) -> StoreResult<()> {
        let _: i64 = scripts::REVOKE_GRANT
            .key(self.grant_slot("grant", grant_id))
            .key(self.grant_slot(TOKENS, grant_id))
            .key(self.grant_slot(LEGACY_TOKENS, grant_id))
            .key(self.revocations())
            .arg(self.grants("refresh"))
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn put_refresh(
        &self,
        token_hash: &str,
        grant_id: &str,
        expires_at: u64,
    ) -> StoreResult<()> {
        let _: i64 = scripts::PUT_REFRESH
            .key(self.grant_slot("refresh", token_hash))
            .arg(token_hash)
            .arg(grant_id)
            .arg(expires_at)
            .arg(self.grants(TOKENS))
            .arg(crate::clock::now())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn rotate_refresh(&self, rotation: RefreshRotation<'_>) -> StoreResult<Rotation> {
        let (outcome, grant_id): (String, String) = scripts::ROTATE_REFRESH
            .key(self.grant_slot("refresh", rotation.old_hash))
            .key(self.grant_slot("refresh", rotation.new_hash))
            .arg(rotation.new_hash)
            .arg(rotation.new_expires_at)
            .arg(rotation.now)
            .arg(self.grants(TOKENS))
            .arg(self.grants("grant"))
            .arg(rotation.grace_secs)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(match outcome.as_str() {
            "rotated" => Rotation::Rotated { grant_id },
            "grace" => Rotation::RotatedWithinGrace { grant_id },
            "reused" => Rotation::Reused { grant_id },
            _ => Rotation::Unknown,
        })
    }

    async fn refresh_token(
        &self,
        token_hash: &str,
        now: u64,
    ) -> StoreResult<Option<(String, bool)>> {
        let key = self.grant_slot("refresh", token_hash);
        let (grant, exp, rotated): (Option<String>, Option<u64>, Option<String>) =
            redis::cmd("HMGET")
                .arg(key)
                .arg("grant")
                .arg("exp")
                .arg("rotated_at")
                .query_async(&mut self.conn())
                .await?;
        let live = exp.is_some_and(|exp| exp > now);
        Ok(grant.filter(|_| live).map(|g| (g, rotated.is_some())))
    }

    async fn put_consent(
        &self,
        sub: &str,
        client_id: &str,
        resource: &str,
        scope: &str,
    ) -> StoreResult<()> {
        let key = self.consent_key(sub, client_id, resource);
        let () = self.conn().set(key, scope).await?;
        Ok(())
    }

    async fn consent(
        &self,
        sub: &str,
        client_id: &str,
        resource: &str,
    ) -> StoreResult<Option<String>> {
        let key = self.consent_key(sub, client_id, resource);
        Ok(self.conn().get(key).await?)
    }

    async fn put_key(&self, key: &StoredKey) -> StoreResult<()> {
        let keys = format!("{}:keys", self.prefix);
        let () = self.conn().hset(keys, &key.kid, json(key)?).await?;
        Ok(())
    }

    async fn keys(&self) -> StoreResult<Vec<StoredKey>> {
        let keys = format!("{}:keys", self.prefix);
        let bodies: Vec<String> = self.conn().hvals(keys).await?;
        let mut keys = bodies
            .iter()
            .map(|b| serde_json::from_str(b))
            .collect::<Result<Vec<StoredKey>, _>>()?;
        keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.kid.cmp(&a.kid)));
        Ok(keys)
    }

    /// Redis drops what expires by itself.
    async fn purge_expired(&self, _now: u64) -> StoreResult<()> {
        Ok(())
    }

    async fn use_once(&self, id: &str, until: u64, now: u64) -> StoreResult<bool> {
        let taken: Option<String> = redis::cmd("SET")
            .arg(self.key("used", id))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(until.saturating_sub(now).max(1))
            .query_async(&mut self.conn())
            .await?;
        Ok(taken.is_some())
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn put_session(&self, session: &str, sub: &str, expires_at: u64) -> StoreResult<()> {
        let key = self.session_key(session);
        let (): () = redis::pipe()
            .atomic()
            .set(&key, sub)
            .ignore()
            .expire_at(&key, expires_at as i64)
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn session_owner(&self, session: &str) -> StoreResult<Option<String>> {
        let key = self.session_key(session);
        Ok(self.conn().get(key).await?)
    }

    async fn try_lock(&self, name: &str, holder: &str, ttl_ms: u64) -> StoreResult<bool> {
        let taken: Option<String> = redis::cmd("SET")
            .arg(self.key("lock", name))
            .arg(holder)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut self.conn())
            .await?;
        Ok(taken.is_some())
    }

    async fn unlock(&self, name: &str, holder: &str) -> StoreResult<()> {
        let _: i64 = scripts::UNLOCK
            .key(self.key("lock", name))
            .arg(holder)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn revoke_token(&self, grant_id: &str, jti: &str, until: u64) -> StoreResult<()> {
        let key = self.grant_slot("revoked", grant_id);
        // The hash lives as long as its longest-lived token: NX gives it an expiry, GT extends it.
        let (): () = redis::pipe()
            .atomic()
            .hset(&key, jti, until)
            .ignore()
            .cmd("EXPIREAT")
            .arg(&key)
            .arg(until)
            .arg("NX")
            .ignore()
            .cmd("EXPIREAT")
            .arg(&key)
            .arg(until)
            .arg("GT")
            .ignore()
            .incr(self.revocations(), 1)
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn revocation_epoch(&self) -> StoreResult<u64> {
        let epoch: Option<u64> = self.conn().get(self.revocations()).await?;
        Ok(epoch.unwrap_or_default())
    }

    async fn revoked_tokens(&self, grant_id: &str, now: u64) -> StoreResult<Vec<(String, u64)>> {
        let key = self.grant_slot("revoked", grant_id);
        let all: Vec<(String, u64)> = self.conn().hgetall(key).await?;
        Ok(all.into_iter().filter(|(_, until)| *until > now).collect())
    }

    async fn count_hit(&self, bucket: &str, window_secs: u64) -> StoreResult<(u64, u64)> {
        let key = self.key("rate", bucket);
        let (hits, left_ms): (u64, i64) = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(window_secs)
            .arg("NX")
            .ignore()
            .pttl(&key)
            .query_async(&mut self.conn())
            .await?;
        Ok((hits, (left_ms.max(0) as u64).div_ceil(1000)))
    }

    async fn end_session(&self, session: &str) -> StoreResult<()> {
        let key = self.session_key(session);
        let _: i64 = self.conn().del(key).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
