//! `[[routes]]`: the MCP servers behind the gateway (its backends), each at a public path, with how
//! it is reached and what it is sent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::connections::ConnectionSettings;
pub(crate) use super::file::Credentials;
use super::file::{CommandFile, RouteFile};
use super::issuers::ExternalIssuer;
use super::policy::Policy;
use super::{ConfigError, Errors};

#[derive(Debug, Clone)]
pub(crate) struct Route {
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
    pub backend: Backend,
    /// Who may use which tool, resource and prompt; `None`: anyone admitted may use everything.
    pub policy: Option<Policy>,
    /// How each user connects to the backend's own authorization server (`credentials = "oauth"`).
    pub connection: Option<ConnectionSettings>,
    /// Where the backend's token is exchanged for each user (`credentials = "exchange"`).
    pub exchange: Option<super::exchange::ExchangeSettings>,
    /// Other authorization servers whose access tokens the route accepts.
    pub issuers: Vec<Arc<ExternalIssuer>>,
    /// Whether it accepts the gateway's own access tokens.
    pub gateway_tokens: bool,
}

#[derive(Debug, Clone)]
/// The MCP server behind a route (written `upstream` in the file).
pub(crate) struct Backend {
    pub url: String,
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// The path requests are sent to.
    pub path: String,
    /// The `Host` header the backend expects, and `path` as a request target: checked here once
    /// rather than parsed on every request.
    pub host_header: http::HeaderValue,
    pub target: http::Uri,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackendCommand {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub working_dir: Option<PathBuf>,
}

/// The routes of a file: in order, the index of the default one, and the commands of `command`
/// routes by path (which start with the process, apart from the routes).
pub(super) struct Routes {
    pub routes: Vec<Route>,
    pub default_route: usize,
    pub commands: BTreeMap<String, BackendCommand>,
}

/// Every route, and the index of the one whose metadata is also at the root well-known URL.
pub(super) fn settings(
    files: &[RouteFile],
    public_url: &str,
    issuers: &[Arc<ExternalIssuer>],
    errors: &Errors,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Routes, ConfigError> {
    if files.is_empty() {
        return Err(errors.at("routes", "at least one [[routes]] entry is needed"));
    }
    let mut routes = Vec::with_capacity(files.len());
    let mut commands = BTreeMap::new();
    for (i, route) in files.iter().enumerate() {
        let at = format!("routes[{i}]");
        let (mut route, command) = validate_route(route, public_url, errors, &at, env)?;
        route.issuers = super::issuers::of_route(files[i].issuers.as_ref(), issuers, errors, &at)?;
        if !route.gateway_tokens && route.issuers.is_empty() {
            return Err(errors.at(
                &format!("{at}.gateway_tokens"),
                "is false, and the route names no issuers: it would accept no token",
            ));
        }
        if route
            .exchange
            .as_ref()
            .is_some_and(|e| e.subject == super::exchange::SubjectToken::Caller)
            && route.issuers.is_empty()
        {
            return Err(errors.at(
                &format!("{at}.exchange.subject_token"),
                "caller stands for tokens of other issuers, and the route names none (issuers)",
            ));
        }
        if !route.gateway_tokens && route.connection.is_some() {
            return Err(errors.at(
                &format!("{at}.gateway_tokens"),
                "must be true with credentials = \"oauth\": users connect as they sign in at the gateway",
            ));
        }
        if let Some(other) = routes.iter().find(|r: &&Route| r.path == route.path) {
            return Err(errors.at(
                &format!("routes[{i}].path"),
                format!("{} is already used", other.path),
            ));
        }
        if let Some(command) = command {
            commands.insert(route.path.clone(), command);
        }
        routes.push(route);
    }
    // A token minted for a backend names it as audience: were that a route's resource, the backend
    // could replay it to the gateway as an access token of that route.
    for (i, route) in routes.iter().enumerate() {
        // Compared as the token check compares an audience: a trailing slash is the same resource.
        let audience = route.backend_audience.trim_end_matches('/');
        if let Some(other) = routes
            .iter()
            .find(|r| r.resource.trim_end_matches('/') == audience)
        {
            return Err(errors.at(
                &format!("routes[{i}].backend_audience"),
                format!(
                    "{} is the resource of the route {}: a backend could replay its tokens there",
                    route.backend_audience, other.path
                ),
            ));
        }
    }
    let defaults: Vec<usize> = files
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
    Ok(Routes {
        routes,
        default_route,
        commands,
    })
}

fn validate_route(
    route: &RouteFile,
    public_url: &str,
    errors: &Errors,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Route, Option<BackendCommand>), ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    let path = route_path(&route.path).map_err(|reason| errors.at(&key("path"), reason))?;
    let backend = backend(route, errors, at)?;
    let (scopes_supported, required_scopes) = scopes(route, errors, at)?;
    let policy = route
        .policy
        .as_ref()
        .map(|policy| {
            super::policy::settings(
                policy,
                &scopes_supported,
                &required_scopes,
                errors,
                &key("policy"),
            )
        })
        .transpose()?;
    let command = route
        .command
        .as_ref()
        .map(|c| validate_command(c, errors, &key("command")))
        .transpose()?;
    let connection = super::connections::settings(route, errors, at, env)?;
    let backend_audience = route
        .backend_audience
        .clone()
        .unwrap_or_else(|| route.upstream.clone());
    let exchange = super::exchange::settings(route, &backend_audience, errors, at, env)?;
    let metadata_path = format!("/.well-known/oauth-protected-resource{path}");
    let route = Route {
        resource: format!("{public_url}{path}"),
        metadata_url: format!("{public_url}{metadata_path}"),
        metadata_path,
        resource_name: route
            .resource_name
            .clone()
            .unwrap_or_else(|| format!("MCP server at {path}")),
        scopes_supported,
        required_scopes,
        credentials: route.credentials.unwrap_or(Credentials::Headers),
        backend_audience,
        backend,
        policy,
        connection,
        exchange,
        issuers: Vec::new(),
        gateway_tokens: route.gateway_tokens.unwrap_or(true),
        path,
    };
    Ok((route, command))
}

/// A route's public path: absolute, not a path the gateway answers itself, plain characters only.
fn route_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') || path.len() < 2 || path.ends_with('/') {
        return Err(format!("{path:?} must start with / and not end with /"));
    }
    if is_reserved(path) {
        return Err(format!("{path} is reserved for the gateway itself"));
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
    {
        return Err(format!(
            "{path:?} may hold only letters, digits and / - . _ ~"
        ));
    }
    Ok(path.to_owned())
}

/// The backend of a route: its URL taken apart once, and its timeouts.
fn backend(route: &RouteFile, errors: &Errors, at: &str) -> Result<Backend, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
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
    let mut path = url.path().to_owned();
    if let Some(query) = url.query() {
        path = format!("{path}?{query}");
    }
    let timeout = |value: Option<Duration>, name: &str, default: Duration| match value {
        Some(d) if d.is_zero() => Err(errors.at(&key(name), "must be longer than zero")),
        Some(d) => Ok(d),
        None => Ok(default),
    };
    Ok(Backend {
        url: route.upstream.clone(),
        host,
        port,
        tls,
        host_header: http::HeaderValue::try_from(authority.as_str())
            .map_err(|_| errors.at(&key("upstream"), "the host cannot be sent as a Host header"))?,
        target: http::Uri::try_from(path.as_str())
            .map_err(|_| errors.at(&key("upstream"), "the path is not a valid request target"))?,
        path,
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
    })
}

/// The scopes a route offers (each a valid scope token) and those it requires (among them).
fn scopes(
    route: &RouteFile,
    errors: &Errors,
    at: &str,
) -> Result<(Vec<String>, Vec<String>), ConfigError> {
    let supported = route
        .scopes_supported
        .clone()
        .unwrap_or_else(|| vec!["mcp".into()]);
    for (i, scope) in supported.iter().enumerate() {
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
    let required = route
        .required_scopes
        .clone()
        .unwrap_or_else(|| supported.clone());
    for (i, scope) in required.iter().enumerate() {
        if !supported.contains(scope) {
            return Err(errors.at(
                &format!("{at}.required_scopes[{i}]"),
                format!("{scope:?} is not in scopes_supported"),
            ));
        }
    }
    Ok((supported, required))
}

fn validate_command(
    command: &CommandFile,
    errors: &Errors,
    at: &str,
) -> Result<BackendCommand, ConfigError> {
    if command.program.trim().is_empty() {
        return Err(errors.at(&format!("{at}.program"), "must not be empty"));
    }
    Ok(BackendCommand {
        program: command.program.clone(),
        args: command.args.clone(),
        env: command.env.clone(),
        working_dir: command.working_dir.clone(),
    })
}

/// Whether the gateway answers `path` itself, so that no route may use it. The data plane's router
/// is tested to register no other path of its own.
pub(crate) fn is_reserved(path: &str) -> bool {
    path.starts_with("/.well-known/")
        || path.starts_with("/connect/")
        || RESERVED_PATHS.contains(&path)
}

/// Paths the gateway answers itself, besides `/.well-known/`.
const RESERVED_PATHS: &[&str] = &[
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
    "/connections",
];
