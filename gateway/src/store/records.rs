//! The records the store keeps, serialised as JSON inside whatever holds them.

use serde::{Deserialize, Serialize};

/// A registered OAuth client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ClientRecord {
    pub client_id: String,
    /// SHA-256 (base64url) of the secret, for confidential clients.
    pub secret_hash: Option<String>,
    /// When the secret expires (seconds since the epoch); 0 for never.
    pub secret_expires_at: u64,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub scope: Option<String>,
    pub application_type: Option<String>,
    pub issued_at: u64,
    /// Where it came from: "dynamic", "config" or "metadata_document".
    pub origin: String,
    /// A first-party client from the config whose users are not asked to consent.
    #[serde(default)]
    pub skip_consent: bool,
    /// When a client described by a metadata document is to be fetched again (the record is gone
    /// then); 0 for a client that stays.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expires_at: u64,
    /// A `private_key_jwt` client's public keys (a JWK set), or where it publishes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl ClientRecord {
    /// Whether the record is past its time: a metadata document's, to be fetched again.
    pub(crate) fn expired(&self, now: u64) -> bool {
        self.expires_at != 0 && self.expires_at <= now
    }
}

/// An authorization between `/authorize` and the code: what was asked, and who logged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingAuthorization {
    pub client_id: String,
    pub redirect_uri: String,
    /// Whether the request named the redirect URI (else it was the client's only one): then, and
    /// only then, the token request must name it too (OAuth 2.1 §4.1.3).
    #[serde(default)]
    pub redirect_uri_given: bool,
    pub state: Option<String>,
    pub scope: String,
    /// The route's resource identifier.
    pub resource: String,
    pub code_challenge: String,
    /// The CSRF token the login and consent forms must echo.
    pub csrf: String,
    /// SHA-256 of the secret in the browser's cookie: the browser that started the authorization.
    #[serde(default)]
    pub browser_hash: String,
    /// Set once the user has logged in.
    pub user: Option<UserIdentity>,
    pub expires_at: u64,
    /// The PKCE verifier of the gateway's own request to the identity provider.
    #[serde(default, rename = "upstream_verifier")]
    pub idp_verifier: Option<String>,
    /// The OpenID Connect nonce of that request.
    #[serde(default, rename = "upstream_nonce")]
    pub idp_nonce: Option<String>,
    /// Whether the user approved this client before being sent to the identity provider.
    #[serde(default)]
    pub consented: bool,
    /// Wrong passwords so far (the `local` provider).
    #[serde(default)]
    pub failed_logins: u32,
}

/// Who the user is, as the identity provider said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UserIdentity {
    pub sub: String,
    pub email: Option<String>,
    pub preferred_username: Option<String>,
    /// Groups (at GitHub, organisations and teams by numeric id), for the routes' policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The provider listed more groups than were read: a rule that denies by group treats the
    /// user as a member of every group.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub groups_truncated: bool,
}

/// An issued authorization code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CodeRecord {
    pub client_id: String,
    pub redirect_uri: String,
    #[serde(default)]
    pub redirect_uri_given: bool,
    pub code_challenge: String,
    pub scope: String,
    pub resource: String,
    pub user: UserIdentity,
    pub expires_at: u64,
    /// The identity provider's tokens, sealed (encrypted at rest); stored under their first name.
    #[serde(default, rename = "upstream")]
    pub idp_tokens: Option<String>,
}

/// What a user granted a client: the root of every token issued from one authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GrantRecord {
    pub grant_id: String,
    pub client_id: String,
    pub scope: String,
    pub resource: String,
    pub user: UserIdentity,
    pub created_at: u64,
    pub revoked: bool,
    /// The identity provider's tokens, sealed (encrypted at rest); stored under their first name.
    #[serde(default, rename = "upstream")]
    pub idp_tokens: Option<String>,
    /// When a refresh token of the grant was last rotated: the store stamps it as it rotates one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<u64>,
}

/// A signing key as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredKey {
    pub kid: String,
    /// "EdDSA" or "ES256".
    pub algorithm: String,
    pub pkcs8_pem: String,
    pub created_at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grant as a store written before the identity provider's tokens had their present name.
    const STORED_GRANT: &str = r#"{"grant_id":"g","client_id":"c","scope":"mcp","resource":"r",
        "user":{"sub":"u","email":null,"preferred_username":null},"created_at":1,"revoked":false,
        "upstream":"sealed"}"#;

    #[test]
    fn records_already_stored_still_read_and_are_written_the_same_way() {
        let grant: GrantRecord = serde_json::from_str(STORED_GRANT).unwrap();
        assert_eq!(grant.idp_tokens.as_deref(), Some("sealed"));
        let written = serde_json::to_value(&grant).unwrap();
        assert_eq!(written["upstream"], "sealed");
        let pending = serde_json::json!({ "client_id": "c", "redirect_uri": "r", "state": null,
            "scope": "mcp", "resource": "r", "code_challenge": "x", "csrf": "t", "user": null,
            "expires_at": 1, "upstream_verifier": "v", "upstream_nonce": "n" });
        let pending: PendingAuthorization = serde_json::from_value(pending).unwrap();
        assert_eq!(pending.idp_verifier.as_deref(), Some("v"));
        assert_eq!(pending.idp_nonce.as_deref(), Some("n"));
    }
}
