//! The upstream identity provider: a GitHub OAuth app (endpoints overridable for GitHub Enterprise
//! Server) or any OpenID Connect provider ([`super::oidc`]). The gateway is a plain OAuth client to
//! it, with PKCE; the tokens it gets stay on the server, sealed with AES-256-GCM, and are what the
//! data plane forwards to the backends.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use super::oidc::Oidc;
use super::upstream_oauth::{self, OAuthClient};
use crate::config::{GitHubSettings, Provider};
use crate::store::records::UserIdentity;

/// What the upstream provider issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: Option<u64>,
}

/// Why the upstream login failed, in words for the user.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("GitHub could not be reached or answered badly: {0}")]
    Unavailable(String),
    #[error("GitHub refused the sign-in: {0}")]
    Refused(String),
    #[error("{0}")]
    NotAllowed(String),
}

/// The upstream provider, and the key its tokens are sealed with.
pub struct Upstream {
    kind: Kind,
    cipher: Aes256Gcm,
}

enum Kind {
    GitHub(GitHub),
    Oidc(Oidc),
}

impl Upstream {
    /// The upstream of a provider config; `None` for the `local` provider.
    pub fn new(provider: &Provider, callback: &str) -> Option<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("mcp-auth-gateway/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let (kind, key) = match provider {
            Provider::Local { .. } => return None,
            Provider::GitHub(settings) => (
                Kind::GitHub(GitHub {
                    settings: settings.clone(),
                    http,
                    callback: callback.to_owned(),
                }),
                settings.token_key,
            ),
            Provider::Oidc(settings) => (
                Kind::Oidc(Oidc::new(settings.clone(), http, callback.to_owned())),
                settings.token_key,
            ),
        };
        Some(Self {
            kind,
            cipher: Aes256Gcm::new_from_slice(&key).expect("a 32-byte key"),
        })
    }

    /// Where to send the browser to sign in.
    pub async fn authorize_url(
        &self,
        state: &str,
        verifier: &str,
        nonce: &str,
        resource: &str,
    ) -> Result<String, UpstreamError> {
        match &self.kind {
            Kind::GitHub(github) => github.authorize_url(state, verifier),
            Kind::Oidc(oidc) => oidc.authorize_url(state, verifier, nonce, resource).await,
        }
    }

    /// The origin of the provider's sign-in page, which the consent form leads to.
    pub async fn authorize_origin(&self) -> Option<String> {
        match &self.kind {
            Kind::GitHub(github) => url::Url::parse(&github.settings.authorize_url)
                .ok()
                .map(|u| u.origin().ascii_serialization()),
            Kind::Oidc(oidc) => oidc.authorize_origin().await,
        }
    }

    /// Trades the provider's code for its tokens and the user they belong to.
    pub async fn sign_in(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
        now: u64,
    ) -> Result<(UpstreamTokens, UserIdentity), UpstreamError> {
        match &self.kind {
            Kind::GitHub(github) => {
                let tokens = github.exchange(code, verifier, now).await?;
                let user = github.identity(&tokens.access_token).await?;
                Ok((tokens, user))
            }
            Kind::Oidc(oidc) => oidc.sign_in(code, verifier, nonce, now).await,
        }
    }

    /// Fresh tokens when these have expired (or will within a minute) and can be refreshed.
    pub async fn refreshed(&self, tokens: &UpstreamTokens, now: u64) -> Option<UpstreamTokens> {
        let expiring = tokens.expires_at.is_some_and(|at| at <= now + 60);
        let refresh = tokens.refresh_token.as_deref().filter(|_| expiring)?;
        let result = match &self.kind {
            Kind::Oidc(oidc) => oidc.refresh(refresh, now).await,
            // GitHub Apps' user tokens expire and come with refresh tokens; OAuth apps' do not expire.
            Kind::GitHub(github) => github.refresh(refresh, now).await,
        };
        result
            .inspect_err(|error| tracing::warn!(%error, "refreshing an upstream token failed"))
            .ok()
    }
}

pub struct GitHub {
    settings: GitHubSettings,
    http: reqwest::Client,
    /// The gateway's `/callback`, registered with the OAuth app.
    callback: String,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
    email: Option<String>,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    primary: bool,
    verified: bool,
}

#[derive(Deserialize)]
struct Org {
    login: String,
}

impl GitHub {
    fn oauth(&self) -> Result<OAuthClient, UpstreamError> {
        upstream_oauth::client(
            &self.settings.client_id,
            &self.settings.client_secret,
            &self.settings.authorize_url,
            &self.settings.token_url,
            &self.callback,
        )
    }

    /// Where to send the browser: GitHub's authorization page for this pending authorization.
    pub fn authorize_url(&self, state: &str, verifier: &str) -> Result<String, UpstreamError> {
        Ok(upstream_oauth::authorize_url(
            &self.oauth()?,
            state,
            verifier,
            &self.settings.scopes,
            &[],
        ))
    }

    /// Trades GitHub's code for its tokens.
    pub async fn exchange(
        &self,
        code: &str,
        verifier: &str,
        now: u64,
    ) -> Result<UpstreamTokens, UpstreamError> {
        let issued = upstream_oauth::exchange(&self.oauth()?, &self.http, code, verifier).await?;
        Ok(UpstreamTokens {
            access_token: issued.access_token,
            refresh_token: issued.refresh_token,
            expires_at: issued.expires_in.map(|s| now + s),
        })
    }

    /// New tokens for a refresh token (the old one stays if none is returned).
    pub async fn refresh(
        &self,
        refresh_token: &str,
        now: u64,
    ) -> Result<UpstreamTokens, UpstreamError> {
        let client = self.oauth()?;
        let issued = upstream_oauth::refresh(&client, &self.http, refresh_token).await?;
        Ok(UpstreamTokens {
            access_token: issued.access_token,
            refresh_token: issued
                .refresh_token
                .or_else(|| Some(refresh_token.to_owned())),
            expires_at: issued.expires_in.map(|s| now + s),
        })
    }

    /// Who the token belongs to, checked against the allowlists.
    pub async fn identity(&self, token: &str) -> Result<UserIdentity, UpstreamError> {
        let user: User = self.get(token, "/user").await?;
        if !self.settings.allowed_users.is_empty()
            && !self
                .settings
                .allowed_users
                .iter()
                .any(|u| u.eq_ignore_ascii_case(&user.login))
        {
            return Err(UpstreamError::NotAllowed(format!(
                "The GitHub user {} may not use this gateway",
                user.login
            )));
        }
        if !self.settings.allowed_orgs.is_empty() {
            let orgs: Vec<Org> = self.get(token, "/user/orgs").await?;
            if !orgs.iter().any(|o| {
                self.settings
                    .allowed_orgs
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&o.login))
            }) {
                return Err(UpstreamError::NotAllowed(format!(
                    "The GitHub user {} is in none of the organisations allowed here",
                    user.login
                )));
            }
        }
        // The primary verified address; the profile's public one is not verified.
        let emails: Vec<Email> = self.get(token, "/user/emails").await.unwrap_or_default();
        let email = emails
            .into_iter()
            .find(|e| e.primary && e.verified)
            .map(|e| e.email);
        let _ = user.email;
        Ok(UserIdentity {
            sub: format!("github:{}", user.id),
            email,
            preferred_username: Some(user.login),
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
    ) -> Result<T, UpstreamError> {
        let response = self
            .http
            .get(format!("{}{path}", self.settings.api_url))
            .bearer_auth(token)
            .header(http::header::ACCEPT, "application/vnd.github+json")
            .send()
            .await
            .map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(UpstreamError::Unavailable(format!(
                "{path} answered HTTP {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| UpstreamError::Unavailable(e.to_string()))
    }
}

impl Upstream {
    /// Encrypts tokens for the store: base64url(nonce || AES-256-GCM ciphertext).
    pub fn seal(&self, tokens: &UpstreamTokens) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let plain = serde_json::to_vec(tokens).expect("JSON");
        let sealed = self
            .cipher
            .encrypt(&Nonce::from(nonce), plain.as_slice())
            .expect("encryption works");
        URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat())
    }

    /// Decrypts what [`Upstream::seal`] made; `None` if it was made with another key or tampered with.
    pub fn unseal(&self, sealed: &str) -> Option<UpstreamTokens> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        let (nonce, ciphertext) = bytes.split_at_checked(12)?;
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let plain = self.cipher.decrypt(&Nonce::from(nonce), ciphertext).ok()?;
        serde_json::from_slice(&plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github(key: u8) -> Upstream {
        Upstream::new(
            &Provider::GitHub(GitHubSettings {
                client_id: "id".into(),
                client_secret: "secret".into(),
                scopes: vec![],
                authorize_url: "https://github.com/login/oauth/authorize".into(),
                token_url: "https://github.com/login/oauth/access_token".into(),
                api_url: "https://api.github.com".into(),
                allowed_users: vec![],
                allowed_orgs: vec![],
                token_key: [key; 32],
            }),
            "http://gw/callback",
        )
        .unwrap()
    }

    #[test]
    fn sealed_tokens_open_only_with_their_key() {
        let tokens = UpstreamTokens {
            access_token: "gho_secret".into(),
            refresh_token: None,
            expires_at: Some(5),
        };
        let sealed = github(1).seal(&tokens);
        assert!(!sealed.contains("gho_secret"));
        assert_eq!(github(1).unseal(&sealed), Some(tokens));
        assert_eq!(github(2).unseal(&sealed), None);
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            github(1).unseal(std::str::from_utf8(&tampered).unwrap()),
            None
        );
    }
}
