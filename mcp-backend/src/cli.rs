//! The command line. Every setting also has a key in the TOML file; a flag overrides the file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// An MCP server with two tools that act with the caller's token: `make_authenticated_request` and
/// `show_auth_token`. Over HTTP it trusts the token and identity headers of mcp-auth-gateway only
/// with a valid signed X-Gateway-Assertion; over stdio it reads the token from the environment.
#[derive(Debug, Parser)]
#[command(name = "mcp-backend", version)]
pub struct Cli {
    /// TOML settings file (see config/mcp-backend.toml); flags override its values.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Validate the settings, print what would be served, and exit.
    #[arg(long)]
    pub check: bool,

    /// Serve MCP over stdin/stdout instead of HTTP.
    #[arg(long)]
    pub stdio: bool,

    /// Address for Streamable HTTP at /mcp [default: 127.0.0.1:9000].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// The gateway's JWKS, as an http(s) URL or a file path.
    #[arg(long, value_name = "URL-OR-FILE")]
    pub gateway_jwks: Option<String>,

    /// The gateway's issuer, which every assertion's `iss` must equal.
    #[arg(long, value_name = "URL")]
    pub gateway_issuer: Option<String>,

    /// This backend's audience, which every assertion's `aud` must equal.
    #[arg(long, value_name = "URI")]
    pub audience: Option<String>,

    /// Believe the forwarded headers without an assertion. Local development only.
    #[arg(long)]
    pub trust_unsigned_headers: bool,

    /// Header carrying the backend token [default: X-Forwarded-Access-Token].
    #[arg(long, value_name = "NAME")]
    pub token_header: Option<String>,

    /// Hosts accepted in the Host header [default: localhost,127.0.0.1,::1].
    #[arg(long, value_name = "HOST,...", value_delimiter = ',')]
    pub allowed_hosts: Option<Vec<String>>,

    /// Environment variable holding the token in --stdio mode [default: API_KEY].
    #[arg(long, value_name = "NAME")]
    pub token_env: Option<String>,

    /// URL that make_authenticated_request calls [default: https://httpbin.org/anything].
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,

    /// Time limit for that call, e.g. 10s or 1500ms [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = humantime_serde::re::humantime::parse_duration)]
    pub target_timeout: Option<Duration>,

    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Send a span of each tool call to this OTLP/HTTP collector (e.g. http://127.0.0.1:4318),
    /// continuing the caller's trace (the gateway's `traceparent`).
    #[arg(long, value_name = "URL", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
