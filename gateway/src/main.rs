//! `mcp-auth-gateway`: parse the command line and run; any error is one line and exit status 2.

use std::process::ExitCode;

use clap::Parser;
use mcp_auth_gateway::cli::Cli;

fn main() -> ExitCode {
    match mcp_auth_gateway::run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mcp-auth-gateway: {error:#}");
            ExitCode::from(2)
        }
    }
}
