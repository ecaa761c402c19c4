//! The routes' tables as written: `[[routes]]`, with their policies and commands.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteFile {
    /// The public path, e.g. "/mcp" or "/github/mcp".
    pub path: String,
    /// The backend: the URL of the MCP server behind this route, e.g. "http://127.0.0.1:9000/mcp".
    pub upstream: String,
    /// Serve this route's metadata at the root well-known URL too (default: the first route).
    pub default: Option<bool>,
    pub resource_name: Option<String>,
    pub scopes_supported: Option<Vec<String>>,
    pub required_scopes: Option<Vec<String>>,
    /// How the backend gets credentials (default: headers).
    pub credentials: Option<Credentials>,
    /// The `aud` of what the gateway sends the backend (default: the backend's URL).
    pub backend_audience: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,
    /// Longest wait for the next bytes from the backend (default 5m); SSE keep-alives reset it.
    #[serde(default, with = "humantime_serde")]
    pub read_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub write_timeout: Option<Duration>,
    /// A local MCP server the gateway starts, supervises and stops with itself.
    pub command: Option<CommandFile>,
    /// Who may call which tool, read which resource and get which prompt (default: anyone the
    /// route admits may use everything).
    pub policy: Option<PolicyFile>,
    /// How the gateway signs in at the backend's own authorization server (`credentials = "oauth"`).
    pub oauth: Option<ConnectionFile>,
    /// Where the backend's own token is exchanged for (`credentials = "exchange"`).
    pub exchange: Option<ExchangeFile>,
    /// The `[[issuers]]` whose access tokens the route accepts, by name.
    pub issuers: Option<Vec<String>>,
    /// Whether the route accepts the gateway's own access tokens too; default true.
    pub gateway_tokens: Option<bool>,
}

/// `[routes.exchange]`: an RFC 8693 token exchange at the organisation's identity provider, which
/// gives each user a token for the backend's own audience.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExchangeFile {
    /// The identity provider's token endpoint.
    pub token_endpoint: String,
    /// The gateway's client there, and the environment variable holding its secret.
    pub client_id: String,
    pub client_secret_env: String,
    /// What the exchanged token is for (`audience`); default: the route's `backend_audience`.
    pub audience: Option<String>,
    /// An RFC 8707 `resource` to ask for too.
    pub resource: Option<String>,
    /// The scopes to ask for, space-separated.
    pub scope: Option<String>,
    /// What stands for the user: their token at the gateway's identity provider
    /// (`identity_provider`, the default), the gateway's signed assertion (`assertion`), or the
    /// token another issuer gave the caller (`caller`).
    pub subject_token: Option<SubjectToken>,
    /// The token endpoint may be on a private or loopback address, over plain http.
    pub allow_private_network: Option<bool>,
}

/// What the gateway presents as the user at a token exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SubjectToken {
    IdentityProvider,
    Assertion,
    Caller,
}

/// `[routes.oauth]`: the gateway as an OAuth client of a backend that has its own authorization
/// server, each user connecting their own account there. Every key is optional: by default the
/// gateway discovers the server and registers itself.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectionFile {
    /// The gateway's client id at the backend's authorization server, registered there beforehand.
    pub client_id: Option<String>,
    /// The environment variable holding that client's secret (a confidential client).
    pub client_secret_env: Option<String>,
    /// How that client authenticates at the token endpoint (default: `client_secret_basic` with a
    /// secret, `none` without).
    pub token_endpoint_auth_method: Option<super::ClientAuthMethod>,
    /// The scopes asked for (default: what the backend's challenge or metadata names).
    pub scopes: Option<Vec<String>>,
    /// Whether to send the RFC 8707 `resource` parameter (default true; Entra ID refuses it).
    pub send_resource: Option<bool>,
    /// The authorization servers (issuers) the backend may name; default: the one it names.
    pub authorization_servers: Option<Vec<String>>,
    /// Fetch metadata from, and send users to, private and loopback addresses over plain http: for
    /// development and tests only.
    pub allow_private_network: Option<bool>,
}

/// `[routes.policy]`: rules tried in order, the first that matches decides; `default` when none does.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyFile {
    /// What happens when no rule matches (default "deny").
    pub default: Option<Effect>,
    #[serde(default)]
    pub rules: Vec<RuleFile>,
}

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// One rule: what it is about (tools, resources, prompts; all of them when none is given), whom
/// it matches (every condition given must hold; any name in a list will do), and its effect.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleFile {
    /// Shown in `check`, the audit trail and the metric (default "rules[N]").
    pub name: Option<String>,
    pub effect: Effect,
    /// Tool names, exact or with wildcards (`*` any run of characters, `?` any one).
    pub tools: Option<Vec<String>>,
    /// Resource URIs, exact or with wildcards.
    pub resources: Option<Vec<String>>,
    /// Prompt names, exact or with wildcards.
    pub prompts: Option<Vec<String>>,
    /// The caller's `sub` or user name, exact or with wildcards.
    pub users: Option<Vec<String>>,
    /// The caller's verified email, exact or with wildcards (`*@example.com`), in any case.
    pub emails: Option<Vec<String>>,
    /// Groups the caller is in: the users file's groups, the OIDC groups claim, GitHub
    /// organisations and `org/team`.
    pub groups: Option<Vec<String>>,
    /// The OAuth client the caller uses, by client id.
    pub clients: Option<Vec<String>>,
    /// Scopes the caller's token must all hold. A caller without them is asked to step up (403
    /// `insufficient_scope`), and only callers this rule matches are granted them.
    pub scopes: Option<Vec<String>>,
    /// A CEL expression that must be true, over `user`, `client`, `scopes` and `mcp`.
    pub when: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommandFile {
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub working_dir: Option<PathBuf>,
}

/// `credentials` of a route: how its backend gets credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Credentials {
    /// The internal headers: backend token, identity, and the signed assertion.
    Headers,
    /// The backend token as `Authorization: Bearer`.
    Bearer,
    /// The signed assertion as `Authorization: Bearer`.
    Assertion,
    /// Nothing.
    None,
    /// The user's own token at the backend's authorization server (`[routes.oauth]`), as
    /// `Authorization: Bearer`.
    #[serde(rename = "oauth")]
    OAuth,
    /// A token for the backend's audience, exchanged for the user at the organisation's identity
    /// provider (`[routes.exchange]`, RFC 8693), as `Authorization: Bearer`.
    Exchange,
}
