//! `mcp-auth-gateway`: the OAuth 2.1 gateway for MCP servers. The data plane and the authorization
//! server arrive with the issues that build them; until then this binary only says so.

use std::process::ExitCode;

use clap::Parser;

/// An OAuth 2.1 gateway for MCP servers, built on Pingora.
#[derive(Debug, Parser)]
#[command(name = "mcp-auth-gateway", version)]
struct Cli {
    /// The gateway's TOML config file.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    eprintln!(
        "mcp-auth-gateway: not implemented yet; run mcp-backend directly for now (see README.md)"
    );
    ExitCode::from(2)
}
