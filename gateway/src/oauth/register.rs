//! RFC 7591 dynamic client registration: validate the metadata, issue a `client_id` (and a secret only
//! to confidential clients), answer 201 with the registered metadata echoed. Also the store records
//! of the clients the config registers ([`configured`]).

use serde::Deserialize;
use serde_json::json;

use super::errors::OAuthError;
use super::response;
use super::{AuthServer, Request, Response, hash_secret, random_token, redirect, scope};
use crate::clock::now;
use crate::config::ClientSettings;
use crate::store::ClientRecord;

pub(crate) const AUTH_METHODS: &[&str] = &["none", "client_secret_basic", "client_secret_post"];
pub(crate) const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token"];

/// A client registered in the config, as the store keeps it: its secret hashed. The config's
/// clients are written to the store on every start, so that edits take effect.
pub(super) fn configured(client: &ClientSettings) -> ClientRecord {
    ClientRecord {
        client_id: client.client_id.clone(),
        secret_hash: client.secret.as_deref().map(hash_secret),
        secret_expires_at: 0,
        redirect_uris: client.redirect_uris.clone(),
        grant_types: client.grant_types.clone(),
        response_types: if client.redirect_uris.is_empty() {
            Vec::new()
        } else {
            vec!["code".into()]
        },
        token_endpoint_auth_method: client.token_endpoint_auth_method.as_str().to_owned(),
        client_name: client.client_name.clone(),
        client_uri: None,
        scope: None,
        application_type: None,
        issued_at: 0,
        origin: "config".into(),
        skip_consent: client.skip_consent,
        expires_at: 0,
        jwks: client.jwks.clone(),
        jwks_uri: client.jwks_uri.clone(),
    }
}

#[derive(Deserialize)]
struct Metadata {
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    client_name: Option<String>,
    client_uri: Option<String>,
    scope: Option<String>,
    application_type: Option<String>,
}

pub(super) async fn handle(server: &AuthServer, request: &Request) -> Result<Response, OAuthError> {
    if request.method != http::Method::POST {
        return Err(OAuthError::invalid_request("Register with POST"));
    }
    let metadata = read(request)?;
    let redirect_uris = redirect_uris(server, metadata.redirect_uris)?;
    let (method, grant_types, response_types) = grant(
        metadata.token_endpoint_auth_method,
        metadata.grant_types,
        metadata.response_types,
    )?;
    let scope = registered_scope(server, metadata.scope.as_deref())?;
    describes_itself_well(
        &metadata.client_name,
        &metadata.client_uri,
        &metadata.application_type,
    )?;

    let issued_at = now();
    let secret = (method != "none").then(|| random_token(32));
    let client = ClientRecord {
        client_id: random_token(16),
        secret_hash: secret.as_deref().map(hash_secret),
        secret_expires_at: 0,
        redirect_uris,
        grant_types,
        response_types,
        token_endpoint_auth_method: method,
        client_name: metadata.client_name,
        client_uri: metadata.client_uri,
        scope,
        application_type: metadata.application_type,
        issued_at,
        origin: "dynamic".into(),
        skip_consent: false,
        expires_at: 0,
        jwks: None,
        jwks_uri: None,
    };
    server.store.put_client(&client).await?;
    let name = client.client_name.as_deref().unwrap_or("-");
    tracing::info!(client_id = %client.client_id, name, "registered a client");
    Ok(response::json(201, &registered(&client, secret)))
}

/// The metadata of a JSON body.
fn read(request: &Request) -> Result<Metadata, OAuthError> {
    let is_json = request
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !is_json {
        return Err(OAuthError::InvalidClientMetadata(
            "The body must be application/json".into(),
        ));
    }
    serde_json::from_slice(&request.body).map_err(|e| {
        OAuthError::InvalidClientMetadata(format!(
            "The metadata is not valid JSON of the right shape: {e}"
        ))
    })
}

/// At least one redirect URI, each one the operator's policy allows.
fn redirect_uris(
    server: &AuthServer,
    redirect_uris: Option<Vec<String>>,
) -> Result<Vec<String>, OAuthError> {
    let redirect_uris = redirect_uris.unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(OAuthError::InvalidRedirectUri(
            "redirect_uris must list at least one URI".into(),
        ));
    }
    let schemes = &server.config.auth.private_use_schemes;
    if let Some(problem) = redirect_uris
        .iter()
        .find_map(|u| redirect::registration_problem(u, schemes))
    {
        return Err(OAuthError::InvalidRedirectUri(problem));
    }
    Ok(redirect_uris)
}

/// How the client authenticates, and its grant and response types: the authorization code grant
/// (with refresh tokens if asked), response type `code`.
fn grant(
    method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
) -> Result<(String, Vec<String>, Vec<String>), OAuthError> {
    let method = method.unwrap_or_else(|| "client_secret_basic".into());
    if !AUTH_METHODS.contains(&method.as_str()) {
        return Err(OAuthError::InvalidClientMetadata(format!(
            "token_endpoint_auth_method {method:?} is not one of {}",
            AUTH_METHODS.join(", ")
        )));
    }
    let grant_types = grant_types.unwrap_or_else(|| vec!["authorization_code".into()]);
    if let Some(bad) = grant_types
        .iter()
        .find(|g| !GRANT_TYPES.contains(&g.as_str()))
    {
        return Err(OAuthError::InvalidClientMetadata(format!(
            "grant type {bad:?} is not supported"
        )));
    }
    let response_types = response_types.unwrap_or_else(|| vec!["code".into()]);
    if response_types.iter().any(|r| r != "code")
        || !grant_types.iter().any(|g| g == "authorization_code")
    {
        return Err(OAuthError::InvalidClientMetadata(
            "only the authorization_code grant with response type code is supported".into(),
        ));
    }
    Ok((method, grant_types, response_types))
}

/// The scope registered as it will be granted: the standard scopes the gateway does not issue are
/// dropped (the response says what was registered, RFC 7591 §3.2.1).
fn registered_scope(
    server: &AuthServer,
    asked: Option<&str>,
) -> Result<Option<String>, OAuthError> {
    let Some(asked) = asked else {
        return Ok(None);
    };
    let granted = scope::grantable(asked, &server.config.supported_scopes()).map_err(|bad| {
        OAuthError::InvalidClientMetadata(format!("scope {bad:?} is not supported"))
    })?;
    Ok((!granted.is_empty()).then(|| granted.join(" ")))
}

/// What the client says of itself, which the consent page shows: a name of at most 200 characters,
/// an https home page, and an application type of `native` or `web`.
fn describes_itself_well(
    client_name: &Option<String>,
    client_uri: &Option<String>,
    application_type: &Option<String>,
) -> Result<(), OAuthError> {
    if client_name
        .as_ref()
        .is_some_and(|n| n.chars().count() > 200)
    {
        return Err(OAuthError::InvalidClientMetadata(
            "client_name is longer than 200 characters".into(),
        ));
    }
    if let Some(uri) = client_uri
        && url::Url::parse(uri)
            .map(|u| u.scheme() != "https")
            .unwrap_or(true)
    {
        return Err(OAuthError::InvalidClientMetadata(
            "client_uri must be an https URL".into(),
        ));
    }
    if let Some(kind) = application_type
        && kind != "native"
        && kind != "web"
    {
        return Err(OAuthError::InvalidClientMetadata(format!(
            "application_type {kind:?} is not native or web"
        )));
    }
    Ok(())
}

/// The registration response: the metadata as registered, and the secret, shown this once.
fn registered(client: &ClientRecord, secret: Option<String>) -> serde_json::Value {
    let mut body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.issued_at,
        "redirect_uris": client.redirect_uris,
        "grant_types": client.grant_types,
        "response_types": client.response_types,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
    });
    for (key, value) in [
        ("client_name", &client.client_name),
        ("client_uri", &client.client_uri),
        ("scope", &client.scope),
        ("application_type", &client.application_type),
    ] {
        if let Some(value) = value {
            body[key] = json!(value);
        }
    }
    if let Some(secret) = secret {
        body["client_secret"] = json!(secret);
        body["client_secret_expires_at"] = json!(0);
    }
    body
}
