//! GitHub as the identity provider: an OAuth app or a GitHub App (endpoints overridable for GitHub
//! Enterprise Server), with the user's login checked against the allowed users and organisations.

use serde::Deserialize;

use super::oauth_client::{self, OAuthClient};
use super::{IdpError, ProviderTokens};
use crate::config::GitHubSettings;
use crate::store::records::UserIdentity;

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
    id: u64,
    login: String,
}

/// A team of `/user/teams`.
#[derive(Deserialize)]
struct Team {
    slug: String,
    organization: TeamOrg,
}

#[derive(Deserialize)]
struct TeamOrg {
    login: String,
}

/// The groups of a GitHub user: each organisation's login and each team as `org/team`, lowercased
/// (GitHub's names are case-insensitive).
fn github_groups(orgs: &[Org], teams: &[Team]) -> Vec<String> {
    let orgs = orgs.iter().map(|o| o.login.to_ascii_lowercase());
    let teams = teams
        .iter()
        .map(|t| format!("{}/{}", t.organization.login, t.slug).to_ascii_lowercase());
    super::bounded_groups(orgs.chain(teams))
}

impl GitHub {
    pub fn new(settings: GitHubSettings, http: reqwest::Client, callback: String) -> Self {
        Self {
            settings,
            http,
            callback,
        }
    }

    /// The origin of GitHub's sign-in page.
    pub fn authorize_origin(&self) -> Option<String> {
        url::Url::parse(&self.settings.authorize_url)
            .ok()
            .map(|u| u.origin().ascii_serialization())
    }

    fn oauth(&self) -> Result<OAuthClient, IdpError> {
        oauth_client::client(
            &self.settings.client_id,
            &self.settings.client_secret,
            &self.settings.authorize_url,
            &self.settings.token_url,
            &self.callback,
        )
    }

    /// Where to send the browser: GitHub's authorization page for this pending authorization.
    pub fn authorize_url(&self, state: &str, verifier: &str) -> Result<String, IdpError> {
        Ok(oauth_client::authorize_url(
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
    ) -> Result<ProviderTokens, IdpError> {
        let issued = oauth_client::exchange(&self.oauth()?, &self.http, code, verifier).await?;
        Ok(ProviderTokens {
            access_token: issued.access_token,
            refresh_token: issued.refresh_token,
            expires_at: issued.expires_in.map(|s| now + s),
        })
    }

    /// New tokens for a refresh token (the old one stays if none is returned).
    pub async fn refresh(&self, refresh_token: &str, now: u64) -> Result<ProviderTokens, IdpError> {
        let client = self.oauth()?;
        let issued = oauth_client::refresh(&client, &self.http, refresh_token).await?;
        Ok(ProviderTokens {
            access_token: issued.access_token,
            refresh_token: issued
                .refresh_token
                .or_else(|| Some(refresh_token.to_owned())),
            expires_at: issued.expires_in.map(|s| now + s),
        })
    }

    /// Whether any allowlist is set: then a refresh asks GitHub again who the user is.
    /// Whether a refresh must ask GitHub about the user again: for its allowlists, or for the
    /// groups a policy reads.
    pub fn asks_again(&self) -> bool {
        let s = &self.settings;
        s.groups
            || !(s.allowed_users.is_empty()
                && s.allowed_user_ids.is_empty()
                && s.allowed_orgs.is_empty()
                && s.allowed_org_ids.is_empty())
    }

    /// Who the token belongs to, checked against the allowlists: users by numeric id (or login),
    /// organisations by numeric id (or login). Ids survive renames; logins do not.
    pub async fn identity(&self, token: &str) -> Result<UserIdentity, IdpError> {
        let user: User = self.get(token, "/user").await?;
        let s = &self.settings;
        let listed =
            |logins: &[String], login: &str| logins.iter().any(|a| a.eq_ignore_ascii_case(login));
        let by_user = !s.allowed_users.is_empty() || !s.allowed_user_ids.is_empty();
        if by_user
            && !s.allowed_user_ids.contains(&user.id)
            && !listed(&s.allowed_users, &user.login)
        {
            return Err(IdpError::NotAllowed(format!(
                "The GitHub user {} may not use this gateway",
                user.login
            )));
        }
        let mut orgs: Vec<Org> = Vec::new();
        if s.groups || !s.allowed_orgs.is_empty() || !s.allowed_org_ids.is_empty() {
            orgs = self.get(token, "/user/orgs?per_page=100").await?;
        }
        if (!s.allowed_orgs.is_empty() || !s.allowed_org_ids.is_empty())
            && !orgs
                .iter()
                .any(|o| s.allowed_org_ids.contains(&o.id) || listed(&s.allowed_orgs, &o.login))
        {
            return Err(IdpError::NotAllowed(format!(
                "The GitHub user {} is in none of the organisations allowed here",
                user.login
            )));
        }
        // The primary verified address; the profile's public one is not verified.
        let emails: Vec<Email> = self.get(token, "/user/emails").await.unwrap_or_default();
        let email = emails
            .into_iter()
            .find(|e| e.primary && e.verified)
            .map(|e| e.email);
        let _ = user.email;
        let groups = if s.groups {
            let teams: Vec<Team> = self.get(token, "/user/teams?per_page=100").await?;
            github_groups(&orgs, &teams)
        } else {
            Vec::new()
        };
        Ok(UserIdentity {
            sub: format!("github:{}", user.id),
            email,
            preferred_username: Some(user.login),
            groups,
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
    ) -> Result<T, IdpError> {
        let response = self
            .http
            .get(format!("{}{path}", self.settings.api_url))
            .bearer_auth(token)
            .header(http::header::ACCEPT, "application/vnd.github+json")
            .send()
            .await
            .map_err(|e| IdpError::Unavailable(e.to_string()))?;
        // GitHub no longer takes the token: the user revoked the app, or the token expired.
        if response.status() == http::StatusCode::UNAUTHORIZED {
            return Err(IdpError::Refused(format!(
                "GitHub no longer accepts the user's token ({path} answered HTTP 401)"
            )));
        }
        if !response.status().is_success() {
            return Err(IdpError::Unavailable(format!(
                "{path} answered HTTP {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| IdpError::Unavailable(e.to_string()))
    }
}
