//! Access tokens of other authorization servers ([`ExternalIssuer`]), on the routes that accept
//! them: JWTs checked against the issuer's published keys, read into the same claims the gateway's
//! own tokens carry, so that audience, scopes, policy and streams treat both alike.
//!
//! The `alg` must be one the issuer is trusted with (asymmetric only: an HMAC "signed" with a
//! public key, or `none`, is refused before any key is looked at), and the key its `kid` names
//! must be of that algorithm's family. `iss` is compared exactly with the issuer's identifiers,
//! `aud` must name the route's resource or one of the issuer's audiences, `exp` and `nbf` hold
//! within the clock skew. Keys are fetched from the issuer's `jwks_uri` (configured, or found in
//! its metadata) when first needed and again for a `kid` not known, at most every few seconds, so
//! that forged `kid`s cannot make the gateway hammer the issuer. A verified token is kept until it
//! expires.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;

use super::access::{ACCESS_TOKEN_TYP, AccessClaims, TokenError};
use crate::cache::Cache;
use crate::config::{ExternalIssuer, Route};
use crate::outbound::{Outbound, read_bounded};

/// Keys are looked up again for an unknown `kid` no sooner than this after the last time.
const REFETCH_SECS: u64 = 5;
/// Keys are looked up again anyway after this long: issuers rotate them.
const KEYS_SECS: u64 = 3600;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_DOCUMENT: usize = 256 * 1024;
const VERIFIED_TOKENS: usize = 50_000;

/// Checks the tokens of every configured issuer.
pub(crate) struct ExternalVerifier {
    issuers: HashMap<String, IssuerKeys>,
    skew: u64,
    verified: Cache<Box<[u8]>, Arc<AccessClaims>>,
}

/// One issuer's keys, as last fetched.
struct IssuerKeys {
    settings: Arc<ExternalIssuer>,
    http: Outbound,
    fetched: tokio::sync::Mutex<Fetched>,
}

#[derive(Default)]
struct Fetched {
    keys: Option<Arc<JwkSet>>,
    /// When they were last asked for (fetched or not), and when fetched.
    asked_at: u64,
    fetched_at: u64,
}

impl ExternalVerifier {
    /// A verifier for `issuers`, allowing `skew` seconds of clock difference.
    pub(crate) fn new(issuers: &[Arc<ExternalIssuer>], skew: u64) -> Self {
        let issuers = issuers
            .iter()
            .map(|settings| {
                let keys = IssuerKeys {
                    http: Outbound::new(settings.allow_private_network, FETCH_TIMEOUT),
                    settings: settings.clone(),
                    fetched: tokio::sync::Mutex::new(Fetched::default()),
                };
                (settings.name.clone(), keys)
            })
            .collect();
        Self {
            issuers,
            skew,
            verified: Cache::new(VERIFIED_TOKENS),
        }
    }

    /// Whether `token` claims to come from one of `route`'s issuers (unverified: only to choose
    /// who checks it).
    pub(crate) fn claims_issuer_of(route: &Route, token: &[u8]) -> bool {
        unverified_issuer(token)
            .is_some_and(|iss| route.issuers.iter().any(|i| i.issuers.contains(&iss)))
    }

    /// The claims of `token` for `route`, whose issuers it must come from.
    pub(crate) async fn verify(
        &self,
        route: &Route,
        token: &[u8],
        now: u64,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        if let Some(claims) = self.verified.get(token, now) {
            // Kept whatever route it was checked for: this one must take its issuer and audience.
            if !route
                .issuers
                .iter()
                .any(|i| i.issuers.contains(&claims.iss))
            {
                return Err(TokenError::WrongIssuer);
            }
            if claims.is_for(&route.resource) || self.has_alias_audience(route, &claims) {
                return Ok(claims);
            }
            return Err(TokenError::WrongAudience);
        }
        let text = std::str::from_utf8(token).map_err(|_| TokenError::Malformed)?;
        let iss = unverified_issuer(token).ok_or(TokenError::Malformed)?;
        let settings = route
            .issuers
            .iter()
            .find(|i| i.issuers.contains(&iss))
            .ok_or(TokenError::WrongIssuer)?;
        let keys = self
            .issuers
            .get(&settings.name)
            .ok_or(TokenError::WrongIssuer)?;
        let header = jsonwebtoken::decode_header(text).map_err(|_| TokenError::Malformed)?;
        let alg = algorithm_name(header.alg);
        if !settings.algorithms.contains(&alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        if settings.require_typ && !is_access_token_typ(header.typ.as_deref()) {
            return Err(TokenError::WrongType);
        }
        let key = keys.key(header.kid.as_deref(), now).await?;
        let mut audiences = vec![route.resource.clone(), format!("{}/", route.resource)];
        audiences.extend(settings.audiences.iter().cloned());
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_issuer(&settings.issuers);
        validation.set_audience(&audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        // Times are checked below, against the gateway's clock as every other check is.
        validation.validate_exp = false;
        let claims: Value = jsonwebtoken::decode(text, &key, &validation)
            .map_err(|e| token_error(e.kind()))?
            .claims;
        let mut claims = access_claims(&claims, settings, now)?;
        // What is kept per token (the backend's credentials, a stream's watch) is kept by `jti`:
        // another issuer could choose one the gateway's own tokens carry, so theirs are the
        // token's own digest, which no one else can make.
        claims.jti = external_jti(token);
        let claims = Arc::new(claims);
        if claims.exp + self.skew < now {
            return Err(TokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + self.skew) {
            return Err(TokenError::NotYetValid);
        }
        let until = claims.exp + self.skew + 1;
        self.verified
            .insert(token.into(), claims.clone(), until, now);
        Ok(claims)
    }

    /// Whether `claims` name one of the audiences `route`'s issuers accept besides its resource.
    fn has_alias_audience(&self, route: &Route, claims: &AccessClaims) -> bool {
        route
            .issuers
            .iter()
            .filter(|i| i.issuers.contains(&claims.iss))
            .flat_map(|i| i.audiences.iter())
            .any(|alias| claims.is_for(alias))
    }
}

impl IssuerKeys {
    /// The key `kid` names (or the one key, when the token names none), fetching the issuer's keys
    /// when they are old or do not have it, no more often than every [`REFETCH_SECS`].
    async fn key(
        &self,
        kid: Option<&str>,
        now: u64,
    ) -> Result<jsonwebtoken::DecodingKey, TokenError> {
        let mut fetched = self.fetched.lock().await;
        let stale = fetched.keys.is_none() || now >= fetched.fetched_at + KEYS_SECS;
        let known = fetched
            .keys
            .as_ref()
            .and_then(|set| find(set, kid))
            .is_some();
        if (stale || !known) && now >= fetched.asked_at + REFETCH_SECS || fetched.asked_at == 0 {
            fetched.asked_at = now.max(1);
            match self.fetch().await {
                Ok(set) => {
                    fetched.keys = Some(Arc::new(set));
                    fetched.fetched_at = now;
                }
                Err(error) => {
                    tracing::warn!(issuer = %self.settings.issuer(), %error, "the keys of an issuer could not be fetched");
                }
            }
        }
        let set = fetched.keys.clone().ok_or(TokenError::UnknownKey)?;
        drop(fetched);
        let jwk = find(&set, kid).ok_or(TokenError::UnknownKey)?;
        jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|_| TokenError::UnknownKey)
    }

    /// The issuer's key set: from its `jwks_uri`, configured or named by its metadata.
    async fn fetch(&self) -> Result<JwkSet, String> {
        let uri = match &self.settings.jwks_uri {
            Some(uri) => uri.clone(),
            None => self.jwks_uri_of_metadata().await?,
        };
        let set: JwkSet = serde_json::from_slice(&self.get(&uri).await?)
            .map_err(|e| format!("{uri} is not a key set: {e}"))?;
        Ok(set)
    }

    /// The `jwks_uri` of the issuer's metadata: OpenID discovery, then RFC 8414; its `issuer` must
    /// be the one configured.
    async fn jwks_uri_of_metadata(&self) -> Result<String, String> {
        let issuer = self.settings.issuer();
        let url = url::Url::parse(issuer).map_err(|e| e.to_string())?;
        let path = url.path().trim_end_matches('/');
        let origin = url.origin().ascii_serialization();
        let candidates = [
            format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ),
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
        ];
        for candidate in candidates {
            let Ok(body) = self.get(&candidate).await else {
                continue;
            };
            let metadata: Value = serde_json::from_slice(&body).unwrap_or_default();
            if metadata["issuer"].as_str() != Some(issuer) {
                return Err(format!("{candidate} names another issuer"));
            }
            if let Some(uri) = metadata["jwks_uri"].as_str() {
                return Ok(uri.to_owned());
            }
        }
        Err(format!("no metadata of {issuer} names its keys"))
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let response = self
            .http
            .request(reqwest::Method::GET, url)?
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {}", crate::outbound::failure(&e)))?;
        if !response.status().is_success() {
            return Err(format!("{url}: HTTP {}", response.status()));
        }
        read_bounded(response, MAX_DOCUMENT, FETCH_TIMEOUT)
            .await
            .map_err(|e| format!("{url}: {e}"))
    }
}

/// The key `kid` names; without a `kid`, the set's only key.
fn find<'a>(set: &'a JwkSet, kid: Option<&str>) -> Option<&'a jsonwebtoken::jwk::Jwk> {
    match kid {
        Some(kid) => set.find(kid),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }
}

/// The `iss` a token claims, unverified.
fn unverified_issuer(token: &[u8]) -> Option<String> {
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(token).ok()?;
    claims["iss"].as_str().map(str::to_owned)
}

fn is_access_token_typ(typ: Option<&str>) -> bool {
    typ.is_some_and(|t| {
        t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
    })
}

/// The JOSE name of an algorithm, as it is written in a header.
fn algorithm_name(alg: jsonwebtoken::Algorithm) -> String {
    serde_json::to_value(alg)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn token_error(kind: &jsonwebtoken::errors::ErrorKind) -> TokenError {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            TokenError::AlgorithmNotAllowed
        }
        ErrorKind::MissingRequiredClaim(_) => TokenError::MissingClaim,
        ErrorKind::InvalidKeyFormat | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidEcdsaKey => {
            TokenError::UnknownKey
        }
        _ => TokenError::Malformed,
    }
}

/// An external token's claims as the gateway's own: the user by the issuer's subject claim, the
/// client by `client_id`, `azp` or `appid`, the scopes from `scope` and `scp` (a string or a list)
/// and the app roles in `roles`, the groups from the issuer's groups claim. Its `jti` is left for
/// the caller to set ([`external_jti`]).
pub(super) fn access_claims(
    claims: &Value,
    issuer: &ExternalIssuer,
    now: u64,
) -> Result<AccessClaims, TokenError> {
    let string = |name: &str| claims[name].as_str().map(str::to_owned);
    let sub = string(&issuer.subject_claim)
        .filter(|s| !s.is_empty())
        .ok_or(TokenError::MissingClaim)?;
    let aud =
        serde_json::from_value(claims["aud"].clone()).map_err(|_| TokenError::MissingClaim)?;
    let client_id = ["client_id", "azp", "appid"]
        .iter()
        .find_map(|c| string(c))
        .unwrap_or_default();
    Ok(AccessClaims {
        iss: string("iss").ok_or(TokenError::MissingClaim)?,
        sub,
        aud,
        client_id,
        scope: scopes(claims).join(" "),
        exp: claims["exp"].as_u64().ok_or(TokenError::MissingClaim)?,
        iat: claims["iat"].as_u64().unwrap_or(now),
        nbf: claims["nbf"].as_u64(),
        jti: String::new(),
        email: string("email"),
        preferred_username: string("preferred_username"),
        groups: words(&claims[issuer.groups_claim.as_str()]),
        groups_truncated: false,
        gid: None,
    })
}

/// The `jti` of an external token: `ext:` and the SHA-256 of the token (no `jti` the gateway
/// mints has a `:`).
fn external_jti(token: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(token);
    format!(
        "ext:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// Every scope and app role a token grants, once each, in order.
fn scopes(claims: &Value) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for claim in ["scope", "scp", "roles"] {
        for scope in words(&claims[claim]) {
            if !all.contains(&scope) {
                all.push(scope);
            }
        }
    }
    all
}

/// A claim's words: a space-separated string, or a list of strings.
fn words(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s.split_ascii_whitespace().map(str::to_owned).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
#[path = "external_tests.rs"]
mod tests;
