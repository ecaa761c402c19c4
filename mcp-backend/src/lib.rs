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
pub mod telemetry;
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
    let exporter = init_tracing(cli.log_format, cli.otlp_endpoint.as_deref())?;
    let target =
        target::Target::new(settings.target.clone()).context("building the HTTP client")?;
    let served = match settings.mode {
        Mode::Http(http) => http_server::serve(*http, target).await,
        Mode::Stdio { token_env } => stdio_server::serve(&token_env, target).await,
    };
    if let Some(exporter) = exporter {
        // The batch exporter blocks while it sends what is left.
        let _ = tokio::task::spawn_blocking(move || exporter.shutdown()).await;
    }
    served
}

/// Logs go to stderr, so that stdout stays free for the stdio transport; spans go to the collector.
fn init_tracing(
    format: cli::LogFormat,
    otlp_endpoint: Option<&str>,
) -> anyhow::Result<Option<telemetry::Exporter>> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    // The spans are wanted only when they are sent (an absent layer would want everything).
    let spans = if otlp_endpoint.is_some() {
        "info"
    } else {
        "off"
    };
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{directives},{}={spans}",
        telemetry::SPANS
    ))
    .or_else(|_| {
        tracing_subscriber::EnvFilter::try_new(format!("info,{}={spans}", telemetry::SPANS))
    })?;
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let log = match format {
        cli::LogFormat::Text => log.boxed(),
        cli::LogFormat::Json => log.json().boxed(),
    };
    let log = log.with_filter(tracing_subscriber::filter::filter_fn(|meta| {
        meta.target() != telemetry::SPANS
    }));
    let registry = tracing_subscriber::registry().with(filter).with(log);
    match otlp_endpoint {
        Some(endpoint) => {
            let (layer, exporter) = telemetry::layer(endpoint)?;
            registry.with(layer).init();
            Ok(Some(exporter))
        }
        None => {
            registry.init();
            Ok(None)
        }
    }
}
