//! The claims an assertion carries, and the `ath` hash that binds it to the forwarded token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The payload of an `X-Gateway-Assertion`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionClaims {
    /// The gateway's issuer URL.
    pub iss: String,
    /// The backend's configured audience.
    pub aud: String,
    /// The caller: the subject the gateway authenticated.
    pub sub: String,
    /// The OAuth client the caller used.
    pub client_id: String,
    /// The scopes granted to the caller's token, space-separated.
    #[serde(default)]
    pub scope: String,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch; at most [`crate::MAX_LIFETIME_SECS`] after `iat`.
    pub exp: u64,
    /// base64url(SHA-256(forwarded token)); absent when the gateway forwards no token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ath: Option<String>,
    /// The caller's email, when the gateway forwards one in `X-Forwarded-Email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The caller's username, when the gateway forwards one in `X-Forwarded-Preferred-Username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
}

/// `ath` for a token: base64url without padding of the SHA-256 of its ASCII bytes (RFC 9449 §4.2).
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ath_matches_the_rfc_9449_example() {
        // RFC 9449 §4.3, the access token and its `ath` from the DPoP proof example.
        assert_eq!(
            access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
