//! `[[clients]]`: OAuth clients registered in the config, as the operator wrote them. The
//! authorization server turns them into store records (hashing secrets) when it starts.

use super::file::{ClientAuthMethod, ClientFile};
use super::redirects::{PrivateUseSchemes, registration_problem};
use super::{ConfigError, Errors};

/// A client registered in the config. The secret is never printed.
#[derive(Clone)]
pub(crate) struct ClientSettings {
    pub client_id: String,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: ClientAuthMethod,
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
    if client.redirect_uris.is_empty() {
        return Err(errors.at(&key("redirect_uris"), "must list at least one URI"));
    }
    for (i, uri) in client.redirect_uris.iter().enumerate() {
        if let Some(problem) = registration_problem(uri, schemes) {
            return Err(errors.at(&format!("{at}.redirect_uris[{i}]"), problem));
        }
    }
    let method = client
        .token_endpoint_auth_method
        .unwrap_or(ClientAuthMethod::None);
    let secret = match (method, &client.client_secret_env) {
        (ClientAuthMethod::None, None) => None,
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
    Ok(ClientSettings {
        client_id: client.client_id.clone(),
        client_name: client.client_name.clone(),
        redirect_uris: client.redirect_uris.clone(),
        token_endpoint_auth_method: method,
        secret,
        skip_consent: client.skip_consent.unwrap_or(false),
    })
}
