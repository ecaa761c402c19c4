//! Client authentication at `/token` and `/revoke`: `client_secret_basic`, `client_secret_post`,
//! `private_key_jwt` (a configured client's) or `none`, and only the method the client registered.

use std::collections::HashMap;

use base64::Engine as _;

use super::assertion::{self, Expected, Signer};
use super::errors::OAuthError;
use super::{AsEndpoint, AuthServer, Request, hash_secret, secrets_equal};
use crate::clock::now;
use crate::config::ASYMMETRIC;
use crate::store::ClientRecord;

/// The one `client_assertion_type` there is (RFC 7523 §2.2).
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub(super) async fn authenticate(
    server: &AuthServer,
    request: &Request,
    form: &HashMap<String, String>,
) -> Result<ClientRecord, OAuthError> {
    let basic = basic_credentials(request)?;
    if let Some(kind) = form.get("client_assertion_type") {
        if basic.is_some() || form.contains_key("client_secret") {
            return Err(OAuthError::invalid_request(
                "Use one client authentication method, not two",
            ));
        }
        if kind != CLIENT_ASSERTION_TYPE {
            return Err(OAuthError::InvalidClient(format!(
                "The client_assertion_type must be {CLIENT_ASSERTION_TYPE}"
            )));
        }
        let assertion = form
            .get("client_assertion")
            .ok_or_else(|| OAuthError::invalid_request("No client_assertion"))?;
        return by_assertion(server, assertion, form.get("client_id")).await;
    }
    let (client_id, secret, method) = match (&basic, form.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "Use one client authentication method, not two",
            ));
        }
        (Some((id, secret)), None) => (id.clone(), Some(secret.clone()), "client_secret_basic"),
        (None, Some(secret)) => (
            form.get("client_id")
                .cloned()
                .ok_or_else(|| OAuthError::InvalidClient("No client_id".into()))?,
            Some(secret.clone()),
            "client_secret_post",
        ),
        (None, None) => (
            form.get("client_id")
                .cloned()
                .ok_or_else(|| OAuthError::InvalidClient("No client_id".into()))?,
            None,
            "none",
        ),
    };
    if let (Some((id, _)), Some(form_id)) = (&basic, form.get("client_id"))
        && id != form_id
    {
        return Err(OAuthError::InvalidClient(
            "The client_id differs from the authenticated client".into(),
        ));
    }
    let client = match server.client(&client_id).await? {
        Some(client) => client,
        // A metadata-document client whose document is no longer kept (it is kept a day at most)
        // is public, and may only refresh or revoke what it holds: the grant behind its refresh
        // token must be its own. Its document is not fetched again here.
        None if method == "none" && server.is_document_client(&client_id) => {
            document_client(client_id)
        }
        None => return Err(OAuthError::InvalidClient("Unknown client".into())),
    };
    if client.token_endpoint_auth_method != method {
        return Err(OAuthError::InvalidClient(format!(
            "The client must authenticate with {}",
            client.token_endpoint_auth_method
        )));
    }
    if let Some(secret) = secret {
        let expected = client.secret_hash.as_deref().unwrap_or_default();
        if !secrets_equal(&hash_secret(&secret), expected) {
            return Err(OAuthError::InvalidClient(
                "Client authentication failed".into(),
            ));
        }
        if client.secret_expires_at != 0 && client.secret_expires_at < now() {
            return Err(OAuthError::InvalidClient(
                "The client secret expired".into(),
            ));
        }
    }
    Ok(client)
}

/// The client a `private_key_jwt` assertion authenticates (RFC 7523 §2.2, §3): its `iss` and `sub`
/// are the client, its `aud` this server (its issuer or its token endpoint), its signature by a key
/// of the client's, its `jti` not used before.
async fn by_assertion(
    server: &AuthServer,
    assertion: &str,
    form_client: Option<&String>,
) -> Result<ClientRecord, OAuthError> {
    let unverified: serde_json::Value = jsonwebtoken::dangerous::insecure_decode_claims(assertion)
        .map_err(|_| OAuthError::InvalidClient("The client_assertion is not a JWT".into()))?;
    let client_id = unverified["sub"]
        .as_str()
        .ok_or_else(|| OAuthError::InvalidClient("The client_assertion has no sub".into()))?;
    if form_client.is_some_and(|id| id != client_id) {
        return Err(OAuthError::InvalidClient(
            "The client_id differs from the assertion's client".into(),
        ));
    }
    let client = server
        .client(client_id)
        .await?
        .ok_or_else(|| OAuthError::InvalidClient("Unknown client".into()))?;
    if client.token_endpoint_auth_method != "private_key_jwt" {
        return Err(OAuthError::InvalidClient(format!(
            "The client must authenticate with {}",
            client.token_endpoint_auth_method
        )));
    }
    let signer = match (&client.jwks, &client.jwks_uri) {
        (Some(set), _) => Signer::Set(set),
        (None, Some(uri)) => Signer::Published(server.published_keys.of_client(client_id, uri)),
        (None, None) => {
            return Err(OAuthError::InvalidClient(
                "The client has no keys to check its assertion with".into(),
            ));
        }
    };
    let issuer = &server.config.start.tokens.issuer;
    let audiences = [
        issuer.clone(),
        format!("{issuer}/"),
        format!(
            "{}{}",
            server.config.server.public_url,
            AsEndpoint::Token.path()
        ),
    ];
    let algorithms: Vec<String> = ASYMMETRIC.iter().map(|a| (*a).to_owned()).collect();
    let expected = Expected {
        issuers: std::slice::from_ref(&client.client_id),
        audiences: &audiences,
        subject: Some(&client.client_id),
        typ: None,
        algorithms: &algorithms,
        kind: "client",
        refuse: |why| OAuthError::InvalidClient(format!("Client authentication failed: {why}")),
    };
    assertion::verify(server, assertion, signer, &expected, now()).await?;
    Ok(client)
}

/// What a metadata-document client is known as without its document: public, refreshing only.
fn document_client(client_id: String) -> ClientRecord {
    ClientRecord {
        client_id,
        secret_hash: None,
        secret_expires_at: 0,
        redirect_uris: Vec::new(),
        grant_types: vec!["refresh_token".into()],
        response_types: Vec::new(),
        token_endpoint_auth_method: "none".into(),
        client_name: None,
        client_uri: None,
        scope: None,
        application_type: None,
        issued_at: 0,
        origin: "metadata_document".into(),
        skip_consent: false,
        expires_at: 0,
        jwks: None,
        jwks_uri: None,
    }
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_credentials(request: &Request) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = request.headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::InvalidClient("The Basic credentials are malformed".into());
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}
