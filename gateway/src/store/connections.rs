//! What the store keeps of users' connections to backends that have their own authorization server
//! (`credentials = "oauth"`): each user's tokens there, per route, sealed by the caller before they
//! reach the store; the gateway's own registrations as a client at each server; and the connect
//! flows between sending a browser to a server and its return. A trait of its own beside
//! [`super::Store`] (which requires it), each store implementing it in a file of its own.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreResult;
use super::records::{PendingAuthorization, UserIdentity};

/// A user's connection to a route's backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConnectionRecord {
    /// The user, as the gateway knows them.
    pub sub: String,
    /// The route's path.
    pub route: String,
    /// The backend's resource the tokens were issued for: another backend behind the same route
    /// (the config changed) is not connected.
    pub resource: String,
    /// The authorization server that issued them, and the client they were issued to (a refresh
    /// goes to the same).
    pub issuer: String,
    pub client_id: String,
    /// The access token, the refresh token and the scope granted, sealed by the caller.
    pub tokens: String,
    /// When the access token expires, if the server said (seconds since the epoch).
    pub expires_at: Option<u64>,
    /// When the user connected: a connection is replaced only by a refresh of itself.
    pub connected_at: u64,
    pub refreshed_at: Option<u64>,
}

/// The gateway's own client at an authorization server, made by dynamic registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RegistrationRecord {
    /// The server's issuer, exactly as its metadata names it: a registration is used only there.
    pub issuer: String,
    /// The redirect URI registered: a gateway at another public URL registers again.
    pub redirect_uri: String,
    pub client_id: String,
    /// The client's secret, sealed by the caller; `None` for a public client.
    pub secret: Option<String>,
    /// `none`, `client_secret_basic` or `client_secret_post`.
    pub auth_method: String,
    pub registered_at: u64,
    /// When the secret expires (RFC 7591 `client_secret_expires_at`); 0 for never.
    pub expires_at: u64,
}

/// A browser sent to a backend's authorization server to connect, until it returns (by the hash of
/// the `state` it carries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConnectFlow {
    pub sub: String,
    pub route: String,
    pub resource: String,
    pub issuer: String,
    pub client_id: String,
    /// The PKCE verifier of the request, sealed by the caller.
    pub verifier: String,
    /// The redirect URI the request named, which the token request must name again.
    pub redirect_uri: String,
    /// The sign-in at the gateway that waits for this connection (its pending authorization, taken
    /// from the store when it was approved), with who signed in and their identity provider's
    /// tokens (sealed): it ends in the client's code once the user is connected. `None` for a
    /// connection made from the connections page.
    pub pending: Option<PendingAuthorization>,
    pub user: Option<UserIdentity>,
    pub idp_tokens: Option<String>,
    pub expires_at: u64,
}

#[async_trait]
pub(crate) trait ConnectionStore: Send + Sync {
    /// Keeps a user's connection to a route, replacing whatever connection they had there.
    async fn put_connection(&self, connection: &ConnectionRecord) -> StoreResult<()>;
    async fn connection(&self, sub: &str, route: &str) -> StoreResult<Option<ConnectionRecord>>;
    /// A user's connections, for their page and for ending them all.
    async fn connections(&self, sub: &str) -> StoreResult<Vec<ConnectionRecord>>;
    /// Writes a refreshed connection only over the one it refreshed (the same `connected_at`):
    /// `false` when it was ended or replaced meanwhile, and then nothing is written.
    async fn replace_connection(&self, refreshed: &ConnectionRecord) -> StoreResult<bool>;
    /// Ends a user's connection to a route, returning it if there was one.
    async fn delete_connection(
        &self,
        sub: &str,
        route: &str,
    ) -> StoreResult<Option<ConnectionRecord>>;

    async fn put_registration(&self, registration: &RegistrationRecord) -> StoreResult<()>;
    async fn registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> StoreResult<Option<RegistrationRecord>>;
    /// Forgets a registration the server no longer knows.
    async fn delete_registration(&self, issuer: &str, redirect_uri: &str) -> StoreResult<()>;

    /// Keeps a connect flow until its `expires_at`.
    async fn put_connect_flow(&self, state_hash: &str, flow: &ConnectFlow) -> StoreResult<()>;
    /// Removes and returns it: each flow completes at most once.
    async fn take_connect_flow(
        &self,
        state_hash: &str,
        now: u64,
    ) -> StoreResult<Option<ConnectFlow>>;
}
