//! The embedded default store: one SQLite file in WAL mode, with versioned migrations ([`schema`]).
//! Atomic steps are single statements or short transactions on the one connection, run on Tokio's
//! blocking pool so that the disk never holds up the worker threads. What it keeps of users'
//! connections is in [`connections`].

mod connections;
mod database;
mod schema;

pub(crate) use database::SqliteStore;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{
    ClientRecord, CodeRecord, CodeTake, GrantRecord, PendingAuthorization, RefreshRotation,
    Rotation, Store, StoreError, StoreResult, StoredKey, json, parse,
};

#[async_trait]
impl Store for SqliteStore {
    async fn put_client(&self, client: &ClientRecord) -> StoreResult<()> {
        let body = json(client)?;
        let client_id = client.client_id.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO clients (client_id, body) VALUES (?1, ?2)
                 ON CONFLICT (client_id) DO UPDATE SET body = excluded.body",
                params![client_id, body],
            )?;
            Ok(())
        })
        .await
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        let client_id = client_id.to_owned();
        self.with(move |c| {
            parse(
                c.query_row(
                    "SELECT body FROM clients WHERE client_id = ?1",
                    [client_id],
                    |r| r.get(0),
                )
                .optional()?,
            )
        })
        .await
    }

    async fn retain_config_clients(&self, keep: &[String]) -> StoreResult<Vec<String>> {
        let keep = keep.to_vec();
        self.with(move |c| {
            let tx = c.transaction()?;
            let configured: Vec<String> = tx
                .prepare(
                    "SELECT client_id FROM clients WHERE json_extract(body, '$.origin') = 'config'",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let removed: Vec<String> = configured
                .into_iter()
                .filter(|id| !keep.contains(id))
                .collect();
            for id in &removed {
                tx.execute("DELETE FROM clients WHERE client_id = ?1", [id])?;
            }
            tx.commit()?;
            Ok(removed)
        })
        .await
    }

    async fn put_pending(&self, id: &str, pending: &PendingAuthorization) -> StoreResult<()> {
        let body = json(pending)?;
        let id = id.to_owned();
        let expires_at = pending.expires_at;
        self.with(move |c| {
            c.execute(
                "INSERT INTO pending (id, body, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at",
                params![id, body, expires_at],
            )?;
            Ok(())
        }).await
    }

    async fn pending(&self, id: &str, now: u64) -> StoreResult<Option<PendingAuthorization>> {
        let id = id.to_owned();
        self.with(move |c| {
            parse(
                c.query_row(
                    "SELECT body FROM pending WHERE id = ?1 AND expires_at > ?2",
                    params![id, now],
                    |r| r.get(0),
                )
                .optional()?,
            )
        })
        .await
    }

    async fn take_pending(&self, id: &str, now: u64) -> StoreResult<Option<PendingAuthorization>> {
        let id = id.to_owned();
        self.with(move |c| {
            parse(
                c.query_row(
                    "DELETE FROM pending WHERE id = ?1 AND expires_at > ?2 RETURNING body",
                    params![id, now],
                    |r| r.get(0),
                )
                .optional()?,
            )
        })
        .await
    }

    async fn put_code(&self, code_hash: &str, code: &CodeRecord) -> StoreResult<()> {
        let body = json(code)?;
        let code_hash = code_hash.to_owned();
        let expires_at = code.expires_at;
        self.with(move |c| {
            c.execute(
                "INSERT INTO codes (hash, body, expires_at) VALUES (?1, ?2, ?3)",
                params![code_hash, body, expires_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn take_code(&self, code_hash: &str, now: u64) -> StoreResult<CodeTake> {
        let code_hash = code_hash.to_owned();
        self.with(move |c| {
            // The one statement that can use a code: whoever runs it first gets it.
            let taken: Option<String> = c
                .query_row(
                    "UPDATE codes SET used = 1 WHERE hash = ?1 AND used = 0 AND expires_at > ?2 RETURNING body",
                    params![code_hash, now],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(record) = parse(taken)? {
                return Ok(CodeTake::Taken(Box::new(record)));
            }
            let used: Option<(i64, Option<String>)> = c
                .query_row("SELECT used, grant_id FROM codes WHERE hash = ?1", [code_hash], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            Ok(match used {
                Some((1, grant_id)) => CodeTake::Replayed { grant_id },
                _ => CodeTake::Missing,
            })
        }).await
    }

    async fn set_code_grant(&self, code_hash: &str, grant_id: &str) -> StoreResult<()> {
        let code_hash = code_hash.to_owned();
        let grant_id = grant_id.to_owned();
        self.with(move |c| {
            c.execute(
                "UPDATE codes SET grant_id = ?2 WHERE hash = ?1",
                params![code_hash, grant_id],
            )?;
            Ok(())
        })
        .await
    }

    async fn put_grant(&self, grant: &GrantRecord) -> StoreResult<()> {
        let body = json(grant)?;
        let (grant_id, revoked) = (grant.grant_id.clone(), grant.revoked);
        self.with(move |c| {
            c.execute(
                "INSERT INTO grants (grant_id, body, revoked) VALUES (?1, ?2, ?3)
                 ON CONFLICT (grant_id) DO UPDATE SET body = excluded.body,
                     revoked = MAX(grants.revoked, excluded.revoked)",
                params![grant_id, body, revoked],
            )?;
            Ok(())
        })
        .await
    }

    async fn grant(&self, grant_id: &str) -> StoreResult<Option<GrantRecord>> {
        let grant_id = grant_id.to_owned();
        self.with(move |c| {
            let row = c
                .query_row(
                    "SELECT body, revoked, refreshed_at FROM grants WHERE grant_id = ?1",
                    [grant_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            row.map(grant_of).transpose()
        })
        .await
    }

    async fn grants(&self) -> StoreResult<Vec<GrantRecord>> {
        self.with(move |c| {
            let mut statement = c.prepare("SELECT body, revoked, refreshed_at FROM grants")?;
            let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.map(|row| grant_of(row?)).collect()
        })
        .await
    }

    async fn revoke_grant(&self, grant_id: &str) -> StoreResult<()> {
        let grant_id = grant_id.to_owned();
        self.with(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE grants SET revoked = 1 WHERE grant_id = ?1",
                [&grant_id],
            )?;
            tx.execute("DELETE FROM refresh_tokens WHERE grant_id = ?1", [grant_id])?;
            tx.execute("UPDATE revocations SET epoch = epoch + 1", [])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn put_refresh(
        &self,
        token_hash: &str,
        grant_id: &str,
        expires_at: u64,
    ) -> StoreResult<()> {
        let token_hash = token_hash.to_owned();
        let grant_id = grant_id.to_owned();
        self.with(move |c| {
            c.execute(
                "INSERT INTO refresh_tokens (hash, grant_id, expires_at) VALUES (?1, ?2, ?3)",
                params![token_hash, grant_id, expires_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn rotate_refresh(&self, rotation: RefreshRotation<'_>) -> StoreResult<Rotation> {
        let RefreshRotation {
            old_hash,
            new_hash,
            new_expires_at,
            now,
            grace_secs,
        } = rotation;
        let old_hash = old_hash.to_owned();
        let new_hash = new_hash.to_owned();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let row: Option<(String, Option<u64>, bool, Option<String>)> = tx
                .query_row(
                    "SELECT r.grant_id, r.rotated_at, COALESCE(g.revoked, 1), r.rotated_to
                     FROM refresh_tokens r LEFT JOIN grants g ON g.grant_id = r.grant_id
                     WHERE r.hash = ?1 AND r.expires_at > ?2",
                    params![old_hash, now],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((grant_id, rotated_at, revoked, rotated_to)) = row else {
                return Ok(Rotation::Unknown);
            };
            match rotated_at {
                _ if revoked => return Ok(Rotation::Unknown),
                None => {}
                // A concurrent refresh: the successor the first caller got, never a second chain.
                Some(at) if now.saturating_sub(at) < grace_secs => {
                    return Ok(if rotated_to.as_deref() == Some(new_hash.as_str()) {
                        Rotation::RotatedWithinGrace { grant_id }
                    } else {
                        Rotation::Unknown
                    });
                }
                Some(_) => return Ok(Rotation::Reused { grant_id }),
            }
            tx.execute(
                "UPDATE refresh_tokens SET rotated_at = ?2, rotated_to = ?3 WHERE hash = ?1",
                params![old_hash, now, new_hash],
            )?;
            tx.execute(
                "INSERT INTO refresh_tokens (hash, grant_id, expires_at) VALUES (?1, ?2, ?3)",
                params![new_hash, grant_id, new_expires_at],
            )?;
            tx.execute(
                "UPDATE grants SET refreshed_at = ?2 WHERE grant_id = ?1",
                params![grant_id, now],
            )?;
            let outcome = Rotation::Rotated { grant_id };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn refresh_token(
        &self,
        token_hash: &str,
        now: u64,
    ) -> StoreResult<Option<(String, bool)>> {
        let token_hash = token_hash.to_owned();
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT grant_id, rotated_at IS NOT NULL FROM refresh_tokens
                 WHERE hash = ?1 AND expires_at > ?2",
                params![token_hash, now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })
        .await
    }

    async fn put_consent(
        &self,
        sub: &str,
        client_id: &str,
        resource: &str,
        scope: &str,
    ) -> StoreResult<()> {
        let sub = sub.to_owned();
        let client_id = client_id.to_owned();
        let resource = resource.to_owned();
        let scope = scope.to_owned();
        self.with(move |c| {
            c.execute(
                "INSERT INTO consents (sub, client_id, resource, scope) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (sub, client_id, resource) DO UPDATE SET scope = excluded.scope",
                params![sub, client_id, resource, scope],
            )?;
            Ok(())
        })
        .await
    }

    async fn consent(
        &self,
        sub: &str,
        client_id: &str,
        resource: &str,
    ) -> StoreResult<Option<String>> {
        let sub = sub.to_owned();
        let client_id = client_id.to_owned();
        let resource = resource.to_owned();
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT scope FROM consents WHERE sub = ?1 AND client_id = ?2 AND resource = ?3",
                params![sub, client_id, resource],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    async fn put_key(&self, key: &StoredKey) -> StoreResult<()> {
        let body = json(key)?;
        let (kid, created_at) = (key.kid.clone(), key.created_at);
        self.with(move |c| {
            c.execute(
                "INSERT INTO signing_keys (kid, body, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (kid) DO NOTHING",
                params![kid, body, created_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn keys(&self) -> StoreResult<Vec<StoredKey>> {
        self.with(move |c| {
            let mut statement =
                c.prepare("SELECT body FROM signing_keys ORDER BY created_at DESC")?;
            let bodies = statement.query_map([], |r| r.get::<_, String>(0))?;
            bodies
                .map(|b| Ok(serde_json::from_str(&b?)?))
                .collect::<StoreResult<Vec<StoredKey>>>()
        })
        .await
    }

    async fn purge_expired(&self, now: u64) -> StoreResult<()> {
        self.with(move |c| {
            c.execute("DELETE FROM pending WHERE expires_at <= ?1", [now])?;
            c.execute("DELETE FROM codes WHERE expires_at + 3600 <= ?1", [now])?;
            c.execute("DELETE FROM refresh_tokens WHERE expires_at <= ?1", [now])?;
            c.execute("DELETE FROM connect_flows WHERE expires_at <= ?1", [now])?;
            c.execute("DELETE FROM used_once WHERE expires_at <= ?1", [now])?;
            c.execute(
                "DELETE FROM clients WHERE json_extract(body, '$.expires_at') BETWEEN 1 AND ?1",
                [now],
            )?;
            Ok(())
        })
        .await
    }

    async fn use_once(&self, id: &str, until: u64, now: u64) -> StoreResult<bool> {
        let id = id.to_owned();
        self.with(move |c| {
            // An identifier past its time may be used again: what carried it is refused anyway.
            c.execute(
                "DELETE FROM used_once WHERE id = ?1 AND expires_at <= ?2",
                params![id, now],
            )?;
            let inserted = c.execute(
                "INSERT OR IGNORE INTO used_once (id, expires_at) VALUES (?1, ?2)",
                params![id, until],
            )?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn revocation_epoch(&self) -> StoreResult<u64> {
        self.with(|c| Ok(c.query_row("SELECT epoch FROM revocations", [], |r| r.get(0))?))
            .await
    }
}

/// A grant as its row holds it: the record, and what the store keeps beside it.
fn grant_of(
    (body, revoked, refreshed_at): (String, bool, Option<u64>),
) -> StoreResult<GrantRecord> {
    let mut grant: GrantRecord = serde_json::from_str(&body)?;
    grant.revoked |= revoked;
    grant.refreshed_at = grant.refreshed_at.max(refreshed_at);
    Ok(grant)
}
