//! `[store]`: where the authorization server's state lives. SQLite (one file, the default) or
//! memory serve one replica; Redis, one node or a Cluster, is shared by several.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::file::{StoreFile, StoreKind};
use super::{ConfigError, Errors};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreSettings {
    Sqlite(PathBuf),
    Memory,
    Redis(RedisSettings),
}

/// A Redis server or Cluster. Its URL carries the credentials, so it is never printed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RedisSettings {
    /// `redis://` or `rediss://`, with the username and password from the environment.
    pub url: String,
    pub cluster: bool,
    pub key_prefix: String,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    /// For `rediss://`: what to trust and what to show, beyond the system's roots.
    pub tls: RedisTls,
}

/// PEM, read from the files `store.tls_*_file` name and checked to hold what they should.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct RedisTls {
    /// CA certificates to trust instead of the system's.
    pub ca: Option<Vec<u8>>,
    /// A client certificate chain and its private key.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.printable_url())
            .field("cluster", &self.cluster)
            .field("key_prefix", &self.key_prefix)
            .field("tls_ca", &self.tls.ca.is_some())
            .field("tls_client_certificate", &self.tls.client.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisSettings {
    /// The URL without its credentials, for logs and `check`.
    pub(crate) fn printable_url(&self) -> String {
        let mut url = url::Url::parse(&self.url).expect("validated");
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.to_string()
    }
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn settings(
    store: &StoreFile,
    errors: &Errors,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<StoreSettings, ConfigError> {
    let redis_only = [
        ("url", store.url.is_some()),
        ("username_env", store.username_env.is_some()),
        ("password_env", store.password_env.is_some()),
        ("cluster", store.cluster),
        ("key_prefix", store.key_prefix.is_some()),
        ("connect_timeout", store.connect_timeout.is_some()),
        ("response_timeout", store.response_timeout.is_some()),
        ("tls_ca_file", store.tls_ca_file.is_some()),
        ("tls_cert_file", store.tls_cert_file.is_some()),
        ("tls_key_file", store.tls_key_file.is_some()),
    ];
    let kind = store.kind.unwrap_or(StoreKind::Sqlite);
    if kind != StoreKind::Redis
        && let Some((key, _)) = redis_only.iter().find(|(_, given)| *given)
    {
        return Err(errors.at(&format!("store.{key}"), "is only for kind = \"redis\""));
    }
    match kind {
        StoreKind::Sqlite => Ok(StoreSettings::Sqlite(
            store
                .path
                .clone()
                .unwrap_or_else(|| PathBuf::from("data/gateway.db")),
        )),
        StoreKind::Memory if store.path.is_none() => Ok(StoreSettings::Memory),
        StoreKind::Memory => Err(errors.at("store.path", "a memory store has no path")),
        StoreKind::Redis if store.path.is_some() => {
            Err(errors.at("store.path", "a Redis store has no path"))
        }
        StoreKind::Redis => Ok(StoreSettings::Redis(redis(store, errors, env)?)),
    }
}

fn redis(
    store: &StoreFile,
    errors: &Errors,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RedisSettings, ConfigError> {
    let raw = store
        .url
        .as_deref()
        .ok_or_else(|| errors.at("store.url", "a Redis store needs the server's URL"))?;
    let mut url =
        url::Url::parse(raw).map_err(|e| errors.at("store.url", format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "redis" | "rediss") || url.host_str().is_none() {
        return Err(errors.at(
            "store.url",
            "must be redis://host[:port] or rediss://host[:port]",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(errors.at(
            "store.url",
            "holds credentials; name the variables holding them in username_env and password_env",
        ));
    }
    let secret = |key: &str, name: &Option<String>| match name {
        None => Ok(None),
        Some(name) => env(name)
            .filter(|v| !v.is_empty())
            .map(Some)
            .ok_or_else(|| {
                errors.at(
                    &format!("store.{key}"),
                    format!("the variable {name} is not set"),
                )
            }),
    };
    if let Some(username) = secret("username_env", &store.username_env)? {
        let _ = url.set_username(&username);
    }
    if let Some(password) = secret("password_env", &store.password_env)? {
        let _ = url.set_password(Some(&password));
    }
    let key_prefix = store
        .key_prefix
        .clone()
        .unwrap_or_else(|| "mcpgw".to_owned());
    // A brace would change which part of a key Redis Cluster hashes.
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
    if key_prefix.is_empty() || !key_prefix.chars().all(plain) {
        return Err(errors.at("store.key_prefix", "letters, digits and - _ . : only"));
    }
    let tls = tls(store, url.scheme() == "rediss", errors)?;
    Ok(RedisSettings {
        url: url.to_string(),
        cluster: store.cluster,
        key_prefix,
        connect_timeout: store.connect_timeout.unwrap_or(DEFAULT_TIMEOUT),
        response_timeout: store.response_timeout.unwrap_or(DEFAULT_TIMEOUT),
        tls,
    })
}

/// Reads the TLS files now, so that `check` names the one that is wrong.
fn tls(store: &StoreFile, rediss: bool, errors: &Errors) -> Result<RedisTls, ConfigError> {
    let given = [
        ("tls_ca_file", &store.tls_ca_file),
        ("tls_cert_file", &store.tls_cert_file),
        ("tls_key_file", &store.tls_key_file),
    ];
    if !rediss && let Some((key, _)) = given.iter().find(|(_, path)| path.is_some()) {
        return Err(errors.at(&format!("store.{key}"), "is only for a rediss:// (TLS) url"));
    }
    let read = |key: &str, path: &Path, holds: fn(&[u8]) -> bool, what: &str| {
        let at = format!("store.{key}");
        let pem = std::fs::read(path)
            .map_err(|e| errors.at(&at, format!("cannot read {}: {e}", path.display())))?;
        if !holds(&pem) {
            return Err(errors.at(&at, format!("{} holds no {what}", path.display())));
        }
        Ok(pem)
    };
    let certificates = |pem: &[u8]| {
        let mut all = CertificateDer::pem_slice_iter(pem);
        all.next().is_some_and(|c| c.is_ok()) && all.all(|c| c.is_ok())
    };
    let private_key = |pem: &[u8]| PrivateKeyDer::from_pem_slice(pem).is_ok();
    let ca = match &store.tls_ca_file {
        Some(path) => Some(read("tls_ca_file", path, certificates, "PEM certificate")?),
        None => None,
    };
    let client = match (&store.tls_cert_file, &store.tls_key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some((
            read("tls_cert_file", cert, certificates, "PEM certificate")?,
            read("tls_key_file", key, private_key, "PEM private key")?,
        )),
        (Some(_), None) => {
            return Err(errors.at("store.tls_key_file", "is needed with tls_cert_file"));
        }
        (None, Some(_)) => {
            return Err(errors.at("store.tls_cert_file", "is needed with tls_key_file"));
        }
    };
    Ok(RedisTls { ca, client })
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
