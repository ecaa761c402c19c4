//! The config file as written. Every table refuses keys it does not know. The authorization
//! server's tables are in [`auth`], the routes' in [`routes`], other authorization servers' in
//! [`issuers`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

mod auth;
mod issuers;
mod routes;

pub(crate) use auth::*;
pub(crate) use issuers::*;
pub(crate) use routes::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
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
    pub issuers: Vec<IssuerFile>,
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
pub(crate) struct TelemetryFile {
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
pub(crate) struct AuditFile {
    /// A file to append to, relative to the config file; "-" for stdout.
    pub file: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreFile {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerFile {
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
pub(crate) struct TlsFile {
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
pub(crate) struct MetricsFile {
    /// Where Prometheus text is served (default "127.0.0.1:9464"); "off" disables it.
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokensFile {
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
pub(crate) struct LimitsFile {
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

/// `store.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StoreKind {
    Sqlite,
    Memory,
    Redis,
}

/// `tokens.algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum SigningAlgorithm {
    EdDSA,
    ES256,
}

impl FileConfig {
    /// Parses TOML; the error is the dotted key (when there is one) and the reason.
    pub(crate) fn parse(text: &str) -> Result<Self, (Option<String>, String)> {
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
