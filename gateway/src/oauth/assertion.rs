//! JWT assertions presented at `/token` (RFC 7523): a client's own, authenticating it
//! (`private_key_jwt`, §2.2), and an enterprise identity provider's Identity Assertion JWT
//! Authorization Grant (ID-JAG, §2.1). Each must be signed, with an asymmetric algorithm, by a key
//! its issuer publishes (or the config holds); be for this server (`aud`); be short-lived; and be
//! used once: its `jti` is recorded in the store until it expires, so that a replay at any replica
//! is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;

use super::{AuthServer, OAuthError};
use crate::config::ExternalIssuer;
use crate::tokens::issuer_keys::IssuerKeys;

/// The longest an assertion may live: its `jti` is kept that long.
const MAX_LIFETIME_SECS: u64 = 3600;

/// The keys published by clients (`jwks_uri`) and enterprise identity providers, each fetched as an
/// external issuer's are, kept by where they are published.
#[derive(Default)]
pub(super) struct PublishedKeys {
    by_source: Mutex<HashMap<String, Arc<IssuerKeys>>>,
}

impl PublishedKeys {
    fn kept(&self, source: String, make: impl FnOnce() -> IssuerKeys) -> Arc<IssuerKeys> {
        self.by_source
            .lock()
            .expect("not poisoned")
            .entry(source)
            .or_insert_with(|| Arc::new(make()))
            .clone()
    }

    pub(super) fn of_client(&self, client_id: &str, jwks_uri: &str) -> Arc<IssuerKeys> {
        self.kept(format!("client {client_id} {jwks_uri}"), || {
            IssuerKeys::of_client(client_id, jwks_uri)
        })
    }

    pub(super) fn of_issuer(&self, issuer: &ExternalIssuer) -> Arc<IssuerKeys> {
        let source = format!(
            "issuer {} {}",
            issuer.issuer(),
            issuer.jwks_uri.as_deref().unwrap_or_default()
        );
        self.kept(source, || IssuerKeys::new(issuer))
    }
}

/// Who signs an assertion: keys held in the config (a JWK set), or published.
pub(super) enum Signer<'a> {
    Set(&'a Value),
    Published(Arc<IssuerKeys>),
}

/// What an assertion must say.
pub(super) struct Expected<'a> {
    /// What its `iss` may be.
    pub issuers: &'a [String],
    /// What its `aud` must name one of.
    pub audiences: &'a [String],
    /// Its `sub`, where known before.
    pub subject: Option<&'a str>,
    /// Its `typ` header, where one is required.
    pub typ: Option<&'a str>,
    /// The algorithms it may be signed with.
    pub algorithms: &'a [String],
    /// What its `jti` is recorded under, beside its issuer.
    pub kind: &'static str,
    /// The error a bad one is: `invalid_client` for a client's, `invalid_grant` for a grant.
    pub refuse: fn(String) -> OAuthError,
}

/// The claims of `assertion`, checked as `expected` says, its `jti` now used; or why not.
pub(super) async fn verify(
    server: &AuthServer,
    assertion: &str,
    signer: Signer<'_>,
    expected: &Expected<'_>,
    now: u64,
) -> Result<Value, OAuthError> {
    let claims = checked(assertion, signer, expected, server.skew(), now)
        .await
        .map_err(expected.refuse)?;
    let exp = claims["exp"].as_u64().unwrap_or_default();
    let (iss, jti) = (claims["iss"].as_str(), claims["jti"].as_str());
    let once = format!(
        "{} {} {}",
        expected.kind,
        iss.unwrap_or_default(),
        jti.unwrap_or_default()
    );
    if !server
        .store
        .use_once(&once, exp + server.skew() + 1, now)
        .await?
    {
        return Err((expected.refuse)("the assertion was already used".into()));
    }
    Ok(claims)
}

/// The claims of `assertion`, checked but for its `jti`'s single use.
async fn checked(
    assertion: &str,
    signer: Signer<'_>,
    expected: &Expected<'_>,
    skew: u64,
    now: u64,
) -> Result<Value, String> {
    let header =
        jsonwebtoken::decode_header(assertion).map_err(|_| "the assertion is not a JWT")?;
    let alg = serde_json::to_value(header.alg)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    if !expected.algorithms.contains(&alg) {
        return Err(format!("the assertion's algorithm {alg} is not accepted"));
    }
    if let Some(typ) = expected.typ {
        let given = header.typ.as_deref().unwrap_or_default();
        if !given.eq_ignore_ascii_case(typ)
            && !given.eq_ignore_ascii_case(&format!("application/{typ}"))
        {
            return Err(format!("the assertion's typ must be {typ}"));
        }
    }
    let kid = header.kid.as_deref();
    let key = match signer {
        Signer::Set(set) => {
            let set: JwkSet = serde_json::from_value(set.clone()).map_err(|e| e.to_string())?;
            let jwk = match kid {
                Some(kid) => set.find(kid),
                None if set.keys.len() == 1 => set.keys.first(),
                None => None,
            }
            .ok_or("the assertion names no key of its issuer")?;
            jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?
        }
        Signer::Published(keys) => keys
            .key(kid, now)
            .await
            .map_err(|_| "the assertion names no key of its issuer")?,
    };
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(expected.issuers);
    validation.set_audience(expected.audiences);
    validation.sub = expected.subject.map(str::to_owned);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // Times are checked below, on the gateway's clock.
    validation.validate_exp = false;
    let claims: Value = jsonwebtoken::decode(assertion, &key, &validation)
        .map_err(|e| refusal(e.kind()))?
        .claims;
    let exp = claims["exp"].as_u64().ok_or("the assertion has no exp")?;
    if exp + skew < now {
        return Err("the assertion expired".into());
    }
    if exp > now + MAX_LIFETIME_SECS + skew {
        return Err("the assertion lives too long (an hour at most)".into());
    }
    if claims["nbf"].as_u64().is_some_and(|nbf| nbf > now + skew)
        || claims["iat"].as_u64().is_some_and(|iat| iat > now + skew)
    {
        return Err("the assertion is not valid yet".into());
    }
    if claims["jti"].as_str().is_none_or(|j| j.is_empty()) {
        return Err("the assertion has no jti".into());
    }
    Ok(claims)
}

/// Why a JWT was refused, in words.
fn refusal(kind: &jsonwebtoken::errors::ErrorKind) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::InvalidSignature => "the assertion's signature does not verify".into(),
        ErrorKind::InvalidAudience => "the assertion is for another audience".into(),
        ErrorKind::InvalidIssuer => "the assertion's iss is not its issuer's".into(),
        ErrorKind::InvalidSubject => "the assertion's sub is not its client".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the assertion has no {claim}"),
        ErrorKind::InvalidAlgorithm => "the assertion's key is not of its algorithm".into(),
        _ => "the assertion is malformed".into(),
    }
}
