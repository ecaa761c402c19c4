//! RFC 9068 JWT access tokens: minted by the gateway, checked on every MCP request. A verified token is
//! cached until it expires, so steady traffic pays one signature check per token; expiry, audience,
//! scopes and revocation are still checked on every request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::keys::KeyRing;
use crate::cache::Cache;
use gateway_assertion::KeyAlgorithm;

/// The JOSE `typ` of an access token (RFC 9068 §2.1).
pub(crate) const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Verified tokens kept at most.
const VERIFIED_TOKENS: usize = 50_000;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    pub exp: u64,
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// The user's groups, as the routes' policies read them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// More groups than `groups` holds: rules that deny by group hold for this user.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub groups_truncated: bool,
    /// The grant the token was issued under, so that revoking the grant revokes the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
}

/// `aud`: one string or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl AccessClaims {
    /// Whether the token was minted for `resource`: exactly, or with a trailing slash (clients that
    /// build the resource with `new URL(…).href` add one), and nothing else.
    pub(crate) fn is_for(&self, resource: &str) -> bool {
        let matches = |aud: &str| aud == resource || aud.strip_suffix('/') == Some(resource);
        match &self.aud {
            Audience::One(aud) => matches(aud),
            Audience::Many(auds) => auds.iter().any(|a| matches(a)),
        }
    }

    /// The scopes this token grants.
    pub(crate) fn scopes(&self) -> impl Iterator<Item = &str> + Clone {
        self.scope.split_ascii_whitespace()
    }
}

/// Why a token was refused. The message is the `error_description`: safe to show, and free of `=`
/// and quotes so that no client's challenge parser can mistake it for a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("The access token is malformed")]
    Malformed,
    #[error("The access token is not an RFC 9068 access token")]
    WrongType,
    #[error("The access token is signed with an algorithm that is not accepted")]
    AlgorithmNotAllowed,
    #[error("The access token is signed by an unknown key")]
    UnknownKey,
    #[error("The access token signature is invalid")]
    BadSignature,
    #[error("The access token was issued by another issuer")]
    WrongIssuer,
    #[error("The access token is for another resource")]
    WrongAudience,
    #[error("The access token expired")]
    Expired,
    #[error("The access token is not valid yet")]
    NotYetValid,
    #[error("The access token lacks a required claim")]
    MissingClaim,
    #[error("The access token was revoked")]
    Revoked,
    #[error("The access token is not active at its issuer")]
    Inactive,
    #[error("The access token's issuer cannot be asked about it; try again shortly")]
    IssuerUnavailable,
}

impl TokenError {
    /// The bounded `reason` label of the auth-failure metric.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::WrongType => "wrong_type",
            TokenError::AlgorithmNotAllowed => "bad_algorithm",
            TokenError::UnknownKey => "unknown_key",
            TokenError::BadSignature => "bad_signature",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::MissingClaim => "missing_claim",
            TokenError::Revoked => "revoked",
            TokenError::Inactive => "inactive",
            TokenError::IssuerUnavailable => "issuer_unavailable",
        }
    }
}

/// Access tokens revoked before they expire, by `jti` or by grant, each kept until no token it
/// covers can still be unexpired. Not a [`Cache`]: a revocation is never dropped to make room.
#[derive(Default)]
pub(crate) struct Revocations {
    revoked: RwLock<HashMap<String, u64>>,
}

impl Revocations {
    /// Revokes the token (`jti`) or the grant (`gid`) named `id` until `until`.
    pub(crate) fn revoke(&self, id: &str, until: u64, now: u64) {
        let mut revoked = self.revoked.write().expect("not poisoned");
        revoked.retain(|_, until| *until >= now);
        revoked.insert(id.to_owned(), until);
    }

    pub(crate) fn covers(&self, claims: &AccessClaims) -> bool {
        let revoked = self.revoked.read().expect("not poisoned");
        !revoked.is_empty()
            && (revoked.contains_key(&claims.jti)
                || claims.gid.as_ref().is_some_and(|g| revoked.contains_key(g)))
    }
}

/// Checks access tokens against the gateway's keys and issuer.
pub(crate) struct AccessTokenVerifier {
    keys: Arc<KeyRing>,
    issuer: String,
    skew: u64,
    pub revocations: Revocations,
    /// By token. Hashed with foldhash rather than SipHash: a token is most of a kilobyte and is hashed
    /// on every request, and only tokens whose signature verified are ever inserted, so callers
    /// cannot choose the keys.
    /// Keyed by the token's bytes, so that a token seen before is found without checking them as
    /// UTF-8 again.
    cache: Cache<Box<[u8]>, Arc<AccessClaims>, u64, foldhash::fast::RandomState>,
}

impl AccessTokenVerifier {
    pub(crate) fn new(keys: Arc<KeyRing>, issuer: String, skew: u64) -> Self {
        Self {
            keys,
            issuer,
            skew,
            revocations: Revocations::default(),
            cache: Cache::new(VERIFIED_TOKENS),
        }
    }

    /// The claims of a valid, unexpired, unrevoked token at time `now`. The audience is the caller's
    /// to check, per route, with [`AccessClaims::is_for`].
    pub(crate) fn verify(&self, token: &str, now: u64) -> Result<Arc<AccessClaims>, TokenError> {
        self.verify_bytes(token.as_bytes(), now)
    }

    /// As [`Self::verify`], for a token still in its header's bytes: only a token not seen before is
    /// checked as UTF-8 (a kilobyte's check on every request otherwise).
    pub(crate) fn verify_bytes(
        &self,
        token: &[u8],
        now: u64,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        if let Some(kept) = self.verify_kept(token, now) {
            return kept;
        }
        let text = std::str::from_utf8(token).map_err(|_| TokenError::Malformed)?;
        let claims = Arc::new(self.verify_signed(text, now)?);
        // Kept while unexpired; an expired token is checked again, and refused as such.
        let until = claims.exp + self.skew + 1;
        self.cache.insert(token.into(), claims.clone(), until, now);
        self.admit(claims, now)
    }

    /// What [`Self::verify_bytes`] says of a token it verified before and still keeps; `None` for
    /// one it does not keep (never verified, or not of the gateway).
    pub(crate) fn verify_kept(
        &self,
        token: &[u8],
        now: u64,
    ) -> Option<Result<Arc<AccessClaims>, TokenError>> {
        self.cache.get(token, now).map(|c| self.admit(c, now))
    }

    /// Verified claims, if still unexpired and unrevoked.
    fn admit(&self, claims: Arc<AccessClaims>, now: u64) -> Result<Arc<AccessClaims>, TokenError> {
        if claims.exp + self.skew < now {
            return Err(TokenError::Expired);
        }
        if self.revocations.covers(&claims) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// Whether a token with these claims has expired by `now` (with the clock skew allowed).
    pub(crate) fn expired(&self, claims: &AccessClaims, now: u64) -> bool {
        claims.exp + self.skew < now
    }

    fn verify_signed(&self, token: &str, now: u64) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(TokenError::WrongType);
        }
        let alg = KeyAlgorithm::from_jose(header.alg).ok_or(TokenError::AlgorithmNotAllowed)?;
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let (key, key_alg) = self.keys.decoding_key(&kid).ok_or(TokenError::UnknownKey)?;
        if key_alg != alg {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        let claims: AccessClaims = jsonwebtoken::decode(token, key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(_)
                | jsonwebtoken::errors::ErrorKind::Json(_) => TokenError::MissingClaim,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                    TokenError::AlgorithmNotAllowed
                }
                _ => TokenError::Malformed,
            })?
            .claims;
        if claims.jti.is_empty() || claims.client_id.is_empty() || claims.sub.is_empty() {
            return Err(TokenError::MissingClaim);
        }
        if claims.exp + self.skew < now {
            return Err(TokenError::Expired);
        }
        if claims.iat > now + self.skew || claims.nbf.is_some_and(|nbf| nbf > now + self.skew) {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

/// Signs access token claims with the active key.
pub(crate) fn mint(
    keys: &KeyRing,
    claims: &AccessClaims,
) -> Result<String, gateway_assertion::KeyError> {
    keys.active().sign(ACCESS_TOKEN_TYP, claims)
}

/// Whether `granted` covers every scope in `required`. A scan, not a set: both lists are a few words,
/// and this runs on every request.
pub(crate) fn has_scopes<'a>(
    granted: impl Iterator<Item = &'a str> + Clone,
    required: &[String],
) -> bool {
    required
        .iter()
        .all(|s| granted.clone().any(|g| g == s.as_str()))
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
