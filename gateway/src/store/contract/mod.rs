//! The behaviour every store must have, run against each of them: codes, refresh tokens and grants
//! ([`grants`]); pending authorizations, clients, consents and keys ([`kept`]); users' connections
//! to backends, registrations and connect flows ([`connections`]). Here, what they share: the
//! records they start from, and each store to run on.

mod connections;
mod grants;
mod kept;

use std::sync::Arc;

use super::memory::MemoryStore;
use super::records::UserIdentity;
use super::sqlite::SqliteStore;
use super::*;

pub(super) const NOW: u64 = 1_900_000_000;

pub(super) fn user() -> UserIdentity {
    UserIdentity {
        sub: "alice".into(),
        email: Some("alice@example.com".into()),
        preferred_username: None,
        groups: vec!["staff".into()],
        groups_truncated: false,
    }
}

pub(super) fn code() -> CodeRecord {
    CodeRecord {
        client_id: "c1".into(),
        redirect_uri: "http://127.0.0.1:1/cb".into(),
        redirect_uri_given: true,
        code_challenge: "x".into(),
        scope: "mcp".into(),
        resource: "http://gw/mcp".into(),
        user: user(),
        expires_at: NOW + 60,
        idp_tokens: None,
    }
}

pub(super) fn grant(id: &str) -> GrantRecord {
    GrantRecord {
        grant_id: id.into(),
        client_id: "c1".into(),
        scope: "mcp".into(),
        resource: "http://gw/mcp".into(),
        user: user(),
        created_at: NOW,
        revoked: false,
        idp_tokens: Some("sealed".into()),
        refreshed_at: None,
    }
}

pub(super) async fn each_store(test: impl AsyncFn(Arc<dyn Store>)) {
    test(Arc::new(MemoryStore::default())).await;
    let dir = tempfile::tempdir().unwrap();
    test(Arc::new(
        SqliteStore::open(&dir.path().join("db/gateway.db")).unwrap(),
    ))
    .await;
    let redis = RedisServer::start().await;
    test(Arc::new(redis.store().await)).await;
}

/// A `redis-server` of its own on a free port, without persistence; killed on drop.
pub(crate) struct RedisServer {
    process: std::process::Child,
    port: u16,
}

impl RedisServer {
    pub(crate) async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut process = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package) runs the Redis store's tests");
        // Ready once it answers.
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self { process, port };
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let _ = process.kill();
        let _ = process.wait();
        panic!("redis-server did not listen on {port}");
    }

    pub(crate) async fn store(&self) -> super::redis::RedisStore {
        let settings = crate::config::RedisSettings {
            url: format!("redis://127.0.0.1:{}", self.port),
            cluster: false,
            key_prefix: "test".into(),
            connect_timeout: std::time::Duration::from_secs(2),
            response_timeout: std::time::Duration::from_secs(2),
            tls: Default::default(),
        };
        super::redis::RedisStore::connect(&settings).await.unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
