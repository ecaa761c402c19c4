//! The gateway's client identity at a backend's authorization server, in the order the MCP spec
//! gives: a client registered beforehand (the route's config); the Client ID Metadata Document the
//! gateway serves about itself, where the server takes one; else dynamic registration (RFC 7591),
//! kept in the store for every replica, bound to the issuer that made it, and made again when the
//! server has forgotten it.

use serde::Deserialize;
use serde_json::json;

use super::Connections;
use super::discovery::ServerMetadata;
use super::errors::ConnectionError;
use crate::clock::now;
use crate::config::ConnectionSettings;
use crate::store::RegistrationRecord;

/// How the gateway authenticates at a server's token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthMethod {
    None,
    Basic,
    Post,
}

impl AuthMethod {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "none" => Some(AuthMethod::None),
            "client_secret_basic" => Some(AuthMethod::Basic),
            "client_secret_post" => Some(AuthMethod::Post),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::Basic => "client_secret_basic",
            AuthMethod::Post => "client_secret_post",
        }
    }
}

/// The gateway as a client of one server.
#[derive(Clone)]
pub(crate) struct Client {
    pub id: String,
    pub secret: Option<String>,
    pub auth: AuthMethod,
    /// Made by dynamic registration: forgotten when the server says it does not know it.
    pub registered: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "set"))
            .field("auth", &self.auth)
            .field("registered", &self.registered)
            .finish()
    }
}

impl Client {
    /// Adds this client's authentication to a token endpoint request (RFC 6749 §2.3.1: the Basic
    /// credentials are form-encoded first).
    pub(crate) fn authenticate(
        &self,
        request: reqwest::RequestBuilder,
        form: &mut Vec<(&'static str, String)>,
    ) -> reqwest::RequestBuilder {
        match (self.auth, &self.secret) {
            (AuthMethod::Basic, Some(secret)) => {
                let encode = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                request.basic_auth(encode(&self.id), Some(encode(secret)))
            }
            (AuthMethod::Post, Some(secret)) => {
                form.push(("client_id", self.id.clone()));
                form.push(("client_secret", secret.clone()));
                request
            }
            _ => {
                form.push(("client_id", self.id.clone()));
                request
            }
        }
    }
}

#[derive(Deserialize)]
struct Registered {
    client_id: String,
    client_secret: Option<String>,
    #[serde(default)]
    client_secret_expires_at: u64,
    token_endpoint_auth_method: Option<String>,
}

impl Connections {
    /// The gateway's client at `server` for a route with `settings`: registered if need be.
    pub(super) async fn client_for(
        &self,
        server: &ServerMetadata,
        settings: &ConnectionSettings,
    ) -> Result<Client, ConnectionError> {
        if let Some(client) = &settings.client {
            let auth =
                AuthMethod::from_name(client.auth_method.as_str()).unwrap_or(AuthMethod::None);
            return Ok(Client {
                id: client.client_id.clone(),
                secret: client.secret.clone(),
                auth,
                registered: false,
            });
        }
        if server.client_id_metadata_document_supported
            && let Some(url) = &self.client_metadata_url
        {
            return Ok(Client {
                id: url.clone(),
                secret: None,
                auth: AuthMethod::None,
                registered: false,
            });
        }
        if let Some(kept) = self
            .store
            .registration(&server.issuer, &self.redirect_uri)
            .await?
            && (kept.expires_at == 0 || kept.expires_at > now() + 60)
        {
            return Ok(self.client_of(&kept));
        }
        self.register(server, settings).await
    }

    /// The client a connection's tokens were issued to, to refresh or revoke them: the route's
    /// own, the registration at `issuer`, or (a metadata document's) no secret at all.
    pub(super) async fn client_of_connection(
        &self,
        client_id: &str,
        issuer: &str,
        settings: &ConnectionSettings,
    ) -> Result<Client, ConnectionError> {
        if let Some(client) = settings
            .client
            .as_ref()
            .filter(|c| c.client_id == client_id)
        {
            return Ok(Client {
                id: client.client_id.clone(),
                secret: client.secret.clone(),
                auth: AuthMethod::from_name(client.auth_method.as_str())
                    .unwrap_or(AuthMethod::None),
                registered: false,
            });
        }
        if let Some(kept) = self.store.registration(issuer, &self.redirect_uri).await?
            && kept.client_id == client_id
        {
            return Ok(self.client_of(&kept));
        }
        Ok(Client {
            id: client_id.to_owned(),
            secret: None,
            auth: AuthMethod::None,
            registered: false,
        })
    }

    fn client_of(&self, kept: &RegistrationRecord) -> Client {
        let bound = registration_binding(&kept.issuer, &kept.redirect_uri);
        Client {
            id: kept.client_id.clone(),
            secret: kept
                .secret
                .as_ref()
                .and_then(|s| self.sealer.open(s, &bound))
                .and_then(|s| String::from_utf8(s).ok()),
            auth: AuthMethod::from_name(&kept.auth_method).unwrap_or(AuthMethod::None),
            registered: true,
        }
    }

    /// Registers the gateway at `server` (RFC 7591) and keeps the registration.
    async fn register(
        &self,
        server: &ServerMetadata,
        settings: &ConnectionSettings,
    ) -> Result<Client, ConnectionError> {
        let failed = |reason: String| ConnectionError::Registration {
            issuer: server.issuer.clone(),
            reason,
        };
        let Some(endpoint) = &server.registration_endpoint else {
            return Err(failed(
                "it offers no dynamic registration: register the gateway there and set \
                 routes.oauth.client_id"
                    .into(),
            ));
        };
        let auth = preferred_auth(server);
        let body = json!({
            "client_name": "mcp-auth-gateway",
            // A server-side client with a redirect URI on the web (SEP-837).
            "application_type": "web",
            "redirect_uris": [self.redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": auth.name(),
        });
        let request = self.post(settings, endpoint)?.json(&body);
        let (status, bytes) = self.send(request, endpoint).await?;
        if !status.is_success() {
            // What it said is logged, not passed to the client's error: it is the server's.
            tracing::warn!(issuer = %server.issuer, %status, answer = %String::from_utf8_lossy(&bytes[..bytes.len().min(300)]), "a registration was refused");
            return Err(failed(format!("HTTP {status}")));
        }
        let registered: Registered = serde_json::from_slice(&bytes)
            .map_err(|e| failed(format!("the answer is not a registration: {e}")))?;
        let auth = registered
            .token_endpoint_auth_method
            .as_deref()
            .and_then(AuthMethod::from_name)
            .unwrap_or(auth);
        if auth != AuthMethod::None && registered.client_secret.is_none() {
            return Err(failed("it gave a confidential client no secret".into()));
        }
        let bound = registration_binding(&server.issuer, &self.redirect_uri);
        let record = RegistrationRecord {
            issuer: server.issuer.clone(),
            redirect_uri: self.redirect_uri.clone(),
            client_id: registered.client_id.clone(),
            secret: registered
                .client_secret
                .as_ref()
                .map(|s| self.sealer.seal(s.as_bytes(), &bound)),
            auth_method: auth.name().to_owned(),
            registered_at: now(),
            expires_at: registered.client_secret_expires_at,
        };
        self.store.put_registration(&record).await?;
        tracing::info!(issuer = %server.issuer, client_id = %record.client_id, "registered at a backend's authorization server");
        Ok(Client {
            id: registered.client_id,
            secret: registered.client_secret,
            auth,
            registered: true,
        })
    }

    /// Forgets a registration the server no longer knows, so that the next connect registers anew.
    pub(super) async fn forget(&self, issuer: &str, client: &Client) {
        if client.registered
            && let Err(error) = self
                .store
                .delete_registration(issuer, &self.redirect_uri)
                .await
        {
            tracing::warn!(%error, issuer, "a registration the server forgot could not be forgotten here");
        }
    }
}

/// What a registration's secret is sealed to.
fn registration_binding(issuer: &str, redirect_uri: &str) -> String {
    format!("registration {issuer} {redirect_uri}")
}

/// The authentication to register with: a secret in a Basic header where the server takes it
/// (RFC 8414's default when it names none), else in the form, else none.
fn preferred_auth(server: &ServerMetadata) -> AuthMethod {
    let supported = server
        .token_endpoint_auth_methods_supported
        .clone()
        .unwrap_or_else(|| vec!["client_secret_basic".into()]);
    [AuthMethod::Basic, AuthMethod::Post, AuthMethod::None]
        .into_iter()
        .find(|m| supported.iter().any(|s| s == m.name()))
        .unwrap_or(AuthMethod::None)
}
