//! The identity providers users sign in with: GitHub ([`github`]), any OpenID Connect provider
//! ([`oidc`]), both through the shared OAuth client code ([`oauth_client`]), and the operator's
//! users file ([`local`]). The gateway is a plain OAuth client of GitHub and OIDC providers, with
//! PKCE; the tokens it gets from them stay on the server, sealed with AES-256-GCM, and are what the
//! data plane forwards to the backends.

mod github;
pub(crate) mod local;
mod oauth_client;
mod oidc;

use serde::{Deserialize, Serialize};

use crate::config::Provider;
use crate::store::records::UserIdentity;
use crate::telemetry::metrics::auth::AUTH;
use crate::tokens::sealed::Sealer;
use github::GitHub;
use oidc::Oidc;

/// A token is refreshed when it has this little time left.
pub(crate) const REFRESH_BEFORE_SECS: u64 = 60;

/// The most groups kept of a user, and the longest name: what a token can carry.
const MAX_GROUPS: usize = 200;
const MAX_GROUP_NAME: usize = 256;

/// The groups an identity provider's claim lists: an array of strings, or one string; anything
/// else is no group. Capped, so that an account in thousands of groups still gets a usable token;
/// `true` when some were left out.
pub(crate) fn groups_claim(value: Option<&serde_json::Value>) -> (Vec<String>, bool) {
    let names: Vec<&str> = match value {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str()).collect(),
        Some(serde_json::Value::String(one)) => vec![one.as_str()],
        _ => Vec::new(),
    };
    bounded_groups(names.into_iter().map(str::to_owned))
}

/// `groups`, without empty or overlong names and repeats, at most [`MAX_GROUPS`]; and whether
/// there were more.
fn bounded_groups(groups: impl Iterator<Item = String>) -> (Vec<String>, bool) {
    let mut kept: Vec<String> = Vec::new();
    for group in groups {
        if !group.is_empty() && group.len() <= MAX_GROUP_NAME && !kept.contains(&group) {
            if kept.len() == MAX_GROUPS {
                return (kept, true);
            }
            kept.push(group);
        }
    }
    (kept, false)
}

/// What of a user's identity a policy depends on, and a refresh must learn again.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Depends {
    pub groups: bool,
    pub email: bool,
}

/// What a GitHub or OIDC provider issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProviderTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: Option<u64>,
}

/// Why signing in at the identity provider failed, in words for the user.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdpError {
    #[error("The identity provider could not be reached or answered badly: {0}")]
    Unavailable(String),
    #[error("The identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("{0}")]
    NotAllowed(String),
}

/// A GitHub or OIDC provider, and the key its tokens are sealed with.
pub(crate) struct IdentityProvider {
    protocol: Protocol,
    sealer: Sealer,
}

/// Which protocol the provider speaks: GitHub's own OAuth and API, or OpenID Connect.
enum Protocol {
    GitHub(GitHub),
    Oidc(Oidc),
}

impl IdentityProvider {
    /// The provider of a provider config, whose tokens are sealed under `token_key` (which the
    /// config requires of GitHub and OIDC); `None` for the `local` provider, which has no tokens.
    pub(crate) fn new(
        provider: &Provider,
        callback: &str,
        token_key: Option<[u8; 32]>,
    ) -> Option<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("mcp-auth-gateway/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let protocol = match provider {
            Provider::Local { .. } => return None,
            Provider::GitHub(settings) => {
                Protocol::GitHub(GitHub::new(settings.clone(), http, callback.to_owned()))
            }
            Provider::Oidc(settings) => {
                Protocol::Oidc(Oidc::new(settings.clone(), http, callback.to_owned()))
            }
        };
        // The config requires one of GitHub and OIDC, and a reload takes the first one set.
        let key =
            token_key.expect("store.token_key_env, which the config requires of GitHub and OIDC");
        Some(Self {
            protocol,
            sealer: Sealer::new(&key),
        })
    }

    /// Where to send the browser to sign in.
    pub(crate) async fn authorize_url(
        &self,
        state: &str,
        verifier: &str,
        nonce: &str,
        resource: &str,
    ) -> Result<String, IdpError> {
        match &self.protocol {
            Protocol::GitHub(github) => github.authorize_url(state, verifier),
            Protocol::Oidc(oidc) => {
                let url = oidc.authorize_url(state, verifier, nonce, resource);
                timed("oidc", "authorize_url", url).await
            }
        }
    }

    /// The origin of the provider's sign-in page, which the consent form leads to.
    pub(crate) async fn authorize_origin(&self) -> Option<String> {
        match &self.protocol {
            Protocol::GitHub(github) => github.authorize_origin(),
            Protocol::Oidc(oidc) => oidc.authorize_origin().await,
        }
    }

    /// Trades the provider's code for its tokens and the user they belong to.
    pub(crate) async fn sign_in(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
        now: u64,
    ) -> Result<(ProviderTokens, UserIdentity), IdpError> {
        let signed_in = async {
            match &self.protocol {
                Protocol::GitHub(github) => {
                    let tokens = github.exchange(code, verifier, now).await?;
                    let user = github.identity(&tokens.access_token).await?;
                    Ok((tokens, user))
                }
                Protocol::Oidc(oidc) => oidc.sign_in(code, verifier, nonce, now).await,
            }
        };
        timed(self.label(), "sign_in", signed_in).await
    }

    /// Whether `user`, who signed in earlier, would still be let in by today's rules, asked again
    /// with the user's `token` at the provider: GitHub, when it has allowlists or a policy reads
    /// groups; an OIDC provider's userinfo, always (its email and groups are learnt again, and
    /// what `depends` names must still be given). `Ok` holds who the user is today, when the
    /// provider was asked.
    pub(crate) async fn recheck(
        &self,
        user: &UserIdentity,
        token: Option<&str>,
        depends: Depends,
    ) -> Result<Option<UserIdentity>, IdpError> {
        let token = || {
            token.ok_or_else(|| {
                IdpError::Unavailable("the user's token at the provider is not available".into())
            })
        };
        match &self.protocol {
            Protocol::GitHub(github) if github.asks_again() => {
                let now = timed("github", "recheck", github.identity(token()?)).await?;
                if now.sub != user.sub {
                    return Err(IdpError::NotAllowed(
                        "The GitHub token belongs to another user".into(),
                    ));
                }
                Ok(Some(now))
            }
            Protocol::GitHub(_) => Ok(None),
            Protocol::Oidc(oidc) => {
                let learnt = oidc.identity_now(user, token()?, depends);
                timed("oidc", "recheck", learnt).await
            }
        }
    }

    /// Whether a user another identity provider vouches for (an enterprise-managed sign-in), with
    /// this email, passes the allowlists: an OIDC provider's emails and domains. GitHub's name
    /// GitHub accounts, which another provider's users are not.
    pub(crate) fn admits_vouched(&self, email: Option<&str>) -> Result<(), IdpError> {
        match &self.protocol {
            Protocol::Oidc(oidc) => oidc.check_email(email),
            Protocol::GitHub(_) => Err(IdpError::NotAllowed(
                "GitHub's allowlists cannot admit another provider's users".into(),
            )),
        }
    }

    /// Whether these tokens have expired (or will within a minute) and can be refreshed.
    pub(crate) fn needs_refresh(tokens: &ProviderTokens, now: u64) -> bool {
        let expiring = tokens
            .expires_at
            .is_some_and(|at| at <= now + REFRESH_BEFORE_SECS);
        expiring && tokens.refresh_token.is_some()
    }

    /// Fresh tokens when these have expired (or will within a minute) and can be refreshed.
    pub(crate) async fn refreshed(
        &self,
        tokens: &ProviderTokens,
        now: u64,
    ) -> Option<ProviderTokens> {
        let refresh = tokens
            .refresh_token
            .as_deref()
            .filter(|_| Self::needs_refresh(tokens, now))?;
        let refreshed = async {
            match &self.protocol {
                Protocol::Oidc(oidc) => oidc.refresh(refresh, now).await,
                // GitHub Apps' user tokens expire and come with refresh tokens; OAuth apps' do not.
                Protocol::GitHub(github) => github.refresh(refresh, now).await,
            }
        };
        let result = timed(self.label(), "refresh", refreshed).await;
        result
            .inspect_err(
                |error| tracing::warn!(%error, "refreshing an identity provider's token failed"),
            )
            .ok()
    }
}

impl IdentityProvider {
    /// The provider as a metric label.
    pub(crate) fn label(&self) -> &'static str {
        match self.protocol {
            Protocol::GitHub(_) => "github",
            Protocol::Oidc(_) => "oidc",
        }
    }

    /// Encrypts tokens for the store ([`Sealer`], bound to nothing, as they always were).
    pub(crate) fn seal(&self, tokens: &ProviderTokens) -> String {
        self.sealer
            .seal(&serde_json::to_vec(tokens).expect("JSON"), "")
    }

    /// Decrypts what [`IdentityProvider::seal`] made; `None` if it was made with another key or tampered with.
    pub(crate) fn unseal(&self, sealed: &str) -> Option<ProviderTokens> {
        serde_json::from_slice(&self.sealer.open(sealed, "")?).ok()
    }
}

/// Times a call to the provider (`mcp_gateway_idp_request_duration_seconds`) and counts its result
/// (`mcp_gateway_idp_requests_total`).
async fn timed<T>(
    provider: &'static str,
    call: &'static str,
    work: impl std::future::Future<Output = Result<T, IdpError>>,
) -> Result<T, IdpError> {
    let started = std::time::Instant::now();
    let span = tracing::info_span!(
        target: crate::telemetry::trace::SPANS,
        "idp",
        otel.name = %format_args!("idp {provider} {call}"),
        otel.kind = "client",
        idp.provider = provider,
        idp.call = call,
        error.type = tracing::field::Empty,
    );
    let result = crate::telemetry::trace::traced!(span, work);
    AUTH.idp_duration
        .with_label_values(&[provider, call])
        .observe(started.elapsed().as_secs_f64());
    let outcome = match &result {
        Ok(_) => "ok",
        Err(IdpError::Unavailable(_)) => "unavailable",
        Err(IdpError::Refused(_)) => "refused",
        Err(IdpError::NotAllowed(_)) => "not_allowed",
    };
    AUTH.idp_calls
        .with_label_values(&[provider, call, outcome])
        .inc();
    if result.is_err() {
        span.record("error.type", outcome);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GitHubSettings;

    fn github(key: u8) -> IdentityProvider {
        IdentityProvider::new(
            &Provider::GitHub(GitHubSettings {
                client_id: "id".into(),
                client_secret: "secret".into(),
                scopes: vec![],
                authorize_url: "https://github.com/login/oauth/authorize".into(),
                token_url: "https://github.com/login/oauth/access_token".into(),
                api_url: "https://api.github.com".into(),
                allowed_users: vec![],
                allowed_user_ids: vec![],
                allowed_orgs: vec![],
                allowed_org_ids: vec![],
                groups: false,
            }),
            "http://gw/callback",
            Some([key; 32]),
        )
        .unwrap()
    }

    #[test]
    fn groups_come_from_an_array_or_one_string_and_are_bounded() {
        use serde_json::json;
        let names = |value| groups_claim(Some(&value)).0;
        assert_eq!(names(json!(["a", "b", "a", "", 7])), ["a", "b"]);
        assert_eq!(names(json!("admins")), ["admins"]);
        assert!(names(json!({"a": 1})).is_empty());
        assert_eq!(groups_claim(None), (vec![], false));
        let many: Vec<String> = (0..500).map(|i| format!("g{i}")).collect();
        let (kept, truncated) = groups_claim(Some(&json!(many)));
        assert_eq!((kept.len(), truncated), (MAX_GROUPS, true));
        let exactly: Vec<String> = (0..MAX_GROUPS).map(|i| format!("g{i}")).collect();
        assert!(!groups_claim(Some(&json!(exactly))).1);
        let long = "x".repeat(MAX_GROUP_NAME + 1);
        assert!(names(json!([long])).is_empty());
    }

    #[test]
    fn sealed_tokens_open_only_with_their_key() {
        let tokens = ProviderTokens {
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
