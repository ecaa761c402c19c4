//! The signing keys: loaded from a PEM file or the environment, or generated at start; and the JWKS
//! that publishes their public halves.

use bytes::Bytes;
use gateway_assertion::{KeyAlgorithm, SigningKey, jwk_set};
use jsonwebtoken::DecodingKey;

use crate::config::runtime::{KeySource, TokenSettings};
use crate::store::StoredKey;

/// The active signing key, and every key whose tokens may still be in use, as a JWKS.
pub struct KeyRing {
    active: SigningKey,
    /// Every key's decoding form, prepared once: `(kid, key, algorithm)`.
    decoding: Vec<(String, DecodingKey, KeyAlgorithm)>,
    jwks: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyLoadError {
    #[error("cannot read the signing key {0}: {1}")]
    Read(String, std::io::Error),
    #[error("the signing key from {0}: {1}")]
    Bad(String, gateway_assertion::KeyError),
}

impl KeyRing {
    pub fn load(settings: &TokenSettings) -> Result<Self, KeyLoadError> {
        let active = match &settings.key {
            KeySource::File(path) => {
                let pem = std::fs::read_to_string(path)
                    .map_err(|e| KeyLoadError::Read(path.display().to_string(), e))?;
                SigningKey::from_pkcs8_pem(settings.algorithm, &pem)
                    .map_err(|e| KeyLoadError::Bad(path.display().to_string(), e))?
            }
            KeySource::Env { name, pem } => SigningKey::from_pkcs8_pem(settings.algorithm, pem)
                .map_err(|e| KeyLoadError::Bad(format!("${name}"), e))?,
            KeySource::Generated => {
                tracing::warn!(
                    "no signing key configured: generated one for this run; tokens will not survive a restart"
                );
                SigningKey::generate(settings.algorithm)
                    .map_err(|e| KeyLoadError::Bad("a new key".into(), e))?
            }
        };
        Ok(Self::new(active, Vec::new()))
    }

    /// The ring from the keys a store holds (newest first): the newest signs, the others still verify.
    /// With none stored, a new key is generated and returned for storing.
    pub fn from_stored(
        settings: &TokenSettings,
        stored: &[StoredKey],
        now: u64,
    ) -> Result<(Self, Option<StoredKey>), KeyLoadError> {
        let mut keys = Vec::new();
        for key in stored {
            let algorithm = match key.algorithm.as_str() {
                "ES256" => KeyAlgorithm::Es256,
                _ => KeyAlgorithm::EdDsa,
            };
            keys.push(
                SigningKey::from_pkcs8_pem(algorithm, &key.pkcs8_pem)
                    .map_err(|e| KeyLoadError::Bad(format!("the stored key {}", key.kid), e))?,
            );
        }
        if keys.is_empty() {
            let key = SigningKey::generate(settings.algorithm)
                .map_err(|e| KeyLoadError::Bad("a new key".into(), e))?;
            let record = StoredKey {
                kid: key.kid().to_owned(),
                algorithm: match settings.algorithm {
                    KeyAlgorithm::EdDsa => "EdDSA".into(),
                    KeyAlgorithm::Es256 => "ES256".into(),
                },
                pkcs8_pem: key.pkcs8_pem().to_owned(),
                created_at: now,
            };
            tracing::info!(kid = %key.kid(), "generated a signing key and stored it");
            return Ok((Self::new(key, Vec::new()), Some(record)));
        }
        let active = keys.remove(0);
        Ok((Self::new(active, keys), None))
    }

    /// A ring signing with `active` that also verifies (and publishes) `retired` keys, whose tokens may
    /// still be unexpired.
    pub fn new(active: SigningKey, retired: Vec<SigningKey>) -> Self {
        let jwks = serde_json::to_vec(&jwk_set(std::iter::once(&active).chain(&retired)))
            .expect("a JWKS serialises")
            .into();
        let decoding = std::iter::once(&active)
            .chain(&retired)
            .filter_map(|k| {
                let key = DecodingKey::from_jwk(k.public_jwk()).ok()?;
                Some((k.kid().to_owned(), key, k.algorithm()))
            })
            .collect();
        Self {
            active,
            decoding,
            jwks,
        }
    }

    pub fn active(&self) -> &SigningKey {
        &self.active
    }

    /// The verifying key a `kid` names, if it is one of ours.
    pub fn decoding_key(&self, kid: &str) -> Option<(&DecodingKey, KeyAlgorithm)> {
        self.decoding
            .iter()
            .find(|(id, _, _)| id == kid)
            .map(|(_, key, alg)| (key, *alg))
    }

    /// The JWKS document, serialised once.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }
}
