//! The validated configuration: what the rest of the gateway reads. Each section is validated by
//! its own module; [`Config::validate`] puts them together.

use std::path::{Path, PathBuf};

use super::auth::AuthSettings;
use super::clients::ClientSettings;
use super::file::FileConfig;
use super::routes::Route;
use super::server::ServerSettings;
use super::store::StoreSettings;
use super::telemetry::TelemetrySettings;
use super::tokens::TokenSettings;
use super::{ConfigError, Errors};

#[derive(Debug, Clone)]
pub struct Config {
    pub source: PathBuf,
    /// Where it listens, as what, with how many threads, and what requests it takes.
    pub server: ServerSettings,
    pub tokens: TokenSettings,
    pub routes: Vec<Route>,
    /// The index of the route whose metadata is also at the root well-known URL.
    pub default_route: usize,
    pub store: StoreSettings,
    pub auth: AuthSettings,
    /// Clients registered in the config.
    pub clients: Vec<ClientSettings>,
    pub rate_limits: RateLimits,
    /// The audit trail of policy decisions: `Some(None)` is stdout.
    pub audit: Option<Option<PathBuf>>,
    /// Where traces go, if anywhere.
    pub telemetry: Option<TelemetrySettings>,
}

/// Requests per minute per client address (an IPv6 client's /64) on the authorization server's
/// endpoints, and sign-in attempts per minute per user name; 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
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
        let server = super::server::settings(&file, &errors)?;
        let tokens = super::tokens::settings(&file, &server.public_url, &errors, env)?;
        let (routes, default_route) =
            super::routes::settings(&file.routes, &server.public_url, &errors)?;
        let store = super::store::settings(&file.store, &errors, env)?;
        let mut auth = super::auth::settings(&file, path, &errors, env)?;
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
        let clients =
            super::clients::settings(&file.clients, &auth.private_use_schemes, &errors, env)?;
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
        Ok(Config {
            audit,
            telemetry,
            clients,
            rate_limits,
            store,
            auth,
            source: path.to_owned(),
            server,
            tokens,
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
