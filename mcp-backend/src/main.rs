//! `mcp-backend`: parse the command line, run, and turn any error into one line and exit status 2.

use std::process::ExitCode;

use clap::Parser;
use mcp_backend::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    match mcp_backend::run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` keeps the whole chain of causes on one line.
            eprintln!("mcp-backend: {error:#}");
            ExitCode::from(2)
        }
    }
}
