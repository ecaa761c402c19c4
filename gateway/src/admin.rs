//! The operator's commands against the configured store, for the day someone leaves: `grants` lists
//! what is held (whose, which client's, which scopes, since when, last refreshed), and `revoke` ends
//! every grant of a user or of a client. A revocation counts in the store's revocation epoch, which
//! every gateway on the store reads five times a second: each then refuses the grants' tokens and
//! ends the streams they opened, within a second, on every replica.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::bail;

use crate::store::{GrantRecord, Store};

/// Whose grants a command is about: a user (by the `sub` tokens carry) or a client.
pub enum Holder {
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
pub async fn list(store: Arc<dyn Store>, holder: Holder) -> anyhow::Result<String> {
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

/// `revoke`: ends every grant in force of `holder`, and says which.
pub async fn revoke(store: Arc<dyn Store>, holder: Holder) -> anyhow::Result<String> {
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
    Ok(out)
}

/// A time as RFC 3339, to the second.
fn time(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
}
