//! Opaque access tokens of another authorization server, read by asking it (RFC 7662): a POST of
//! the token to its introspection endpoint (configured, or named by its metadata), the gateway
//! authenticating as its client there with `client_secret_basic`. What it answers of an active
//! token is read as a JWT's claims are ([`super::external`]), which keeps it no longer than the
//! token's `exp` and the issuer's configured bound.

use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use super::issuer_keys::IssuerKeys;
use crate::config::Introspection;
use crate::outbound::read_bounded;

const MAX_ANSWER: usize = 64 * 1024;
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// What the issuer says of `token`: its claims if active, `None` if not; an error where it could
/// not be asked or did not answer as RFC 7662 says.
pub(super) async fn ask(
    issuer: &IssuerKeys,
    settings: &Introspection,
    token: &[u8],
) -> Result<Option<Value>, String> {
    let endpoint = endpoint(issuer, settings).await?;
    let token = std::str::from_utf8(token).map_err(|_| "the token is not text".to_owned())?;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .append_pair("token_type_hint", "access_token")
        .finish();
    let response = issuer
        .http
        .request(reqwest::Method::POST, &endpoint)?
        .header(http::header::AUTHORIZATION, basic(settings))
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::ACCEPT, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{endpoint}: {}", crate::outbound::failure(&e)))?;
    if !response.status().is_success() {
        return Err(format!("{endpoint}: HTTP {}", response.status()));
    }
    let answer: Value = serde_json::from_slice(
        &read_bounded(response, MAX_ANSWER, ANSWER_TIMEOUT)
            .await
            .map_err(|e| format!("{endpoint}: {e}"))?,
    )
    .map_err(|e| format!("{endpoint} answered what is not JSON: {e}"))?;
    match answer["active"].as_bool() {
        Some(true) if is_access_token(&answer) => Ok(Some(answer)),
        Some(_) => Ok(None),
        None => Err(format!("{endpoint} answered without `active`")),
    }
}

/// A refresh token is active too, at some servers' endpoints: it is not an access token.
fn is_access_token(answer: &Value) -> bool {
    match answer["token_type"].as_str() {
        None => true,
        Some(kind) => {
            kind.eq_ignore_ascii_case("bearer")
                || kind.eq_ignore_ascii_case("access_token")
                || kind.eq_ignore_ascii_case("urn:ietf:params:oauth:token-type:access_token")
        }
    }
}

/// The endpoint configured, or found once in the issuer's metadata.
async fn endpoint(issuer: &IssuerKeys, settings: &Introspection) -> Result<String, String> {
    if let Some(endpoint) = &settings.endpoint {
        return Ok(endpoint.clone());
    }
    let known = issuer
        .introspection_endpoint
        .lock()
        .expect("not poisoned")
        .clone();
    if let Some(endpoint) = known {
        return Ok(endpoint);
    }
    let found = issuer.metadata_uri("introspection_endpoint").await?;
    *issuer.introspection_endpoint.lock().expect("not poisoned") = Some(found.clone());
    Ok(found)
}

/// `Authorization: Basic` of the gateway's client at the issuer (RFC 6749 §2.3.1: each part
/// form-urlencoded first).
fn basic(settings: &Introspection) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!(
        "{}:{}",
        encode(&settings.client_id),
        encode(&settings.client_secret)
    );
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}
