//! Access tokens of other authorization servers ([`ExternalIssuer`]), on the routes that accept
//! them: JWTs checked against the issuer's published keys, read into the same claims the gateway's
//! own tokens carry, so that audience, scopes, policy and streams treat both alike.
//!
//! The `alg` must be one the issuer is trusted with (asymmetric only: an HMAC "signed" with a
//! public key, or `none`, is refused before any key is looked at), and the key its `kid` names
//! must be of that algorithm's family. `iss` is compared exactly with the issuer's identifiers,
//! `aud` must name the route's resource or one of the issuer's audiences, `exp` and `nbf` hold
//! within the clock skew; the keys are the issuer's published ones ([`super::issuer_keys`]). An
//! opaque token is read by asking its issuer ([`super::introspection`]), where the route takes one
//! that introspects. A verified token is kept until it expires (an introspected one no longer than
//! its issuer's configured bound).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::access::{ACCESS_TOKEN_TYP, AccessClaims, TokenError};
use super::issuer_keys::IssuerKeys;
use crate::cache::Cache;
use crate::config::{ExternalIssuer, Route};

const VERIFIED_TOKENS: usize = 50_000;

/// Checks the tokens of every configured issuer.
pub(crate) struct ExternalVerifier {
    issuers: HashMap<String, IssuerKeys>,
    skew: u64,
    /// Hashed with foldhash, as the gateway's own verified tokens are: SipHash over most of a
    /// kilobyte on every request cost a route taking others' tokens 1% more than one taking the
    /// gateway's; and only tokens that verified (or that their issuer vouched for) are inserted, so
    /// callers cannot choose the keys.
    verified: Cache<Box<[u8]>, Arc<AccessClaims>, u64, foldhash::fast::RandomState>,
}

impl ExternalVerifier {
    /// A verifier for `issuers`, allowing `skew` seconds of clock difference.
    pub(crate) fn new(issuers: &[Arc<ExternalIssuer>], skew: u64) -> Self {
        let issuers = issuers
            .iter()
            .map(|settings| (settings.name.clone(), IssuerKeys::new(settings)))
            .collect();
        Self {
            issuers,
            skew,
            verified: Cache::new(VERIFIED_TOKENS),
        }
    }

    /// What `route`'s issuers make of `token`: `None` where it is none of theirs (it names no issuer
    /// of theirs, or is opaque and none of them introspects) and the route takes the gateway's own
    /// tokens, which it may then be.
    pub(crate) async fn check(
        &self,
        route: &Route,
        token: &[u8],
        now: u64,
    ) -> Option<Result<Arc<AccessClaims>, TokenError>> {
        if let Some(claims) = self.verified.get(token, now) {
            return Some(self.kept_for(route, claims, now));
        }
        let Ok(text) = std::str::from_utf8(token) else {
            return Some(Err(TokenError::Malformed));
        };
        let Some(payload) = unverified_claims(text) else {
            // Not a JWT: an opaque token, which only its issuer can read.
            if route.issuers.iter().any(|i| i.introspection.is_some()) {
                return Some(self.introspect(route, token, now).await);
            }
            return (!route.gateway_tokens).then_some(Err(TokenError::Malformed));
        };
        let iss = payload["iss"].as_str().unwrap_or_default();
        match route
            .issuers
            .iter()
            .find(|i| i.issuers.iter().any(|x| x == iss))
        {
            Some(settings) => Some(self.verify_jwt(route, settings, text, now).await),
            None if route.gateway_tokens => None,
            None => Some(Err(TokenError::WrongIssuer)),
        }
    }

    /// The claims of `token` for `route`, whose issuers it must come from.
    #[cfg(test)]
    pub(crate) async fn verify(
        &self,
        route: &Route,
        token: &[u8],
        now: u64,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        self.check(route, token, now)
            .await
            .unwrap_or(Err(TokenError::WrongIssuer))
    }

    /// A token verified before, for whatever route: this one must take its issuer and audience.
    fn kept_for(
        &self,
        route: &Route,
        claims: Arc<AccessClaims>,
        now: u64,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        if !route
            .issuers
            .iter()
            .any(|i| i.issuers.contains(&claims.iss))
        {
            return Err(TokenError::WrongIssuer);
        }
        if !claims.is_for(&route.resource) && !self.has_alias_audience(route, &claims) {
            return Err(TokenError::WrongAudience);
        }
        self.in_time(&claims, now)?;
        Ok(claims)
    }

    /// A JWT of the issuer `settings`, checked against its keys.
    async fn verify_jwt(
        &self,
        route: &Route,
        settings: &ExternalIssuer,
        text: &str,
        now: u64,
    ) -> Result<Arc<AccessClaims>, TokenError> {
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
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_issuer(&settings.issuers);
        validation.set_audience(&audiences(route, settings));
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        // Times are checked below, against the gateway's clock as every other check is.
        validation.validate_exp = false;
        let claims: Value = jsonwebtoken::decode(text, &key, &validation)
            .map_err(|e| token_error(e.kind()))?
            .claims;
        let claims = access_claims(&claims, settings, now)?;
        self.keep(text.as_bytes(), claims, None, now)
    }

    /// An opaque token, as the first of `route`'s introspecting issuers that knows it active says.
    async fn introspect(
        &self,
        route: &Route,
        token: &[u8],
        now: u64,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        let mut unavailable = false;
        for settings in route.issuers.iter() {
            let (Some(introspection), Some(keys)) =
                (&settings.introspection, self.issuers.get(&settings.name))
            else {
                continue;
            };
            match super::introspection::ask(keys, introspection, token).await {
                Ok(Some(mut answer)) => {
                    // Whose token it is goes without saying where the issuer does not say.
                    if answer["iss"].is_null() {
                        answer["iss"] = Value::from(settings.issuer());
                    } else if !answer["iss"]
                        .as_str()
                        .is_some_and(|iss| settings.issuers.iter().any(|x| x == iss))
                    {
                        return Err(TokenError::WrongIssuer);
                    }
                    let for_route = audiences(route, settings);
                    let aud = words(&answer["aud"]);
                    if !aud.iter().any(|a| for_route.contains(a)) {
                        return Err(TokenError::WrongAudience);
                    }
                    // A client's own token (client credentials) may name no subject: the client
                    // is its own, as RFC 9068 §2.2 has it.
                    let subject = settings.subject_claim.as_str();
                    if answer[subject].is_null() {
                        answer[subject] = answer["client_id"].clone();
                    }
                    let bound = now + introspection.cache_secs;
                    if answer["exp"].is_null() {
                        answer["exp"] = Value::from(bound);
                    }
                    let claims = access_claims(&answer, settings, now)?;
                    return self.keep(token, claims, Some(bound), now);
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(issuer = %settings.issuer(), %error, "a token could not be introspected");
                    unavailable = true;
                }
            }
        }
        Err(if unavailable {
            TokenError::IssuerUnavailable
        } else {
            TokenError::Inactive
        })
    }

    /// Keeps verified claims until they expire (or `bound`, if sooner), and returns them if in time.
    fn keep(
        &self,
        token: &[u8],
        mut claims: AccessClaims,
        bound: Option<u64>,
        now: u64,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        // What is kept per token (the backend's credentials, a stream's watch) is kept by `jti`:
        // another issuer could choose one the gateway's own tokens carry, so theirs are the
        // token's own digest, which no one else can make.
        claims.jti = external_jti(token);
        let claims = Arc::new(claims);
        self.in_time(&claims, now)?;
        let until = (claims.exp + self.skew + 1).min(bound.unwrap_or(u64::MAX));
        self.verified
            .insert(token.into(), claims.clone(), until, now);
        Ok(claims)
    }

    fn in_time(&self, claims: &AccessClaims, now: u64) -> Result<(), TokenError> {
        if claims.exp + self.skew < now {
            return Err(TokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + self.skew) {
            return Err(TokenError::NotYetValid);
        }
        Ok(())
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

/// The claims of something shaped as a JWT, unverified: only to choose who verifies it.
fn unverified_claims(token: &str) -> Option<Value> {
    if token.split('.').count() != 3 {
        return None;
    }
    jsonwebtoken::dangerous::insecure_decode_claims(token).ok()
}

/// Every audience a token of `settings` may name on `route`: its resource, or an alias.
fn audiences(route: &Route, settings: &ExternalIssuer) -> Vec<String> {
    let mut audiences = vec![route.resource.clone(), format!("{}/", route.resource)];
    audiences.extend(settings.audiences.iter().cloned());
    audiences
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
/// client by `client_id`, `azp`, `appid` (Entra) or `cid` (Okta), the scopes from `scope` and `scp` (a string or a list)
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
    let client_id = ["client_id", "azp", "appid", "cid"]
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
