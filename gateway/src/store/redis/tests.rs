//! What only the Redis store must do beyond the contract: keep no more of a grant than can still
//! be used or revoked.

use redis::AsyncCommands as _;

use super::{LEGACY_TOKENS, RedisStore, TOKENS};
use crate::store::contract::{RedisServer, grant};
use crate::store::{Rotation, Store as _};

/// Far enough ahead of the real clock that nothing here expires while the test runs.
const NOW: u64 = 1_900_000_000;

impl RedisStore {
    /// A grant's refresh tokens as the sorted set holds them, soonest expiry first.
    async fn tracked(&self, grant_id: &str) -> Vec<String> {
        self.conn()
            .zrange(self.grant_slot(TOKENS, grant_id), 0, -1)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_grant_keeps_only_its_live_refresh_tokens_and_the_set_expires_with_the_last() {
    let redis = RedisServer::start().await;
    let store = redis.store().await;
    store.put_grant(&grant("g")).await.unwrap();
    store.put_refresh("r0", "g", NOW + 10).await.unwrap();
    // Each rotation at `at` issues a token living until `exp`; what expired by `at` is dropped.
    for (old, new, exp, at) in [
        ("r0", "r1", NOW + 20, NOW),
        ("r1", "r2", NOW + 30, NOW + 15),
        ("r2", "r3", NOW + 40, NOW + 25),
    ] {
        let rotated = store
            .rotate_refresh(crate::store::RefreshRotation {
                old_hash: old,
                new_hash: new,
                new_expires_at: exp,
                now: at,
                grace_secs: 5,
            })
            .await
            .unwrap();
        assert_eq!(
            rotated,
            Rotation::Rotated {
                grant_id: "g".into()
            }
        );
    }
    assert_eq!(
        store.tracked("g").await,
        ["r2", "r3"],
        "r0 and r1 had expired"
    );
    let ttl: i64 = store
        .conn()
        .ttl(store.grant_slot(TOKENS, "g"))
        .await
        .unwrap();
    let until_last = (NOW + 40 - crate::clock::now()) as i64;
    assert!(
        (until_last - 5..=until_last).contains(&ttl),
        "the set expires with r3: {ttl} s, not {until_last} s"
    );

    store.revoke_grant("g").await.unwrap();
    assert!(store.tracked("g").await.is_empty());
    for token in ["r2", "r3"] {
        assert_eq!(store.refresh_grant(token, NOW).await.unwrap(), None);
    }
}

#[tokio::test]
async fn revoking_a_grant_kills_the_tokens_an_earlier_version_kept_in_a_plain_set() {
    let redis = RedisServer::start().await;
    let store = redis.store().await;
    store.put_grant(&grant("g")).await.unwrap();
    // What the store wrote before it sorted a grant's tokens by expiry.
    let refresh = store.grant_slot("refresh", "old");
    let (): () = store
        .conn()
        .hset_multiple(
            &refresh,
            &[("grant", "g"), ("exp", &(NOW + 100).to_string())],
        )
        .await
        .unwrap();
    let _: i64 = store
        .conn()
        .sadd(store.grant_slot(LEGACY_TOKENS, "g"), "old")
        .await
        .unwrap();
    store.put_refresh("new", "g", NOW + 100).await.unwrap();
    assert_eq!(
        store.refresh_grant("old", NOW).await.unwrap().as_deref(),
        Some("g")
    );

    store.revoke_grant("g").await.unwrap();
    for token in ["old", "new"] {
        assert_eq!(
            store.refresh_grant(token, NOW).await.unwrap(),
            None,
            "{token}"
        );
    }
}
