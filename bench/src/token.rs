//! The access token every protected request carries: an RFC 9068 JWT signed with the gateway's own ES256
//! key (which the bench generated and handed to it), so the gateway and HAProxy check the very same token.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A P-256 key pair in PEM files: `es256.pem` (PKCS#8, for the gateway) and `es256.pub.pem` (for HAProxy).
pub fn generate_key(dir: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let private = dir.join("es256.pem");
    let public = dir.join("es256.pub.pem");
    let run = |args: &[&str]| -> Result<()> {
        let status = Command::new("openssl")
            .args(args)
            .status()
            .context("running openssl")?;
        if !status.success() {
            bail!("openssl {args:?} failed");
        }
        Ok(())
    };
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        private.to_str().unwrap(),
    ])?;
    run(&[
        "pkey",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ])?;
    Ok((private, public))
}

/// Signs an access token for `audience` the way the gateway's `/token` would, with the gateway's key id.
pub async fn mint(private_key: &Path, gateway: &str, audience: &str) -> Result<String> {
    let jwks: Value = reqwest::get(format!("{gateway}/.well-known/jwks.json"))
        .await?
        .json()
        .await?;
    let kid = jwks["keys"][0]["kid"]
        .as_str()
        .context("the gateway's JWKS has no key id")?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = json!({
        "iss": gateway,
        "sub": "bench-user",
        "aud": audience,
        "client_id": "bench-client",
        "scope": "mcp",
        "iat": now,
        "exp": now + 3600,
        "jti": format!("bench-{now}"),
        "preferred_username": "bench",
    });
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_ec_pem(&std::fs::read(private_key)?)?;
    Ok(jsonwebtoken::encode(&header, &claims, &key)?)
}
