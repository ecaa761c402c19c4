//! The validated configuration: what the rest of the gateway reads. Each section is validated by
//! its own module; [`Loaded::validate`] puts them together, in three parts kept apart: what starts
//! the process ([`Start`]), what a reload swaps ([`Live`]), and the configured clients' secrets.
//! What runs is a [`Config`]: the start part in force, and a live part.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::auth::AuthSettings;
use super::clients::ClientSettings;
use super::file::FileConfig;
use super::routes::Route;
use super::server::ServerSettings;
use super::start::Start;
use super::{ConfigError, Errors};

/// A config file, validated.
pub(crate) struct Loaded {
    pub start: Start,
    pub live: Live,
    /// The clients the config registers, with their plain secrets: they go to the store, hashed,
    /// and no further.
    pub clients: Vec<ClientSettings>,
}

/// What a reload swaps: routes and their backends and policies, limits, the authorization server's
/// settings, its identity provider with its users and allowlists.
#[derive(Debug, Clone)]
pub(crate) struct Live {
    pub source: PathBuf,
    /// The origin it serves, the limits of a request, the proxies it trusts, its certificate files.
    pub server: ServerSettings,
    pub routes: Vec<Route>,
    /// The index of the route whose metadata is also at the root well-known URL.
    pub default_route: usize,
    pub auth: AuthSettings,
    pub rate_limits: RateLimits,
    /// Other authorization servers whose tokens routes accept.
    pub issuers: Vec<Arc<super::ExternalIssuer>>,
}

/// The config in force: the start part the process began with, and the live part of the last
/// (re)load. It reads as its live part (`config.routes`); the start part is `config.start`.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub start: Arc<Start>,
    pub live: Live,
}

/// What a reload makes of the config in force and the next file ([`Config::reloaded`]).
pub(crate) struct Reloaded {
    pub config: Config,
    pub clients: Vec<ClientSettings>,
    /// The keys whose change only a restart applies.
    pub restart: Vec<&'static str>,
}

impl std::ops::Deref for Config {
    type Target = Live;

    fn deref(&self) -> &Live {
        &self.live
    }
}

impl Config {
    /// A file validated as the config a process starts with, its clients left in it: for tests.
    #[cfg(test)]
    pub(crate) fn validate(
        file: FileConfig,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Loaded::validate(file, path, env).map(|loaded| Self::starting(loaded).0)
    }

    /// The config that starts the process, and the clients to write to the store.
    pub(crate) fn starting(loaded: Loaded) -> (Self, Vec<ClientSettings>) {
        let config = Config {
            start: Arc::new(loaded.start),
            live: loaded.live,
        };
        (config, loaded.clients)
    }

    /// The config after a reload to `next`: its live part, under the start part in force, with the
    /// clients to write to the store and what `next` would start otherwise, which needs a restart.
    pub(crate) fn reloaded(&self, next: Loaded) -> Reloaded {
        let restart = self.start.differences(&next.start);
        // The one exception: a key to seal the identity provider's tokens, first set by this
        // reload (say, from the local provider to GitHub), has sealed nothing yet and is taken.
        let start = match (self.start.token_key, next.start.token_key) {
            (None, Some(key)) => Arc::new(Start {
                token_key: Some(key),
                ..(*self.start).clone()
            }),
            _ => self.start.clone(),
        };
        Reloaded {
            restart,
            config: Config {
                start,
                live: next.live,
            },
            clients: next.clients,
        }
    }

    /// The authorization server metadata paths: the root form, and the path-inserted form when the
    /// issuer has a path (RFC 8414 §3.1).
    pub(crate) fn as_metadata_paths(&self) -> Vec<String> {
        let mut paths = vec!["/.well-known/oauth-authorization-server".to_owned()];
        let issuer_path = self
            .start
            .tokens
            .issuer
            .strip_prefix(&self.server.public_url)
            .unwrap_or_default();
        if !issuer_path.is_empty() {
            paths.push(format!(
                "/.well-known/oauth-authorization-server{issuer_path}"
            ));
        }
        paths
    }
}

/// Requests per minute per client address (an IPv6 client's /64) on the authorization server's
/// endpoints, and sign-in attempts per minute per user name; 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimits {
    pub register: u32,
    pub token: u32,
    pub authorize: u32,
    pub login: u32,
    pub consent: u32,
    pub callback: u32,
    pub revoke: u32,
    pub introspect: u32,
    pub login_per_user: u32,
}

impl Live {
    /// Every scope any route supports, sorted, each once: what the metadata advertises and what a
    /// registration may ask for.
    pub(crate) fn supported_scopes(&self) -> Vec<&str> {
        let mut scopes: Vec<&str> = self
            .routes
            .iter()
            .flat_map(|r| r.scopes_supported.iter().map(String::as_str))
            .collect();
        scopes.sort_unstable();
        scopes.dedup();
        scopes
    }
}

impl Loaded {
    /// Validates a parsed file; `env` reads an environment variable (secrets live there).
    pub(crate) fn validate(
        file: FileConfig,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let errors = Errors { path };
        let (listener, server) = super::server::settings(&file, &errors)?;
        let tokens = super::tokens::settings(&file, &server.public_url, &errors, env)?;
        let issuers = super::issuers::settings(&file.issuers, &errors, env)?;
        let super::routes::Routes {
            routes,
            default_route,
            commands,
        } = super::routes::settings(&file.routes, &server.public_url, &issuers, &errors, env)?;
        let store = super::store::settings(&file.store, &errors, env)?;
        let mut auth = super::auth::settings(&file, path, &issuers, &errors, env)?;
        let token_key = token_key(&file, &routes, &auth, &errors, env)?;
        if let Some(super::Provider::GitHub(_)) = &auth.provider {
            github_names_are_ids(&routes, &errors)?;
        }
        // A policy that asks for GitHub groups needs the user's organisations and teams.
        if let Some(super::Provider::GitHub(github)) = &mut auth.provider
            && routes
                .iter()
                .any(|r| r.policy.as_ref().is_some_and(|p| p.uses_groups()))
        {
            github.groups = true;
            if file.provider.as_ref().is_none_or(|p| p.scopes.is_none()) {
                github.scopes.push("read:org".into());
            }
        }
        exchanges_have_their_subject(&routes, &auth, &errors)?;
        let clients =
            super::clients::settings(&file.clients, &auth.private_use_schemes, &errors, env)?;
        super::clients::need_their_server(&clients, &auth, &errors)?;
        auth.machine_clients = clients
            .iter()
            .any(|c| c.grant_types.iter().any(|g| g == super::CLIENT_CREDENTIALS));
        auth.private_key_jwt = clients
            .iter()
            .any(|c| c.token_endpoint_auth_method == super::file::ClientAuthMethod::PrivateKeyJwt);
        let rate_limits = RateLimits {
            register: file.rate_limits.register.unwrap_or(20),
            token: file.rate_limits.token.unwrap_or(120),
            authorize: file.rate_limits.authorize.unwrap_or(60),
            login: file.rate_limits.login.unwrap_or(30),
            consent: file.rate_limits.consent.unwrap_or(60),
            callback: file.rate_limits.callback.unwrap_or(60),
            revoke: file.rate_limits.revoke.unwrap_or(120),
            introspect: file.rate_limits.introspect.unwrap_or(600),
            login_per_user: file.rate_limits.login_per_user.unwrap_or(10),
        };
        let audit = match &file.audit {
            None => None,
            Some(audit) if audit.file == "-" => Some(None),
            Some(audit) if audit.file.trim().is_empty() => {
                return Err(errors.at("audit.file", "a file, or \"-\" for stdout"));
            }
            // Relative to the config file, so a config works from any directory.
            Some(audit) => Some(Some(
                path.parent().unwrap_or(Path::new(".")).join(&audit.file),
            )),
        };
        let telemetry = super::telemetry::settings(file.telemetry.as_ref(), &errors)?;
        Ok(Loaded {
            start: Start {
                listener,
                store,
                tokens,
                token_key,
                audit,
                telemetry,
                commands,
            },
            live: Live {
                source: path.to_owned(),
                server,
                routes,
                default_route,
                auth,
                rate_limits,
                issuers,
            },
            clients,
        })
    }
}

/// At GitHub, a policy names users and groups by the numeric ids no rename changes: a login, or
/// an organisation's or team's name, can be given up and then taken by someone else. A user is
/// `github:<user id>`; a group is an organisation's id, or `<organisation id>/<team id>`.
fn github_names_are_ids(routes: &[Route], errors: &Errors) -> Result<(), ConfigError> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let wildcard = |s: &str| s.contains(['*', '?']);
    for (i, route) in routes.iter().enumerate() {
        let rules = route.policy.iter().flat_map(|p| p.rules.iter());
        for (j, rule) in rules.enumerate() {
            let at = |key: &str| format!("routes[{i}].policy.rules[{j}].{key}");
            let not_a_group = rule
                .groups
                .iter()
                .flatten()
                .find(|g| !match g.split_once('/') {
                    Some((org, team)) => digits(org) && digits(team),
                    None => digits(g),
                });
            if let Some(group) = not_a_group {
                return Err(errors.at(
                    &at("groups"),
                    format!(
                        "{group:?}: GitHub groups are named by numeric id, which no rename changes: \
                         an organisation as \"<org id>\", a team as \"<org id>/<team id>\" \
                         (`gh api orgs/ORG --jq .id`, `gh api orgs/ORG/teams/TEAM --jq .id`)"
                    ),
                ));
            }
            let users = rule.users.iter().flat_map(|u| u.written.iter());
            let not_a_user = users.clone().find(|u| {
                !u.strip_prefix("github:")
                    .is_some_and(|id| digits(id) || wildcard(id))
            });
            if let Some(user) = not_a_user {
                return Err(errors.at(
                    &at("users"),
                    format!(
                        "{user:?}: GitHub users are named by numeric id, which no rename changes: \
                         \"github:<user id>\" (`gh api users/LOGIN --jq .id`)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;

/// The key that seals tokens at rest, where any are kept: GitHub's and OIDC's (checked where the
/// provider's settings were, before the rest), and users' tokens at the backends they connect to,
/// which also need a provider to sign users in at the gateway first.
fn token_key(
    file: &FileConfig,
    routes: &[Route],
    auth: &AuthSettings,
    errors: &Errors,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<[u8; 32]>, ConfigError> {
    let connecting = routes.iter().position(|r| r.connection.is_some());
    if let (Some(i), None) = (connecting, &auth.provider) {
        return Err(errors.at(
            &format!("routes[{i}].credentials"),
            "\"oauth\" needs a [provider]: users sign in at the gateway before they connect",
        ));
    }
    Ok(match &auth.provider {
        Some(super::Provider::GitHub(_) | super::Provider::Oidc(_)) => {
            Some(super::providers::token_key(&file.store, errors, env)?)
        }
        _ if connecting.is_some() => Some(super::providers::token_key(&file.store, errors, env)?),
        _ => None,
    })
}

/// A route that exchanges the user's token at the identity provider needs one that keeps it: GitHub
/// or an OIDC provider, not the users file (nor no provider).
fn exchanges_have_their_subject(
    routes: &[Route],
    auth: &super::auth::AuthSettings,
    errors: &Errors,
) -> Result<(), ConfigError> {
    let keeps_tokens = matches!(
        auth.provider,
        Some(super::Provider::GitHub(_) | super::Provider::Oidc(_))
    );
    for (i, route) in routes.iter().enumerate() {
        if route
            .exchange
            .as_ref()
            .is_some_and(|e| e.subject == super::SubjectToken::IdentityProvider)
            && !keeps_tokens
        {
            return Err(errors.at(
                &format!("routes[{i}].exchange.subject_token"),
                "identity_provider needs a GitHub or oidc [provider], which keeps users' tokens: \
                 use assertion (the gateway's signed assertion) or caller",
            ));
        }
    }
    Ok(())
}
