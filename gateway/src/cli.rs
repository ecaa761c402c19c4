//! The command line. Pingora never sees argv: its options are built from our config.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::telemetry::log_writer::LogFormat;

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

    /// Take over the listening sockets of a gateway running on the same config (at its
    /// `server.upgrade_socket`), then send that one SIGQUIT: it hands them over, stops accepting
    /// and finishes what it serves. No connection is refused in between.
    #[arg(long)]
    pub upgrade: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config file and print the routes it would serve, then exit.
    Check,
    /// Read a password from stdin and print its argon2id hash, for a `local` users file.
    HashPassword,
    /// List the grants in force in the configured store: whose, which client's, which scopes,
    /// when made and when last refreshed.
    Grants {
        /// Only this user's (the `sub` its tokens carry: a local user's name, `github:<id>`, an
        /// OIDC provider's subject).
        #[arg(long, conflicts_with = "client")]
        user: Option<String>,
        /// Only this client's.
        #[arg(long)]
        client: Option<String>,
    },
    /// End every grant of a user or of a client: their refresh and access tokens stop working and
    /// their open streams end, on every gateway that shares the store, within a second.
    Revoke {
        /// The user (the `sub` its tokens carry).
        #[arg(long, conflicts_with = "client", required_unless_present = "client")]
        user: Option<String>,
        /// The client.
        #[arg(long)]
        client: Option<String>,
    },
}
