//! mcp-auth-gateway: an OAuth 2.1 gateway for MCP servers, on Pingora.
//!
//! [`run`] reads the config ([`config`]) and either runs the gateway ([`server`]) or an operator's
//! command ([`admin`]). The rooms, from the top down (each uses only rooms below it, which
//! `layers_tests` holds): [`server`], the process's life; [`proxy`], the data plane; [`mcp`],
//! the protocol it reads; [`oauth`], the authorization server; [`policy`], the routes'
//! policies; [`connections`], users' connections to backends with their own authorization
//! server; [`idp`], the identity providers; [`tokens`]; [`store`]; [`telemetry`], which every
//! part reports to; [`config`]; and the small leaves ([`rate_limit`], [`cache`],
//! [`file_stamp`], [`clock`], [`outbound`]). Only [`cli`] and [`run`] are public: the binary needs nothing
//! else, and the compiler then reports whatever nothing uses.
//!
//! Inside, `pub` means reachable from outside a room, through its `mod.rs`: an item that nothing
//! outside its module needs is private, and one that another room needs is `pub(crate)` or
//! `pub` behind a `pub(crate)` façade. The compiler holds the rule (`unreachable_pub`): a `pub`
//! item that no path from outside the crate reaches must say `pub(crate)`.
#![warn(unreachable_pub)]

mod admin;
mod cache;
pub mod cli;
mod clock;
mod config;
mod connections;
mod file_stamp;
mod idp;
#[cfg(test)]
mod layers_tests;
mod mcp;
mod oauth;
mod outbound;
mod policy;
mod proxy;
mod rate_limit;
mod server;
mod store;
mod telemetry;
#[cfg(test)]
mod tests_support;
mod tokens;

use anyhow::bail;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    if matches!(cli.command, Some(Command::HashPassword)) {
        return admin::hash_password();
    }
    let Some(path) = cli.config.as_deref() else {
        bail!("--config FILE is required (see config/quickstart.toml)");
    };
    let (config, clients) = config::Config::starting(config::load(path)?);
    match cli.command {
        Some(Command::Check) => {
            print!("{}", config.describe());
            Ok(())
        }
        Some(Command::HashPassword) => unreachable!("handled before the config is read"),
        Some(Command::Grants { user, client }) => {
            admin::on_the_store(&config, user, client, admin::list)
        }
        Some(Command::Revoke { user, client }) => {
            admin::on_the_store(&config, user, client, |store, holder| {
                admin::revoke(store, holder, &config)
            })
        }
        None => server::serve(config, clients, cli.log_format, cli.upgrade),
    }
}
