//! The gateway's configuration, in two layers: [`file`] holds the TOML exactly as written (unknown
//! keys refused, closed choices as enums, but for header names, matched without regard to case as
//! HTTP matches them, in their section's module), and [`load`] validates it, one module per section
//! ([`server`], [`tokens`], [`store`], [`routes`] with their [`policy`] and its CEL conditions
//! ([`when`]) and the backends' own authorization servers ([`connections`]), [`auth`], [`providers`], [`redirects`], [`clients`], the listener's certificate,
//! [`tls`], and where traces go, [`telemetry`]), into three parts kept apart ([`Loaded`]): what
//! starts the process ([`start`]), fixed for its life, which a reload only compares to name what
//! needs a restart; what a reload swaps; and the configured clients, whose plain secrets go to the
//! store and no further. What runs is a [`Config`]: the start part in force and the live part.
//! Every error names the file, the key and the reason, on one line. The lowest layer: it uses
//! nothing else of the crate.

mod auth;
mod clients;
#[cfg(test)]
mod common_tests;
mod connections;
#[cfg(test)]
mod connections_tests;
mod describe;
mod exchange;
pub(crate) mod file;
mod issuers;
#[cfg(test)]
mod machines_tests;
mod policy;
mod providers;
pub(crate) mod redirects;
mod routes;
mod runtime;
mod server;
mod start;
mod store;
mod telemetry;
mod tls;
mod tokens;
pub(crate) mod uri;
mod when;

pub(crate) use auth::CimdSettings;
pub(crate) use clients::{CLIENT_CREDENTIALS, ClientSettings, JWT_BEARER};
pub(crate) use connections::ConnectionSettings;
pub(crate) use exchange::{ExchangeSettings, SubjectToken};
pub(crate) use issuers::{ASYMMETRIC, ExternalIssuer, Introspection};
pub(crate) use policy::{Effect, Kind, Policy, Rule};
pub(crate) use providers::{GitHubSettings, LocalUser, OidcSettings, Provider};
pub(crate) use redirects::PrivateUseSchemes;
#[cfg(test)]
pub(crate) use routes::is_reserved;
pub(crate) use routes::{BackendCommand, Credentials, Route};
pub(crate) use runtime::{Config, Loaded, Reloaded};
pub(crate) use server::{ClientAddressHeader, TrustedProxies};
pub(crate) use store::{RedisSettings, RedisTls, StoreSettings};
pub(crate) use telemetry::TelemetrySettings;
pub(crate) use tls::TlsFiles;
pub(crate) use tokens::{KeySource, TokenSettings};
pub(crate) use when::Facts;

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {location}{reason}")]
pub(crate) struct ConfigError {
    file: String,
    /// "`key`: " when the error belongs to a key.
    location: String,
    reason: String,
}

impl ConfigError {
    pub(crate) fn new(
        file: &std::path::Path,
        key: Option<&str>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            file: file.display().to_string(),
            location: key.map(|k| format!("`{k}`: ")).unwrap_or_default(),
            reason: one_line(&reason.into()),
        }
    }
}

/// Names a key in errors.
struct Errors<'a> {
    path: &'a std::path::Path,
}

impl Errors<'_> {
    fn at(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::new(self.path, Some(key), reason)
    }

    /// The gateway's client id at another server (`{at}.client_id`, not empty) and its secret,
    /// from the environment variable `{at}.client_secret_env` names.
    fn client_of(
        &self,
        at: &str,
        client_id: &str,
        secret_env: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(String, String), ConfigError> {
        if client_id.trim().is_empty() {
            return Err(self.at(&format!("{at}.client_id"), "must not be empty"));
        }
        let secret = env(secret_env).filter(|s| !s.is_empty()).ok_or_else(|| {
            self.at(
                &format!("{at}.client_secret_env"),
                format!("the environment variable {secret_env} is not set"),
            )
        })?;
        Ok((client_id.to_owned(), secret))
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads, parses and validates a config file.
pub(crate) fn load(path: &std::path::Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, None, format!("cannot read: {e}")))?;
    let parsed = file::FileConfig::parse(&text)
        .map_err(|(key, reason)| ConfigError::new(path, key.as_deref(), reason))?;
    runtime::Loaded::validate(parsed, path, &|name| std::env::var(name).ok())
}
