//! The secrets the gateway makes (codes, refresh tokens, states, verifiers) and how it keeps them:
//! random and URL-safe, stored by their hash, compared in constant time; and what signs the
//! gateway's stateless cookies. The authorization server and the connections to backends use these.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// A random, URL-safe secret of `bytes` bytes of entropy.
pub(crate) fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

/// How secrets are stored and compared: base64url(SHA-256).
pub(crate) fn hash_secret(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

/// An HMAC-SHA256 under `key` of `parts` joined by NULs (which none of them holds), base64url: what
/// the gateway's stateless cookies and form tokens are signed with.
pub(crate) fn signed(key: &[u8; 32], parts: &[&str]) -> String {
    use hmac::Mac as _;
    let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(key).expect("any key length");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            mac.update(b"\0");
        }
        mac.update(part.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Constant-time equality for secrets and their hashes.
pub(crate) fn secrets_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
