//! The validated configuration: what the rest of the gateway reads.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gateway_assertion::KeyAlgorithm;
use url::Url;

use super::ConfigError;
use super::file::{CommandFile, FileConfig, RouteFile};

pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";
pub const DEFAULT_MAX_BODY: u64 = 4 * 1024 * 1024;
pub const DEFAULT_MAX_HEADERS: usize = 32 * 1024;
pub const MAX_ASSERTION_LIFETIME: Duration =
    Duration::from_secs(gateway_assertion::MAX_LIFETIME_SECS);

#[derive(Debug, Clone)]
pub struct Config {
    pub source: PathBuf,
    pub listen: SocketAddr,
    /// The public origin, without a trailing slash.
    pub public_url: String,
    pub threads: usize,
    pub grace_period: Duration,
    /// Browser origins allowed on the MCP routes, normalised (`scheme://host[:port]`).
    pub allowed_origins: Vec<String>,
    pub metrics_listen: Option<SocketAddr>,
    pub tokens: TokenSettings,
    pub max_request_body_bytes: u64,
    pub max_request_header_bytes: usize,
    pub routes: Vec<Route>,
    /// The index of the route whose metadata is also at the root well-known URL.
    pub default_route: usize,
    pub store: StoreSettings,
    pub auth: AuthSettings,
    pub welcome: Option<String>,
    /// Clients from the config, as they go into the store.
    pub clients: Vec<crate::store::ClientRecord>,
    pub rate_limits: RateLimits,
}

/// Requests per minute per client IP on the authorization server's endpoints; 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub register: u32,
    pub token: u32,
    pub authorize: u32,
    pub login: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSettings {
    Sqlite(PathBuf),
    Memory,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    pub code_lifetime: Duration,
    pub refresh_grace: Duration,
    pub dynamic_registration: bool,
    pub cimd: crate::oauth::cimd::CimdSettings,
    /// The private-use schemes accepted in redirect URIs.
    pub private_use_schemes: PrivateUseSchemes,
    /// `None`: no login, so no authorization server; the gateway is a data plane only.
    pub provider: Option<Provider>,
}

/// The private-use schemes of native apps (RFC 8252 §7.1) that redirect URIs may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateUseSchemes {
    /// The default: a reverse-domain scheme (`com.example.app:/cb`), or any scheme in the
    /// `app://host/…` shape that apps in the field use.
    Any,
    /// Only these, lower case; empty: none.
    Only(Vec<String>),
}

impl PrivateUseSchemes {
    /// Whether a redirect URI with `scheme` (lower case, as URLs are parsed), with or without an
    /// authority, is accepted.
    pub fn accepts(&self, scheme: &str, has_authority: bool) -> bool {
        match self {
            PrivateUseSchemes::Any => scheme.contains('.') || has_authority,
            PrivateUseSchemes::Only(schemes) => schemes.iter().any(|s| s == scheme),
        }
    }

    /// The accepted schemes, for an error message.
    pub fn describe(&self) -> String {
        match self {
            PrivateUseSchemes::Any => {
                "a reverse-domain scheme (com.example.app:/cb) or app://host/… form".into()
            }
            PrivateUseSchemes::Only(schemes) if schemes.is_empty() => "(no app schemes)".into(),
            PrivateUseSchemes::Only(schemes) => schemes.join(", "),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Provider {
    Local { users: Vec<LocalUser> },
    GitHub(GitHubSettings),
    Oidc(OidcSettings),
}

/// Any OpenID Connect provider, found by discovery from its issuer. The secret is never printed.
#[derive(Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    pub send_resource: bool,
    pub allowed_emails: Vec<String>,
    pub allowed_domains: Vec<String>,
    pub token_key: [u8; 32],
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A GitHub OAuth app as the upstream identity provider. The secret is never printed.
#[derive(Clone)]
pub struct GitHubSettings {
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    pub authorize_url: String,
    pub token_url: String,
    pub api_url: String,
    pub allowed_users: Vec<String>,
    pub allowed_orgs: Vec<String>,
    /// The key that encrypts upstream tokens at rest.
    pub token_key: [u8; 32],
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
pub struct LocalUser {
    pub username: String,
    pub password_hash: String,
    pub email: Option<String>,
}

impl std::fmt::Debug for LocalUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalUser")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub key: KeySource,
    pub algorithm: KeyAlgorithm,
    pub assertion_lifetime: Duration,
    pub clock_skew: Duration,
    pub rotate_after: Option<Duration>,
}

/// Where the signing key comes from. The PEM itself is never printed.
#[derive(Clone)]
pub enum KeySource {
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

/// How the backend of a route gets credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// The internal headers: upstream token, identity, and the signed assertion.
    Headers,
    /// The upstream token as `Authorization: Bearer`.
    Bearer,
    /// The signed assertion as `Authorization: Bearer`.
    Assertion,
    /// Nothing.
    None,
}

#[derive(Debug, Clone)]
pub struct Route {
    /// The public path, e.g. `/mcp`; also the route's label in metrics and logs.
    pub path: String,
    /// The canonical resource identifier: public URL + path.
    pub resource: String,
    /// Where this route's protected resource metadata is served (path) and its full URL.
    pub metadata_path: String,
    pub metadata_url: String,
    pub resource_name: String,
    pub scopes_supported: Vec<String>,
    pub required_scopes: Vec<String>,
    pub credentials: Credentials,
    pub backend_audience: String,
    pub upstream: Upstream,
    pub command: Option<Command>,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub url: String,
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// The path requests are sent to.
    pub path: String,
    /// The `Host` header the upstream expects, and `path` as a request target: checked here once
    /// rather than parsed on every request.
    pub host_header: http::HeaderValue,
    pub target: http::Uri,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub working_dir: Option<PathBuf>,
}

/// Names a key in errors.
struct Errors<'a> {
    path: &'a Path,
}

impl Errors<'_> {
    fn at(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::new(self.path, Some(key), reason)
    }
}

impl Config {
    /// Every scope any route supports, sorted, each once: what the metadata advertises and what a
    /// registration may ask for.
    pub fn supported_scopes(&self) -> Vec<&str> {
        let mut scopes: Vec<&str> = self
            .routes
            .iter()
            .flat_map(|r| r.scopes_supported.iter().map(String::as_str))
            .collect();
        scopes.sort_unstable();
        scopes.dedup();
        scopes
    }

    /// Validates a parsed file; `env` reads an environment variable (secrets live there).
    pub fn validate(
        file: FileConfig,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let errors = Errors { path };
        let listen = file.server.listen.parse::<SocketAddr>().map_err(|e| {
            errors.at(
                "server.listen",
                format!("{:?} is not an address: {e}", file.server.listen),
            )
        })?;
        let public_url = origin_of(&file.server.public_url)
            .map_err(|reason| errors.at("server.public_url", reason))?;
        let threads = file.server.threads.unwrap_or(2);
        if !(1..=256).contains(&threads) {
            return Err(errors.at("server.threads", "must be between 1 and 256"));
        }
        let mut allowed_origins = vec![public_url.clone()];
        for (i, origin) in file.server.allowed_origins.iter().enumerate() {
            let origin = origin_of(origin)
                .map_err(|reason| errors.at(&format!("server.allowed_origins[{i}]"), reason))?;
            allowed_origins.push(origin);
        }
        let metrics_listen = match file.metrics.listen.as_deref() {
            Some("off") => None,
            Some(addr) => Some(addr.parse().map_err(|e| {
                errors.at(
                    "metrics.listen",
                    format!("{addr:?} is not an address or \"off\": {e}"),
                )
            })?),
            None => Some(DEFAULT_METRICS_LISTEN.parse().expect("a valid default")),
        };
        if metrics_listen == Some(listen) {
            return Err(errors.at("metrics.listen", "must differ from server.listen"));
        }
        let tokens = token_settings(&file, &public_url, &errors, env)?;
        let max_request_body_bytes = file
            .limits
            .max_request_body_bytes
            .unwrap_or(DEFAULT_MAX_BODY);
        let max_request_header_bytes = file
            .limits
            .max_request_header_bytes
            .unwrap_or(DEFAULT_MAX_HEADERS);
        if max_request_body_bytes == 0 {
            return Err(errors.at("limits.max_request_body_bytes", "must be more than zero"));
        }
        if !(1024..=64 * 1024).contains(&max_request_header_bytes) {
            return Err(errors.at(
                "limits.max_request_header_bytes",
                "must be between 1024 and 65536",
            ));
        }

        if file.routes.is_empty() {
            return Err(errors.at("routes", "at least one [[routes]] entry is needed"));
        }
        let mut routes = Vec::with_capacity(file.routes.len());
        for (i, route) in file.routes.iter().enumerate() {
            let route = validate_route(route, &public_url, &errors, &format!("routes[{i}]"))?;
            if let Some(other) = routes.iter().find(|r: &&Route| r.path == route.path) {
                return Err(errors.at(
                    &format!("routes[{i}].path"),
                    format!("{} is already used", other.path),
                ));
            }
            routes.push(route);
        }
        let defaults: Vec<usize> = file
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.default == Some(true))
            .map(|(i, _)| i)
            .collect();
        let default_route = match defaults.as_slice() {
            [] => 0,
            [one] => *one,
            [_, second, ..] => {
                return Err(errors.at(
                    &format!("routes[{second}].default"),
                    "only one route can be the default",
                ));
            }
        };
        let store = match file.store.kind.as_deref() {
            None | Some("sqlite") => StoreSettings::Sqlite(
                file.store
                    .path
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("data/gateway.db")),
            ),
            Some("memory") if file.store.path.is_none() => StoreSettings::Memory,
            Some("memory") => return Err(errors.at("store.path", "a memory store has no path")),
            Some(other) => {
                return Err(errors.at(
                    "store.kind",
                    format!("{other:?} is not \"sqlite\" or \"memory\""),
                ));
            }
        };
        let auth = auth_settings(&file, path, &errors, env)?;
        let clients = file
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| {
                validate_client(
                    c,
                    &errors,
                    &format!("clients[{i}]"),
                    &auth.private_use_schemes,
                    env,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some((i, _)) = clients
            .iter()
            .enumerate()
            .find(|(i, c)| clients[..*i].iter().any(|o| o.client_id == c.client_id))
        {
            return Err(errors.at(&format!("clients[{i}].client_id"), "is already used"));
        }
        let rate_limits = RateLimits {
            register: file.rate_limits.register.unwrap_or(20),
            token: file.rate_limits.token.unwrap_or(120),
            authorize: file.rate_limits.authorize.unwrap_or(60),
            login: file.rate_limits.login.unwrap_or(30),
        };
        Ok(Config {
            clients,
            rate_limits,
            welcome: file.server.welcome.clone(),
            store,
            auth,
            source: path.to_owned(),
            listen,
            public_url,
            threads,
            grace_period: file.server.grace_period.unwrap_or(Duration::from_secs(5)),
            allowed_origins,
            metrics_listen,
            tokens,
            max_request_body_bytes,
            max_request_header_bytes,
            routes,
            default_route,
        })
    }

    /// The authorization server metadata paths: the root form, and the path-inserted form when the
    /// issuer has a path (RFC 8414 §3.1).
    pub fn as_metadata_paths(&self) -> Vec<String> {
        let mut paths = vec!["/.well-known/oauth-authorization-server".to_owned()];
        let issuer_path = self
            .tokens
            .issuer
            .strip_prefix(&self.public_url)
            .unwrap_or_default();
        if !issuer_path.is_empty() {
            paths.push(format!(
                "/.well-known/oauth-authorization-server{issuer_path}"
            ));
        }
        paths
    }

    /// What the gateway prints when it starts: where to connect, and how.
    pub fn banner(&self) -> String {
        let mut out = String::from("mcp-auth-gateway is up.\n");
        for route in &self.routes {
            out += &format!(
                "  MCP server   {}   ({})\n",
                route.resource, route.resource_name
            );
        }
        if let Some(addr) = self.metrics_listen {
            out += &format!("  Metrics      http://{addr}/metrics\n");
        }
        let first = &self.routes[self.default_route].resource;
        out += &format!(
            "Connect:\n  MCP Inspector  npx @modelcontextprotocol/inspector --transport http --server-url {first}\n                 \
             (Node.js 22.19 or later), then switch the server on in the page it opens\n  \
             Claude Code    claude mcp add --transport http gateway {first}\n"
        );
        if let Some(welcome) = &self.welcome {
            out += welcome;
            out += "\n";
        }
        out
    }

    /// What `check` prints: every route and where things are served. No secrets.
    pub fn describe(&self) -> String {
        let mut out = format!("{}: valid\n", self.source.display());
        out += &format!(
            "listen {} (public URL {}), {} threads\n",
            self.listen, self.public_url, self.threads
        );
        out += &format!(
            "metrics {}\n",
            self.metrics_listen
                .map_or("off".into(), |a| format!("http://{a}/metrics"))
        );
        out += &format!(
            "issuer {}, signing key: {:?} ({:?})\n",
            self.tokens.issuer, self.tokens.key, self.tokens.algorithm
        );
        for (i, route) in self.routes.iter().enumerate() {
            out += &format!(
                "route {} -> {}{}\n  resource {}\n  metadata {}\n  scopes required [{}] of [{}]; credentials {:?}, backend audience {}\n",
                route.path,
                route.upstream.url,
                if i == self.default_route {
                    " (default)"
                } else {
                    ""
                },
                route.resource,
                route.metadata_url,
                route.required_scopes.join(" "),
                route.scopes_supported.join(" "),
                route.credentials,
                route.backend_audience,
            );
            if let Some(command) = &route.command {
                out += &format!(
                    "  command: {} {}\n",
                    command.program,
                    command.args.join(" ")
                );
            }
        }
        out
    }
}

fn auth_settings(
    file: &FileConfig,
    config_path: &Path,
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
    let provider = match &file.provider {
        None => None,
        Some(provider) => match provider.kind.as_str() {
            "oidc" => Some(Provider::Oidc(oidc_settings(
                provider,
                &file.store,
                errors,
                env,
            )?)),
            "github" => Some(Provider::GitHub(github_settings(
                provider,
                &file.store,
                errors,
                env,
            )?)),
            "local" => {
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
                Some(Provider::Local {
                    users: load_users(&users_path)
                        .map_err(|reason| errors.at("provider.users_file", reason))?,
                })
            }
            other => {
                return Err(errors.at(
                    "provider.kind",
                    format!("{other:?} is not a known provider (local, github, oidc)"),
                ));
            }
        },
    };
    Ok(AuthSettings {
        access_token_lifetime: lifetime(
            file.auth.access_token_lifetime,
            "auth.access_token_lifetime",
            Duration::from_secs(3600),
            day,
        )?,
        refresh_token_lifetime: lifetime(
            file.auth.refresh_token_lifetime,
            "auth.refresh_token_lifetime",
            30 * day,
            365 * day,
        )?,
        code_lifetime: lifetime(
            file.auth.code_lifetime,
            "auth.code_lifetime",
            Duration::from_secs(60),
            Duration::from_secs(60),
        )?,
        refresh_grace: match file.auth.refresh_grace {
            Some(d) if d > Duration::from_secs(60) => {
                return Err(errors.at("auth.refresh_grace", "must be at most 1m"));
            }
            Some(d) => d,
            None => Duration::from_secs(10),
        },
        dynamic_registration: file.auth.dynamic_registration.unwrap_or(true),
        cimd: crate::oauth::cimd::CimdSettings {
            enabled: file.auth.client_id_metadata_documents.unwrap_or(true),
            allowed_domains: file
                .auth
                .client_id_metadata_domains
                .clone()
                .unwrap_or_default(),
            allow_private_network: file
                .auth
                .client_id_metadata_allow_private_network
                .unwrap_or(false),
        },
        private_use_schemes: private_use_schemes(
            file.auth.private_use_redirect_schemes.as_deref(),
            errors,
        )?,
        provider,
    })
}

/// `auth.private_use_redirect_schemes`: each a URI scheme (RFC 3986 §3.1) that is neither http(s)
/// nor one the browser runs or reads itself.
fn private_use_schemes(
    schemes: Option<&[String]>,
    errors: &Errors,
) -> Result<PrivateUseSchemes, ConfigError> {
    let Some(schemes) = schemes else {
        return Ok(PrivateUseSchemes::Any);
    };
    let mut accepted = Vec::with_capacity(schemes.len());
    for (i, scheme) in schemes.iter().enumerate() {
        let at = format!("auth.private_use_redirect_schemes[{i}]");
        let lower = scheme.to_ascii_lowercase();
        let well_formed = lower.starts_with(|c: char| c.is_ascii_alphabetic())
            && lower
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !well_formed {
            return Err(errors.at(&at, format!("{scheme:?} is not a URI scheme")));
        }
        if matches!(lower.as_str(), "http" | "https") {
            return Err(errors.at(
                &at,
                format!(
                    "{scheme:?} is not an app's scheme: https and loopback http are always accepted"
                ),
            ));
        }
        if crate::oauth::redirect::BROWSER_SCHEMES.contains(&lower.as_str()) {
            return Err(errors.at(
                &at,
                format!("{scheme:?} is run or read by the browser itself, never an app's scheme"),
            ));
        }
        if crate::oauth::redirect::is_system_scheme(&lower) {
            return Err(errors.at(
                &at,
                format!(
                    "{scheme:?} opens a program of the operating system, never an app's scheme"
                ),
            ));
        }
        accepted.push(lower);
    }
    Ok(PrivateUseSchemes::Only(accepted))
}

fn oidc_settings(
    provider: &super::file::ProviderFile,
    store: &super::file::StoreFile,
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
    let github = github_settings(provider, store, errors, env)?;
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
        token_key: github.token_key,
    })
}

fn github_settings(
    provider: &super::file::ProviderFile,
    store: &super::file::StoreFile,
    errors: &Errors,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<GitHubSettings, ConfigError> {
    let client_id = provider.client_id.clone().ok_or_else(|| {
        errors.at(
            "provider.client_id",
            "an upstream provider needs the gateway's client_id there",
        )
    })?;
    let secret_env = provider.client_secret_env.as_ref().ok_or_else(|| {
        errors.at(
            "provider.client_secret_env",
            "an upstream provider needs the variable holding the client secret",
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
    let key_env = store.token_key_env.as_ref().ok_or_else(|| {
        errors.at(
            "store.token_key_env",
            "a provider with upstream tokens needs a key to encrypt them at rest",
        )
    })?;
    let key = env(key_env).ok_or_else(|| {
        errors.at(
            "store.token_key_env",
            format!("the environment variable {key_env} is not set"),
        )
    })?;
    let key = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, key.trim())
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .ok_or_else(|| {
            errors.at(
                "store.token_key_env",
                format!("{key_env} must hold 32 bytes in base64 (openssl rand -base64 32)"),
            )
        })?;
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
        allowed_orgs: provider.allowed_orgs.clone().unwrap_or_default(),
        token_key: key,
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
        });
    }
    if users.is_empty() {
        return Err(format!("{} has no [[users]]", path.display()));
    }
    Ok(users)
}

fn token_settings(
    file: &FileConfig,
    public_url: &str,
    errors: &Errors,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<TokenSettings, ConfigError> {
    let issuer = match &file.tokens.issuer {
        None => public_url.to_owned(),
        Some(issuer) => {
            let url = Url::parse(issuer)
                .map_err(|e| errors.at("tokens.issuer", format!("not a URL: {e}")))?;
            if url.query().is_some() || url.fragment().is_some() {
                return Err(errors.at(
                    "tokens.issuer",
                    "must have no query or fragment (RFC 8414 §2)",
                ));
            }
            let issuer = issuer.trim_end_matches('/').to_owned();
            if !issuer.starts_with(public_url) {
                return Err(errors.at(
                    "tokens.issuer",
                    format!("must be the public URL {public_url} or a path under it"),
                ));
            }
            issuer
        }
    };
    let key = match (&file.tokens.signing_key_file, &file.tokens.signing_key_env) {
        (Some(_), Some(_)) => {
            return Err(errors.at(
                "tokens.signing_key_env",
                "set signing_key_file or signing_key_env, not both",
            ));
        }
        (Some(path), None) => KeySource::File(path.clone()),
        (None, Some(name)) => {
            let pem = env(name).ok_or_else(|| {
                errors.at(
                    "tokens.signing_key_env",
                    format!("the environment variable {name} is not set"),
                )
            })?;
            KeySource::Env {
                name: name.clone(),
                pem,
            }
        }
        (None, None) => KeySource::Generated,
    };
    let algorithm = match file.tokens.algorithm.as_deref() {
        None | Some("EdDSA") => KeyAlgorithm::EdDsa,
        Some("ES256") => KeyAlgorithm::Es256,
        Some(other) => {
            return Err(errors.at(
                "tokens.algorithm",
                format!("{other:?} is not \"EdDSA\" or \"ES256\""),
            ));
        }
    };
    let assertion_lifetime = file
        .tokens
        .assertion_lifetime
        .unwrap_or(Duration::from_secs(60));
    if assertion_lifetime < Duration::from_secs(10) || assertion_lifetime > MAX_ASSERTION_LIFETIME {
        return Err(errors.at("tokens.assertion_lifetime", "must be between 10s and 5m"));
    }
    let clock_skew = file.tokens.clock_skew.unwrap_or(Duration::from_secs(30));
    if clock_skew > Duration::from_secs(300) {
        return Err(errors.at("tokens.clock_skew", "must be at most 5m"));
    }
    if file.tokens.rotate_after.is_some_and(|d| d.is_zero()) {
        return Err(errors.at("tokens.rotate_after", "must be longer than zero"));
    }
    Ok(TokenSettings {
        rotate_after: file.tokens.rotate_after,
        issuer,
        key,
        algorithm,
        assertion_lifetime,
        clock_skew,
    })
}

fn validate_route(
    route: &RouteFile,
    public_url: &str,
    errors: &Errors,
    at: &str,
) -> Result<Route, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    let path = route.path.clone();
    if !path.starts_with('/') || path.len() < 2 || path.ends_with('/') {
        return Err(errors.at(
            &key("path"),
            format!("{path:?} must start with / and not end with /"),
        ));
    }
    if path.starts_with("/.well-known/") || RESERVED_PATHS.contains(&path.as_str()) {
        return Err(errors.at(
            &key("path"),
            format!("{path} is reserved for the gateway itself"),
        ));
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
    {
        return Err(errors.at(
            &key("path"),
            format!("{path:?} may hold only letters, digits and / - . _ ~"),
        ));
    }
    let url = Url::parse(&route.upstream)
        .map_err(|e| errors.at(&key("upstream"), format!("not a URL: {e}")))?;
    let tls = match url.scheme() {
        "http" => false,
        "https" => true,
        other => {
            return Err(errors.at(
                &key("upstream"),
                format!("scheme {other} is not http or https"),
            ));
        }
    };
    let host = url
        .host_str()
        .ok_or_else(|| errors.at(&key("upstream"), "has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let mut upstream_path = url.path().to_owned();
    if let Some(query) = url.query() {
        upstream_path = format!("{upstream_path}?{query}");
    }
    let scopes_supported = route
        .scopes_supported
        .clone()
        .unwrap_or_else(|| vec!["mcp".into()]);
    for (i, scope) in scopes_supported.iter().enumerate() {
        if scope.is_empty()
            || !scope
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        {
            return Err(errors.at(
                &format!("{at}.scopes_supported[{i}]"),
                format!("{scope:?} is not a valid scope token (RFC 6749 §3.3)"),
            ));
        }
    }
    let required_scopes = route
        .required_scopes
        .clone()
        .unwrap_or_else(|| scopes_supported.clone());
    for (i, scope) in required_scopes.iter().enumerate() {
        if !scopes_supported.contains(scope) {
            return Err(errors.at(
                &format!("{at}.required_scopes[{i}]"),
                format!("{scope:?} is not in scopes_supported"),
            ));
        }
    }
    let credentials = match route.credentials.as_deref() {
        None | Some("headers") => Credentials::Headers,
        Some("bearer") => Credentials::Bearer,
        Some("assertion") => Credentials::Assertion,
        Some("none") => Credentials::None,
        Some(other) => {
            return Err(errors.at(
                &key("credentials"),
                format!("{other:?} is not one of headers, bearer, assertion, none"),
            ));
        }
    };
    let timeout = |value: Option<Duration>, name: &str, default: Duration| match value {
        Some(d) if d.is_zero() => Err(errors.at(&key(name), "must be longer than zero")),
        Some(d) => Ok(d),
        None => Ok(default),
    };
    let host_header = http::HeaderValue::try_from(authority.as_str())
        .map_err(|_| errors.at(&key("upstream"), "the host cannot be sent as a Host header"))?;
    let target = http::Uri::try_from(upstream_path.as_str())
        .map_err(|_| errors.at(&key("upstream"), "the path is not a valid request target"))?;
    let upstream = Upstream {
        url: route.upstream.clone(),
        host,
        port,
        tls,
        path: upstream_path,
        host_header,
        target,
        connect_timeout: timeout(
            route.connect_timeout,
            "connect_timeout",
            Duration::from_secs(5),
        )?,
        read_timeout: timeout(route.read_timeout, "read_timeout", Duration::from_secs(300))?,
        write_timeout: timeout(
            route.write_timeout,
            "write_timeout",
            Duration::from_secs(30),
        )?,
    };
    let command = route
        .command
        .as_ref()
        .map(|c| validate_command(c, errors, &key("command")))
        .transpose()?;
    let metadata_path = format!("/.well-known/oauth-protected-resource{path}");
    Ok(Route {
        resource: format!("{public_url}{path}"),
        metadata_url: format!("{public_url}{metadata_path}"),
        metadata_path,
        resource_name: route
            .resource_name
            .clone()
            .unwrap_or_else(|| format!("MCP server at {path}")),
        scopes_supported,
        required_scopes,
        credentials,
        backend_audience: route
            .backend_audience
            .clone()
            .unwrap_or_else(|| route.upstream.clone()),
        upstream,
        command,
        path,
    })
}

fn validate_client(
    client: &super::file::ClientFile,
    errors: &Errors,
    at: &str,
    schemes: &PrivateUseSchemes,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<crate::store::ClientRecord, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    if client.client_id.trim().is_empty() || client.client_id.len() > 255 {
        return Err(errors.at(&key("client_id"), "must be 1 to 255 characters"));
    }
    if client.redirect_uris.is_empty() {
        return Err(errors.at(&key("redirect_uris"), "must list at least one URI"));
    }
    for (i, uri) in client.redirect_uris.iter().enumerate() {
        if let Some(problem) = crate::oauth::redirect::registration_problem(uri, schemes) {
            return Err(errors.at(&format!("{at}.redirect_uris[{i}]"), problem));
        }
    }
    let method = client
        .token_endpoint_auth_method
        .clone()
        .unwrap_or_else(|| "none".into());
    if !crate::oauth::register::AUTH_METHODS.contains(&method.as_str()) {
        return Err(errors.at(
            &key("token_endpoint_auth_method"),
            format!("{method:?} is not none, client_secret_basic or client_secret_post"),
        ));
    }
    let secret_hash = match (method.as_str(), &client.client_secret_env) {
        ("none", None) => None,
        ("none", Some(_)) => {
            return Err(errors.at(
                &key("client_secret_env"),
                "a public client (none) has no secret",
            ));
        }
        (_, None) => {
            return Err(errors.at(
                &key("client_secret_env"),
                "a confidential client needs its secret's environment variable",
            ));
        }
        (_, Some(name)) => {
            let secret = env(name).ok_or_else(|| {
                errors.at(
                    &key("client_secret_env"),
                    format!("the environment variable {name} is not set"),
                )
            })?;
            if secret.len() < 16 {
                return Err(errors.at(
                    &key("client_secret_env"),
                    format!("the secret in {name} is shorter than 16 characters"),
                ));
            }
            Some(crate::oauth::hash_secret(&secret))
        }
    };
    Ok(crate::store::ClientRecord {
        client_id: client.client_id.clone(),
        secret_hash,
        secret_expires_at: 0,
        redirect_uris: client.redirect_uris.clone(),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        response_types: vec!["code".into()],
        token_endpoint_auth_method: method,
        client_name: client.client_name.clone(),
        client_uri: None,
        scope: None,
        application_type: None,
        issued_at: 0,
        origin: "config".into(),
        skip_consent: client.skip_consent.unwrap_or(false),
    })
}

fn validate_command(
    command: &CommandFile,
    errors: &Errors,
    at: &str,
) -> Result<Command, ConfigError> {
    if command.program.trim().is_empty() {
        return Err(errors.at(&format!("{at}.program"), "must not be empty"));
    }
    Ok(Command {
        program: command.program.clone(),
        args: command.args.clone(),
        env: command.env.clone(),
        working_dir: command.working_dir.clone(),
    })
}

/// Paths the gateway answers itself.
pub const RESERVED_PATHS: &[&str] = &[
    "/healthz",
    "/readyz",
    "/authorize",
    "/callback",
    "/consent",
    "/token",
    "/register",
    "/revoke",
    "/introspect",
    "/login",
];

/// `scheme://host[:port]` of an http(s) URL that has no path, query or fragment; lowercase scheme and host.
fn origin_of(raw: &str) -> Result<String, String> {
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{raw:?} is not an http or https URL"));
    }
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(format!(
            "{raw:?} must be an origin only: scheme, host and port, with no path"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;
