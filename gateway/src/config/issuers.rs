//! `[[issuers]]`, validated: the other authorization servers whose access tokens routes accept
//! (the gateway as a resource server, alone or beside its own server). Only asymmetric signatures:
//! a key an issuer publishes verifies, it never signs, so `none` and HMAC are refused outright.

use std::sync::Arc;

use url::Url;

use super::file::{IntrospectionFile, IssuerFile};
use super::{ConfigError, Errors};

/// The algorithms accepted when an issuer names none.
const DEFAULT_ALGORITHMS: &[&str] = &["RS256", "PS256", "ES256", "EdDSA"];
/// Every algorithm an issuer may be trusted with: signatures by a private key.
pub(crate) const ASYMMETRIC: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// An authorization server whose JWT access tokens routes accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExternalIssuer {
    pub name: String,
    /// Every `iss` its tokens may carry, compared exactly: the issuer first.
    pub issuers: Vec<String>,
    /// Where its keys are; `None`: found in its metadata.
    pub jwks_uri: Option<String>,
    /// Audiences accepted besides the route's resource.
    pub audiences: Vec<String>,
    /// The `alg` values accepted, as JOSE names them.
    pub algorithms: Vec<String>,
    pub require_typ: bool,
    pub subject_claim: String,
    pub groups_claim: String,
    pub allow_private_network: bool,
    /// How its opaque tokens are checked, where they are.
    pub introspection: Option<Introspection>,
}

/// An issuer's introspection endpoint (RFC 7662) and the gateway's client there.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Introspection {
    /// `None`: its metadata's `introspection_endpoint`.
    pub endpoint: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    /// How long an answer is kept at most.
    pub cache_secs: u64,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspection")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// An introspection answer is kept this long when the issuer's config names no bound.
const INTROSPECTION_CACHE_SECS: u64 = 60;
/// Nor longer than this, whatever it names: an answer is how the gateway hears of a revocation.
const INTROSPECTION_CACHE_MAX_SECS: u64 = 3600;

impl ExternalIssuer {
    /// The issuer identifier, as the route's protected resource metadata names it.
    pub(crate) fn issuer(&self) -> &str {
        &self.issuers[0]
    }
}

/// Every `[[issuers]]` entry, validated.
pub(super) fn settings(
    files: &[IssuerFile],
    errors: &Errors,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Arc<ExternalIssuer>>, ConfigError> {
    let mut issuers: Vec<Arc<ExternalIssuer>> = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        let at = format!("issuers[{i}]");
        let issuer = validate(file, errors, &at, env)?;
        if issuers.iter().any(|other| other.name == issuer.name) {
            return Err(errors.at(&format!("{at}.name"), "is already used"));
        }
        issuers.push(Arc::new(issuer));
    }
    Ok(issuers)
}

fn validate(
    file: &IssuerFile,
    errors: &Errors,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ExternalIssuer, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    let private = file.allow_private_network.unwrap_or(false);
    if file.name.trim().is_empty() {
        return Err(errors.at(&key("name"), "must not be empty"));
    }
    let mut issuers = vec![file.issuer.clone()];
    issuers.extend(file.also_issuers.iter().flatten().cloned());
    for (i, issuer) in issuers.iter().enumerate() {
        let at = if i == 0 {
            key("issuer")
        } else {
            format!("{at}.also_issuers[{}]", i - 1)
        };
        check_url(issuer, private).map_err(|reason| errors.at(&at, reason))?;
    }
    if let Some(uri) = &file.jwks_uri {
        check_url(uri, private).map_err(|reason| errors.at(&key("jwks_uri"), reason))?;
    }
    let algorithms: Vec<String> = match &file.algorithms {
        Some(list) if list.is_empty() => {
            return Err(errors.at(&key("algorithms"), "must name at least one algorithm"));
        }
        Some(list) => list.clone(),
        None => DEFAULT_ALGORITHMS.iter().map(|a| (*a).to_owned()).collect(),
    };
    for (i, alg) in algorithms.iter().enumerate() {
        if !ASYMMETRIC.contains(&alg.as_str()) {
            return Err(errors.at(
                &format!("{at}.algorithms[{i}]"),
                format!(
                    "{alg} is not accepted: only signatures by a private key ({})",
                    ASYMMETRIC.join(", ")
                ),
            ));
        }
    }
    let audiences = file.audiences.clone().unwrap_or_default();
    if let Some(i) = audiences.iter().position(|a| a.trim().is_empty()) {
        return Err(errors.at(&format!("{at}.audiences[{i}]"), "must not be empty"));
    }
    let claim = |value: &Option<String>, default: &str, name: &str| match value {
        Some(c) if c.trim().is_empty() => Err(errors.at(&key(name), "must not be empty")),
        Some(c) => Ok(c.clone()),
        None => Ok(default.to_owned()),
    };
    Ok(ExternalIssuer {
        name: file.name.clone(),
        issuers,
        jwks_uri: file.jwks_uri.clone(),
        audiences,
        algorithms,
        require_typ: file.require_typ.unwrap_or(false),
        subject_claim: claim(&file.subject_claim, "sub", "subject_claim")?,
        groups_claim: claim(&file.groups_claim, "groups", "groups_claim")?,
        allow_private_network: private,
        introspection: file
            .introspection
            .as_ref()
            .map(|i| introspection(i, errors, &key("introspection"), private, env))
            .transpose()?,
    })
}

fn introspection(
    file: &IntrospectionFile,
    errors: &Errors,
    at: &str,
    private: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Introspection, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    if let Some(uri) = &file.endpoint {
        check_url(uri, private).map_err(|reason| errors.at(&key("endpoint"), reason))?;
    }
    let (client_id, client_secret) =
        errors.client_of(at, &file.client_id, &file.client_secret_env, env)?;
    let cache_secs = file.cache.map_or(INTROSPECTION_CACHE_SECS, |d| d.as_secs());
    if cache_secs > INTROSPECTION_CACHE_MAX_SECS {
        return Err(errors.at(
            &key("cache"),
            "must be at most 1h: a kept answer hides a revocation",
        ));
    }
    Ok(Introspection {
        endpoint: file.endpoint.clone(),
        client_id,
        client_secret,
        cache_secs,
    })
}

/// An issuer or key URL: https, unless private networks are allowed (then http too).
fn check_url(value: &str, private: bool) -> Result<(), String> {
    let url = Url::parse(value).map_err(|e| format!("{value} is not a URL: {e}"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if private => Ok(()),
        _ => Err(format!(
            "{value} must be https (http only with allow_private_network = true)"
        )),
    }
}

/// The issuers a route names (`issuers = [...]` at `at`), from those configured.
pub(super) fn of_route(
    names: Option<&Vec<String>>,
    issuers: &[Arc<ExternalIssuer>],
    errors: &Errors,
    at: &str,
) -> Result<Vec<Arc<ExternalIssuer>>, ConfigError> {
    named(names, issuers, errors, &format!("{at}.issuers"))
}

/// The issuers a list at `key` names, from those configured.
pub(super) fn named(
    names: Option<&Vec<String>>,
    issuers: &[Arc<ExternalIssuer>],
    errors: &Errors,
    key: &str,
) -> Result<Vec<Arc<ExternalIssuer>>, ConfigError> {
    let mut found = Vec::new();
    for (i, name) in names.into_iter().flatten().enumerate() {
        let issuer = issuers.iter().find(|x| &x.name == name).ok_or_else(|| {
            errors.at(
                &format!("{key}[{i}]"),
                format!("no [[issuers]] entry is named {name:?}"),
            )
        })?;
        found.push(issuer.clone());
    }
    Ok(found)
}
