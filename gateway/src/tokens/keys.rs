//! The signing keys: loaded from a PEM file or the environment, or generated at start; and the JWKS
//! that publishes their public halves.

use bytes::Bytes;
use gateway_assertion::{KeyAlgorithm, SigningKey, jwk_set};
use jsonwebtoken::DecodingKey;

use crate::config::{KeySource, TokenSettings};
use crate::store::StoredKey;

/// The active signing key, and every key whose tokens may still be in use, as a JWKS.
pub(crate) struct KeyRing {
    active: SigningKey,
    /// Every key's decoding form, prepared once: `(kid, key, algorithm)`.
    decoding: Vec<(String, DecodingKey, KeyAlgorithm)>,
    jwks: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyLoadError {
    #[error("cannot read the signing key {0}: {1}")]
    Read(String, std::io::Error),
    #[error("the signing key from {0}: {1}")]
    Bad(String, gateway_assertion::KeyError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl KeyRing {
    /// The ring the gateway signs with at start, and when its signing key was made, if known: the
    /// configured key (a file's is as old as its last write; one from the environment, unknown),
    /// or the keys kept in `store`, a new one made and stored when there is none or it is due.
    /// `token_lifetime` is how long what a key signed lives.
    pub(crate) async fn at_start(
        settings: &TokenSettings,
        store: &dyn crate::store::Store,
        token_lifetime: u64,
    ) -> Result<(Self, Option<u64>), KeyLoadError> {
        let written = match &settings.key {
            KeySource::File(path) => std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
            KeySource::Env { .. } => None,
            KeySource::Generated => return Self::from_store(settings, store, token_lifetime).await,
        };
        Ok((Self::load(settings)?, written))
    }

    /// The ring of the keys kept in `store`, a new one made and stored when there is none or it is
    /// due, and when the signing key was made.
    async fn from_store(
        settings: &TokenSettings,
        store: &dyn crate::store::Store,
        token_lifetime: u64,
    ) -> Result<(Self, Option<u64>), KeyLoadError> {
        let stored = store.keys().await?;
        let (ring, new) =
            Self::from_stored(settings, &stored, token_lifetime, crate::clock::now())?;
        let Some(new) = new else {
            return Ok((ring, stored.first().map(|k| k.created_at)));
        };
        // Replicas starting together may each make one: all read the store again and sign with
        // the same newest, verifying the others'.
        store.put_key(&new).await?;
        let stored = store.keys().await?;
        let ring = Self::from_stored(settings, &stored, token_lifetime, crate::clock::now())?.0;
        Ok((ring, stored.first().map(|k| k.created_at)))
    }

    pub(crate) fn load(settings: &TokenSettings) -> Result<Self, KeyLoadError> {
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

    /// The ring from the keys a store holds (newest first): the newest signs, older ones still verify
    /// while tokens they signed may be unexpired (`token_lifetime` after their successor appeared). A
    /// new key is generated, and returned for storing, when there is none or the newest is older than
    /// `rotate_after`.
    pub(crate) fn from_stored(
        settings: &TokenSettings,
        stored: &[StoredKey],
        token_lifetime: u64,
        now: u64,
    ) -> Result<(Self, Option<StoredKey>), KeyLoadError> {
        let due = stored.first().is_none_or(|newest| {
            settings
                .rotate_after
                .is_some_and(|after| newest.created_at + after.as_secs() <= now)
        });
        let mut records: Vec<StoredKey> = stored.to_vec();
        let mut new = None;
        if due {
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
            tracing::info!(kid = %key.kid(), retiring = records.first().map(|r| r.kid.as_str()).unwrap_or("-"), "generated a signing key and stored it");
            records.insert(0, record.clone());
            new = Some(record);
        }
        let mut keys = Vec::new();
        for (i, key) in records.iter().enumerate() {
            // A retired key stays while what it signed may still be live.
            if i > 0 && records[i - 1].created_at + token_lifetime <= now {
                break;
            }
            let algorithm = match key.algorithm.as_str() {
                "ES256" => KeyAlgorithm::Es256,
                _ => KeyAlgorithm::EdDsa,
            };
            keys.push(
                SigningKey::from_pkcs8_pem(algorithm, &key.pkcs8_pem)
                    .map_err(|e| KeyLoadError::Bad(format!("the stored key {}", key.kid), e))?,
            );
        }
        let active = keys.remove(0);
        Ok((Self::new(active, keys), new))
    }

    /// A ring signing with `active` that also verifies (and publishes) `retired` keys, whose tokens may
    /// still be unexpired.
    pub(crate) fn new(active: SigningKey, retired: Vec<SigningKey>) -> Self {
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

    pub(crate) fn active(&self) -> &SigningKey {
        &self.active
    }

    /// The verifying key a `kid` names, if it is one of ours.
    pub(crate) fn decoding_key(&self, kid: &str) -> Option<(&DecodingKey, KeyAlgorithm)> {
        self.decoding
            .iter()
            .find(|(id, _, _)| id == kid)
            .map(|(_, key, alg)| (key, *alg))
    }

    /// The JWKS document, serialised once.
    pub(crate) fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn settings() -> TokenSettings {
        TokenSettings {
            issuer: "http://gw".into(),
            key: KeySource::Generated,
            algorithm: KeyAlgorithm::EdDsa,
            assertion_lifetime: Duration::from_secs(60),
            clock_skew: Duration::from_secs(30),
            rotate_after: Some(Duration::from_secs(100)),
        }
    }

    fn kids(ring: &KeyRing) -> Vec<String> {
        let jwks: serde_json::Value = serde_json::from_slice(&ring.jwks()).unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn keys_rotate_and_retired_ones_stay_while_their_tokens_live() {
        let settings = settings();
        let (ring, a) = KeyRing::from_stored(&settings, &[], 500, 1000).unwrap();
        let a = a.expect("a first key");
        assert_eq!(kids(&ring), vec![a.kid.clone()]);

        let (ring, none) =
            KeyRing::from_stored(&settings, std::slice::from_ref(&a), 500, 1050).unwrap();
        assert!(none.is_none(), "not due yet");
        assert_eq!(ring.active().kid(), a.kid);

        let (ring, b) =
            KeyRing::from_stored(&settings, std::slice::from_ref(&a), 500, 1100).unwrap();
        let b = b.expect("rotated");
        assert_eq!(ring.active().kid(), b.kid);
        assert_eq!(
            kids(&ring),
            vec![b.kid.clone(), a.kid.clone()],
            "the old key still verifies"
        );

        let (ring, c) =
            KeyRing::from_stored(&settings, &[b.clone(), a.clone()], 500, 1700).unwrap();
        let c = c.expect("rotated again");
        assert_eq!(
            kids(&ring),
            vec![c.kid.clone(), b.kid.clone()],
            "A's tokens are all expired by now"
        );
    }
}
