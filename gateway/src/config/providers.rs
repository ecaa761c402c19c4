//! `[provider]`: where users sign in — a local users file, a GitHub OAuth app, or any OpenID Connect
//! provider. Secrets are read from the environment and never printed.

use std::path::Path;

use url::Url;

use super::file::{FileConfig, ProviderFile, ProviderKind, StoreFile};
use super::{ConfigError, Errors};

#[derive(Debug, Clone)]
pub(crate) enum Provider {
    Local {
        users: Vec<LocalUser>,
        /// Where they were read from, which a reload reads again.
        file: std::path::PathBuf,
    },
    GitHub(GitHubSettings),
    Oidc(OidcSettings),
}

impl Provider {
    /// Its kind, as the config names it and metrics label it.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Provider::Local { .. } => "local",
            Provider::GitHub(_) => "github",
            Provider::Oidc(_) => "oidc",
        }
    }
}

/// Any OpenID Connect provider, found by discovery from its issuer. The secret is never printed.
#[derive(Clone)]
pub(crate) struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    pub send_resource: bool,
    pub allowed_emails: Vec<String>,
    pub allowed_domains: Vec<String>,
    /// The ID token claim that lists the user's groups.
    pub groups_claim: String,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A GitHub OAuth app as the identity provider. The secret is never printed.
#[derive(Clone)]
pub(crate) struct GitHubSettings {
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    pub authorize_url: String,
    pub token_url: String,
    pub api_url: String,
    pub allowed_users: Vec<String>,
    pub allowed_user_ids: Vec<u64>,
    pub allowed_orgs: Vec<String>,
    pub allowed_org_ids: Vec<u64>,
    /// Learn the user's organisations and teams at sign-in, as groups (set when a route's policy
    /// names groups; it asks GitHub for `read:org`).
    pub groups: bool,
}

impl std::fmt::Debug for GitHubSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("client_id", &self.client_id)
            .field("authorize_url", &self.authorize_url)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

/// A user of the `local` provider. The hash is never printed.
#[derive(Clone)]
pub(crate) struct LocalUser {
    pub username: String,
    pub password_hash: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
}

impl std::fmt::Debug for LocalUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalUser")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The identity provider of `[provider]`; `None` without one (no login: a data plane only).
pub(super) fn settings(
    file: &FileConfig,
    config_path: &Path,
    errors: &Errors,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Provider>, ConfigError> {
    let Some(provider) = &file.provider else {
        return Ok(None);
    };
    Ok(Some(match provider.kind {
        ProviderKind::Oidc => Provider::Oidc(oidc_settings(provider, errors, env)?),
        ProviderKind::GitHub => Provider::GitHub(github_settings(provider, errors, env)?),
        ProviderKind::Local => {
            let users_file = provider.users_file.as_ref().ok_or_else(|| {
                errors.at(
                    "provider.users_file",
                    "the local provider needs a users file",
                )
            })?;
            // Relative to the config file, so a config works from any directory.
            let users_path = config_path
                .parent()
                .unwrap_or(Path::new("."))
                .join(users_file);
            Provider::Local {
                users: load_users(&users_path)
                    .map_err(|reason| errors.at("provider.users_file", reason))?,
                file: users_path,
            }
        }
    }))
}

fn oidc_settings(
    provider: &ProviderFile,
    errors: &Errors,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<OidcSettings, ConfigError> {
    let issuer = provider
        .issuer
        .clone()
        .ok_or_else(|| errors.at("provider.issuer", "the oidc provider needs its issuer URL"))?;
    let url = Url::parse(&issuer)
        .map_err(|e| errors.at("provider.issuer", format!("{issuer:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(errors.at(
            "provider.issuer",
            format!("{issuer:?} is not an http(s) URL"),
        ));
    }
    let github = github_settings(provider, errors, env)?;
    let scopes = provider.scopes.clone().unwrap_or_else(|| {
        vec![
            "openid".into(),
            "email".into(),
            "profile".into(),
            "offline_access".into(),
        ]
    });
    if !scopes.iter().any(|s| s == "openid") {
        return Err(errors.at("provider.scopes", "must include openid"));
    }
    Ok(OidcSettings {
        issuer: issuer.trim_end_matches('/').to_owned(),
        client_id: github.client_id,
        client_secret: github.client_secret,
        scopes,
        send_resource: provider.send_resource.unwrap_or(false),
        allowed_emails: provider.allowed_emails.clone().unwrap_or_default(),
        allowed_domains: provider.allowed_domains.clone().unwrap_or_default(),
        groups_claim: provider
            .groups_claim
            .clone()
            .unwrap_or_else(|| "groups".into()),
    })
}

fn github_settings(
    provider: &ProviderFile,
    errors: &Errors,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<GitHubSettings, ConfigError> {
    let client_id = provider.client_id.clone().ok_or_else(|| {
        errors.at(
            "provider.client_id",
            "GitHub and OIDC need the gateway's client_id there",
        )
    })?;
    let secret_env = provider.client_secret_env.as_ref().ok_or_else(|| {
        errors.at(
            "provider.client_secret_env",
            "GitHub and OIDC need the variable holding the client secret",
        )
    })?;
    let client_secret = env(secret_env).ok_or_else(|| {
        errors.at(
            "provider.client_secret_env",
            format!("the environment variable {secret_env} is not set"),
        )
    })?;
    let root = |value: &Option<String>, key: &str, default: &str| -> Result<String, ConfigError> {
        let raw = value.clone().unwrap_or_else(|| default.to_owned());
        let url =
            Url::parse(&raw).map_err(|e| errors.at(key, format!("{raw:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(errors.at(key, format!("{raw:?} is not an http(s) URL")));
        }
        Ok(raw.trim_end_matches('/').to_owned())
    };
    let web = root(&provider.web_url, "provider.web_url", "https://github.com")?;
    let api_url = root(
        &provider.api_url,
        "provider.api_url",
        "https://api.github.com",
    )?;
    Ok(GitHubSettings {
        client_id,
        client_secret,
        scopes: provider
            .scopes
            .clone()
            .unwrap_or_else(|| vec!["read:user".into(), "user:email".into()]),
        authorize_url: format!("{web}/login/oauth/authorize"),
        token_url: format!("{web}/login/oauth/access_token"),
        api_url,
        allowed_users: provider.allowed_users.clone().unwrap_or_default(),
        allowed_user_ids: provider.allowed_user_ids.clone().unwrap_or_default(),
        allowed_orgs: provider.allowed_orgs.clone().unwrap_or_default(),
        allowed_org_ids: provider.allowed_org_ids.clone().unwrap_or_default(),
        groups: false,
    })
}

/// `store.token_key_env`: the 32-byte key that seals the provider's tokens at rest.
pub(super) fn token_key(
    store: &StoreFile,
    errors: &Errors,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<[u8; 32], ConfigError> {
    let key_env = store.token_key_env.as_ref().ok_or_else(|| {
        errors.at(
            "store.token_key_env",
            "GitHub, OIDC and routes with credentials = \"oauth\" need a key to encrypt their tokens at rest",
        )
    })?;
    let key = env(key_env).ok_or_else(|| {
        errors.at(
            "store.token_key_env",
            format!("the environment variable {key_env} is not set"),
        )
    })?;
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, key.trim())
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .ok_or_else(|| {
            errors.at(
                "store.token_key_env",
                format!("{key_env} must hold 32 bytes in base64 (openssl rand -base64 32)"),
            )
        })
}

/// Reads a users file; the error says which user is wrong and why.
fn load_users(path: &Path) -> Result<Vec<LocalUser>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let parsed: super::file::UsersFile =
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
    let mut users: Vec<LocalUser> = Vec::new();
    for (i, user) in parsed.users.into_iter().enumerate() {
        if user.username.trim().is_empty() || users.iter().any(|u| u.username == user.username) {
            return Err(format!(
                "{}: users[{i}] has an empty or repeated username",
                path.display()
            ));
        }
        if argon2::PasswordHash::new(&user.password_hash)
            .map(|h| h.algorithm.as_str() != "argon2id")
            .unwrap_or(true)
        {
            return Err(format!(
                "{}: users[{i}] ({}) has no argon2id password_hash (make one with `mcp-auth-gateway hash-password`)",
                path.display(),
                user.username
            ));
        }
        users.push(LocalUser {
            username: user.username,
            password_hash: user.password_hash,
            email: user.email,
            groups: user.groups,
        });
    }
    if users.is_empty() {
        return Err(format!("{} has no [[users]]", path.display()));
    }
    Ok(users)
}
