//! The SQLite store's schema: each migration moves it up one `user_version`, so that a database
//! written by an older gateway is brought up to date when it is opened, and one written by a newer
//! gateway is refused rather than misread.

use rusqlite::Connection;

use super::{StoreError, StoreResult};

/// Each migration moves the schema up one `user_version`.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE clients (client_id TEXT PRIMARY KEY, body TEXT NOT NULL);
    CREATE TABLE pending (id TEXT PRIMARY KEY, body TEXT NOT NULL, expires_at INTEGER NOT NULL);
    CREATE TABLE codes (
        hash TEXT PRIMARY KEY, body TEXT NOT NULL, expires_at INTEGER NOT NULL,
        used INTEGER NOT NULL DEFAULT 0, grant_id TEXT);
    CREATE TABLE grants (grant_id TEXT PRIMARY KEY, body TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE refresh_tokens (
        hash TEXT PRIMARY KEY, grant_id TEXT NOT NULL, expires_at INTEGER NOT NULL, rotated_at INTEGER);
    CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
    CREATE TABLE consents (sub TEXT NOT NULL, client_id TEXT NOT NULL, scope TEXT NOT NULL,
        PRIMARY KEY (sub, client_id));
    CREATE TABLE signing_keys (kid TEXT PRIMARY KEY, body TEXT NOT NULL, created_at INTEGER NOT NULL);
"#,
    r#"
    -- Consent is per resource too: approving a client for one route is not approving it for another.
    DROP TABLE consents;
    CREATE TABLE consents (sub TEXT NOT NULL, client_id TEXT NOT NULL, resource TEXT NOT NULL, scope TEXT NOT NULL,
        PRIMARY KEY (sub, client_id, resource));
    ALTER TABLE refresh_tokens ADD COLUMN grace_uses INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
    -- What a token was rotated to: a replay within the grace gets that same successor.
    ALTER TABLE refresh_tokens ADD COLUMN rotated_to TEXT;
"#,
    r#"
    -- A count of revocations, which a gateway reads to learn of one made by another process.
    CREATE TABLE revocations (id INTEGER PRIMARY KEY CHECK (id = 1), epoch INTEGER NOT NULL);
    INSERT INTO revocations (id, epoch) VALUES (1, 0);
    -- When a grant's refresh token was last rotated, stamped as it is.
    ALTER TABLE grants ADD COLUMN refreshed_at INTEGER;
"#,
    r#"
    -- Users' connections to backends with their own authorization server, the gateway's
    -- registrations there, and the flows that connect.
    CREATE TABLE connections (sub TEXT NOT NULL, route TEXT NOT NULL, connected_at INTEGER NOT NULL,
        body TEXT NOT NULL, PRIMARY KEY (sub, route));
    CREATE TABLE registrations (issuer TEXT NOT NULL, redirect_uri TEXT NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (issuer, redirect_uri));
    CREATE TABLE connect_flows (hash TEXT PRIMARY KEY, body TEXT NOT NULL, expires_at INTEGER NOT NULL);
"#,
    r#"
    -- One-time identifiers (assertions' `jti`s) used, until what carried them expires.
    CREATE TABLE used_once (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
"#,
];

pub(super) fn migrate(conn: &Connection) -> StoreResult<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::NewerSchema {
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        conn.execute_batch(&format!(
            "BEGIN; {migration}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(())
}
