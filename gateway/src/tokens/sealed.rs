//! Secrets the store keeps encrypted: AES-256-GCM under the store's token key
//! (`store.token_key_env`), each bound to what it belongs to (as associated data), so that a sealed
//! value copied into another record (another user's connection, say) does not open there.

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;

pub(crate) struct Sealer {
    cipher: Aes256Gcm,
}

impl Sealer {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new_from_slice(key).expect("a 32-byte key"),
        }
    }

    /// `plain`, encrypted and bound to `bound_to`: base64url(nonce || ciphertext). Bound to ""
    /// is AES-GCM without associated data, as the identity provider's tokens were always sealed.
    pub(crate) fn seal(&self, plain: &[u8], bound_to: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plain,
            aad: bound_to.as_bytes(),
        };
        let sealed = self
            .cipher
            .encrypt(&Nonce::from(nonce), payload)
            .expect("encryption works");
        URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat())
    }

    /// What [`Sealer::seal`] sealed, bound to `bound_to`; `None` if it was sealed with another key,
    /// bound to something else, or tampered with.
    pub(crate) fn open(&self, sealed: &str, bound_to: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        let (nonce, ciphertext) = bytes.split_at_checked(12)?;
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let payload = Payload {
            msg: ciphertext,
            aad: bound_to.as_bytes(),
        };
        self.cipher.decrypt(&Nonce::from(nonce), payload).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_where_it_belongs() {
        let sealer = Sealer::new(&[7; 32]);
        let sealed = sealer.seal(b"a token", "connection alice /tracker");
        assert_eq!(
            sealer.open(&sealed, "connection alice /tracker").as_deref(),
            Some(&b"a token"[..])
        );
        assert_eq!(sealer.open(&sealed, "connection bob /tracker"), None);
        assert_eq!(
            Sealer::new(&[8; 32]).open(&sealed, "connection alice /tracker"),
            None
        );
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            sealer.open(
                std::str::from_utf8(&tampered).unwrap(),
                "connection alice /tracker"
            ),
            None
        );
        assert_eq!(sealer.open("not base64!", ""), None);
        assert_eq!(sealer.open("", ""), None);
    }
}
