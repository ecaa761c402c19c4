//! The gateway as an OAuth client of the backends that have their own authorization server
//! (`credentials = "oauth"`), each user connecting their own account there: [`discovery`] of the
//! backend's server, the gateway's [`client`] identity at it, [`connect`]ing a user (the browser
//! sent there and back), and the [`vault`] of their tokens the data plane asks for. Nothing here
//! reaches a client: the tokens go only to the backend they were issued for, for the user they
//! were issued to.

mod audit;
mod client;
mod connect;
mod discovery;
mod errors;
mod vault;

use std::sync::Arc;

pub(crate) use audit::Ended;
pub(crate) use connect::Waiting;
pub(crate) use discovery::BackendRefusal;
pub(crate) use errors::ConnectionError;

use crate::cache::Cache;
use crate::clock::now;
use crate::config::{ConnectionSettings, Route};
use crate::outbound::Outbound;
use crate::store::{ConnectionRecord, Store};
use crate::telemetry::audit::AuditLog;
use crate::tokens::sealed::Sealer;
use crate::tokens::secrets::hash_secret;
use discovery::Discovered;

/// Where the browser comes back to, under the gateway's public URL.
pub(crate) const CALLBACK_PATH: &str = "/connect/callback";
/// The gateway's Client ID Metadata Document, under its public URL.
pub(crate) const CLIENT_METADATA_PATH: &str = "/connect/client-metadata.json";
/// How long what discovery found is trusted before it is looked up again.
const DISCOVERY_SECS: u64 = 3600;
const DISCOVERIES_KEPT: usize = 1_000;
/// How long a scope a backend asked for waits for the user's next connection.
const WANTED_SCOPE_SECS: u64 = 600;
/// A registration or a token response is a few kilobytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

pub(crate) struct Connections {
    store: Arc<dyn Store>,
    sealer: Sealer,
    /// Fetches that may reach only public addresses, and those a route lets reach any.
    public_http: Outbound,
    private_http: Outbound,
    /// The gateway's callback, as every server it registers at knows it.
    redirect_uri: String,
    /// The gateway's metadata document URL, when its public URL is https (a document's URL must be).
    client_metadata_url: Option<String>,
    /// What discovery found, by route.
    discovered: Cache<String, Arc<Discovered>>,
    /// Scopes a backend asked a user for (a 403 `insufficient_scope`), asked for when they next
    /// connect there, by user and route.
    wanted_scopes: Cache<(String, String), String>,
    /// Where connections made and ended are recorded, when the config keeps an audit trail.
    audit: Option<Arc<AuditLog>>,
}

impl Connections {
    /// The connections of a gateway at `public_url` whose store seals with `token_key`, recorded
    /// in `audit` when there is one.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        token_key: &[u8; 32],
        public_url: &str,
        audit: Option<Arc<AuditLog>>,
    ) -> Self {
        Self {
            store,
            sealer: Sealer::new(token_key),
            public_http: Outbound::new(false, discovery::TIMEOUT),
            private_http: Outbound::new(true, discovery::TIMEOUT),
            redirect_uri: format!("{public_url}{CALLBACK_PATH}"),
            client_metadata_url: public_url
                .starts_with("https://")
                .then(|| format!("{public_url}{CLIENT_METADATA_PATH}")),
            discovered: Cache::new(DISCOVERIES_KEPT),
            wanted_scopes: Cache::new(DISCOVERIES_KEPT),
            audit,
        }
    }

    /// The gateway's Client ID Metadata Document, as it serves it.
    pub(crate) fn client_metadata(&self) -> Option<serde_json::Value> {
        let url = self.client_metadata_url.as_ref()?;
        Some(serde_json::json!({
            "client_id": url,
            "client_name": "mcp-auth-gateway",
            "application_type": "web",
            "redirect_uris": [self.redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }))
    }

    fn http(&self, settings: &ConnectionSettings) -> &Outbound {
        if settings.allow_private_network {
            &self.private_http
        } else {
            &self.public_http
        }
    }

    /// A POST to `endpoint` for a route with `settings`, if its address may be reached.
    fn post(
        &self,
        settings: &ConnectionSettings,
        endpoint: &str,
    ) -> Result<reqwest::RequestBuilder, ConnectionError> {
        self.http(settings)
            .request(reqwest::Method::POST, endpoint)
            .map_err(|e| ConnectionError::Discovery(format!("{endpoint}: {e}")))
    }

    /// Sends `request` (to `endpoint`, named in errors) and reads its answer: the status and a
    /// bounded body; a 5xx, or no answer, is [`ConnectionError::Unavailable`].
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        endpoint: &str,
    ) -> Result<(http::StatusCode, Vec<u8>), ConnectionError> {
        let unavailable = |why: String| ConnectionError::Unavailable(format!("{endpoint}: {why}"));
        let response = request
            .send()
            .await
            .map_err(|e| unavailable(crate::outbound::failure(&e)))?;
        let status = response.status();
        let body = crate::outbound::read_bounded(response, MAX_ANSWER_BYTES, discovery::TIMEOUT)
            .await
            .map_err(unavailable)?;
        if status.is_server_error() {
            return Err(unavailable(format!("HTTP {status}")));
        }
        Ok((status, body))
    }

    /// What discovery finds for `route`, kept for a while.
    async fn discovered(
        &self,
        route: &Route,
        settings: &ConnectionSettings,
    ) -> Result<Arc<Discovered>, ConnectionError> {
        let key = discovery_key(route);
        if let Some(known) = self.discovered.get(&key, now()) {
            return Ok(known);
        }
        // A failure is counted where it ends what it was for: a connection begun, or finished.
        let found =
            discovery::discover(self.http(settings), &route.backend.url, settings, None).await?;
        let found = Arc::new(found);
        let at = now();
        self.discovered
            .insert(key, found.clone(), at + DISCOVERY_SECS, at);
        Ok(found)
    }

    /// Forgets what discovery found for `route`, when its backend refused a token: it may have
    /// moved to another authorization server (the next connection finds it, and registers there).
    fn forget_discovery(&self, route: &Route) {
        self.discovered.remove(&discovery_key(route));
    }

    /// Whether `sub` is connected to `route`'s backend (with tokens for that backend).
    pub(crate) async fn is_connected(
        &self,
        sub: &str,
        route: &Route,
    ) -> Result<bool, ConnectionError> {
        Ok(self
            .store
            .connection(sub, &route.path)
            .await?
            .is_some_and(|c| c.resource == route.backend.url))
    }

    /// Ends `sub`'s connection to `route`: forgotten here, and revoked at the server (RFC 7009)
    /// when it has a revocation endpoint. Whether there was one.
    pub(crate) async fn disconnect(
        &self,
        sub: &str,
        route: Option<&Route>,
        route_path: &str,
        why: Ended,
    ) -> Result<bool, ConnectionError> {
        let Some(ended) = self.end(sub, route_path, why).await? else {
            return Ok(false);
        };
        if let Some((route, settings)) = route.and_then(|r| r.connection.as_ref().map(|s| (r, s))) {
            self.revoke_at_server(&ended, route, settings).await;
        }
        Ok(true)
    }

    /// Ends every connection of `sub` (the operator revoked the user); how many there were.
    pub(crate) async fn end_all(
        &self,
        sub: &str,
        route_of: impl Fn(&str) -> Option<Route>,
    ) -> Result<usize, ConnectionError> {
        let mut ended = 0;
        for connection in self.store.connections(sub).await? {
            let route = route_of(&connection.route);
            if self
                .disconnect(sub, route.as_ref(), &connection.route, Ended::Operator)
                .await?
            {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Revokes an ended connection's refresh token (else its access token) at its server, when the
    /// server has a revocation endpoint; a failure is logged, the connection is ended here anyway.
    async fn revoke_at_server(
        &self,
        ended: &ConnectionRecord,
        route: &Route,
        settings: &ConnectionSettings,
    ) {
        let Some(tokens) = self.open_tokens_of(ended) else {
            return;
        };
        let revoked = async {
            let discovered = self.discovered(route, settings).await?;
            // Only the server that issued the tokens is sent them.
            let Some(endpoint) = discovered
                .server
                .revocation_endpoint
                .clone()
                .filter(|_| discovered.server.issuer == ended.issuer)
            else {
                return Ok::<_, ConnectionError>(false);
            };
            let client = self
                .client_of_connection(&ended.client_id, &ended.issuer, settings)
                .await?;
            let (token, hint) = match tokens.refresh_token {
                Some(refresh) => (refresh, "refresh_token"),
                None => (tokens.access_token, "access_token"),
            };
            let mut form = vec![("token", token), ("token_type_hint", hint.to_owned())];
            let request = client.authenticate(self.post(settings, &endpoint)?, &mut form);
            let (status, _) = self.send(request.form(&form), &endpoint).await?;
            Ok(status.is_success())
        };
        match revoked.await {
            Ok(true) => {
                tracing::info!(route = %ended.route, "revoked a connection's token at its server")
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(route = %ended.route, %error, "a connection's token could not be revoked at its server")
            }
        }
    }

    fn open_tokens_of(&self, record: &ConnectionRecord) -> Option<connect::Tokens> {
        let plain = self.sealer.open(
            &record.tokens,
            &connection_binding(&record.sub, &record.route),
        )?;
        serde_json::from_slice(&plain).ok()
    }
}

/// What a connection's tokens are sealed to: its user and route.
/// What discovery found for a route is its backend's: a route pointed elsewhere discovers again.
fn discovery_key(route: &Route) -> String {
    format!("{} {}", route.path, route.backend.url)
}

fn connection_binding(sub: &str, route: &str) -> String {
    format!("connection {sub} {route}")
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 §4.2): its SHA-256, base64url.
fn pkce_challenge(verifier: &str) -> String {
    hash_secret(verifier)
}
