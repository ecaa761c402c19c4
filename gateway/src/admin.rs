//! The operator's commands against the configured store, for the day someone leaves: `grants` lists
//! what is held (whose, which client's, which scopes, since when, last refreshed), and `revoke` ends
//! every grant of a user or of a client. A revocation counts in the store's revocation epoch, which
//! every gateway on the store reads five times a second: each then refuses the grants' tokens and
//! ends the streams they opened, within a second, on every replica.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context as _, bail};

use crate::config::{Config, StoreSettings};
use crate::connections::Connections;
use crate::store::{GrantRecord, Store};
use crate::telemetry::audit::AuditLog;

/// Whose grants a command is about: a user (by the `sub` tokens carry) or a client.
pub(crate) enum Holder {
    Everyone,
    User(String),
    Client(String),
}

impl Holder {
    fn holds(&self, grant: &GrantRecord) -> bool {
        match self {
            Holder::Everyone => true,
            Holder::User(sub) => grant.user.sub == *sub,
            Holder::Client(client) => grant.client_id == *client,
        }
    }

    fn describe(&self) -> String {
        match self {
            Holder::Everyone => "anyone".into(),
            Holder::User(sub) => format!("the user {sub}"),
            Holder::Client(client) => format!("the client {client}"),
        }
    }
}

/// Runs an operator's `command` about the grants of `user` or `client` (or everyone's) on the
/// configured store, on a runtime of its own, and prints what it says.
pub(crate) fn on_the_store<F, Fut>(
    config: &Config,
    user: Option<String>,
    client: Option<String>,
    command: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Arc<dyn Store>, Holder) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    let holder = match (user, client) {
        (Some(user), _) => Holder::User(user),
        (None, Some(client)) => Holder::Client(client),
        (None, None) => Holder::Everyone,
    };
    crate::server::process::choose_tls_provider();
    if matches!(config.start.store, StoreSettings::Memory) {
        bail!(
            "the store is `memory`: it lives inside the running gateway, where no other process can reach it"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let printed = runtime.block_on(async {
        command(crate::store::open(&config.start.store).await?, holder).await
    })?;
    print!("{printed}");
    Ok(())
}

/// `hash-password`: reads a password from stdin (one line) and prints its argon2id hash.
pub(crate) fn hash_password() -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from stdin")?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("no password on stdin");
    }
    println!(
        "{}",
        crate::idp::local::hash_password(password).map_err(|e| anyhow::anyhow!("hashing: {e}"))?
    );
    Ok(())
}

/// The grants in force that `holder` holds, oldest first.
async fn held(store: &dyn Store, holder: &Holder) -> anyhow::Result<Vec<GrantRecord>> {
    let mut grants: Vec<GrantRecord> = store
        .grants()
        .await?
        .into_iter()
        .filter(|g| !g.revoked && holder.holds(g))
        .collect();
    grants.sort_by(|a, b| (a.created_at, &a.grant_id).cmp(&(b.created_at, &b.grant_id)));
    Ok(grants)
}

/// `grants`: one line per grant in force, under a header.
pub(crate) async fn list(store: Arc<dyn Store>, holder: Holder) -> anyhow::Result<String> {
    let grants = held(store.as_ref(), &holder).await?;
    let mut out = String::new();
    if grants.is_empty() {
        out.push_str(&format!("no grants held by {}\n", holder.describe()));
        return Ok(out);
    }
    out.push_str("GRANT\tUSER\tCLIENT\tSCOPES\tCREATED\tLAST REFRESHED\n");
    for grant in &grants {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            grant.grant_id,
            grant.user.sub,
            grant.client_id,
            grant.scope,
            time(grant.created_at),
            grant.refreshed_at.map_or_else(|| "never".to_owned(), time),
        ));
    }
    Ok(out)
}

/// `revoke`: ends every grant in force of `holder`, and says which; for a user, their connections
/// to backends too (revoked at each backend's server where it can be).
pub(crate) async fn revoke(
    store: Arc<dyn Store>,
    holder: Holder,
    config: &Config,
) -> anyhow::Result<String> {
    if matches!(holder, Holder::Everyone) {
        bail!("name whose grants to revoke: --user ID or --client ID");
    }
    let grants = held(store.as_ref(), &holder).await?;
    let mut out = String::new();
    for grant in &grants {
        store.revoke_grant(&grant.grant_id).await?;
        out.push_str(&format!(
            "revoked {} (user {}, client {}, since {})\n",
            grant.grant_id,
            grant.user.sub,
            grant.client_id,
            time(grant.created_at)
        ));
    }
    out.push_str(&format!(
        "{} grant{} of {} revoked; every gateway on this store refuses their tokens and ends their streams within a second\n",
        grants.len(),
        if grants.len() == 1 { "" } else { "s" },
        holder.describe()
    ));
    if let (Holder::User(sub), Some(key)) = (&holder, config.start.token_key) {
        // The operator's act goes in the audit trail's file too (not on this command's stdout).
        let audit = match &config.start.audit {
            Some(Some(file)) => Some(Arc::new(AuditLog::open(Some(file)).map_err(|e| {
                anyhow::anyhow!("cannot open the audit trail {}: {e}", file.display())
            })?)),
            _ => None,
        };
        let connections = Connections::new(
            store.clone(),
            &key,
            &config.server.public_url,
            audit.clone(),
        );
        let route_of = |path: &str| config.routes.iter().find(|r| r.path == path).cloned();
        let ended = connections.end_all(sub, route_of).await;
        if let Some(audit) = &audit {
            audit.flush();
        }
        let ended = ended?;
        if ended > 0 {
            out.push_str(&format!(
                "{ended} connection{} of the user {sub} to backends ended\n",
                if ended == 1 { "" } else { "s" }
            ));
        }
    }
    Ok(out)
}

/// A time as RFC 3339, to the second.
fn time(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
}
