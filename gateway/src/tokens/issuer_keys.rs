//! One other authorization server as the gateway reaches it: its published keys, fetched when
//! first needed, again after an hour, and for a `kid` not known at most every few seconds (so that
//! forged `kid`s cannot make the gateway hammer it); and its metadata, where the configuration
//! leaves out where its keys or its introspection endpoint are.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;

use super::access::TokenError;
use crate::config::ExternalIssuer;

use crate::outbound::{Outbound, read_bounded};

/// Keys are looked up again for an unknown `kid` no sooner than this after the last time.
pub(super) const REFETCH_SECS: u64 = 5;
/// Keys are looked up again anyway after this long: issuers rotate them.
const KEYS_SECS: u64 = 3600;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_DOCUMENT: usize = 256 * 1024;

/// One issuer's keys, as last fetched, and the client that asks it.
pub(crate) struct IssuerKeys {
    /// Whose keys they are: an issuer identifier (its metadata is found from it), or a client's.
    issuer: String,
    /// Where its keys are; `None`: found in its metadata.
    jwks_uri: Option<String>,
    pub(super) http: Outbound,
    fetched: tokio::sync::Mutex<Fetched>,
    /// Its introspection endpoint, once found in its metadata.
    pub(super) introspection_endpoint: std::sync::Mutex<Option<String>>,
}

#[derive(Default)]
struct Fetched {
    keys: Option<Arc<JwkSet>>,
    /// When they were last asked for (fetched or not), and when fetched.
    asked_at: u64,
    fetched_at: u64,
}

impl IssuerKeys {
    /// The keys a client publishes at `jwks_uri`, which the operator named (so it may be on a
    /// private network).
    pub(crate) fn of_client(client_id: &str, jwks_uri: &str) -> Self {
        Self {
            http: Outbound::new(true, FETCH_TIMEOUT),
            issuer: client_id.to_owned(),
            jwks_uri: Some(jwks_uri.to_owned()),
            fetched: tokio::sync::Mutex::new(Fetched::default()),
            introspection_endpoint: std::sync::Mutex::new(None),
        }
    }

    pub(crate) fn new(settings: &ExternalIssuer) -> Self {
        Self {
            http: Outbound::new(settings.allow_private_network, FETCH_TIMEOUT),
            issuer: settings.issuer().to_owned(),
            jwks_uri: settings.jwks_uri.clone(),
            fetched: tokio::sync::Mutex::new(Fetched::default()),
            introspection_endpoint: std::sync::Mutex::new(None),
        }
    }

    /// The key `kid` names (or the one key, when the token names none), fetching the issuer's keys
    /// when they are old or do not have it, no more often than every [`REFETCH_SECS`].
    pub(crate) async fn key(
        &self,
        kid: Option<&str>,
        now: u64,
    ) -> Result<jsonwebtoken::DecodingKey, TokenError> {
        let mut fetched = self.fetched.lock().await;
        let stale = fetched.keys.is_none() || now >= fetched.fetched_at + KEYS_SECS;
        let known = fetched
            .keys
            .as_ref()
            .and_then(|set| find(set, kid))
            .is_some();
        if (stale || !known) && now >= fetched.asked_at + REFETCH_SECS || fetched.asked_at == 0 {
            fetched.asked_at = now.max(1);
            match self.fetch().await {
                Ok(set) => {
                    fetched.keys = Some(Arc::new(set));
                    fetched.fetched_at = now;
                }
                Err(error) => {
                    tracing::warn!(issuer = %self.issuer, %error, "the keys of an issuer could not be fetched");
                }
            }
        }
        let set = fetched.keys.clone().ok_or(TokenError::UnknownKey)?;
        drop(fetched);
        let jwk = find(&set, kid).ok_or(TokenError::UnknownKey)?;
        jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|_| TokenError::UnknownKey)
    }

    /// The issuer's key set: from its `jwks_uri`, configured or named by its metadata.
    async fn fetch(&self) -> Result<JwkSet, String> {
        let uri = match &self.jwks_uri {
            Some(uri) => uri.clone(),
            None => self.metadata_uri("jwks_uri").await?,
        };
        let set: JwkSet = serde_json::from_slice(&self.get(&uri).await?)
            .map_err(|e| format!("{uri} is not a key set: {e}"))?;
        Ok(set)
    }

    /// A URL of the issuer's metadata (`field`: `jwks_uri`, `introspection_endpoint`): OpenID
    /// discovery, then RFC 8414; its `issuer` must be the one configured.
    pub(super) async fn metadata_uri(&self, field: &str) -> Result<String, String> {
        let issuer = &self.issuer;
        let url = url::Url::parse(issuer).map_err(|e| e.to_string())?;
        let path = url.path().trim_end_matches('/');
        let origin = url.origin().ascii_serialization();
        let candidates = [
            format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ),
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
        ];
        for candidate in candidates {
            let Ok(body) = self.get(&candidate).await else {
                continue;
            };
            let metadata: Value = serde_json::from_slice(&body).unwrap_or_default();
            if metadata["issuer"].as_str() != Some(issuer) {
                return Err(format!("{candidate} names another issuer"));
            }
            if let Some(uri) = metadata[field].as_str() {
                return Ok(uri.to_owned());
            }
        }
        Err(format!("no metadata of {issuer} names its {field}"))
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let response = self
            .http
            .request(reqwest::Method::GET, url)?
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {}", crate::outbound::failure(&e)))?;
        if !response.status().is_success() {
            return Err(format!("{url}: HTTP {}", response.status()));
        }
        read_bounded(response, MAX_DOCUMENT, FETCH_TIMEOUT)
            .await
            .map_err(|e| format!("{url}: {e}"))
    }
}

/// The key `kid` names; without a `kid`, the set's only key.
fn find<'a>(set: &'a JwkSet, kid: Option<&str>) -> Option<&'a jsonwebtoken::jwk::Jwk> {
    match kid {
        Some(kid) => set.find(kid),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }
}
