//! An MCP server whose tools act with the caller's backend token.
//!
//! Behind `mcp-auth-gateway` it serves Streamable HTTP and takes the caller's token and identity from
//! the gateway's internal headers, which it believes only with a valid signed `X-Gateway-Assertion`
//! ([`trust`]). Over stdio it takes the token from an environment variable. Either way each tool call
//! reads its caller from its own request ([`caller`]), never from shared state.

pub mod caller;
pub mod cli;
pub mod config;
pub mod http_server;
pub mod mask;
pub mod stdio_server;
pub mod target;
pub mod tools;
pub mod trust;

use anyhow::Context as _;

use crate::config::{Mode, Settings};

/// Loads the settings and serves until stopped.
pub async fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let settings = Settings::load(&cli)?;
    if cli.check {
        print!("{}", settings.describe());
        return Ok(());
    }
    init_tracing(cli.log_format);
    let target =
        target::Target::new(settings.target.clone()).context("building the HTTP client")?;
    match settings.mode {
        Mode::Http(http) => http_server::serve(*http, target).await,
        Mode::Stdio { token_env } => stdio_server::serve(&token_env, target).await,
    }
}

/// Logs go to stderr, so that stdout stays free for the stdio transport.
fn init_tracing(format: cli::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        cli::LogFormat::Text => builder.init(),
        cli::LogFormat::Json => builder.json().init(),
    }
}
