//! `[routes.oauth]`: a backend with its own authorization server, to which each user connects their
//! own account (`credentials = "oauth"`). What the gateway is there (a client registered beforehand,
//! or none, and then it discovers the server and registers itself), what it asks for, and where it
//! may go to ask.

use url::Url;

use super::file::{ClientAuthMethod, ConnectionFile, Credentials, RouteFile};
use super::{ConfigError, Errors};

/// How a route's backend is connected to, per user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectionSettings {
    /// The gateway's client at the backend's authorization server, registered beforehand; `None`:
    /// it identifies itself (a metadata document, or dynamic registration).
    pub client: Option<PreRegistered>,
    /// The scopes asked for; empty: what the backend names.
    pub scopes: Vec<String>,
    /// Whether the RFC 8707 `resource` parameter is sent.
    pub send_resource: bool,
    /// The issuers the backend may name; empty: the one it names.
    pub authorization_servers: Vec<String>,
    /// Private and loopback addresses, and plain http there, are allowed.
    pub allow_private_network: bool,
}

/// A client registered at the backend's authorization server by its operator.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PreRegistered {
    pub client_id: String,
    pub secret: Option<String>,
    pub auth_method: ClientAuthMethod,
}

impl std::fmt::Debug for PreRegistered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreRegistered")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "set"))
            .field("auth_method", &self.auth_method)
            .finish()
    }
}

/// The connection settings of `route` (at `at`), when its credentials are `oauth`.
pub(super) fn settings(
    route: &RouteFile,
    errors: &Errors,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ConnectionSettings>, ConfigError> {
    let key = |k: &str| format!("{at}.oauth.{k}");
    let file = match (route.credentials, &route.oauth) {
        (Some(Credentials::OAuth), Some(file)) => file,
        (Some(Credentials::OAuth), None) => &ConnectionFile::default(),
        (_, None) => return Ok(None),
        (_, Some(_)) => {
            return Err(errors.at(
                &format!("{at}.oauth"),
                "is read only with credentials = \"oauth\"",
            ));
        }
    };
    let allow_private_network = file.allow_private_network.unwrap_or(false);
    // The user's token goes to the backend: over plain http only where the operator says the
    // network is private.
    if route.upstream.starts_with("http://") && !allow_private_network {
        return Err(errors.at(
            &format!("{at}.upstream"),
            "a backend sent users' tokens must be https (or set oauth.allow_private_network)",
        ));
    }
    let client = pre_registered(file, errors, &key, env)?;
    let scopes = file.scopes.clone().unwrap_or_default();
    for (i, scope) in scopes.iter().enumerate() {
        if scope.is_empty() || !scope.bytes().all(is_scope_char) {
            return Err(errors.at(
                &format!("{at}.oauth.scopes[{i}]"),
                format!("{scope:?} is not an OAuth scope (RFC 6749 §3.3)"),
            ));
        }
    }
    let authorization_servers = file.authorization_servers.clone().unwrap_or_default();
    for (i, issuer) in authorization_servers.iter().enumerate() {
        if let Some(problem) = issuer_problem(issuer, allow_private_network) {
            return Err(errors.at(&format!("{at}.oauth.authorization_servers[{i}]"), problem));
        }
    }
    Ok(Some(ConnectionSettings {
        client,
        scopes,
        send_resource: file.send_resource.unwrap_or(true),
        authorization_servers,
        allow_private_network,
    }))
}

fn pre_registered(
    file: &ConnectionFile,
    errors: &Errors,
    key: &dyn Fn(&str) -> String,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<PreRegistered>, ConfigError> {
    let Some(client_id) = &file.client_id else {
        for (given, name) in [
            (file.client_secret_env.is_some(), "client_secret_env"),
            (
                file.token_endpoint_auth_method.is_some(),
                "token_endpoint_auth_method",
            ),
        ] {
            if given {
                return Err(errors.at(&key(name), "is read only with a client_id"));
            }
        }
        return Ok(None);
    };
    if client_id.trim().is_empty() {
        return Err(errors.at(&key("client_id"), "must not be empty"));
    }
    let secret = file
        .client_secret_env
        .as_ref()
        .map(|name| {
            env(name).filter(|s| !s.is_empty()).ok_or_else(|| {
                errors.at(
                    &key("client_secret_env"),
                    format!("the environment variable {name} is not set"),
                )
            })
        })
        .transpose()?;
    let auth_method = match (file.token_endpoint_auth_method, &secret) {
        (None, Some(_)) => ClientAuthMethod::ClientSecretBasic,
        (None | Some(ClientAuthMethod::None), None) => ClientAuthMethod::None,
        (Some(ClientAuthMethod::None), Some(_)) => {
            return Err(errors.at(
                &key("client_secret_env"),
                "a public client (none) has no secret",
            ));
        }
        (Some(_), None) => {
            return Err(errors.at(
                &key("client_secret_env"),
                "a confidential client needs its secret's environment variable",
            ));
        }
        (Some(method), Some(_)) => method,
    };
    Ok(Some(PreRegistered {
        client_id: client_id.clone(),
        secret,
        auth_method,
    }))
}

/// A scope token's characters (RFC 6749 §3.3): printable ASCII but space, `"` and `\`.
fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)
}

/// Why `issuer` cannot name an authorization server: RFC 8414 §2, an https URL without query or
/// fragment (http on a private network, where the operator allows it).
fn issuer_problem(issuer: &str, allow_private_network: bool) -> Option<String> {
    let url = match Url::parse(issuer) {
        Ok(url) => url,
        Err(e) => return Some(format!("{issuer:?} is not a URL: {e}")),
    };
    match url.scheme() {
        "https" => {}
        "http" if allow_private_network => {}
        "http" => {
            return Some(format!(
                "{issuer} must be https (or set oauth.allow_private_network)"
            ));
        }
        other => return Some(format!("{issuer}: scheme {other} is not https")),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Some(format!("{issuer} must have no query or fragment"));
    }
    None
}
