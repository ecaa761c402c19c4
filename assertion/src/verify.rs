//! Checking an assertion: type, algorithm, signature, issuer, audience, lifetime, and the token it binds.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};

use crate::claims::{AssertionClaims, access_token_hash};
use crate::keys::KeyAlgorithm;
use crate::{ASSERTION_TYP, CLOCK_SKEW_SECS, MAX_LIFETIME_SECS};

/// Why an assertion was refused. The messages are safe to send back to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error("no gateway assertion")]
    Missing,
    #[error("the gateway assertion is not a well-formed JWT")]
    Malformed,
    #[error("the gateway assertion has the wrong typ")]
    WrongType,
    #[error("the gateway assertion uses an algorithm that is not allowed")]
    AlgorithmNotAllowed,
    #[error("the gateway assertion names a key the gateway does not publish")]
    UnknownKey,
    #[error("the gateway key set could not be loaded")]
    KeysUnavailable,
    #[error("the gateway assertion's signature is invalid")]
    BadSignature,
    #[error("the gateway assertion has the wrong issuer")]
    WrongIssuer,
    #[error("the gateway assertion is for another audience")]
    WrongAudience,
    #[error("the gateway assertion has expired")]
    Expired,
    #[error("the gateway assertion is not valid yet")]
    NotYetValid,
    #[error("the gateway assertion lives longer than allowed")]
    LifetimeTooLong,
    #[error("the gateway assertion lacks a required claim")]
    MissingClaim,
    #[error("the forwarded token does not match the gateway assertion")]
    TokenMismatch,
    #[error("the forwarded identity does not match the gateway assertion")]
    IdentityMismatch,
}

/// What a backend expects of every assertion it accepts.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// The gateway's issuer, matched exactly.
    pub issuer: String,
    /// This backend's audience, matched exactly.
    pub audience: String,
}

/// Checks assertions against one backend's [`Expectations`].
#[derive(Debug, Clone)]
pub struct Verifier {
    expectations: Expectations,
}

impl Verifier {
    pub fn new(expectations: Expectations) -> Self {
        Self { expectations }
    }

    /// The `kid` an assertion's header names, to look its key up before [`Verifier::verify`].
    pub fn key_id(assertion: &str) -> Result<String, AssertionError> {
        let header =
            jsonwebtoken::decode_header(assertion).map_err(|_| AssertionError::Malformed)?;
        header.kid.ok_or(AssertionError::UnknownKey)
    }

    /// Verifies `assertion` with `key` (the JWK its `kid` names) at time `now` (seconds since the
    /// epoch), and checks that it binds exactly `forwarded_token`: the token header the request
    /// carried, if any.
    pub fn verify(
        &self,
        assertion: &str,
        key: &Jwk,
        forwarded_token: Option<&str>,
        now: u64,
    ) -> Result<AssertionClaims, AssertionError> {
        let header =
            jsonwebtoken::decode_header(assertion).map_err(|_| AssertionError::Malformed)?;
        if !header
            .typ
            .as_deref()
            .is_some_and(|typ| typ.eq_ignore_ascii_case(ASSERTION_TYP))
        {
            return Err(AssertionError::WrongType);
        }
        // The header's alg must be an allowed one and the one the key was published for: a key is
        // never used with an algorithm its JWK does not name.
        let alg = KeyAlgorithm::from_jose(header.alg).ok_or(AssertionError::AlgorithmNotAllowed)?;
        if KeyAlgorithm::of_jwk(key) != Some(alg) {
            return Err(AssertionError::AlgorithmNotAllowed);
        }
        let decoding = DecodingKey::from_jwk(key).map_err(|_| AssertionError::UnknownKey)?;

        let mut validation = Validation::new(header.alg);
        // Time is checked below against the caller's `now`, not the system clock.
        validation.validate_exp = false;
        validation.set_issuer(&[&self.expectations.issuer]);
        validation.set_audience(&[&self.expectations.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &decoding, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => AssertionError::BadSignature,
                ErrorKind::InvalidIssuer => AssertionError::WrongIssuer,
                ErrorKind::InvalidAudience => AssertionError::WrongAudience,
                ErrorKind::MissingRequiredClaim(_) | ErrorKind::Json(_) => {
                    AssertionError::MissingClaim
                }
                ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
                    AssertionError::AlgorithmNotAllowed
                }
                _ => AssertionError::Malformed,
            })?
            .claims;

        // Times, against the caller's clock: not expired, not issued in the future, not too long-lived.
        if claims.exp + CLOCK_SKEW_SECS < now {
            return Err(AssertionError::Expired);
        }
        if claims.iat > now + CLOCK_SKEW_SECS {
            return Err(AssertionError::NotYetValid);
        }
        if claims.exp < claims.iat || claims.exp - claims.iat > MAX_LIFETIME_SECS {
            return Err(AssertionError::LifetimeTooLong);
        }
        match (&claims.ath, forwarded_token) {
            (Some(ath), Some(token)) if *ath == access_token_hash(token) => {}
            (None, None) => {}
            _ => return Err(AssertionError::TokenMismatch),
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyAlgorithm, SigningKey};

    const ISS: &str = "https://gw.example";
    const AUD: &str = "http://127.0.0.1:9000/mcp";
    const NOW: u64 = 1_800_000_000;

    fn claims(token: Option<&str>) -> AssertionClaims {
        AssertionClaims {
            iss: ISS.into(),
            aud: AUD.into(),
            sub: "alice".into(),
            client_id: "client-1".into(),
            scope: "mcp".into(),
            iat: NOW,
            exp: NOW + 60,
            ath: token.map(access_token_hash),
            email: None,
            preferred_username: None,
        }
    }

    fn verifier() -> Verifier {
        Verifier::new(Expectations {
            issuer: ISS.into(),
            audience: AUD.into(),
        })
    }

    /// Verifies as of the fixed `NOW`, whatever the real clock says.
    fn check(
        key: &SigningKey,
        jwt: &str,
        token: Option<&str>,
    ) -> Result<AssertionClaims, AssertionError> {
        verifier().verify(jwt, key.public_jwk(), token, NOW)
    }

    #[test]
    fn a_valid_assertion_passes_with_either_algorithm() {
        for alg in [KeyAlgorithm::EdDsa, KeyAlgorithm::Es256] {
            let key = SigningKey::generate(alg).unwrap();
            let jwt = key.sign(ASSERTION_TYP, &claims(Some("tok"))).unwrap();
            assert_eq!(Verifier::key_id(&jwt).unwrap(), key.kid());
            assert_eq!(check(&key, &jwt, Some("tok")).unwrap().sub, "alice");
        }
    }

    #[test]
    fn a_signature_by_another_key_is_refused() {
        let key = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
        let forger = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
        let jwt = forger.sign(ASSERTION_TYP, &claims(Some("tok"))).unwrap();
        assert_eq!(
            check(&key, &jwt, Some("tok")),
            Err(AssertionError::BadSignature)
        );
    }

    #[test]
    fn issuer_audience_and_type_must_match() {
        let key = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
        let mut c = claims(None);
        c.iss = "https://evil.example".into();
        let jwt = key.sign(ASSERTION_TYP, &c).unwrap();
        assert_eq!(check(&key, &jwt, None), Err(AssertionError::WrongIssuer));

        let mut c = claims(None);
        c.aud = "http://127.0.0.1:9000/mcp/".into();
        let jwt = key.sign(ASSERTION_TYP, &c).unwrap();
        assert_eq!(check(&key, &jwt, None), Err(AssertionError::WrongAudience));

        // The gateway's own access tokens are signed with the same keys: never an assertion.
        let jwt = key.sign("at+jwt", &claims(None)).unwrap();
        assert_eq!(check(&key, &jwt, None), Err(AssertionError::WrongType));
    }

    #[test]
    fn lifetimes_are_bounded() {
        let key = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
        let mut c = claims(None);
        c.iat = NOW - 400;
        c.exp = NOW - 100;
        let jwt = key.sign(ASSERTION_TYP, &c).unwrap();
        assert_eq!(check(&key, &jwt, None), Err(AssertionError::Expired));

        let mut c = claims(None);
        c.iat = NOW + 120;
        c.exp = NOW + 180;
        let jwt = key.sign(ASSERTION_TYP, &c).unwrap();
        assert_eq!(check(&key, &jwt, None), Err(AssertionError::NotYetValid));

        let mut c = claims(None);
        c.exp = NOW + MAX_LIFETIME_SECS + 1;
        let jwt = key.sign(ASSERTION_TYP, &c).unwrap();
        assert_eq!(
            check(&key, &jwt, None),
            Err(AssertionError::LifetimeTooLong)
        );
    }

    #[test]
    fn the_forwarded_token_must_be_the_one_bound() {
        let key = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
        let bound = key
            .sign(ASSERTION_TYP, &claims(Some("alice-token")))
            .unwrap();
        assert_eq!(
            check(&key, &bound, Some("bob-token")),
            Err(AssertionError::TokenMismatch)
        );
        assert_eq!(
            check(&key, &bound, None),
            Err(AssertionError::TokenMismatch)
        );
        let unbound = key.sign(ASSERTION_TYP, &claims(None)).unwrap();
        assert_eq!(
            check(&key, &unbound, Some("injected")),
            Err(AssertionError::TokenMismatch)
        );
        assert!(check(&key, &unbound, None).is_ok());
    }

    #[test]
    fn symmetric_and_mismatched_algorithms_are_refused() {
        let key = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some(ASSERTION_TYP.into());
        header.kid = Some(key.kid().into());
        let hs = jsonwebtoken::encode(
            &header,
            &claims(None),
            &jsonwebtoken::EncodingKey::from_secret(b"x"),
        )
        .unwrap();
        assert_eq!(
            check(&key, &hs, None),
            Err(AssertionError::AlgorithmNotAllowed)
        );

        let es = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
        let jwt = es.sign(ASSERTION_TYP, &claims(None)).unwrap();
        assert_eq!(
            check(&key, &jwt, None),
            Err(AssertionError::AlgorithmNotAllowed)
        );
        assert_eq!(
            check(&key, "not.a.jwt", None),
            Err(AssertionError::Malformed)
        );
    }
}
