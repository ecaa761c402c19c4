//! Users' connections, the gateway's registrations and connect flows, on Redis: a user's
//! connections in one hash (one slot, so that listing and ending them all is one command), a
//! registration and a flow each under a key of its own, a flow expiring with its key.

use async_trait::async_trait;
use redis::AsyncCommands as _;
use sha2::{Digest as _, Sha256};

use super::{RedisStore, scripts};
use crate::store::{
    ConnectFlow, ConnectionRecord, ConnectionStore, RegistrationRecord, StoreResult, json, parse,
};

impl RedisStore {
    fn connections_key(&self, sub: &str) -> String {
        self.key("connections", &hex(sub))
    }

    fn registration_key(&self, issuer: &str, redirect_uri: &str) -> String {
        self.key("registration", &hex(&format!("{issuer}\n{redirect_uri}")))
    }
}

/// A name as a key part: hashed, so that no character of it (a brace of a hash tag, say) is read
/// as the key's own.
fn hex(name: &str) -> String {
    Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[async_trait]
impl ConnectionStore for RedisStore {
    async fn put_connection(&self, connection: &ConnectionRecord) -> StoreResult<()> {
        let (): () = self
            .conn()
            .hset(
                self.connections_key(&connection.sub),
                &connection.route,
                json(connection)?,
            )
            .await?;
        Ok(())
    }

    async fn connection(&self, sub: &str, route: &str) -> StoreResult<Option<ConnectionRecord>> {
        let body: Option<String> = self.conn().hget(self.connections_key(sub), route).await?;
        parse(body)
    }

    async fn connections(&self, sub: &str) -> StoreResult<Vec<ConnectionRecord>> {
        let all: std::collections::BTreeMap<String, String> =
            self.conn().hgetall(self.connections_key(sub)).await?;
        all.into_values()
            .map(|body| Ok(serde_json::from_str(&body)?))
            .collect()
    }

    async fn replace_connection(&self, refreshed: &ConnectionRecord) -> StoreResult<bool> {
        let written: i64 = scripts::REPLACE_CONNECTION
            .key(self.connections_key(&refreshed.sub))
            .arg(&refreshed.route)
            .arg(refreshed.connected_at)
            .arg(json(refreshed)?)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(written == 1)
    }

    async fn delete_connection(
        &self,
        sub: &str,
        route: &str,
    ) -> StoreResult<Option<ConnectionRecord>> {
        let key = self.connections_key(sub);
        let (body, _): (Option<String>, i64) = redis::pipe()
            .atomic()
            .hget(&key, route)
            .hdel(&key, route)
            .query_async(&mut self.conn())
            .await?;
        parse(body)
    }

    async fn put_registration(&self, registration: &RegistrationRecord) -> StoreResult<()> {
        let key = self.registration_key(&registration.issuer, &registration.redirect_uri);
        let (): () = self.conn().set(key, json(registration)?).await?;
        Ok(())
    }

    async fn registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> StoreResult<Option<RegistrationRecord>> {
        let body: Option<String> = self
            .conn()
            .get(self.registration_key(issuer, redirect_uri))
            .await?;
        parse(body)
    }

    async fn delete_registration(&self, issuer: &str, redirect_uri: &str) -> StoreResult<()> {
        let _: i64 = self
            .conn()
            .del(self.registration_key(issuer, redirect_uri))
            .await?;
        Ok(())
    }

    async fn put_connect_flow(&self, state_hash: &str, flow: &ConnectFlow) -> StoreResult<()> {
        let key = self.key("connect", state_hash);
        let (): () = redis::pipe()
            .atomic()
            .set(&key, json(flow)?)
            .ignore()
            .expire_at(&key, flow.expires_at as i64)
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn take_connect_flow(
        &self,
        state_hash: &str,
        now: u64,
    ) -> StoreResult<Option<ConnectFlow>> {
        let body: Option<String> = self.conn().get_del(self.key("connect", state_hash)).await?;
        Ok(parse::<ConnectFlow>(body)?.filter(|f| f.expires_at > now))
    }
}
