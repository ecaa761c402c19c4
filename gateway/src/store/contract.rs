//! The behaviour every store must have, run against each of them.

use std::sync::Arc;

use super::memory::MemoryStore;
use super::records::UserIdentity;
use super::sqlite::SqliteStore;
use super::*;

const NOW: u64 = 1_900_000_000;

fn user() -> UserIdentity {
    UserIdentity {
        sub: "alice".into(),
        email: Some("alice@example.com".into()),
        preferred_username: None,
        groups: vec!["staff".into()],
        groups_truncated: false,
    }
}

fn code() -> CodeRecord {
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

async fn each_store(test: impl AsyncFn(Arc<dyn Store>)) {
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

#[tokio::test]
async fn a_code_is_taken_exactly_once_and_a_replay_is_reported() {
    each_store(async |store| {
        store.put_code("h1", &code()).await.unwrap();
        assert_eq!(
            store.take_code("h1", NOW).await.unwrap(),
            CodeTake::Taken(Box::new(code()))
        );
        store.set_code_grant("h1", "g1").await.unwrap();
        assert_eq!(
            store.take_code("h1", NOW).await.unwrap(),
            CodeTake::Replayed {
                grant_id: Some("g1".into())
            }
        );
        assert_eq!(
            store.take_code("nope", NOW).await.unwrap(),
            CodeTake::Missing
        );
        store.put_code("h2", &code()).await.unwrap();
        assert_eq!(
            store.take_code("h2", NOW + 61).await.unwrap(),
            CodeTake::Missing,
            "expired"
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_takes_of_one_code_succeed_once() {
    each_store(async |store| {
        store.put_code("h", &code()).await.unwrap();
        let takes = futures::future::join_all((0..16).map(|_| {
            let store = store.clone();
            async move { store.take_code("h", NOW).await.unwrap() }
        }))
        .await;
        assert_eq!(
            takes
                .iter()
                .filter(|t| matches!(t, CodeTake::Taken(_)))
                .count(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn refresh_tokens_rotate_once_and_replays_within_the_grace_get_the_same_successor() {
    each_store(async |store| {
        store.put_grant(&grant("g1")).await.unwrap();
        store.put_refresh("r1", "g1", NOW + 1000).await.unwrap();
        let rotate = async |new: &str, at: u64| {
            store
                .rotate_refresh(crate::store::RefreshRotation {
                    old_hash: "r1",
                    new_hash: new,
                    new_expires_at: NOW + 2000,
                    now: at,
                    grace_secs: 5,
                })
                .await
                .unwrap()
        };
        let g1 = || "g1".to_owned();
        assert_eq!(
            rotate("r2", NOW).await,
            Rotation::Rotated { grant_id: g1() }
        );
        // The same old token again within the grace, as often as concurrent callers send it: each
        // gets the successor the first caller got, and the chain stays one.
        for later in [2, 2, 3, 4] {
            assert_eq!(
                rotate("r2", NOW + later).await,
                Rotation::RotatedWithinGrace { grant_id: g1() },
                "{later} s later"
            );
        }
        // Introspection sees only the current token of the chain.
        assert_eq!(store.current_refresh_grant("r1", NOW).await.unwrap(), None);
        assert_eq!(
            store
                .current_refresh_grant("r2", NOW)
                .await
                .unwrap()
                .as_deref(),
            Some("g1")
        );
        assert_eq!(
            store.current_refresh_grant("r2", NOW + 3000).await.unwrap(),
            None,
            "expired"
        );
        // Within the grace but for another successor: not a second chain.
        assert_eq!(rotate("r2b", NOW + 3).await, Rotation::Unknown);
        assert_eq!(store.refresh_grant("r2b", NOW).await.unwrap(), None);
        // After the grace: reuse of a rotated token.
        assert_eq!(
            rotate("r2", NOW + 60).await,
            Rotation::Reused { grant_id: g1() }
        );
        assert_eq!(
            store.refresh_grant("r2", NOW).await.unwrap().as_deref(),
            Some("g1")
        );
        store.revoke_grant("g1").await.unwrap();
        assert!(store.grant("g1").await.unwrap().unwrap().revoked);
        assert_eq!(
            store.refresh_grant("r2", NOW).await.unwrap(),
            None,
            "revoking a grant kills its tokens"
        );
        assert_eq!(
            store
                .rotate_refresh(crate::store::RefreshRotation {
                    old_hash: "r2",
                    new_hash: "r4",
                    new_expires_at: NOW + 2000,
                    now: NOW,
                    grace_secs: 5
                })
                .await
                .unwrap(),
            Rotation::Unknown
        );
    })
    .await;
}

/// Every grant is listed, revoked or not, with when its refresh token was last rotated.
#[tokio::test]
async fn grants_are_listed_with_when_they_were_last_refreshed() {
    each_store(async |store| {
        assert!(store.grants().await.unwrap().is_empty());
        let mut bobs = grant("g2");
        bobs.user.sub = "bob".into();
        store.put_grant(&grant("g1")).await.unwrap();
        store.put_grant(&bobs).await.unwrap();
        store.put_refresh("r1", "g1", NOW + 1000).await.unwrap();
        store
            .rotate_refresh(crate::store::RefreshRotation {
                old_hash: "r1",
                new_hash: "r2",
                new_expires_at: NOW + 2000,
                now: NOW + 7,
                grace_secs: 5,
            })
            .await
            .unwrap();
        store.revoke_grant("g2").await.unwrap();
        let mut all = store.grants().await.unwrap();
        all.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
        let summary: Vec<(&str, &str, bool, Option<u64>)> = all
            .iter()
            .map(|g| {
                (
                    g.grant_id.as_str(),
                    g.user.sub.as_str(),
                    g.revoked,
                    g.refreshed_at,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("g1", "alice", false, Some(NOW + 7)),
                ("g2", "bob", true, None)
            ]
        );
        assert_eq!(
            store.grant("g1").await.unwrap().unwrap().refreshed_at,
            Some(NOW + 7)
        );
    })
    .await;
}

/// Each revocation moves the count another gateway reads to learn of it.
#[tokio::test]
async fn each_revocation_moves_the_revocation_epoch() {
    each_store(async |store| {
        let start = store.revocation_epoch().await.unwrap();
        store.put_grant(&grant("g1")).await.unwrap();
        assert_eq!(store.revocation_epoch().await.unwrap(), start);
        store.revoke_grant("g1").await.unwrap();
        let after_grant = store.revocation_epoch().await.unwrap();
        assert!(after_grant > start);
        store.revoke_token("g1", "jti-1", NOW + 60).await.unwrap();
        // A store that others do not share keeps token revocations in the process.
        if store.is_shared() {
            assert!(store.revocation_epoch().await.unwrap() > after_grant);
        }
    })
    .await;
}

#[tokio::test]
async fn a_revoked_grant_stays_revoked_whatever_is_written_over_it() {
    each_store(async |store| {
        store.put_grant(&grant("g1")).await.unwrap();
        // A copy read before the revocation, written back after it (a refreshed provider token).
        let mut stale = store.grant("g1").await.unwrap().unwrap();
        store.revoke_grant("g1").await.unwrap();
        stale.idp_tokens = Some("refreshed".into());
        store.put_grant(&stale).await.unwrap();
        assert!(store.grant("g1").await.unwrap().unwrap().revoked);
    })
    .await;
}

#[tokio::test]
async fn pending_authorizations_complete_once_and_expire() {
    each_store(async |store| {
        let pending = PendingAuthorization {
            client_id: "c1".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            redirect_uri_given: true,
            state: Some("s".into()),
            scope: "mcp".into(),
            resource: "http://gw/mcp".into(),
            code_challenge: "x".into(),
            csrf: "t".into(),
            browser_hash: "b".into(),
            user: None,
            expires_at: NOW + 600,
            idp_verifier: Some("v".into()),
            idp_nonce: Some("n".into()),
            failed_logins: 0,
            consented: true,
        };
        store.put_pending("p1", &pending).await.unwrap();
        assert_eq!(
            store.pending("p1", NOW).await.unwrap(),
            Some(pending.clone())
        );
        assert_eq!(store.pending("p1", NOW + 601).await.unwrap(), None);
        assert_eq!(store.take_pending("p1", NOW).await.unwrap(), Some(pending));
        assert_eq!(store.take_pending("p1", NOW).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn clients_consents_and_keys_are_kept() {
    each_store(async |store| {
        let client = ClientRecord {
            client_id: "c1".into(),
            secret_hash: None,
            secret_expires_at: 0,
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: vec!["authorization_code".into()],
            response_types: vec!["code".into()],
            token_endpoint_auth_method: "none".into(),
            client_name: Some("Test".into()),
            client_uri: None,
            scope: None,
            application_type: None,
            issued_at: NOW,
            origin: "dynamic".into(),
            skip_consent: false,
            expires_at: 0,
        };
        store.put_client(&client).await.unwrap();
        assert_eq!(store.client("c1").await.unwrap(), Some(client.clone()));
        // Clients from the config: the ones it no longer names go, and nothing else does.
        for id in ["kept", "dropped"] {
            let configured = ClientRecord {
                client_id: id.into(),
                origin: "config".into(),
                ..client.clone()
            };
            store.put_client(&configured).await.unwrap();
        }
        let removed = store.retain_config_clients(&["kept".into()]).await.unwrap();
        assert_eq!(removed, ["dropped"]);
        assert!(store.client("dropped").await.unwrap().is_none());
        assert!(store.client("kept").await.unwrap().is_some());
        assert_eq!(store.client("c1").await.unwrap(), Some(client));
        assert!(
            store
                .retain_config_clients(&["kept".into()])
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.consent("alice", "c1", "http://gw/mcp").await.unwrap(),
            None
        );
        store
            .put_consent("alice", "c1", "http://gw/mcp", "mcp")
            .await
            .unwrap();
        assert_eq!(
            store
                .consent("alice", "c1", "http://gw/mcp")
                .await
                .unwrap()
                .as_deref(),
            Some("mcp")
        );
        assert_eq!(
            store
                .consent("alice", "c1", "http://gw/other")
                .await
                .unwrap(),
            None,
            "per resource"
        );
        for (kid, at) in [("old", NOW), ("new", NOW + 10)] {
            let key = StoredKey {
                kid: kid.into(),
                algorithm: "EdDSA".into(),
                pkcs8_pem: "pem".into(),
                created_at: at,
            };
            store.put_key(&key).await.unwrap();
        }
        let kids: Vec<String> = store
            .keys()
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.kid)
            .collect();
        assert_eq!(kids, vec!["new", "old"], "newest first");
    })
    .await;
}

#[tokio::test]
async fn sqlite_keeps_everything_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.put_grant(&grant("g1")).await.unwrap();
        store.put_refresh("r1", "g1", NOW + 1000).await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.grant("g1").await.unwrap(), Some(grant("g1")));
    assert_eq!(
        store
            .rotate_refresh(crate::store::RefreshRotation {
                old_hash: "r1",
                new_hash: "r2",
                new_expires_at: NOW + 2000,
                now: NOW,
                grace_secs: 5
            })
            .await
            .unwrap(),
        Rotation::Rotated {
            grant_id: "g1".into()
        }
    );
}
