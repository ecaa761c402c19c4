//! Users' connections, the gateway's registrations and connect flows, in the SQLite file: one
//! statement each.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::{
    ConnectFlow, ConnectionRecord, ConnectionStore, RegistrationRecord, StoreResult, json, parse,
};

#[async_trait]
impl ConnectionStore for SqliteStore {
    async fn put_connection(&self, connection: &ConnectionRecord) -> StoreResult<()> {
        let body = json(connection)?;
        let (sub, route, at) = (
            connection.sub.clone(),
            connection.route.clone(),
            connection.connected_at,
        );
        self.with(move |c| {
            c.execute(
                "INSERT INTO connections (sub, route, connected_at, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (sub, route) DO UPDATE
                 SET connected_at = excluded.connected_at, body = excluded.body",
                params![sub, route, at, body],
            )?;
            Ok(())
        })
        .await
    }

    async fn connection(&self, sub: &str, route: &str) -> StoreResult<Option<ConnectionRecord>> {
        let (sub, route) = (sub.to_owned(), route.to_owned());
        self.with(move |c| {
            parse(
                c.query_row(
                    "SELECT body FROM connections WHERE sub = ?1 AND route = ?2",
                    params![sub, route],
                    |r| r.get(0),
                )
                .optional()?,
            )
        })
        .await
    }

    async fn connections(&self, sub: &str) -> StoreResult<Vec<ConnectionRecord>> {
        let sub = sub.to_owned();
        self.with(move |c| {
            let bodies: Vec<String> = c
                .prepare("SELECT body FROM connections WHERE sub = ?1 ORDER BY route")?
                .query_map([sub], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            bodies
                .into_iter()
                .map(|body| Ok(serde_json::from_str(&body)?))
                .collect()
        })
        .await
    }

    async fn replace_connection(&self, refreshed: &ConnectionRecord) -> StoreResult<bool> {
        let body = json(refreshed)?;
        let (sub, route, at) = (
            refreshed.sub.clone(),
            refreshed.route.clone(),
            refreshed.connected_at,
        );
        self.with(move |c| {
            let changed = c.execute(
                "UPDATE connections SET body = ?4 WHERE sub = ?1 AND route = ?2 AND connected_at = ?3",
                params![sub, route, at, body],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn delete_connection(
        &self,
        sub: &str,
        route: &str,
    ) -> StoreResult<Option<ConnectionRecord>> {
        let (sub, route) = (sub.to_owned(), route.to_owned());
        self.with(move |c| {
            parse(
                c.query_row(
                    "DELETE FROM connections WHERE sub = ?1 AND route = ?2 RETURNING body",
                    params![sub, route],
                    |r| r.get(0),
                )
                .optional()?,
            )
        })
        .await
    }

    async fn put_registration(&self, registration: &RegistrationRecord) -> StoreResult<()> {
        let body = json(registration)?;
        let (issuer, redirect_uri) = (
            registration.issuer.clone(),
            registration.redirect_uri.clone(),
        );
        self.with(move |c| {
            c.execute(
                "INSERT INTO registrations (issuer, redirect_uri, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (issuer, redirect_uri) DO UPDATE SET body = excluded.body",
                params![issuer, redirect_uri, body],
            )?;
            Ok(())
        })
        .await
    }

    async fn registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> StoreResult<Option<RegistrationRecord>> {
        let (issuer, redirect_uri) = (issuer.to_owned(), redirect_uri.to_owned());
        self.with(move |c| {
            parse(
                c.query_row(
                    "SELECT body FROM registrations WHERE issuer = ?1 AND redirect_uri = ?2",
                    params![issuer, redirect_uri],
                    |r| r.get(0),
                )
                .optional()?,
            )
        })
        .await
    }

    async fn delete_registration(&self, issuer: &str, redirect_uri: &str) -> StoreResult<()> {
        let (issuer, redirect_uri) = (issuer.to_owned(), redirect_uri.to_owned());
        self.with(move |c| {
            c.execute(
                "DELETE FROM registrations WHERE issuer = ?1 AND redirect_uri = ?2",
                params![issuer, redirect_uri],
            )?;
            Ok(())
        })
        .await
    }

    async fn put_connect_flow(&self, state_hash: &str, flow: &ConnectFlow) -> StoreResult<()> {
        let body = json(flow)?;
        let (hash, expires_at) = (state_hash.to_owned(), flow.expires_at);
        self.with(move |c| {
            c.execute(
                "INSERT INTO connect_flows (hash, body, expires_at) VALUES (?1, ?2, ?3)",
                params![hash, body, expires_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn take_connect_flow(
        &self,
        state_hash: &str,
        now: u64,
    ) -> StoreResult<Option<ConnectFlow>> {
        let hash = state_hash.to_owned();
        self.with(move |c| {
            parse(
                c.query_row(
                    "DELETE FROM connect_flows WHERE hash = ?1 RETURNING body, expires_at",
                    [hash],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)),
                )
                .optional()?
                .filter(|(_, expires_at)| *expires_at > now)
                .map(|(body, _)| body),
            )
        })
        .await
    }
}
