//! The authorization server's tables as written: `[auth]`, `[provider]` and its users, `[[clients]]`,
//! `[rate_limits]`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientFile {
    pub client_id: String,
    pub client_name: Option<String>,
    /// Where its users are sent back to; none for a machine client.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// What it may ask the token endpoint for; default `authorization_code` and `refresh_token`.
    /// `client_credentials` makes it a machine client; the jwt-bearer grant takes enterprise-managed
    /// sign-ins (ID-JAG).
    pub grant_types: Option<Vec<String>>,
    /// A `private_key_jwt` client's public keys, as a JWK set (`keys = [...]`)…
    pub jwks: Option<jsonwebtoken::jwk::JwkSet>,
    /// …or where it publishes them.
    pub jwks_uri: Option<String>,
    /// How the client authenticates at the token endpoint (default: none, a public client).
    pub token_endpoint_auth_method: Option<ClientAuthMethod>,
    /// The environment variable holding a confidential client's secret.
    pub client_secret_env: Option<String>,
    /// Skip the consent page for this first-party client (default false).
    pub skip_consent: Option<bool>,
}

/// Requests per minute per client IP; 0 turns a limit off.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimitsFile {
    pub register: Option<u32>,
    pub token: Option<u32>,
    pub authorize: Option<u32>,
    pub login: Option<u32>,
    pub consent: Option<u32>,
    pub callback: Option<u32>,
    pub revoke: Option<u32>,
    pub introspect: Option<u32>,
    /// Sign-in attempts a minute for one user name, from wherever they come.
    pub login_per_user: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthFile {
    #[serde(default, with = "humantime_serde")]
    pub access_token_lifetime: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub refresh_token_lifetime: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub code_lifetime: Option<Duration>,
    /// How long a just-rotated refresh token still works, for concurrent refreshes (default 10s).
    #[serde(default, with = "humantime_serde")]
    pub refresh_grace: Option<Duration>,
    /// The longest a grant lives however often it is refreshed; the user then signs in again
    /// (default 90 days).
    #[serde(default, with = "humantime_serde")]
    pub grant_max_lifetime: Option<Duration>,
    /// Accept RFC 7591 dynamic client registration (default true).
    pub dynamic_registration: Option<bool>,
    /// Accept Client ID Metadata Documents: https URLs as client ids (default true).
    pub client_id_metadata_documents: Option<bool>,
    /// Only documents from these hosts (and their subdomains); empty: any public host.
    pub client_id_metadata_domains: Option<Vec<String>>,
    /// Fetch documents from private and loopback addresses, and plain http on loopback. Development only.
    pub client_id_metadata_allow_private_network: Option<bool>,
    /// The private-use schemes of native apps accepted in redirect URIs (`cursor`, `vscode`, …);
    /// absent: any such scheme; empty: none (https and loopback http only).
    pub private_use_redirect_schemes: Option<Vec<String>>,
    /// The `[[issuers]]` (enterprise identity providers) whose Identity Assertion JWT
    /// Authorization Grants (ID-JAG) the token endpoint takes, by name.
    pub enterprise_issuers: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderFile {
    /// Where users sign in.
    pub kind: ProviderKind,
    /// For "local": the TOML file of `[[users]]` with `username` and an argon2id `password_hash`.
    pub users_file: Option<PathBuf>,
    /// For "github": the OAuth app's client id.
    pub client_id: Option<String>,
    /// For "github": the environment variable holding the OAuth app's client secret.
    pub client_secret_env: Option<String>,
    /// For "github": scopes asked of GitHub (default ["read:user", "user:email"]).
    pub scopes: Option<Vec<String>>,
    /// For "github": GitHub's web and API roots, for GitHub Enterprise Server (default github.com).
    pub web_url: Option<String>,
    pub api_url: Option<String>,
    /// For "github": only these logins may sign in (default: anyone). Logins can be renamed and
    /// then taken by someone else: prefer `allowed_user_ids`.
    pub allowed_users: Option<Vec<String>>,
    /// For "github": only these users, by numeric id (`gh api users/<login> --jq .id`).
    pub allowed_user_ids: Option<Vec<u64>>,
    /// For "github": only members of these organisations may sign in (default: anyone); by login,
    /// or, which no rename changes, by numeric id in `allowed_org_ids`.
    pub allowed_orgs: Option<Vec<String>>,
    pub allowed_org_ids: Option<Vec<u64>>,
    /// For "oidc": the provider's issuer; its configuration is discovered from it.
    pub issuer: Option<String>,
    /// For "oidc": send the route's `resource` to the provider too (default false: Entra rejects it).
    pub send_resource: Option<bool>,
    /// For "oidc": only these (verified) emails, or emails at these domains, may sign in.
    pub allowed_emails: Option<Vec<String>>,
    pub allowed_domains: Option<Vec<String>>,
    /// For "oidc": the ID token claim that lists the user's groups (default "groups").
    pub groups_claim: Option<String>,
}

/// The users file of the `local` provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsersFile {
    #[serde(default)]
    pub users: Vec<UserFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserFile {
    pub username: String,
    /// `mcp-auth-gateway hash-password` prints one.
    pub password_hash: String,
    pub email: Option<String>,
    /// Groups the user is in, for the routes' policies.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `provider.kind`: where users sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ProviderKind {
    /// A users file and the gateway's own sign-in page.
    Local,
    /// A GitHub OAuth app.
    #[serde(rename = "github")]
    GitHub,
    /// Any OpenID Connect provider.
    Oidc,
}

/// `token_endpoint_auth_method` of a client: how it authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ClientAuthMethod {
    /// A public client: no secret.
    None,
    ClientSecretBasic,
    ClientSecretPost,
    /// A JWT signed by the client's private key (RFC 7523 §2.2).
    PrivateKeyJwt,
}

impl ClientAuthMethod {
    /// The method's name in OAuth metadata (RFC 7591 §2).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::None => "none",
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
            ClientAuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }
}
