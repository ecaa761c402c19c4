//! `[[clients]]`: OAuth clients registered in the config, as the operator wrote them. The
//! authorization server turns them into store records (hashing secrets) when it starts.

use super::file::{ClientAuthMethod, ClientFile};
use super::redirects::{PrivateUseSchemes, registration_problem};
use super::{ConfigError, Errors};

/// The grant a machine client uses (RFC 6749 §4.4).
pub(crate) const CLIENT_CREDENTIALS: &str = "client_credentials";
/// The grant of an assertion (RFC 7523 §2.1): at the gateway, an enterprise-managed sign-in (ID-JAG).
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Every grant a configured client may be given.
const GRANTS: &[&str] = &[
    "authorization_code",
    "refresh_token",
    CLIENT_CREDENTIALS,
    JWT_BEARER,
];

/// A client registered in the config. The secret is never printed.
#[derive(Clone)]
pub(crate) struct ClientSettings {
    pub client_id: String,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_method: ClientAuthMethod,
    /// A `private_key_jwt` client's keys: a JWK set (JSON), or where it is published.
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    /// A confidential client's secret, from the environment.
    pub secret: Option<String>,
    /// A first-party client: no consent page.
    pub skip_consent: bool,
}

impl std::fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("redirect_uris", &self.redirect_uris)
            .finish_non_exhaustive()
    }
}

/// Every `[[clients]]` entry, each `client_id` once.
pub(super) fn settings(
    files: &[ClientFile],
    schemes: &PrivateUseSchemes,
    errors: &Errors,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ClientSettings>, ConfigError> {
    let clients = files
        .iter()
        .enumerate()
        .map(|(i, c)| validate_client(c, errors, &format!("clients[{i}]"), schemes, env))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some((i, _)) = clients
        .iter()
        .enumerate()
        .find(|(i, c)| clients[..*i].iter().any(|o| o.client_id == c.client_id))
    {
        return Err(errors.at(&format!("clients[{i}].client_id"), "is already used"));
    }
    Ok(clients)
}

fn validate_client(
    client: &ClientFile,
    errors: &Errors,
    at: &str,
    schemes: &PrivateUseSchemes,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ClientSettings, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    if client.client_id.trim().is_empty() || client.client_id.len() > 255 {
        return Err(errors.at(&key("client_id"), "must be 1 to 255 characters"));
    }
    // The gateway's own sign-ins (its connections page's) use such ids.
    if client.client_id.starts_with('_') {
        return Err(errors.at(&key("client_id"), "must not start with `_`"));
    }
    let grant_types = grant_types(client, errors, at)?;
    let signs_in_users = grant_types.iter().any(|g| g == "authorization_code");
    if signs_in_users && client.redirect_uris.is_empty() {
        return Err(errors.at(&key("redirect_uris"), "must list at least one URI"));
    }
    if !signs_in_users && !client.redirect_uris.is_empty() {
        return Err(errors.at(
            &key("redirect_uris"),
            "are only for a client with the authorization_code grant",
        ));
    }
    for (i, uri) in client.redirect_uris.iter().enumerate() {
        if let Some(problem) = registration_problem(uri, schemes) {
            return Err(errors.at(&format!("{at}.redirect_uris[{i}]"), problem));
        }
    }
    let method = client
        .token_endpoint_auth_method
        .unwrap_or(ClientAuthMethod::None);
    if method == ClientAuthMethod::None
        && let Some(grant) = grant_types
            .iter()
            .find(|g| *g == CLIENT_CREDENTIALS || *g == JWT_BEARER)
    {
        return Err(errors.at(
            &key("token_endpoint_auth_method"),
            format!("a client with the {grant} grant must authenticate: not none"),
        ));
    }
    let secret = match (method, &client.client_secret_env) {
        (ClientAuthMethod::None | ClientAuthMethod::PrivateKeyJwt, None) => None,
        (ClientAuthMethod::PrivateKeyJwt, Some(_)) => {
            return Err(errors.at(
                &key("client_secret_env"),
                "a private_key_jwt client authenticates with its key, not a secret",
            ));
        }
        (ClientAuthMethod::None, Some(_)) => {
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
            Some(secret)
        }
    };
    let (jwks, jwks_uri) = keys(client, method, errors, at)?;
    Ok(ClientSettings {
        client_id: client.client_id.clone(),
        client_name: client.client_name.clone(),
        redirect_uris: client.redirect_uris.clone(),
        grant_types,
        token_endpoint_auth_method: method,
        jwks,
        jwks_uri,
        secret,
        skip_consent: client.skip_consent.unwrap_or(false),
    })
}

/// The grants a client may use: those named (each known, once), or the sign-in's two.
fn grant_types(client: &ClientFile, errors: &Errors, at: &str) -> Result<Vec<String>, ConfigError> {
    let Some(named) = &client.grant_types else {
        return Ok(vec!["authorization_code".into(), "refresh_token".into()]);
    };
    if named.is_empty() {
        return Err(errors.at(&format!("{at}.grant_types"), "must name at least one grant"));
    }
    for (i, grant) in named.iter().enumerate() {
        let at = format!("{at}.grant_types[{i}]");
        if !GRANTS.contains(&grant.as_str()) {
            return Err(errors.at(&at, format!("must be one of: {}", GRANTS.join(", "))));
        }
        if named[..i].contains(grant) {
            return Err(errors.at(&at, "is named twice"));
        }
        if grant == "refresh_token" && !named.iter().any(|g| g == "authorization_code") {
            return Err(errors.at(
                &at,
                "comes only with authorization_code: machine clients and enterprise sign-ins get no refresh token",
            ));
        }
    }
    Ok(named.clone())
}

/// A `private_key_jwt` client's keys: exactly one of `jwks` and `jwks_uri`; other clients have none.
fn keys(
    client: &ClientFile,
    method: ClientAuthMethod,
    errors: &Errors,
    at: &str,
) -> Result<(Option<serde_json::Value>, Option<String>), ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    if method != ClientAuthMethod::PrivateKeyJwt {
        if client.jwks.is_some() || client.jwks_uri.is_some() {
            return Err(errors.at(
                &key("jwks"),
                "keys are for a private_key_jwt client (token_endpoint_auth_method)",
            ));
        }
        return Ok((None, None));
    }
    match (&client.jwks, &client.jwks_uri) {
        (Some(set), None) => {
            if set.keys.is_empty() {
                return Err(errors.at(&key("jwks"), "must hold at least one key"));
            }
            if let Some(i) = set
                .keys
                .iter()
                .position(|k| jsonwebtoken::DecodingKey::from_jwk(k).is_err())
            {
                return Err(errors.at(&format!("{at}.jwks.keys[{i}]"), "is not a usable key"));
            }
            let json = serde_json::to_value(set).expect("a JWK set is JSON");
            Ok((Some(json), None))
        }
        (None, Some(uri)) => {
            let url = url::Url::parse(uri)
                .map_err(|e| errors.at(&key("jwks_uri"), format!("is not a URL: {e}")))?;
            let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
            if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
                return Err(errors.at(&key("jwks_uri"), "must be https (http only on loopback)"));
            }
            Ok((None, Some(uri.clone())))
        }
        (Some(_), Some(_)) => Err(errors.at(&key("jwks"), "give jwks or jwks_uri, not both")),
        (None, None) => Err(errors.at(
            &key("jwks"),
            "a private_key_jwt client needs its public keys: jwks or jwks_uri",
        )),
    }
}

/// Machine clients and enterprise sign-ins are the gateway's own authorization server's: they need
/// it (a `[provider]`), and the latter an enterprise identity provider to trust.
pub(super) fn need_their_server(
    clients: &[ClientSettings],
    auth: &super::auth::AuthSettings,
    errors: &Errors,
) -> Result<(), ConfigError> {
    for (i, client) in clients.iter().enumerate() {
        let Some(j) = client
            .grant_types
            .iter()
            .position(|g| g == CLIENT_CREDENTIALS || g == JWT_BEARER)
        else {
            continue;
        };
        let at = format!("clients[{i}].grant_types[{j}]");
        if auth.provider.is_none() {
            return Err(errors.at(
                &at,
                "needs the gateway's own authorization server: add a [provider]",
            ));
        }
        if client.grant_types[j] == JWT_BEARER && auth.enterprise_issuers.is_empty() {
            return Err(errors.at(
                &at,
                "needs an enterprise identity provider to trust: name it in auth.enterprise_issuers",
            ));
        }
    }
    Ok(())
}
