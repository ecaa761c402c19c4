//! Finding a backend's authorization server, as a careful MCP client does (the MCP authorization
//! spec, 2025-03-26 to 2026-07-28): the backend's own 401 challenge (`resource_metadata`, `scope`),
//! else its protected resource metadata at the well-known URIs (RFC 9728), whose `resource` must
//! be the backend; then the server's metadata by RFC 8414 or OpenID discovery, whose `issuer` must
//! be exactly the one named, and which must offer PKCE with S256. A backend of 2025-03-26 without
//! resource metadata has its authorization server at its own origin, with the default endpoints
//! where that has no metadata either.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::errors::ConnectionError;
use crate::config::ConnectionSettings;
use crate::outbound::{self, Outbound};

/// A metadata document is a few kilobytes.
const MAX_BYTES: usize = 64 * 1024;
pub(super) const TIMEOUT: Duration = Duration::from_secs(5);

/// What a backend's `WWW-Authenticate: Bearer` challenge says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
}

impl Challenge {
    /// The Bearer challenge of a `WWW-Authenticate` value (RFC 6750 §3), if it has one.
    pub(crate) fn parse(header: &str) -> Option<Self> {
        let start = header.find(|c: char| !c.is_whitespace())?;
        let rest = &header[start..];
        let (scheme, params) = rest.split_once(' ').unwrap_or((rest, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut challenge = Challenge::default();
        for (name, value) in auth_params(params) {
            match name.to_ascii_lowercase().as_str() {
                "resource_metadata" => challenge.resource_metadata = Some(value),
                "scope" => challenge.scope = Some(value),
                "error" => challenge.error = Some(value),
                _ => {}
            }
        }
        Some(challenge)
    }
}

/// What a backend's refusal of a user's token asks of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BackendRefusal {
    /// A 401: the token, which the gateway thought in force, is refused.
    Token,
    /// A 403 `insufficient_scope`: more scope, the one named if any.
    MoreScope(Option<String>),
}

impl BackendRefusal {
    /// The refusal a backend's `status` and `WWW-Authenticate` value make, when it is about the
    /// token; `None` for any other answer (a plain 403 is about what was asked).
    pub(crate) fn of(status: u16, www_authenticate: Option<&str>) -> Option<Self> {
        let challenge = www_authenticate.and_then(Challenge::parse);
        match status {
            401 => Some(BackendRefusal::Token),
            403 => challenge
                .filter(|c| c.error.as_deref() == Some("insufficient_scope"))
                .map(|c| BackendRefusal::MoreScope(c.scope)),
            _ => None,
        }
    }
}

/// `name=value` and `name="quoted value"` pairs, comma-separated.
fn auth_params(mut rest: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',', '\t']);
        let Some((name, after)) = rest.split_once('=') else {
            return params;
        };
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.push((name.trim().to_owned(), value));
        rest = next;
    }
}

/// The scope that asks an authorization server for a refresh token (OpenID Connect, SEP-2207).
const OFFLINE_ACCESS: &str = "offline_access";

/// The authorization server's metadata, as far as the gateway uses it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub registration_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    pub scopes_supported: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct ResourceMetadata {
    resource: Option<String>,
    #[serde(default)]
    authorization_servers: Vec<String>,
    scopes_supported: Option<Vec<String>>,
}

/// What discovery found for a backend.
#[derive(Debug, Clone)]
pub(crate) struct Discovered {
    /// The resource to ask a token for: what the backend's metadata names, else its URL.
    pub resource: String,
    pub server: ServerMetadata,
    /// The scopes to ask for.
    pub scopes: Vec<String>,
}

/// Discovers the authorization server of `backend`, from its `challenge` if it gave one, else by
/// asking it.
pub(crate) async fn discover(
    http: &Outbound,
    backend: &str,
    settings: &ConnectionSettings,
    challenge: Option<Challenge>,
) -> Result<Discovered, ConnectionError> {
    let backend_url =
        Url::parse(backend).map_err(|e| ConnectionError::Discovery(format!("{backend}: {e}")))?;
    let challenge = match challenge {
        Some(challenge) => challenge,
        None => probe(http, backend).await?.unwrap_or_default(),
    };
    let candidates = match &challenge.resource_metadata {
        Some(url) => vec![url.clone()],
        None => resource_metadata_urls(&backend_url),
    };
    let mut found = None;
    for url in &candidates {
        if let Some(document) = fetch::<ResourceMetadata>(http, url).await? {
            found = Some((url.clone(), document));
            break;
        }
    }
    let Some((_, metadata)) = found else {
        if challenge.resource_metadata.is_some() {
            return Err(ConnectionError::Discovery(format!(
                "the resource metadata {} the backend names is not there",
                candidates[0]
            )));
        }
        return legacy(http, &backend_url, settings, &challenge).await;
    };
    let resource = match metadata.resource {
        Some(resource) if !same_resource(&backend_url, &resource) => {
            return Err(ConnectionError::ResourceMismatch {
                expected: backend.to_owned(),
                found: resource,
            });
        }
        Some(resource) => resource,
        None => backend.to_owned(),
    };
    let issuer = choose_issuer(&metadata.authorization_servers, settings)?;
    let server = server_metadata(http, &issuer).await?.ok_or_else(|| {
        ConnectionError::Discovery(format!("the authorization server {issuer} has no metadata"))
    })?;
    require_https(&server, settings)?;
    let scopes = scopes(settings, &challenge, metadata.scopes_supported, &server);
    Ok(Discovered {
        resource,
        server,
        scopes,
    })
}

/// Asks the backend without a token, for its challenge.
async fn probe(http: &Outbound, backend: &str) -> Result<Option<Challenge>, ConnectionError> {
    let response = http
        .request(reqwest::Method::POST, backend)
        .map_err(|e| ConnectionError::Discovery(format!("{backend}: {e}")))?
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":0,"method":"ping"}"#)
        .send()
        .await
        .map_err(|e| {
            ConnectionError::Unavailable(format!("{backend}: {}", outbound::failure(&e)))
        })?;
    Ok(response
        .headers()
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(Challenge::parse))
}

/// The well-known URIs of a backend's resource metadata, in the order the spec tries them: with the
/// backend's path, then at the root.
fn resource_metadata_urls(backend: &Url) -> Vec<String> {
    let origin = backend.origin().ascii_serialization();
    let path = backend.path().trim_end_matches('/');
    let mut urls = Vec::new();
    if !path.is_empty() {
        urls.push(format!(
            "{origin}/.well-known/oauth-protected-resource{path}"
        ));
    }
    urls.push(format!("{origin}/.well-known/oauth-protected-resource"));
    urls
}

/// Whether the metadata's `resource` names `backend`: the same origin, and a path the backend's is
/// within (as the MCP SDKs check it).
fn same_resource(backend: &Url, resource: &str) -> bool {
    let Ok(resource) = Url::parse(resource) else {
        return false;
    };
    if resource.origin() != backend.origin() {
        return false;
    }
    let within = resource.path().trim_end_matches('/');
    let path = backend.path().trim_end_matches('/');
    path == within || path.starts_with(&format!("{within}/")) || within.is_empty()
}

/// The first server the backend names that the route allows.
fn choose_issuer(
    named: &[String],
    settings: &ConnectionSettings,
) -> Result<String, ConnectionError> {
    if named.is_empty() {
        return Err(ConnectionError::Discovery(
            "the backend's metadata names no authorization server".into(),
        ));
    }
    if settings.authorization_servers.is_empty() {
        return Ok(named[0].clone());
    }
    named
        .iter()
        .find(|issuer| settings.authorization_servers.contains(issuer))
        .cloned()
        .ok_or_else(|| ConnectionError::NotAllowed(named.join(", ")))
}

/// The scopes to ask for: the route's, else the challenge's, else what the backend supports; and
/// `offline_access` where the route names none and the server offers it (SEP-2207): the gateway
/// holds the user's connection for as long as they use it, and wants a refresh token for that.
fn scopes(
    settings: &ConnectionSettings,
    challenge: &Challenge,
    supported: Option<Vec<String>>,
    server: &ServerMetadata,
) -> Vec<String> {
    if !settings.scopes.is_empty() {
        return settings.scopes.clone();
    }
    let mut scopes: Vec<String> = match &challenge.scope {
        Some(scope) => scope.split_whitespace().map(str::to_owned).collect(),
        None => supported.unwrap_or_default(),
    };
    let offered = server
        .scopes_supported
        .as_ref()
        .is_some_and(|s| s.iter().any(|s| s == OFFLINE_ACCESS));
    if offered && !scopes.iter().any(|s| s == OFFLINE_ACCESS) {
        scopes.push(OFFLINE_ACCESS.to_owned());
    }
    scopes
}

/// A backend of 2025-03-26 without resource metadata: its server is at its origin.
async fn legacy(
    http: &Outbound,
    backend: &Url,
    settings: &ConnectionSettings,
    challenge: &Challenge,
) -> Result<Discovered, ConnectionError> {
    let origin = backend.origin().ascii_serialization();
    let issuer = choose_issuer(std::slice::from_ref(&origin), settings)?;
    let server = match server_metadata(http, &issuer).await? {
        Some(server) => server,
        // Without metadata, the endpoints the 2025-03-26 spec names, which take PKCE.
        None => ServerMetadata {
            issuer: issuer.clone(),
            authorization_endpoint: format!("{origin}/authorize"),
            token_endpoint: format!("{origin}/token"),
            registration_endpoint: Some(format!("{origin}/register")),
            revocation_endpoint: None,
            code_challenge_methods_supported: vec!["S256".into()],
            token_endpoint_auth_methods_supported: None,
            client_id_metadata_document_supported: false,
            authorization_response_iss_parameter_supported: false,
            scopes_supported: None,
        },
    };
    require_https(&server, settings)?;
    // Not every scope the server knows: only what the route or the backend asks for.
    let scopes = scopes(settings, challenge, None, &server);
    Ok(Discovered {
        resource: backend.as_str().to_owned(),
        server,
        scopes,
    })
}

/// Refuses a server whose issuer or endpoints are not https: codes, verifiers, secrets and tokens
/// travel there (plain http only on a private network the operator allows).
fn require_https(
    server: &ServerMetadata,
    settings: &ConnectionSettings,
) -> Result<(), ConnectionError> {
    if settings.allow_private_network {
        return Ok(());
    }
    let endpoints = [
        Some(&server.issuer),
        Some(&server.authorization_endpoint),
        Some(&server.token_endpoint),
        server.registration_endpoint.as_ref(),
        server.revocation_endpoint.as_ref(),
    ];
    match endpoints
        .into_iter()
        .flatten()
        .find(|url| !url.starts_with("https://"))
    {
        Some(url) => Err(ConnectionError::Discovery(format!(
            "the authorization server's {url} is not https"
        ))),
        None => Ok(()),
    }
}

/// The metadata of the server `issuer`, from the first of its well-known URIs that has it; checked.
async fn server_metadata(
    http: &Outbound,
    issuer: &str,
) -> Result<Option<ServerMetadata>, ConnectionError> {
    let url = Url::parse(issuer)
        .map_err(|e| ConnectionError::Discovery(format!("the issuer {issuer:?}: {e}")))?;
    for candidate in server_metadata_urls(&url) {
        let Some(server) = fetch::<ServerMetadata>(http, &candidate).await? else {
            continue;
        };
        if server.issuer != issuer {
            return Err(ConnectionError::IssuerMismatch {
                expected: issuer.to_owned(),
                found: server.issuer,
            });
        }
        if !server
            .code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
        {
            return Err(ConnectionError::NoPkce(issuer.to_owned()));
        }
        return Ok(Some(server));
    }
    Ok(None)
}

/// The well-known URIs of a server's metadata, in the order the MCP spec tries them: RFC 8414 and
/// OpenID discovery with the issuer's path inserted, then OpenID's appended.
fn server_metadata_urls(issuer: &Url) -> Vec<String> {
    let origin = issuer.origin().ascii_serialization();
    let path = issuer.path().trim_end_matches('/');
    if path.is_empty() {
        return vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ];
    }
    vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}/.well-known/openid-configuration{path}"),
        format!("{origin}{path}/.well-known/openid-configuration"),
    ]
}

/// A JSON document, or `None` where there is none (a 4xx); a 5xx or a failure is an error.
async fn fetch<T: serde::de::DeserializeOwned>(
    http: &Outbound,
    url: &str,
) -> Result<Option<T>, ConnectionError> {
    let response = http
        .request(reqwest::Method::GET, url)
        .map_err(|e| ConnectionError::Discovery(format!("{url}: {e}")))?
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| ConnectionError::Discovery(format!("{url}: {}", outbound::failure(&e))))?;
    let status = response.status();
    if status.is_client_error() {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(ConnectionError::Unavailable(format!(
            "{url}: HTTP {status}"
        )));
    }
    let body = outbound::read_bounded(response, MAX_BYTES, TIMEOUT)
        .await
        .map_err(|e| ConnectionError::Discovery(format!("{url}: {e}")))?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| ConnectionError::Discovery(format!("{url} is not valid metadata: {e}")))
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
