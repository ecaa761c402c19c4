//! The access token every protected request carries: an RFC 9068 JWT signed with the gateway's own ES256
//! key (which the bench generates and hands to it), so the gateway and HAProxy check the very same token.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use gateway_assertion::{KeyAlgorithm, SigningKey};
use integration_tests::gateway::access_claims;

/// A P-256 key, written to `es256.pem` (PKCS#8, for the gateway) and, through `openssl`, `es256.pub.pem`
/// (the public key in the form HAProxy's `jwt_verify` reads).
pub fn generate_key(dir: &Path) -> Result<(SigningKey, PathBuf, PathBuf)> {
    let key = SigningKey::generate(KeyAlgorithm::Es256)?;
    let private = dir.join("es256.pem");
    let public = dir.join("es256.pub.pem");
    std::fs::write(&private, key.pkcs8_pem())?;
    let status = Command::new("openssl")
        .args(["pkey", "-in"])
        .arg(&private)
        .args(["-pubout", "-out"])
        .arg(&public)
        .status()
        .context("running openssl")?;
    if !status.success() {
        bail!("openssl could not write the public key");
    }
    Ok((key, private, public))
}

/// An access token for `audience` as the gateway at `issuer` would issue it (or another issuer, of
/// the same shape), valid for an hour (longer than any run), naming a user the gateway passes on in
/// its identity headers.
pub fn mint(key: &SigningKey, issuer: &str, audience: &str) -> Result<String> {
    let mut claims = access_claims(issuer, audience, "bench-user", "mcp", 3600);
    claims["preferred_username"] = "bench".into();
    Ok(key.sign("at+jwt", &claims)?)
}
