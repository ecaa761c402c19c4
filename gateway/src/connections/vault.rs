//! Users' tokens at backends, as the data plane asks for them: unsealed for the one user and route
//! they belong to, refreshed shortly before they expire (one refresh at a time per connection
//! across replicas, by the store's lock), and the connection ended when the server refuses a
//! refresh (a 4xx) but kept when it is only unavailable (a 5xx or no answer: this request fails,
//! a later one tries again).

use std::time::Duration;

use super::Connections;
use super::audit::Ended;
use super::errors::ConnectionError;
use crate::clock::now;
use crate::config::{ConnectionSettings, Route};
use crate::store::ConnectionRecord;
use crate::telemetry::metrics::connections as metrics;
use crate::tokens::secrets::random_token;

/// A token with less than this left is refreshed before it is used.
const REFRESH_AHEAD_SECS: u64 = 60;
/// The longest one replica holds a connection's refresh before another may take it over.
const REFRESH_LOCK_MS: u64 = 15_000;

impl Connections {
    /// `sub`'s token at `route`'s backend: `None` when they are not connected there (or no longer:
    /// the server refused a refresh).
    pub(crate) async fn bearer(
        &self,
        sub: &str,
        route: &Route,
        settings: &ConnectionSettings,
    ) -> Result<Option<String>, ConnectionError> {
        let Some(record) = self.store.connection(sub, &route.path).await? else {
            return Ok(None);
        };
        // Tokens for another backend (the route was pointed elsewhere) are not this one's.
        if record.resource != route.backend.url {
            return Ok(None);
        }
        let Some(tokens) = self.open_tokens_of(&record) else {
            // Sealed under another key: of no use, and ended, so that the user connects again.
            tracing::warn!(user = sub, route = %route.path, "a connection's tokens do not open with this key: it ends");
            self.end(sub, &route.path, Ended::KeyChanged).await?;
            return Ok(None);
        };
        let due = record
            .expires_at
            .is_some_and(|at| at <= now() + REFRESH_AHEAD_SECS);
        if !due {
            return Ok(Some(tokens.access_token));
        }
        if tokens.refresh_token.is_none() {
            // Expired with no way to renew it: the user connects again.
            self.end(sub, &route.path, Ended::Expired).await?;
            return Ok(None);
        }
        self.refresh(record, route, settings).await
    }

    /// Refreshes `record`, or waits for the replica that is refreshing it.
    async fn refresh(
        &self,
        record: ConnectionRecord,
        route: &Route,
        settings: &ConnectionSettings,
    ) -> Result<Option<String>, ConnectionError> {
        let lock = format!("connection-refresh:{}:{}", record.sub, record.route);
        let holder = random_token(12);
        let mut waited = Duration::ZERO;
        while !self.store.try_lock(&lock, &holder, REFRESH_LOCK_MS).await? {
            // Another replica refreshes it: its result is read once it is written.
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += Duration::from_millis(100);
            if waited >= Duration::from_millis(REFRESH_LOCK_MS) {
                return Err(ConnectionError::Unavailable(
                    "another refresh of this connection did not finish".into(),
                ));
            }
            match self.store.connection(&record.sub, &record.route).await? {
                Some(current)
                    if current.refreshed_at != record.refreshed_at
                        || current.connected_at != record.connected_at =>
                {
                    return Ok(self.open_tokens_of(&current).map(|t| t.access_token));
                }
                None => return Ok(None),
                _ => {}
            }
        }
        let result = self.refresh_held(&record, route, settings).await;
        if let Err(error) = self.store.unlock(&lock, &holder).await {
            tracing::debug!(%error, "a connection's refresh lock is left to expire");
        }
        result
    }

    async fn refresh_held(
        &self,
        record: &ConnectionRecord,
        route: &Route,
        settings: &ConnectionSettings,
    ) -> Result<Option<String>, ConnectionError> {
        // Read again under the lock: a replica may have refreshed it just before.
        let Some(current) = self.store.connection(&record.sub, &record.route).await? else {
            return Ok(None);
        };
        let tokens = self
            .open_tokens_of(&current)
            .ok_or(ConnectionError::UnknownState)?;
        if current
            .expires_at
            .is_none_or(|at| at > now() + REFRESH_AHEAD_SECS)
        {
            return Ok(Some(tokens.access_token));
        }
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            return Ok(None);
        };
        let found = async {
            let discovered = self.discovered(route, settings).await?;
            let client = self
                .client_of_connection(&current.client_id, &current.issuer, settings)
                .await?;
            Ok::<_, ConnectionError>((discovered, client))
        };
        let (discovered, client) = found.await.inspect_err(|_| {
            metrics::refreshed(&route.path, "unavailable");
        })?;
        // The backend names another server now: the refresh token is not that server's to see.
        if discovered.server.issuer != current.issuer {
            metrics::refreshed(&route.path, "refused");
            self.end(&current.sub, &current.route, Ended::ServerChanged)
                .await?;
            return Ok(None);
        }
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.clone()),
        ];
        if settings.send_resource {
            form.push(("resource", discovered.resource.clone()));
        }
        match self
            .token_request(&discovered, settings, &client, form)
            .await
        {
            Ok(mut fresh) => {
                // A server that does not rotate refresh tokens keeps the one it gave.
                fresh.refresh_token = fresh.refresh_token.or(Some(refresh_token));
                fresh.scope = fresh.scope.or(tokens.scope);
                let kept = self.keep_refreshed(current, &fresh).await?;
                if kept {
                    metrics::refreshed(&route.path, "ok");
                }
                Ok(kept.then_some(fresh.access_token))
            }
            Err(ConnectionError::Refused(reason)) => {
                metrics::refreshed(&route.path, "refused");
                tracing::info!(user = %current.sub, route = %current.route, %reason, "a backend's server refused a refresh");
                self.end(&current.sub, &current.route, Ended::RefreshRefused)
                    .await?;
                Ok(None)
            }
            Err(error) => {
                metrics::refreshed(&route.path, "unavailable");
                Err(error)
            }
        }
    }

    /// Writes `fresh` over the connection it refreshed: `false` when that was ended or replaced
    /// meanwhile (what is there now is the answer).
    async fn keep_refreshed(
        &self,
        current: ConnectionRecord,
        fresh: &super::connect::TokenResponse,
    ) -> Result<bool, ConnectionError> {
        let at = now();
        let refreshed = ConnectionRecord {
            tokens: self.seal_tokens(&current.sub, &current.route, fresh),
            expires_at: fresh.expires_in.map(|secs| at + secs),
            refreshed_at: Some(at),
            ..current
        };
        Ok(self.store.replace_connection(&refreshed).await?)
    }

    /// The backend refused `sub`'s token at `route`. Wanting more scope, the connection ends, and
    /// the next one asks for the scope named too. A token it refuses otherwise is refreshed before
    /// its next use (the gateway thought it in force), unless it cannot be: the server gave no
    /// refresh token, or this token is itself a refresh's, made in the last minute, which the
    /// server refuses as well; then the connection ends too. Either way what discovery found is
    /// looked up again: the backend may have moved to another authorization server. Whether the
    /// connection ended, so that the user must connect again.
    pub(crate) async fn refused_by_backend(
        &self,
        sub: &str,
        route: &Route,
        refusal: &super::BackendRefusal,
    ) -> Result<bool, ConnectionError> {
        self.forget_discovery(route);
        if let super::BackendRefusal::MoreScope(wanted) = refusal {
            // The scope named is asked for next time; one not named is for the user to grant.
            if let Some(scope) = wanted {
                tracing::info!(user = sub, route = %route.path, %scope, "the backend asks for more scope: the user connects again");
                let at = now();
                self.wanted_scopes.insert(
                    (sub.to_owned(), route.path.clone()),
                    scope.clone(),
                    at + super::WANTED_SCOPE_SECS,
                    at,
                );
            }
            self.end(sub, &route.path, Ended::MoreScope).await?;
            return Ok(true);
        }
        let Some(current) = self.store.connection(sub, &route.path).await? else {
            return Ok(true);
        };
        let renewable = self
            .open_tokens_of(&current)
            .is_some_and(|t| t.refresh_token.is_some());
        let just_refreshed = current
            .refreshed_at
            .is_some_and(|at| now() < at + REFRESH_AHEAD_SECS);
        if !renewable || just_refreshed {
            tracing::info!(user = sub, route = %route.path, renewable, "the backend refused a token that cannot be renewed: the user connects again");
            self.end(sub, &route.path, Ended::TokenRefused).await?;
            return Ok(true);
        }
        let expired = ConnectionRecord {
            expires_at: Some(0),
            ..current
        };
        self.store.replace_connection(&expired).await?;
        Ok(false)
    }
}
