//! `[tokens]`: the issuer of the gateway's tokens, its signing key and algorithm, and the lifetimes
//! and skew of what it signs. The key itself is never printed.

use std::path::PathBuf;
use std::time::Duration;

use gateway_assertion::KeyAlgorithm;
use url::Url;

use super::file::{FileConfig, SigningAlgorithm};
use super::{ConfigError, Errors};

pub(super) const MAX_ASSERTION_LIFETIME: Duration =
    Duration::from_secs(gateway_assertion::MAX_LIFETIME_SECS);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenSettings {
    pub issuer: String,
    pub key: KeySource,
    pub algorithm: KeyAlgorithm,
    pub assertion_lifetime: Duration,
    pub clock_skew: Duration,
    pub rotate_after: Option<Duration>,
}

/// Where the signing key comes from. The PEM itself is never printed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    File(PathBuf),
    Env {
        name: String,
        pem: String,
    },
    /// Generated on first start and kept in the store (a memory store: a fresh key each start).
    Generated,
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File(path) => write!(f, "file {}", path.display()),
            KeySource::Env { name, .. } => write!(f, "environment variable {name}"),
            KeySource::Generated => write!(f, "generated on first start and kept in the store"),
        }
    }
}

pub(super) fn settings(
    file: &FileConfig,
    public_url: &str,
    errors: &Errors,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<TokenSettings, ConfigError> {
    let tokens = &file.tokens;
    let issuer = match &tokens.issuer {
        None => public_url.to_owned(),
        Some(issuer) => {
            issuer_under(issuer, public_url).map_err(|reason| errors.at("tokens.issuer", reason))?
        }
    };
    let algorithm = match tokens.algorithm {
        None | Some(SigningAlgorithm::EdDSA) => KeyAlgorithm::EdDsa,
        Some(SigningAlgorithm::ES256) => KeyAlgorithm::Es256,
    };
    let assertion_lifetime = tokens.assertion_lifetime.unwrap_or(Duration::from_secs(60));
    if assertion_lifetime < Duration::from_secs(10) || assertion_lifetime > MAX_ASSERTION_LIFETIME {
        return Err(errors.at("tokens.assertion_lifetime", "must be between 10s and 5m"));
    }
    let clock_skew = tokens.clock_skew.unwrap_or(Duration::from_secs(30));
    if clock_skew > Duration::from_secs(300) {
        return Err(errors.at("tokens.clock_skew", "must be at most 5m"));
    }
    if tokens.rotate_after.is_some_and(|d| d.is_zero()) {
        return Err(errors.at("tokens.rotate_after", "must be longer than zero"));
    }
    Ok(TokenSettings {
        rotate_after: tokens.rotate_after,
        issuer,
        key: key_source(file, errors, env)?,
        algorithm,
        assertion_lifetime,
        clock_skew,
    })
}

/// `tokens.issuer`: a URL with no query or fragment, at the public URL or a path under it.
fn issuer_under(issuer: &str, public_url: &str) -> Result<String, String> {
    let url = Url::parse(issuer).map_err(|e| format!("not a URL: {e}"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must have no query or fragment (RFC 8414 §2)".into());
    }
    let issuer = issuer.trim_end_matches('/').to_owned();
    if !issuer.starts_with(public_url) {
        return Err(format!(
            "must be the public URL {public_url} or a path under it"
        ));
    }
    Ok(issuer)
}

/// Where the signing key comes from: a file, an environment variable, or the store.
fn key_source(
    file: &FileConfig,
    errors: &Errors,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<KeySource, ConfigError> {
    match (&file.tokens.signing_key_file, &file.tokens.signing_key_env) {
        (Some(_), Some(_)) => Err(errors.at(
            "tokens.signing_key_env",
            "set signing_key_file or signing_key_env, not both",
        )),
        (Some(path), None) => Ok(KeySource::File(path.clone())),
        (None, Some(name)) => {
            let pem = env(name).ok_or_else(|| {
                errors.at(
                    "tokens.signing_key_env",
                    format!("the environment variable {name} is not set"),
                )
            })?;
            Ok(KeySource::Env {
                name: name.clone(),
                pem,
            })
        }
        (None, None) => Ok(KeySource::Generated),
    }
}
