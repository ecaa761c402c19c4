//! Tokens for a backend's own audience, exchanged for each user at the organisation's identity
//! provider (RFC 8693, `credentials = "exchange"`): the gateway, as its client there, presents what
//! stands for the user (their token at the gateway's identity provider, the gateway's signed
//! assertion, or the token another issuer gave the caller) and asks for a token of the backend's
//! audience and scope. A token is kept per route, user, audience and scope until shortly before it
//! expires; one exchange at a time runs per such key (in the process, and across the replicas of a
//! shared store, by its lock), so that a burst of a user's requests costs the provider one.
//!
//! `invalid_grant` means what stands for the user no longer does: the caller signs in again (401).
//! Anything else that goes wrong (the provider unreachable, or answering otherwise) is the
//! provider's, not the caller's: a 502.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use serde_json::Value;

use crate::cache::Cache;
use crate::config::{ExchangeSettings, Route};
use crate::outbound::{Outbound, read_bounded};
use crate::store::Store;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ANSWER: usize = 64 * 1024;
const KEPT: usize = 50_000;
/// How long another replica's exchange of the same key is waited for.
const LOCK_MS: u64 = 10_000;
/// A token that says nothing of its lifetime is kept this long.
const UNSTATED_LIFETIME: u64 = 60;

/// Why no exchanged token.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// `invalid_grant`: what stood for the user is no longer good there.
    #[error("the identity provider refused the exchange: {0}")]
    Refused(String),
    #[error("the token exchange failed: {0}")]
    Unavailable(String),
}

/// Exchanged tokens, and the exchanges under way.
pub(crate) struct TokenExchanges {
    public: Outbound,
    private: Outbound,
    kept: Cache<String, HeaderValue>,
    flights: Cache<String, Arc<tokio::sync::Mutex<()>>>,
    /// The store other replicas share, whose lock keeps their exchanges one at a time too.
    shared: Option<Arc<dyn Store>>,
}

/// What stands for the user, and its RFC 8693 type.
pub(crate) struct Subject<'a> {
    pub token: &'a str,
    /// A JWT of the gateway's own (its signed assertion), else an access token.
    pub is_assertion: bool,
}

impl TokenExchanges {
    pub(crate) fn new(shared: Option<Arc<dyn Store>>) -> Self {
        Self {
            public: Outbound::new(false, TIMEOUT),
            private: Outbound::new(true, TIMEOUT),
            kept: Cache::new(KEPT),
            flights: Cache::new(KEPT),
            shared,
        }
    }

    /// `Authorization: Bearer` with `user`'s token for `route`'s backend, exchanged as `settings`
    /// say with `subject`, or kept from an earlier exchange.
    pub(crate) async fn bearer(
        &self,
        route: &Route,
        settings: &ExchangeSettings,
        user: &str,
        subject: Subject<'_>,
        now: u64,
    ) -> Result<HeaderValue, ExchangeError> {
        let key = key(route, settings, user);
        if let Some(bearer) = self.kept.get(&key, now) {
            return Ok(bearer);
        }
        let flight = self.flights.upsert(
            key.clone(),
            now,
            || (Arc::new(tokio::sync::Mutex::new(())), now + 60),
            |f, _| f.clone(),
        );
        let _one = flight.lock().await;
        let now = crate::clock::now();
        if let Some(bearer) = self.kept.get(&key, now) {
            return Ok(bearer);
        }
        let lock = format!("exchange:{}", crate::tokens::secrets::hash_secret(&key));
        let holder = crate::tokens::secrets::random_token(12);
        let locked = self.lock_across_replicas(&lock, &holder).await;
        let exchanged = self.exchange(settings, &subject).await;
        if let (true, Some(store)) = (locked, &self.shared) {
            let _ = store.unlock(&lock, &holder).await;
        }
        let (bearer, lifetime) = exchanged?;
        // Renewed before it runs out: a tenth of its life early, at least 5 s, at most 60 s.
        let early = (lifetime / 10).clamp(5, 60);
        let now = crate::clock::now();
        self.kept.insert(
            key,
            bearer.clone(),
            now + lifetime.saturating_sub(early),
            now,
        );
        Ok(bearer)
    }

    /// Forgets `user`'s token for `route`'s backend, which refused it: the next request exchanges
    /// anew.
    pub(crate) fn forget(&self, route: &Route, settings: &ExchangeSettings, user: &str) {
        self.kept.remove(&key(route, settings, user));
    }

    /// Takes the store's lock of this exchange, waiting a while for another replica's; `false` when
    /// it could not be had (the exchange then goes ahead: a second exchange is better than none).
    async fn lock_across_replicas(&self, lock: &str, holder: &str) -> bool {
        let Some(store) = &self.shared else {
            return false;
        };
        let mut waited = 0;
        loop {
            match store.try_lock(lock, holder, LOCK_MS).await {
                Ok(true) => return true,
                Ok(false) if waited < LOCK_MS => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    waited += 100;
                }
                _ => return false,
            }
        }
    }

    /// One exchange at the provider: the token, and how long it lives.
    async fn exchange(
        &self,
        settings: &ExchangeSettings,
        subject: &Subject<'_>,
    ) -> Result<(HeaderValue, u64), ExchangeError> {
        let subject_type = if subject.is_assertion {
            JWT_TYPE
        } else {
            ACCESS_TOKEN_TYPE
        };
        // Made whole before any wait: the serializer is not `Send`.
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", GRANT_TYPE)
                .append_pair("subject_token", subject.token)
                .append_pair("subject_token_type", subject_type)
                .append_pair("requested_token_type", ACCESS_TOKEN_TYPE)
                .append_pair("audience", &settings.audience);
            if let Some(resource) = &settings.resource {
                form.append_pair("resource", resource);
            }
            if let Some(scope) = &settings.scope {
                form.append_pair("scope", scope);
            }
            form.finish()
        };
        let http = if settings.allow_private_network {
            &self.private
        } else {
            &self.public
        };
        let endpoint = &settings.token_endpoint;
        let unavailable = |why: String| ExchangeError::Unavailable(format!("{endpoint}: {why}"));
        let response = http
            .request(reqwest::Method::POST, endpoint)
            .map_err(unavailable)?
            .basic_auth(
                url::form_urlencoded::byte_serialize(settings.client_id.as_bytes())
                    .collect::<String>(),
                Some(
                    url::form_urlencoded::byte_serialize(settings.client_secret.as_bytes())
                        .collect::<String>(),
                ),
            )
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| unavailable(crate::outbound::failure(&e)))?;
        let status = response.status();
        let body = read_bounded(response, MAX_ANSWER, TIMEOUT)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let answer: Value = serde_json::from_slice(&body).unwrap_or_default();
        if !status.is_success() {
            let error = answer["error"].as_str().unwrap_or("no error code");
            let said = answer["error_description"].as_str().unwrap_or_default();
            return Err(if error == "invalid_grant" {
                ExchangeError::Refused(said.to_owned())
            } else {
                unavailable(format!("HTTP {status}, {error}: {said}"))
            });
        }
        let token = answer["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unavailable("the answer holds no access_token".into()))?;
        let mut bearer = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| unavailable("the token is not a header value".into()))?;
        bearer.set_sensitive(true);
        let lifetime = answer["expires_in"].as_u64().unwrap_or(UNSTATED_LIFETIME);
        Ok((bearer, lifetime))
    }
}

/// What an exchanged token is kept under: its route, user, audience and scope (none of which holds
/// a NUL).
fn key(route: &Route, settings: &ExchangeSettings, user: &str) -> String {
    let scope = settings.scope.as_deref().unwrap_or_default();
    format!("{}\0{user}\0{}\0{scope}", route.path, settings.audience)
}
