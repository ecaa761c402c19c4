//! The command line. Pingora never sees argv: its options are built from our config.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::log_writer::LogFormat;

/// An OAuth 2.1 gateway for MCP servers: the authorization server MCP clients talk to, and a proxy
/// that admits only tokens minted for each route and forwards to the MCP servers behind it.
#[derive(Debug, Parser)]
#[command(
    name = "mcp-auth-gateway",
    version,
    args_conflicts_with_subcommands = false
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The TOML config file (see config/ for examples).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config file and print the routes it would serve, then exit.
    Check,
    /// Read a password from stdin and print its argon2id hash, for a `local` users file.
    HashPassword,
}
