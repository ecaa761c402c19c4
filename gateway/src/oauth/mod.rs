//! The OAuth 2.1 authorization server MCP clients talk to: dynamic registration ([`register`]) and
//! metadata documents ([`cimd`]), `/authorize` with PKCE ([`authorize`]), the login form of the
//! `local` provider ([`login`]), consent ([`consent`]), the return from GitHub or OIDC
//! ([`callback`]), `/token` ([`token`]), `/revoke` ([`revoke`]) and `/introspect` ([`introspect`]);
//! [`pending`] carries an authorization from `/authorize` to its code. Handlers take a plain
//! [`Request`] and return a [`Response`], so that they know nothing of Pingora and test without it
//! (`rules_tests`). [`AuthServer`] is also what the data plane asks about grants: their revocation
//! and their identity provider's token.

mod account;
mod account_view;
mod assertion;
mod authorize;
mod callback;
mod cimd;
mod client_auth;
mod connect;
mod consent;
mod consent_cookie;
mod errors;
mod grants;
mod introspect;
mod issue;
mod login;
mod machine;
mod pages;
mod pending;
mod pkce;
mod redirect;
mod register;
mod response;
mod revoke;
#[cfg(test)]
mod rules_tests;
mod scope;
mod token;

pub(crate) use crate::tokens::secrets::{hash_secret, random_token, secrets_equal};
pub(crate) use errors::{OAuthError, json_error};
pub(crate) use register::{AUTH_METHODS, GRANT_TYPES};
pub(crate) use response::Response;

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The base64url (no padding) engine, for the submodules.
pub(crate) const URL_SAFE_NO_PAD_ENGINE: base64::engine::GeneralPurpose = URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, Method};
use sha2::{Digest as _, Sha256};

use crate::cache::Cache;
use crate::config::Config;
use crate::config::Provider;
use crate::connections::Connections;
use crate::idp::IdentityProvider;
use crate::idp::local::LocalUsers;

use crate::rate_limit::RateLimiter;
use crate::store::Store;
use crate::telemetry::audit::AuditLog;
use crate::telemetry::metrics::auth::AUTH;
use crate::telemetry::trace::{SPANS, traced};
use crate::tokens::access::AccessTokenVerifier;
use crate::tokens::keys::KeyRing;

/// The authorization server's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AsEndpoint {
    Authorize,
    Login,
    Consent,
    Token,
    Register,
    Revoke,
    Introspect,
    Callback,
    /// The return from a backend's authorization server, connecting a user.
    ConnectCallback,
    /// The gateway's Client ID Metadata Document, for the servers it connects users at.
    ClientMetadata,
    /// The signed-in user's page of their connections and grants.
    Account,
}

impl AsEndpoint {
    pub(crate) const fn path(self) -> &'static str {
        match self {
            AsEndpoint::Authorize => "/authorize",
            AsEndpoint::Login => "/login",
            AsEndpoint::Consent => "/consent",
            AsEndpoint::Token => "/token",
            AsEndpoint::Register => "/register",
            AsEndpoint::Revoke => "/revoke",
            AsEndpoint::Introspect => "/introspect",
            AsEndpoint::Callback => "/callback",
            AsEndpoint::ConnectCallback => crate::connections::CALLBACK_PATH,
            AsEndpoint::ClientMetadata => crate::connections::CLIENT_METADATA_PATH,
            AsEndpoint::Account => account::PATH,
        }
    }

    /// Endpoints that browser-based clients call with `fetch`, and so need CORS.
    pub(crate) fn is_cors(self) -> bool {
        matches!(
            self,
            AsEndpoint::Token | AsEndpoint::Register | AsEndpoint::Revoke
        )
    }
}

/// A request as the handlers see it.
pub(crate) struct Request {
    pub method: Method,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    pub(crate) fn query_params(&self) -> HashMap<String, String> {
        params(self.query.as_deref().unwrap_or_default().as_bytes())
    }

    pub(crate) fn form(&self) -> HashMap<String, String> {
        params(&self.body)
    }

    /// A cookie's value.
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }
}

/// Form or query parameters. A repeated parameter keeps its first value; [`repeated`] finds those,
/// which OAuth forbids (RFC 6749 §3.1).
fn params(raw: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// The first parameter given more than once.
pub(crate) fn repeated(raw: &[u8]) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    url::form_urlencoded::parse(raw)
        .map(|(k, _)| k.into_owned())
        .find(|k| !seen.insert(k.clone()))
}

/// Grants whose revocation (and refresh lock) is kept at most.
const GRANTS_KEPT: usize = 100_000;
/// Grants whose identity provider token is kept unsealed at most.
const IDP_TOKENS_KEPT: usize = 50_000;

/// The authorization server; one per gateway, when a provider is configured. The data plane sees
/// only its façade: [`AuthServer::handle`] for the endpoints, and what it asks about a grant
/// ([`AuthServer::grant_revoked`], [`AuthServer::idp_token`]); its state is its handlers' own.
pub(crate) struct AuthServer {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    keys: Arc<KeyRing>,
    verifier: Arc<AccessTokenVerifier>,
    users: LocalUsers,
    /// The GitHub or OIDC provider, when users sign in there.
    idp: Option<IdentityProvider>,
    /// What the store said of each grant's revocation, by grant id. This and the other caches
    /// and limits below are kept across config reloads ([`AuthServer::reconfigured`]).
    grant_revoked_cache: Arc<Cache<String, bool>>,
    /// Client ID Metadata Documents.
    cimd: cimd::Cimd,
    /// The key that signs consent cookies.
    consent_key: [u8; 32],
    /// Signs the sessions of the connections page ([`account`]).
    account_key: [u8; 32],
    /// The key refresh tokens' successors are derived with.
    refresh_key: [u8; 32],
    /// Unsealed identity provider tokens by grant, so the data plane asks the store once per grant.
    idp_token_cache: Arc<Cache<String, Arc<str>>>,
    /// One refresh at the identity provider at a time per grant.
    refresh_locks: Arc<Cache<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Sign-in attempts per user name, wherever they come from (when the store is not shared).
    login_limiter: Arc<RateLimiter<String>>,
    /// The store's count of revocations when last read ([`grants::UNREAD`] before the first).
    revocation_epoch: Arc<std::sync::atomic::AtomicU64>,
    /// Users' connections to backends with their own authorization server, when a route has one
    /// (kept across reloads, with what discovery found).
    connections: Option<Arc<Connections>>,
    /// The audit trail connections are recorded in, kept for the server of a reloaded config.
    audit: Option<Arc<AuditLog>>,
    /// The keys clients and enterprise identity providers publish, for their assertions.
    published_keys: Arc<assertion::PublishedKeys>,
}

impl AuthServer {
    /// The route whose resource identifier `resource` names: exactly, or with a trailing slash.
    fn route_for(&self, resource: &str) -> Option<&crate::config::Route> {
        let trimmed = resource.strip_suffix('/').unwrap_or(resource);
        self.config.routes.iter().find(|r| r.resource == trimmed)
    }

    pub(crate) fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        keys: Arc<KeyRing>,
        verifier: Arc<AccessTokenVerifier>,
        audit: Option<Arc<AuditLog>>,
    ) -> Self {
        let users = match &config.auth.provider {
            Some(Provider::Local { users, .. }) => LocalUsers::new(users.clone()),
            _ => LocalUsers::default(),
        };
        if let Some(provider) = &config.auth.provider {
            crate::telemetry::metrics::auth::count_logins_of(provider.label());
        }
        let idp = match &config.auth.provider {
            Some(provider) => IdentityProvider::new(
                provider,
                &format!(
                    "{}{}",
                    config.server.public_url,
                    AsEndpoint::Callback.path()
                ),
                config.start.token_key,
            ),
            None => None,
        };
        for route in config.routes.iter().filter(|r| r.connection.is_some()) {
            crate::telemetry::metrics::connections::register_route(&route.path);
        }
        // The config requires the token key of any route that connects users.
        let connections = match (
            config.routes.iter().any(|r| r.connection.is_some()),
            config.start.token_key,
        ) {
            (true, Some(key)) => Some(Arc::new(Connections::new(
                store.clone(),
                &key,
                &config.server.public_url,
                audit.clone(),
            ))),
            _ => None,
        };
        Self {
            consent_key: consent_cookie::key(&keys),
            account_key: derived_key(&keys, "account session"),
            refresh_key: derived_key(&keys, "refresh token successor"),
            cimd: cimd::Cimd::new(
                config.auth.cimd.clone(),
                config.auth.private_use_schemes.clone(),
            ),
            grant_revoked_cache: Arc::new(Cache::new(GRANTS_KEPT)),
            login_limiter: Arc::new(RateLimiter::new(config.rate_limits.login_per_user)),
            config,
            store,
            keys,
            verifier,
            users,
            idp,
            idp_token_cache: Arc::new(Cache::new(IDP_TOKENS_KEPT)),
            refresh_locks: Arc::new(Cache::new(GRANTS_KEPT)),
            revocation_epoch: Arc::new(std::sync::atomic::AtomicU64::new(grants::UNREAD)),
            connections,
            audit,
            published_keys: Arc::default(),
        }
    }

    /// The clock difference allowed with other parties.
    fn skew(&self) -> u64 {
        self.config.start.tokens.clock_skew.as_secs()
    }

    /// The authorization server of a reloaded `config`, on the same store and keys, remembering
    /// what this one does: grants' revocations, the provider's tokens, the refresh locks, and the
    /// sign-in attempts per user name (unless their limit changed).
    pub(crate) fn reconfigured(&self, config: Arc<Config>) -> Self {
        let mut next = Self::new(
            config,
            self.store.clone(),
            self.keys.clone(),
            self.verifier.clone(),
            self.audit.clone(),
        );
        next.grant_revoked_cache = self.grant_revoked_cache.clone();
        next.idp_token_cache = self.idp_token_cache.clone();
        next.refresh_locks = self.refresh_locks.clone();
        next.revocation_epoch = self.revocation_epoch.clone();
        next.published_keys = self.published_keys.clone();
        if next.connections.is_some() && self.connections.is_some() {
            next.connections = self.connections.clone();
        }
        if next.login_limiter.per_minute() == self.login_limiter.per_minute() {
            next.login_limiter = self.login_limiter.clone();
        }
        next
    }

    pub(crate) async fn handle(&self, endpoint: AsEndpoint, request: Request) -> Response {
        let span = tracing::info_span!(
            target: SPANS,
            "oauth",
            otel.name = %format_args!("oauth {}", endpoint.path()),
            error.type = tracing::field::Empty,
        );
        let answer = traced!(span, self.answer(endpoint, request));
        if let Err(error) = &answer {
            span.record("error.type", error_label(error));
        }
        observe(endpoint, &answer);
        answer.unwrap_or_else(|error| error.into_response())
    }

    async fn answer(&self, endpoint: AsEndpoint, request: Request) -> Result<Response, OAuthError> {
        match endpoint {
            AsEndpoint::Authorize => authorize::handle(self, &request).await,
            AsEndpoint::Login => login::handle(self, &request).await,
            AsEndpoint::Consent => consent::handle(self, &request).await,
            AsEndpoint::Token => token::handle(self, &request).await,
            AsEndpoint::Register => register::handle(self, &request).await,
            AsEndpoint::Revoke => revoke::handle(self, &request).await,
            AsEndpoint::Introspect => introspect::handle(self, &request).await,
            AsEndpoint::Callback => callback::handle(self, &request).await,
            AsEndpoint::ConnectCallback => connect::handle(self, &request).await,
            AsEndpoint::ClientMetadata => connect::client_metadata(self),
            AsEndpoint::Account => account::handle(self, &request).await,
        }
    }

    /// How a client is named to the user: the name it gave, else its id.
    async fn client_label(&self, client_id: &str) -> Result<String, OAuthError> {
        if client_id == account::CLIENT {
            return Ok("your connections page".to_owned());
        }
        Ok(self
            .client(client_id)
            .await?
            .and_then(|c| c.client_name)
            .unwrap_or_else(|| client_id.to_owned()))
    }

    /// A client this server knows: registered (in the config or dynamically), or described by a
    /// metadata document fetched at an `/authorize` lately. Nothing is fetched: an unknown URL at
    /// any other endpoint costs no request to it.
    async fn client(
        &self,
        client_id: &str,
    ) -> Result<Option<crate::store::ClientRecord>, OAuthError> {
        let now = crate::clock::now();
        Ok(self
            .store
            .client(client_id)
            .await?
            .filter(|c| !c.expired(now)))
    }

    /// The client of an `/authorize` request: one this server knows, or, when enabled, the one
    /// the metadata document its URL names describes, fetched now and kept in the store (shared by
    /// replicas) for the rest of the sign-in.
    async fn client_at_authorize(
        &self,
        client_id: &str,
    ) -> Result<Option<crate::store::ClientRecord>, OAuthError> {
        if let Some(client) = self.client(client_id).await? {
            return Ok(Some(client));
        }
        if !self.cimd.enabled() || !cimd::Cimd::is_document_url(client_id) {
            return Ok(None);
        }
        match self.cimd.fetch_client(client_id, crate::clock::now()).await {
            Ok(client) => {
                self.store.put_client(&client).await?;
                Ok(Some(client))
            }
            Err(error) => {
                tracing::warn!(client_id, %error, "a client metadata document was refused");
                Err(OAuthError::InvalidClient(error.to_string()))
            }
        }
    }

    /// Whether `client_id` names a metadata document, as this server accepts them: such a client is
    /// public, and one whose document is no longer kept is known by the grant it presents.
    fn is_document_client(&self, client_id: &str) -> bool {
        self.cimd.enabled() && self.cimd.accepts_url(client_id)
    }

    fn url(&self, endpoint: AsEndpoint) -> String {
        format!("{}{}", self.config.server.public_url, endpoint.path())
    }
}

/// Writes the config's clients to the store, on every start and reload so that edits take effect,
/// and removes those taken out of the config, which stop working.
pub(crate) async fn sync_config_clients(
    store: &dyn Store,
    clients: &[crate::config::ClientSettings],
) -> Result<(), crate::store::StoreError> {
    for client in clients {
        store.put_client(&register::configured(client)).await?;
    }
    let keep: Vec<String> = clients.iter().map(|c| c.client_id.clone()).collect();
    for client_id in store.retain_config_clients(&keep).await? {
        tracing::info!(
            client_id,
            "removed a client that is no longer in the config"
        );
    }
    Ok(())
}

/// A key for `purpose`, derived from the gateway's active signing key: every replica holds the same
/// one, and it rotates with the signing key.
pub(crate) fn derived_key(keys: &KeyRing, purpose: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(format!("mcp-auth-gateway {purpose}\0").as_bytes());
    hasher.update(keys.active().pkcs8_pem().as_bytes());
    hasher.finalize().into()
}

/// What an endpoint's answer counts for: a registration made or refused, a revocation, an error.
fn observe(endpoint: AsEndpoint, response: &Result<Response, OAuthError>) {
    match (endpoint, response) {
        (AsEndpoint::Register, Ok(answer)) if answer.status() == 201 => {
            AUTH.registrations.with_label_values(&["created"]).inc();
        }
        (AsEndpoint::Register, _) => AUTH.registrations.with_label_values(&["refused"]).inc(),
        (AsEndpoint::Revoke, Ok(answer)) if answer.status() == 200 => AUTH.revocations.inc(),
        _ => {}
    }
    if let Err(error) = response {
        AUTH.oauth_errors
            .with_label_values(&[endpoint.path().trim_start_matches('/'), error_label(error)])
            .inc();
    }
}

/// An error's OAuth code, or `page` for an error page.
fn error_label(error: &OAuthError) -> &'static str {
    match error {
        OAuthError::Page(_) => "page",
        other => other.code(),
    }
}
