//! The config file as written. Every table refuses keys it does not know.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub server: ServerFile,
    #[serde(default)]
    pub metrics: MetricsFile,
    #[serde(default)]
    pub tokens: TokensFile,
    #[serde(default)]
    pub limits: LimitsFile,
    #[serde(default)]
    pub routes: Vec<RouteFile>,
    #[serde(default)]
    pub store: StoreFile,
    #[serde(default)]
    pub auth: AuthFile,
    /// Where users log in. Without one, the gateway is a data plane only.
    pub provider: Option<ProviderFile>,
    /// Clients registered here rather than dynamically.
    #[serde(default)]
    pub clients: Vec<ClientFile>,
    #[serde(default)]
    pub rate_limits: RateLimitsFile,
    /// The audit trail of the routes' policy decisions (default: none).
    pub audit: Option<AuditFile>,
    /// Traces, sent over OTLP (default: none).
    pub telemetry: Option<TelemetryFile>,
}

/// `[telemetry]`: OpenTelemetry traces of each request, sent to a collector.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryFile {
    /// The collector's OTLP/HTTP base URL, e.g. "http://127.0.0.1:4318"; spans go to
    /// `<otlp_endpoint>/v1/traces` as protobuf.
    pub otlp_endpoint: String,
    /// The `service.name` of the spans (default "mcp-auth-gateway").
    pub service_name: Option<String>,
    /// The share of the traces that start here to keep, 0 to 1 (default 1); a client's own
    /// sampling decision (its `traceparent`) stands.
    pub sample_ratio: Option<f64>,
}

/// `[audit]`: where each policy decision is recorded, one JSON line each.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFile {
    /// A file to append to, relative to the config file; "-" for stdout.
    pub file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    pub client_id: String,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
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
pub struct RateLimitsFile {
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
pub struct StoreFile {
    /// SQLite (default), memory, or Redis (shared by several replicas).
    pub kind: Option<StoreKind>,
    /// The SQLite file (default "data/gateway.db").
    pub path: Option<PathBuf>,
    /// For "redis": the server, `redis://host:port/db` or `rediss://` (TLS), without credentials.
    pub url: Option<String>,
    /// For "redis": the environment variables holding the username and password (ACL), if any.
    pub username_env: Option<String>,
    pub password_env: Option<String>,
    /// For "redis": `url` is one node of a Redis Cluster (default false).
    #[serde(default)]
    pub cluster: bool,
    /// For "redis": the start of every key, so that several gateways can share a server (default
    /// "mcpgw").
    pub key_prefix: Option<String>,
    /// For "redis": the longest wait to connect, and for an answer (default 2s each).
    #[serde(default, with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub response_timeout: Option<Duration>,
    /// For "rediss://": the CA certificates (PEM) that sign the server's, instead of the system's.
    pub tls_ca_file: Option<PathBuf>,
    /// For "rediss://": a client certificate chain and its key (PEM), for a server that asks for
    /// one (Redis does by default: `tls-auth-clients yes`).
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// The environment variable holding the key (32 bytes, base64) that encrypts the identity
    /// provider's tokens at rest. Needed with GitHub or OIDC, whose tokens the gateway keeps.
    pub token_key_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderFile {
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
pub struct UsersFile {
    #[serde(default)]
    pub users: Vec<UserFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFile {
    pub username: String,
    /// `mcp-auth-gateway hash-password` prints one.
    pub password_hash: String,
    pub email: Option<String>,
    /// Groups the user is in, for the routes' policies.
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    /// Where the gateway listens, e.g. "127.0.0.1:8080".
    pub listen: String,
    /// The origin clients reach the gateway at, e.g. "https://mcp.example.com".
    pub public_url: String,
    /// Worker threads (default 2).
    pub threads: Option<usize>,
    /// How long a graceful shutdown lets requests finish (default 5s).
    #[serde(default, with = "humantime_serde")]
    pub grace_period: Option<Duration>,
    /// Browser origins allowed to call the MCP routes (the public URL's own origin always is).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// A line printed at start, under the URLs (the quickstart says how to sign in).
    pub welcome: Option<String>,
    /// The proxies in front of the gateway (addresses or CIDRs) whose word on the client's address
    /// is believed; from anyone else the header is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The header those proxies write the client's address in: "X-Forwarded-For" (default) or
    /// "Forwarded".
    pub client_address_header: Option<String>,
    /// For development only: accept a plain `http` public URL on a host that is not loopback, which
    /// OAuth 2.1 and MCP forbid for an authorization server (default false).
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// Serve HTTPS on `listen` with this certificate (HTTP/2 and HTTP/1.1, TLS 1.2 and 1.3).
    pub tls: Option<TlsFile>,
    /// Reload when this file or the users file changes, as on SIGHUP (default false).
    #[serde(default)]
    pub watch_config: bool,
    /// The Unix socket a new gateway started with `--upgrade` receives the listening sockets on,
    /// in a directory only the gateway's user can write (default: `mcp-auth-gateway-<port>.sock`
    /// in `$RUNTIME_DIRECTORY`, `$XDG_RUNTIME_DIR`, or a private `/tmp/mcp-auth-gateway-<uid>/`).
    pub upgrade_socket: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// The certificate chain, PEM: the server's certificate first, then its intermediates
    /// (certbot's `fullchain.pem`). Re-read when it changes.
    pub cert_file: PathBuf,
    /// The certificate's private key, PEM (certbot's `privkey.pem`). Re-read when it changes.
    pub key_file: PathBuf,
    /// The `Strict-Transport-Security` the gateway's responses carry (default
    /// "max-age=31536000"; "" sends none).
    pub hsts: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    /// Where Prometheus text is served (default "127.0.0.1:9464"); "off" disables it.
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensFile {
    /// The issuer of the gateway's tokens (default: the public URL).
    pub issuer: Option<String>,
    /// A PKCS#8 PEM private key file to sign with.
    pub signing_key_file: Option<PathBuf>,
    /// Or the name of an environment variable holding that PEM.
    pub signing_key_env: Option<String>,
    /// EdDSA (default) or ES256.
    pub algorithm: Option<SigningAlgorithm>,
    /// Lifetime of the assertions sent to backends (default 60s, at most 5m).
    #[serde(default, with = "humantime_serde")]
    pub assertion_lifetime: Option<Duration>,
    /// Generate a new signing key when the stored one is this old (checked at start; default never).
    /// The old key's public half stays in the JWKS until the tokens it signed have expired.
    #[serde(default, with = "humantime_serde")]
    pub rotate_after: Option<Duration>,
    /// Clock skew tolerated on token times (default 30s).
    #[serde(default, with = "humantime_serde")]
    pub clock_skew: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Largest request body, in bytes (default 4 MiB).
    pub max_request_body_bytes: Option<u64>,
    /// Largest request header section, in bytes (default 32 KiB).
    pub max_request_header_bytes: Option<usize>,
    /// The longest a request's body may take to arrive whole, over HTTP/1.1 and HTTP/2 alike
    /// (default 10s; 408 after).
    #[serde(default, with = "humantime_serde")]
    pub body_timeout: Option<Duration>,
    /// How long an HTTP/2 connection with no request open is kept (default 60s).
    #[serde(default, with = "humantime_serde")]
    pub http2_idle_timeout: Option<Duration>,
    /// Connections open at once from one client address (an IPv6 client's /64; default 256; 0:
    /// no limit). Trusted proxies are not limited.
    pub max_connections_per_client: Option<u32>,
    /// Requests in flight at once from one client address, streams included (default 512; 0: no
    /// limit; 429 after).
    pub max_requests_per_client: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
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
}

/// `[routes.policy]`: rules tried in order, the first that matches decides; `default` when none does.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// What happens when no rule matches (default "deny").
    pub default: Option<Effect>,
    #[serde(default)]
    pub rules: Vec<RuleFile>,
}

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

/// One rule: what it is about (tools, resources, prompts; all of them when none is given), whom
/// it matches (every condition given must hold; any name in a list will do), and its effect.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
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
pub struct CommandFile {
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub working_dir: Option<PathBuf>,
}

/// `store.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Sqlite,
    Memory,
    Redis,
}

/// `provider.kind`: where users sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// A users file and the gateway's own sign-in page.
    Local,
    /// A GitHub OAuth app.
    #[serde(rename = "github")]
    GitHub,
    /// Any OpenID Connect provider.
    Oidc,
}

/// `tokens.algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SigningAlgorithm {
    EdDSA,
    ES256,
}

/// `credentials` of a route: how its backend gets credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Credentials {
    /// The internal headers: backend token, identity, and the signed assertion.
    Headers,
    /// The backend token as `Authorization: Bearer`.
    Bearer,
    /// The signed assertion as `Authorization: Bearer`.
    Assertion,
    /// Nothing.
    None,
}

/// `token_endpoint_auth_method` of a client: how it authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// A public client: no secret.
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

impl ClientAuthMethod {
    /// The method's name in OAuth metadata (RFC 7591 §2).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::None => "none",
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
        }
    }
}

impl FileConfig {
    /// Parses TOML; the error is the dotted key (when there is one) and the reason.
    pub fn parse(text: &str) -> Result<Self, (Option<String>, String)> {
        let deserializer =
            toml::Deserializer::parse(text).map_err(|e| (None, e.message().to_owned()))?;
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            (
                (path != ".").then_some(path),
                e.inner().message().to_owned(),
            )
        })
    }
}
