//! Signing keys standing in for the gateway's, and the assertions it would send.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use gateway_assertion::{
    ASSERTION_TYP, AssertionClaims, KeyAlgorithm, SigningKey, access_token_hash, jwk_set,
};
use tempfile::TempDir;

pub const ISSUER: &str = "http://gateway.test";

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// A key set like the gateway's, written to a JWKS file.
pub struct GatewayKeys {
    pub keys: Vec<SigningKey>,
    dir: TempDir,
}

impl GatewayKeys {
    /// One EdDSA and one ES256 key.
    pub fn new() -> Self {
        let keys = vec![
            SigningKey::generate(KeyAlgorithm::EdDsa).expect("a key"),
            SigningKey::generate(KeyAlgorithm::Es256).expect("a key"),
        ];
        let this = Self {
            keys,
            dir: tempfile::tempdir().expect("a temporary directory"),
        };
        std::fs::write(this.jwks_path(), this.jwks_json()).expect("the JWKS file");
        this
    }

    pub fn jwks_json(&self) -> String {
        serde_json::to_string(&jwk_set(&self.keys)).expect("JSON")
    }

    pub fn jwks_path(&self) -> PathBuf {
        self.dir.path().join("jwks.json")
    }

    /// Claims as the gateway would make them for `sub` calling with `token`.
    pub fn claims(&self, audience: &str, sub: &str, token: Option<&str>) -> AssertionClaims {
        let now = now();
        AssertionClaims {
            iss: ISSUER.into(),
            aud: audience.into(),
            sub: sub.into(),
            client_id: "test-client".into(),
            scope: "mcp".into(),
            iat: now,
            exp: now + 120,
            ath: token.map(access_token_hash),
            email: None,
            preferred_username: None,
        }
    }

    /// Signs claims with key `index` (0: EdDSA, 1: ES256).
    pub fn sign(&self, index: usize, claims: &AssertionClaims) -> String {
        self.keys[index]
            .sign(ASSERTION_TYP, claims)
            .expect("signing")
    }

    /// A valid assertion for `sub` calling with `token`.
    pub fn assertion(&self, audience: &str, sub: &str, token: Option<&str>) -> String {
        self.sign(0, &self.claims(audience, sub, token))
    }
}

impl Default for GatewayKeys {
    fn default() -> Self {
        Self::new()
    }
}
