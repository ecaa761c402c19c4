//! GitHub as the identity provider: an OAuth app or a GitHub App (endpoints overridable for GitHub
//! Enterprise Server), with the user's login checked against the allowed users and organisations.

use serde::Deserialize;

use super::oauth_client::{self, OAuthClient};
use super::{IdpError, ProviderTokens};
use crate::config::GitHubSettings;
use crate::store::records::UserIdentity;

pub(super) struct GitHub {
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
    id: u64,
    organization: TeamOrg,
}

#[derive(Deserialize)]
struct TeamOrg {
    id: u64,
}

/// The most pages of a list read (of 100 items each): a user in more organisations or teams has
/// groups left out, and rules that deny by group then hold for them.
const MAX_PAGES: usize = 10;

/// The groups of a GitHub user: each organisation by its numeric id, and each team as
/// `<organisation id>/<team id>`. Ids stay when an organisation or team is renamed, and a name
/// given up cannot be taken with them. `truncated`: GitHub listed more than was read.
fn github_groups(orgs: &[Org], teams: &[Team], truncated: bool) -> (Vec<String>, bool) {
    let orgs = orgs.iter().map(|o| o.id.to_string());
    let teams = teams
        .iter()
        .map(|t| format!("{}/{}", t.organization.id, t.id));
    let (groups, more) = super::bounded_groups(orgs.chain(teams));
    (groups, more || truncated)
}

impl GitHub {
    pub(super) fn new(settings: GitHubSettings, http: reqwest::Client, callback: String) -> Self {
        Self {
            settings,
            http,
            callback,
        }
    }

    /// The origin of GitHub's sign-in page.
    pub(super) fn authorize_origin(&self) -> Option<String> {
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
    pub(super) fn authorize_url(&self, state: &str, verifier: &str) -> Result<String, IdpError> {
        Ok(oauth_client::authorize_url(
            &self.oauth()?,
            state,
            verifier,
            &self.settings.scopes,
            &[],
        ))
    }

    /// Trades GitHub's code for its tokens.
    pub(super) async fn exchange(
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

    /// New tokens for a refresh token ([`oauth_client::refresh`]).
    pub(super) async fn refresh(
        &self,
        refresh_token: &str,
        now: u64,
    ) -> Result<ProviderTokens, IdpError> {
        oauth_client::refresh(&self.oauth()?, &self.http, refresh_token, now).await
    }

    /// Whether a refresh must ask GitHub about the user again: for its allowlists, or for the
    /// groups a policy reads.
    pub(super) fn asks_again(&self) -> bool {
        let s = &self.settings;
        s.groups
            || !(s.allowed_users.is_empty()
                && s.allowed_user_ids.is_empty()
                && s.allowed_orgs.is_empty()
                && s.allowed_org_ids.is_empty())
    }

    /// Who the token belongs to, checked against the allowlists: users by numeric id (or login),
    /// organisations by numeric id (or login). Ids survive renames; logins do not.
    pub(super) async fn identity(&self, token: &str) -> Result<UserIdentity, IdpError> {
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
        let (mut orgs, mut truncated): (Vec<Org>, bool) = (Vec::new(), false);
        if s.groups || !s.allowed_orgs.is_empty() || !s.allowed_org_ids.is_empty() {
            (orgs, truncated) = self.get_all(token, "/user/orgs?per_page=100").await?;
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
        let (groups, groups_truncated) = if s.groups {
            let (teams, more) = self.get_all(token, "/user/teams?per_page=100").await?;
            github_groups(&orgs, &teams, truncated || more)
        } else {
            (Vec::new(), false)
        };
        Ok(UserIdentity {
            sub: format!("github:{}", user.id),
            email,
            preferred_username: Some(user.login),
            groups,
            groups_truncated,
        })
    }

    /// Every item of a list GitHub pages, following its `Link: <…>; rel="next"` (on GitHub's own
    /// API only), up to [`MAX_PAGES`]; and whether more were left unread.
    async fn get_all<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
    ) -> Result<(Vec<T>, bool), IdpError> {
        let mut items = Vec::new();
        let mut next = Some(format!("{}{path}", self.settings.api_url));
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else {
                return Ok((items, false));
            };
            let response = self.fetch(token, &url, path).await?;
            next = next_page(response.headers(), &self.settings.api_url);
            let page: Vec<T> = response
                .json()
                .await
                .map_err(|e| IdpError::Unavailable(e.to_string()))?;
            items.extend(page);
        }
        Ok((items, next.is_some()))
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
    ) -> Result<T, IdpError> {
        let url = format!("{}{path}", self.settings.api_url);
        self.fetch(token, &url, path)
            .await?
            .json()
            .await
            .map_err(|e| IdpError::Unavailable(e.to_string()))
    }

    /// A successful answer of GitHub's API at `url` (`path` names it in errors).
    async fn fetch(
        &self,
        token: &str,
        url: &str,
        path: &str,
    ) -> Result<reqwest::Response, IdpError> {
        let response = self
            .http
            .get(url)
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
        Ok(response)
    }
}

/// The next page a `Link` header names, if it is on GitHub's API at `api_url`.
fn next_page(headers: &http::HeaderMap, api_url: &str) -> Option<String> {
    let link = headers.get(http::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().eq_ignore_ascii_case("rel=\"next\""));
        let url = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        (is_next && url.starts_with(api_url)).then(|| url.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_is_followed_only_on_githubs_api() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::LINK,
            r#"<https://api.github.com/user/orgs?per_page=100&page=2>; rel="next", <https://api.github.com/user/orgs?per_page=100&page=5>; rel="last""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_page(&headers, "https://api.github.com").as_deref(),
            Some("https://api.github.com/user/orgs?per_page=100&page=2")
        );
        assert_eq!(next_page(&headers, "https://ghe.example.com/api/v3"), None);
        headers.insert(
            http::header::LINK,
            r#"<https://api.github.com/user/orgs?page=4>; rel="prev""#
                .parse()
                .unwrap(),
        );
        assert_eq!(next_page(&headers, "https://api.github.com"), None);
    }

    #[test]
    fn groups_are_ids_and_a_list_cut_short_says_so() {
        let orgs = [Org {
            id: 7,
            login: "Acme".into(),
        }];
        let teams = [Team {
            id: 42,
            organization: TeamOrg { id: 7 },
        }];
        assert_eq!(
            github_groups(&orgs, &teams, false),
            (vec!["7".to_owned(), "7/42".to_owned()], false)
        );
        assert!(github_groups(&orgs, &teams, true).1);
    }
}
