//! Codes taken once, refresh tokens rotated once, grants listed and revoked.

use super::super::*;
use super::{NOW, code, each_store, grant};

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
