//! Any OpenID Connect provider as the identity provider: discovery from its issuer, the authorization code flow
//! with PKCE and a nonce, and the ID token checked (signature by its JWKS, `iss`, `aud`, `exp`, `nonce`)
//! before the user is believed.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{OnceCell, RwLock};

use super::oauth_client::{self, OAuthClient};
use super::{IdpError, ProviderTokens};
use crate::config::OidcSettings;
use crate::store::records::UserIdentity;

/// ID token algorithms accepted: asymmetric only.
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    /// Where the user's claims are asked again at each refresh.
    #[serde(default)]
    userinfo_endpoint: Option<String>,
}

#[derive(Deserialize)]
struct IdClaims {
    sub: String,
    nonce: Option<String>,
    email: Option<String>,
    email_verified: Option<bool>,
    preferred_username: Option<String>,
    /// Every other claim, the groups claim among them.
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

pub(super) struct Oidc {
    settings: OidcSettings,
    http: reqwest::Client,
    /// The gateway's `/callback`, registered at the provider.
    callback: String,
    discovery: OnceCell<Discovery>,
    keys: RwLock<JwkSet>,
}

impl Oidc {
    pub(super) fn new(settings: OidcSettings, http: reqwest::Client, callback: String) -> Self {
        Self {
            settings,
            http,
            callback,
            discovery: OnceCell::new(),
            keys: RwLock::new(JwkSet { keys: Vec::new() }),
        }
    }

    /// The provider's configuration, fetched once, when first needed (the provider may start after us).
    async fn discovery(&self) -> Result<&Discovery, IdpError> {
        self.discovery
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.settings.issuer);
                let doc: Discovery = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| IdpError::Unavailable(format!("discovery at {url}: {e}")))?
                    .json()
                    .await
                    .map_err(|e| IdpError::Unavailable(format!("discovery at {url}: {e}")))?;
                // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for.
                if doc.issuer.trim_end_matches('/') != self.settings.issuer {
                    return Err(IdpError::Unavailable(format!(
                        "the discovery document names the issuer {}, not {}",
                        doc.issuer, self.settings.issuer
                    )));
                }
                Ok(doc)
            })
            .await
    }

    /// Where forms leading to the provider go, for the consent page's CSP.
    pub(super) async fn authorize_origin(&self) -> Option<String> {
        let endpoint = self.discovery().await.ok()?.authorization_endpoint.clone();
        url::Url::parse(&endpoint)
            .ok()
            .map(|u| u.origin().ascii_serialization())
    }

    /// The `oauth2` client for the discovered endpoints.
    async fn oauth(&self) -> Result<OAuthClient, IdpError> {
        let discovery = self.discovery().await?;
        oauth_client::client(
            &self.settings.client_id,
            &self.settings.client_secret,
            &discovery.authorization_endpoint,
            &discovery.token_endpoint,
            &self.callback,
        )
    }

    pub(super) async fn authorize_url(
        &self,
        state: &str,
        verifier: &str,
        nonce: &str,
        resource: &str,
    ) -> Result<String, IdpError> {
        let client = self.oauth().await?;
        let mut extra = vec![("nonce", nonce)];
        if self.settings.send_resource {
            extra.push(("resource", resource));
        }
        if self.settings.scopes.iter().any(|s| s == "offline_access") {
            // OpenID Connect Core §11: offline access needs consent to be prompted for.
            extra.push(("prompt", "consent"));
        }
        Ok(oauth_client::authorize_url(
            &client,
            state,
            verifier,
            &self.settings.scopes,
            &extra,
        ))
    }

    /// Trades the provider's code for tokens and checks the ID token.
    pub(super) async fn sign_in(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
        now: u64,
    ) -> Result<(ProviderTokens, UserIdentity), IdpError> {
        let client = self.oauth().await?;
        let issued = oauth_client::exchange(&client, &self.http, code, verifier).await?;
        let id_token = issued
            .id_token
            .as_deref()
            .ok_or_else(|| IdpError::Refused("no ID token".into()))?;
        let claims = self.verify_id_token(id_token).await?;
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(IdpError::Refused("the ID token's nonce is not ours".into()));
        }
        self.check_allowlists(&claims)?;
        let (groups, groups_truncated) = self.groups(&claims.other);
        let user = UserIdentity {
            sub: claims.sub,
            email: claims.email.filter(|_| claims.email_verified == Some(true)),
            preferred_username: claims.preferred_username,
            groups,
            groups_truncated,
        };
        let tokens = ProviderTokens {
            access_token: issued.access_token,
            refresh_token: issued.refresh_token,
            expires_at: issued.expires_in.map(|s| now + s),
        };
        Ok((tokens, user))
    }

    /// The groups the claims give, and whether they are all: a provider with more groups than a
    /// token holds says so (Entra ID's overage: `_claim_names` naming the claim, or `hasgroups`)
    /// instead of listing them.
    fn groups(&self, claims: &serde_json::Map<String, serde_json::Value>) -> (Vec<String>, bool) {
        let claim = &self.settings.groups_claim;
        let (groups, truncated) = super::groups_claim(claims.get(claim));
        let overage = claims
            .get("_claim_names")
            .is_some_and(|names| names.get(claim).is_some())
            || claims.get("hasgroups").is_some_and(|v| v == true);
        (groups, truncated || overage)
    }

    /// Who the user is today, as the provider's userinfo endpoint says with their `token`: their
    /// verified email and groups, learnt again at each refresh. What a policy or an allowlist
    /// depends on (`depends`) must still be given, or the user is no longer let in. A provider
    /// that serves no userinfo leaves the sign-in's answer in force.
    pub(super) async fn identity_now(
        &self,
        user: &UserIdentity,
        token: &str,
        depends: super::Depends,
    ) -> Result<Option<UserIdentity>, IdpError> {
        let Some(endpoint) = self.discovery().await?.userinfo_endpoint.clone() else {
            self.check_email(user.email.as_deref())?;
            return Ok(None);
        };
        let response = self
            .http
            .get(&endpoint)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| IdpError::Unavailable(format!("userinfo: {e}")))?;
        if matches!(response.status().as_u16(), 401 | 403) {
            return Err(IdpError::Refused(format!(
                "the provider no longer accepts the user's token (userinfo answered {})",
                response.status()
            )));
        }
        let claims: serde_json::Map<String, serde_json::Value> = response
            .error_for_status()
            .map_err(|e| IdpError::Unavailable(format!("userinfo: {e}")))?
            .json()
            .await
            .map_err(|e| IdpError::Unavailable(format!("userinfo: {e}")))?;
        let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        if text("sub").as_deref() != Some(user.sub.as_str()) {
            return Err(IdpError::NotAllowed(
                "The provider's userinfo is another user's".into(),
            ));
        }
        let verified = claims.get("email_verified").is_some_and(|v| v == true);
        let email = text("email").filter(|_| verified);
        self.check_email(email.as_deref())?;
        if depends.email && email.is_none() {
            return Err(IdpError::NotAllowed(
                "The provider no longer gives the user's verified email, which a policy reads"
                    .into(),
            ));
        }
        if depends.groups && !claims.contains_key(&self.settings.groups_claim) {
            return Err(IdpError::NotAllowed(format!(
                "The provider no longer gives the user's groups ({}), which a policy reads",
                self.settings.groups_claim
            )));
        }
        let (groups, groups_truncated) = self.groups(&claims);
        Ok(Some(UserIdentity {
            sub: user.sub.clone(),
            email,
            preferred_username: text("preferred_username")
                .or_else(|| user.preferred_username.clone()),
            groups,
            groups_truncated,
        }))
    }

    /// New tokens for a refresh token ([`oauth_client::refresh`]).
    pub(super) async fn refresh(
        &self,
        refresh_token: &str,
        now: u64,
    ) -> Result<ProviderTokens, IdpError> {
        oauth_client::refresh(&self.oauth().await?, &self.http, refresh_token, now).await
    }

    async fn verify_id_token(&self, token: &str) -> Result<IdClaims, IdpError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| IdpError::Refused("a malformed ID token".into()))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(IdpError::Refused(format!(
                "the ID token uses {:?}",
                header.alg
            )));
        }
        let kid = header.kid.unwrap_or_default();
        let key = match self.key(&kid).await {
            Some(key) => key,
            None => {
                // A key not seen yet: the provider rotated. Fetch its keys again, once.
                self.fetch_keys().await?;
                self.key(&kid)
                    .await
                    .ok_or_else(|| IdpError::Refused("the ID token's key is unknown".into()))?
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.discovery().await?.issuer]);
        validation.set_audience(&[&self.settings.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<IdClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| IdpError::Refused(format!("the ID token does not verify: {e}")))
    }

    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        let keys = self.keys.read().await;
        let jwk = if kid.is_empty() && keys.keys.len() == 1 {
            keys.keys.first()
        } else {
            keys.find(kid)
        }?;
        DecodingKey::from_jwk(jwk).ok()
    }

    async fn fetch_keys(&self) -> Result<(), IdpError> {
        let uri = &self.discovery().await?.jwks_uri;
        let set: JwkSet = self
            .http
            .get(uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| IdpError::Unavailable(format!("the provider's keys: {e}")))?
            .json()
            .await
            .map_err(|e| IdpError::Unavailable(format!("the provider's keys: {e}")))?;
        *self.keys.write().await = set;
        Ok(())
    }

    fn check_allowlists(&self, claims: &IdClaims) -> Result<(), IdpError> {
        let verified = claims
            .email
            .as_deref()
            .filter(|_| claims.email_verified == Some(true));
        self.check_email(verified)
    }

    /// Whether a user with this verified email (if any) passes the allowlists.
    pub(super) fn check_email(&self, verified: Option<&str>) -> Result<(), IdpError> {
        let (emails, domains) = (
            &self.settings.allowed_emails,
            &self.settings.allowed_domains,
        );
        if emails.is_empty() && domains.is_empty() {
            return Ok(());
        }
        let email = verified.ok_or_else(|| {
            IdpError::NotAllowed("A verified email is needed to sign in here".into())
        })?;
        let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        if emails.iter().any(|e| e.eq_ignore_ascii_case(email))
            || domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
        {
            Ok(())
        } else {
            Err(IdpError::NotAllowed(format!(
                "{email} may not use this gateway"
            )))
        }
    }
}
