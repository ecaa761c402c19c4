//! `[auth]` and `[provider]`: the authorization server's lifetimes, what it accepts of clients
//! (dynamic registration, metadata documents, redirect schemes), and where users sign in.

use std::path::Path;
use std::time::Duration;

use super::file::FileConfig;
use super::providers::Provider;
use super::redirects::PrivateUseSchemes;
use super::{ConfigError, Errors};

#[derive(Debug, Clone)]
pub(crate) struct AuthSettings {
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    pub code_lifetime: Duration,
    pub refresh_grace: Duration,
    /// The longest a grant lives, however often it is refreshed.
    pub grant_max_lifetime: Duration,
    pub dynamic_registration: bool,
    pub cimd: CimdSettings,
    /// The private-use schemes accepted in redirect URIs.
    pub private_use_schemes: PrivateUseSchemes,
    /// `None`: no login, so no authorization server; the gateway is a data plane only.
    pub provider: Option<Provider>,
    /// The enterprise identity providers whose ID-JAGs the token endpoint takes.
    pub enterprise_issuers: Vec<std::sync::Arc<super::ExternalIssuer>>,
    /// Whether a configured client is a machine client (`client_credentials`), and whether one
    /// authenticates with `private_key_jwt`: the metadata says so.
    pub machine_clients: bool,
    pub private_key_jwt: bool,
}

/// How the operator set Client ID Metadata Documents up.
#[derive(Debug, Clone, Default)]
pub(crate) struct CimdSettings {
    pub enabled: bool,
    /// Hosts whose documents are accepted; empty: any public host.
    pub allowed_domains: Vec<String>,
    /// Accept documents on private, loopback and link-local addresses, and plain http on loopback:
    /// for development and tests only.
    pub allow_private_network: bool,
}

pub(super) fn settings(
    file: &FileConfig,
    config_path: &Path,
    issuers: &[std::sync::Arc<super::ExternalIssuer>],
    errors: &Errors,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<AuthSettings, ConfigError> {
    let lifetime =
        |value: Option<Duration>, key: &str, default: Duration, max: Duration| match value {
            Some(d) if d.is_zero() || d > max => Err(errors.at(
                key,
                format!(
                    "must be longer than zero and at most {}",
                    humantime_serde::re::humantime::format_duration(max)
                ),
            )),
            Some(d) => Ok(d),
            None => Ok(default),
        };
    let day = Duration::from_secs(86_400);
    let auth = &file.auth;
    let provider = super::providers::settings(file, config_path, errors, env)?;
    let enterprise_issuers = super::issuers::named(
        auth.enterprise_issuers.as_ref(),
        issuers,
        errors,
        "auth.enterprise_issuers",
    )?;
    if matches!(provider, Some(Provider::GitHub(_))) && !enterprise_issuers.is_empty() {
        return Err(errors.at(
            "auth.enterprise_issuers",
            "needs a local or oidc provider: GitHub's allowlists cannot admit another provider's users",
        ));
    }
    Ok(AuthSettings {
        access_token_lifetime: lifetime(
            auth.access_token_lifetime,
            "auth.access_token_lifetime",
            Duration::from_secs(3600),
            day,
        )?,
        refresh_token_lifetime: lifetime(
            auth.refresh_token_lifetime,
            "auth.refresh_token_lifetime",
            30 * day,
            365 * day,
        )?,
        code_lifetime: lifetime(
            auth.code_lifetime,
            "auth.code_lifetime",
            Duration::from_secs(60),
            Duration::from_secs(60),
        )?,
        refresh_grace: match auth.refresh_grace {
            Some(d) if d > Duration::from_secs(60) => {
                return Err(errors.at("auth.refresh_grace", "must be at most 1m"));
            }
            Some(d) => d,
            None => Duration::from_secs(10),
        },
        grant_max_lifetime: lifetime(
            auth.grant_max_lifetime,
            "auth.grant_max_lifetime",
            90 * day,
            3650 * day,
        )?,
        dynamic_registration: auth.dynamic_registration.unwrap_or(true),
        cimd: CimdSettings {
            enabled: auth.client_id_metadata_documents.unwrap_or(true),
            allowed_domains: auth.client_id_metadata_domains.clone().unwrap_or_default(),
            allow_private_network: auth
                .client_id_metadata_allow_private_network
                .unwrap_or(false),
        },
        private_use_schemes: super::redirects::private_use_schemes(
            auth.private_use_redirect_schemes.as_deref(),
            errors,
        )?,
        provider,
        enterprise_issuers,
        // What the clients add is known once they are read.
        machine_clients: false,
        private_key_jwt: false,
    })
}
