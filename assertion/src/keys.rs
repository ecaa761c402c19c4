//! Asymmetric signing keys: generated or loaded from PKCS#8 PEM, named by their RFC 7638 thumbprint,
//! published as JWKs.

use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm as JwkAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// The signature algorithms this contract allows: nothing symmetric, nothing RSA, never `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// Ed25519 (`EdDSA`).
    EdDsa,
    /// ECDSA on P-256 with SHA-256 (`ES256`).
    Es256,
}

impl KeyAlgorithm {
    /// The JOSE algorithm.
    pub fn jose(self) -> Algorithm {
        match self {
            KeyAlgorithm::EdDsa => Algorithm::EdDSA,
            KeyAlgorithm::Es256 => Algorithm::ES256,
        }
    }

    /// The allowed algorithm a JWK was published for, if it names one.
    pub fn of_jwk(jwk: &Jwk) -> Option<Self> {
        match jwk.common.key_algorithm? {
            JwkAlgorithm::EdDSA => Some(KeyAlgorithm::EdDsa),
            JwkAlgorithm::ES256 => Some(KeyAlgorithm::Es256),
            _ => None,
        }
    }

    /// The allowed algorithm for a JOSE `alg`, if it is one.
    pub fn from_jose(alg: Algorithm) -> Option<Self> {
        match alg {
            Algorithm::EdDSA => Some(KeyAlgorithm::EdDsa),
            Algorithm::ES256 => Some(KeyAlgorithm::Es256),
            _ => None,
        }
    }
}

/// Why a key could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PKCS#8 {0:?} private key in PEM form")]
    BadPem(KeyAlgorithm),
    #[error("could not encode the key: {0}")]
    Encoding(String),
    #[error("could not sign: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

/// A private signing key with its public JWK.
pub struct SigningKey {
    algorithm: KeyAlgorithm,
    encoding: EncodingKey,
    pkcs8_pem: String,
    jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private half.
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, KeyError> {
        let mut rng = rand::rngs::OsRng;
        let pem = match algorithm {
            KeyAlgorithm::EdDsa => ed25519_v1_pem(&ed25519_dalek::SigningKey::generate(&mut rng))?,
            KeyAlgorithm::Es256 => p256::SecretKey::random(&mut rng)
                .to_pkcs8_pem(Default::default())
                .map_err(|e| KeyError::Encoding(e.to_string()))?
                .to_string(),
        };
        Self::from_pkcs8_pem(algorithm, &pem)
    }

    /// A key from its PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(algorithm: KeyAlgorithm, pem: &str) -> Result<Self, KeyError> {
        // jsonwebtoken reads only the 48-byte PKCS#8 v1 form of an Ed25519 key, while tools such as
        // ed25519-dalek write v2 (with the public key): normalise to v1.
        let pem = match algorithm {
            KeyAlgorithm::EdDsa => {
                use ed25519_dalek::pkcs8::DecodePrivateKey as _;
                ed25519_v1_pem(
                    &ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
                        .map_err(|_| KeyError::BadPem(algorithm))?,
                )?
            }
            KeyAlgorithm::Es256 => pem.to_owned(),
        };
        let pem = pem.as_str();
        let encoding =
            match algorithm {
                KeyAlgorithm::EdDsa => EncodingKey::from_ed_pem(pem.as_bytes())
                    .map_err(|_| KeyError::BadPem(algorithm))?,
                KeyAlgorithm::Es256 => EncodingKey::from_ec_pem(pem.as_bytes())
                    .map_err(|_| KeyError::BadPem(algorithm))?,
            };
        let mut jwk = Jwk::from_encoding_key(&encoding, algorithm.jose())
            .map_err(|_| KeyError::BadPem(algorithm))?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| KeyError::Encoding(e.to_string()))?;
        jwk.common.key_id = Some(kid);
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(match algorithm {
            KeyAlgorithm::EdDsa => JwkAlgorithm::EdDSA,
            KeyAlgorithm::Es256 => JwkAlgorithm::ES256,
        });
        Ok(Self {
            algorithm,
            encoding,
            pkcs8_pem: pem.to_owned(),
            jwk,
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The key id: the RFC 7638 SHA-256 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        self.jwk.common.key_id.as_deref().unwrap_or_default()
    }

    /// The public half, as a JWK with `kid`, `use` and `alg`.
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The private key in PKCS#8 PEM, for storing it.
    pub fn pkcs8_pem(&self) -> &str {
        &self.pkcs8_pem
    }

    /// Signs `claims` as a compact JWS with this key's `alg` and `kid` and the given `typ`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let mut header = Header::new(self.algorithm.jose());
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid().to_owned());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// An Ed25519 key as PKCS#8 v1 PEM (no public key inside).
fn ed25519_v1_pem(key: &ed25519_dalek::SigningKey) -> Result<String, KeyError> {
    let bytes = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    Ok(bytes
        .to_pkcs8_pem(Default::default())
        .map_err(|e| KeyError::Encoding(e.to_string()))?
        .to_string())
}

/// A JWKS document holding the public halves of `keys`.
pub fn jwk_set<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> JwkSet {
    JwkSet {
        keys: keys.into_iter().map(|k| k.public_jwk().clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_pem_with_a_stable_kid() {
        for alg in [KeyAlgorithm::EdDsa, KeyAlgorithm::Es256] {
            let key = SigningKey::generate(alg).unwrap();
            let again = SigningKey::from_pkcs8_pem(alg, key.pkcs8_pem()).unwrap();
            assert_eq!(key.kid(), again.kid());
            assert_eq!(key.kid().len(), 43, "a base64url SHA-256 thumbprint");
            assert!(!format!("{key:?}").contains("PRIVATE"));
        }
    }

    #[test]
    fn a_pem_of_the_wrong_kind_is_refused() {
        let ed = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
        assert!(SigningKey::from_pkcs8_pem(KeyAlgorithm::Es256, ed.pkcs8_pem()).is_err());
        assert!(SigningKey::from_pkcs8_pem(KeyAlgorithm::EdDsa, "not a pem").is_err());
    }
}
