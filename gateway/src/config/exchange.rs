//! `[routes.exchange]`, validated: where a route's backend gets a token of its own audience for each
//! user, by an RFC 8693 token exchange at the organisation's identity provider.

pub(crate) use super::file::SubjectToken;
use super::file::{Credentials, ExchangeFile, RouteFile};
use super::{ConfigError, Errors};

/// A route's token exchange.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ExchangeSettings {
    pub token_endpoint: String,
    pub client_id: String,
    pub client_secret: String,
    /// The `audience` asked for.
    pub audience: String,
    pub resource: Option<String>,
    pub scope: Option<String>,
    pub subject: SubjectToken,
    pub allow_private_network: bool,
}

impl std::fmt::Debug for ExchangeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field("audience", &self.audience)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The route's `[routes.exchange]`: required with `credentials = "exchange"`, refused without.
pub(super) fn settings(
    route: &RouteFile,
    backend_audience: &str,
    errors: &Errors,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ExchangeSettings>, ConfigError> {
    let file = match (route.credentials, &route.exchange) {
        (Some(Credentials::Exchange), Some(file)) => file,
        (Some(Credentials::Exchange), None) => {
            return Err(errors.at(
                &format!("{at}.exchange"),
                "is needed with credentials = \"exchange\": where and as whom to exchange",
            ));
        }
        (_, None) => return Ok(None),
        (_, Some(_)) => {
            return Err(errors.at(
                &format!("{at}.exchange"),
                "is read only with credentials = \"exchange\"",
            ));
        }
    };
    validate(
        file,
        backend_audience,
        errors,
        &format!("{at}.exchange"),
        env,
    )
    .map(Some)
}

fn validate(
    file: &ExchangeFile,
    backend_audience: &str,
    errors: &Errors,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ExchangeSettings, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    let private = file.allow_private_network.unwrap_or(false);
    let url = url::Url::parse(&file.token_endpoint)
        .map_err(|e| errors.at(&key("token_endpoint"), format!("is not a URL: {e}")))?;
    if url.scheme() != "https" && !(private && url.scheme() == "http") {
        return Err(errors.at(
            &key("token_endpoint"),
            "must be https (http only with allow_private_network = true)",
        ));
    }
    let (client_id, client_secret) =
        errors.client_of(at, &file.client_id, &file.client_secret_env, env)?;
    let words = |value: &Option<String>, name: &str| match value {
        Some(v) if v.trim().is_empty() => Err(errors.at(&key(name), "must not be empty")),
        other => Ok(other.clone()),
    };
    Ok(ExchangeSettings {
        token_endpoint: file.token_endpoint.clone(),
        client_id,
        client_secret,
        audience: words(&file.audience, "audience")?.unwrap_or_else(|| backend_audience.to_owned()),
        resource: words(&file.resource, "resource")?,
        scope: words(&file.scope, "scope")?,
        subject: file.subject_token.unwrap_or(SubjectToken::IdentityProvider),
        allow_private_network: private,
    })
}
