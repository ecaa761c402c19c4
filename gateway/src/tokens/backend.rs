//! What the gateway hands a backend instead of the client's token: a backend token, and the signed
//! `X-Gateway-Assertion` that vouches for it and for the caller's identity.
//!
//! The backend token is the identity provider's token of the caller's grant when the user signed in
//! at GitHub or an OIDC provider; otherwise (the `local` provider, or a grant without one) the gateway
//! mints one for the backend's audience (RFC 8693 in spirit). Both are cached per access token and
//! route, so steady traffic pays for two signatures per token per half assertion lifetime, not per
//! request.

use std::sync::Arc;

use gateway_assertion::{ASSERTION_TYP, AssertionClaims, KeyError, access_token_hash};
use http::HeaderValue;

use super::access::{AccessClaims, Audience, mint};
use super::keys::KeyRing;
use crate::cache::Cache;

/// Access tokens whose credentials are kept at most.
const CREDENTIALS_KEPT: usize = 50_000;
/// The longest a backend token minted by the gateway lives.
const MAX_MINTED_TOKEN_SECS: u64 = 3600;

/// The credentials for one request to one backend, as the header values each `credentials` mode
/// sends: validated once here rather than on every request that sends them (they are a kilobyte or
/// more together); a clone only counts a reference.
#[derive(Debug)]
pub(crate) struct BackendCredentials {
    pub backend_token: HeaderValue,
    pub assertion: HeaderValue,
    /// `Bearer <backend token>` and `Bearer <assertion>`, for the `bearer` and `assertion` modes.
    pub bearer_backend_token: HeaderValue,
    pub bearer_assertion: HeaderValue,
    /// The caller's identity, for the `headers` mode's `X-Forwarded-User`, `-Email` and
    /// `-Preferred-Username`; `None` when the identity provider gave a value no header can carry,
    /// which only that mode refuses (the other modes carry the identity inside a JWT).
    pub identity: Option<IdentityHeaders>,
    /// After this (seconds since the epoch) the pair is made anew.
    renew_at: u64,
}

/// The caller's identity as header values.
#[derive(Debug)]
pub(crate) struct IdentityHeaders {
    pub user: HeaderValue,
    pub email: Option<HeaderValue>,
    pub preferred_username: Option<HeaderValue>,
}

impl IdentityHeaders {
    fn new(caller: &AccessClaims) -> Option<Self> {
        let value = |text: &String| HeaderValue::try_from(text.as_str()).ok();
        let optional = |text: &Option<String>| match text {
            Some(text) => value(text).map(Some),
            None => Some(None),
        };
        Some(Self {
            user: value(&caller.sub)?,
            email: optional(&caller.email)?,
            preferred_username: optional(&caller.preferred_username)?,
        })
    }
}

/// Why credentials for a backend could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CredentialError {
    #[error(transparent)]
    Signing(#[from] KeyError),
    /// A token from the identity provider with bytes a header cannot carry.
    #[error("the identity provider's token cannot be sent in a header")]
    NotAHeaderValue,
}

/// Credentials made, by access token `jti`, then by route number. Keyed by the `jti` alone so that a
/// lookup borrows it instead of building a key on every request; foldhash, since only verified tokens'
/// ids are ever inserted. An entry lives as long as its longest-lived credentials.
type CredentialCache =
    Cache<Box<str>, Vec<(usize, Arc<BackendCredentials>)>, u64, foldhash::fast::RandomState>;

pub(crate) struct BackendSigner {
    keys: Arc<KeyRing>,
    issuer: String,
    assertion_lifetime: u64,
    cache: CredentialCache,
}

impl BackendSigner {
    pub(crate) fn new(keys: Arc<KeyRing>, issuer: String, assertion_lifetime: u64) -> Self {
        Self {
            keys,
            issuer,
            assertion_lifetime,
            cache: Cache::new(CREDENTIALS_KEPT),
        }
    }

    /// The credentials for `caller` on route number `route` whose backend audience is `audience`: the
    /// grant's identity provider token (`idp_token`) when it has one, else one minted for the audience.
    pub(crate) fn credentials(
        &self,
        caller: &AccessClaims,
        route: usize,
        audience: &str,
        idp_token: Option<&str>,
        bind_token: bool,
        now: u64,
    ) -> Result<Arc<BackendCredentials>, CredentialError> {
        let found = self.cache.read(caller.jti.as_str(), now, |routes| {
            routes
                .iter()
                .find(|(r, c)| *r == route && c.renew_at > now)
                .map(|(_, c)| c.clone())
        });
        if let Some(found) = found.flatten() {
            return Ok(found);
        }
        let made = Arc::new(self.make(caller, audience, idp_token, bind_token, now)?);
        let renew_at = made.renew_at;
        self.cache.upsert(
            caller.jti.as_str().into(),
            now,
            || (Vec::new(), renew_at),
            |routes, until| {
                routes.retain(|(r, c)| *r != route && c.renew_at > now);
                routes.push((route, made.clone()));
                *until = (*until).max(renew_at);
            },
        );
        Ok(made)
    }

    fn make(
        &self,
        caller: &AccessClaims,
        audience: &str,
        idp_token: Option<&str>,
        bind_token: bool,
        now: u64,
    ) -> Result<BackendCredentials, CredentialError> {
        let token_exp = caller.exp.min(now + MAX_MINTED_TOKEN_SECS);
        let minted = AccessClaims {
            iss: self.issuer.clone(),
            sub: caller.sub.clone(),
            aud: Audience::One(audience.to_owned()),
            client_id: caller.client_id.clone(),
            scope: caller.scope.clone(),
            exp: token_exp,
            iat: now,
            nbf: None,
            jti: uuid::Uuid::new_v4().to_string(),
            email: caller.email.clone(),
            preferred_username: caller.preferred_username.clone(),
            groups: caller.groups.clone(),
            groups_truncated: caller.groups_truncated,
            gid: caller.gid.clone(),
        };
        let backend_token = match idp_token {
            Some(token) => token.to_owned(),
            None => mint(&self.keys, &minted)?,
        };
        let assertion = AssertionClaims {
            iss: self.issuer.clone(),
            aud: audience.to_owned(),
            sub: caller.sub.clone(),
            client_id: caller.client_id.clone(),
            scope: caller.scope.clone(),
            iat: now,
            exp: now + self.assertion_lifetime,
            // Bound to the token only when one is forwarded with it (not in `assertion` mode).
            ath: bind_token.then(|| access_token_hash(&backend_token)),
            email: caller.email.clone(),
            preferred_username: caller.preferred_username.clone(),
        };
        let assertion = self.keys.active().sign(ASSERTION_TYP, &assertion)?;
        // Renew while at least half the assertion's life remains, and before the token runs out.
        let renew_at = (now + self.assertion_lifetime / 2).min(token_exp.saturating_sub(5));
        let value = |text: String| {
            HeaderValue::try_from(text).map_err(|_| CredentialError::NotAHeaderValue)
        };
        Ok(BackendCredentials {
            identity: IdentityHeaders::new(caller),
            bearer_backend_token: value(format!("Bearer {backend_token}"))?,
            bearer_assertion: value(format!("Bearer {assertion}"))?,
            backend_token: value(backend_token)?,
            assertion: value(assertion)?,
            renew_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use gateway_assertion::{Expectations, KeyAlgorithm, SigningKey, Verifier};

    use super::*;

    /// A caller of the gateway's `/mcp` whose token's `jti` differs with its identity.
    fn caller(sub: &str, email: Option<&str>, now: u64) -> AccessClaims {
        AccessClaims {
            iss: "http://gw".into(),
            sub: sub.into(),
            aud: Audience::One("http://gw/mcp".into()),
            client_id: "c".into(),
            scope: "mcp".into(),
            exp: now + 600,
            iat: now,
            nbf: None,
            jti: format!("{sub:?}{email:?}"),
            email: email.map(str::to_owned),
            preferred_username: None,
            groups: Vec::new(),
            groups_truncated: false,
            gid: None,
        }
    }

    #[test]
    fn credentials_verify_at_the_backend_and_are_reused() {
        let keys = Arc::new(KeyRing::new(
            SigningKey::generate(KeyAlgorithm::EdDsa).unwrap(),
            Vec::new(),
        ));
        let signer = BackendSigner::new(keys.clone(), "http://gw".into(), 60);
        let now = 1_900_000_000;
        let caller = caller("alice", Some("a@example.com"), now);
        let first = signer
            .credentials(&caller, 0, "http://backend/mcp", None, true, now)
            .unwrap();
        let again = signer
            .credentials(&caller, 0, "http://backend/mcp", None, true, now + 29)
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let later = signer
            .credentials(&caller, 0, "http://backend/mcp", None, true, now + 31)
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &later), "renewed at half its life");
        // Another route of the same token has credentials of its own, for its own audience; both stay
        // cached side by side.
        let other = signer
            .credentials(&caller, 1, "http://other/mcp", None, true, now + 31)
            .unwrap();
        assert!(!Arc::ptr_eq(&later, &other));
        assert!(Arc::ptr_eq(
            &later,
            &signer
                .credentials(&caller, 0, "http://backend/mcp", None, true, now + 32)
                .unwrap()
        ));
        assert!(Arc::ptr_eq(
            &other,
            &signer
                .credentials(&caller, 1, "http://other/mcp", None, true, now + 32)
                .unwrap()
        ));

        let verifier = Verifier::new(Expectations {
            issuer: "http://gw".into(),
            audience: "http://backend/mcp".into(),
        });
        let claims = verifier
            .verify(
                first.assertion.to_str().unwrap(),
                keys.active().public_jwk(),
                Some(first.backend_token.to_str().unwrap()),
                now + 10,
            )
            .unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.email.as_deref(), Some("a@example.com"));
        let identity = first.identity.as_ref().unwrap();
        assert_eq!(identity.user, "alice");
        assert_eq!(identity.email.as_ref().unwrap(), "a@example.com");
        assert_eq!(identity.preferred_username, None);
    }

    #[test]
    fn an_identity_no_header_can_carry_has_no_identity_headers_but_still_credentials() {
        let keys = Arc::new(KeyRing::new(
            SigningKey::generate(KeyAlgorithm::EdDsa).unwrap(),
            Vec::new(),
        ));
        let signer = BackendSigner::new(keys, "http://gw".into(), 60);
        let now = 1_900_000_000;
        for (sub, email) in [
            ("alice\r\nx-forwarded-user: root", None),
            ("alice", Some("a@b\n")),
        ] {
            let credentials = signer
                .credentials(
                    &caller(sub, email, now),
                    0,
                    "http://backend/mcp",
                    None,
                    true,
                    now,
                )
                .unwrap();
            assert!(credentials.identity.is_none(), "{sub:?} {email:?}");
        }
    }
}
