//! Pending authorizations, clients, consents and signing keys kept; SQLite's across a reopen.

use super::super::sqlite::SqliteStore;
use super::super::*;
use super::{NOW, each_store, grant};

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
            jwks: None,
            jwks_uri: None,
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

#[tokio::test]
async fn a_one_time_identifier_is_used_once() {
    each_store(async |store| {
        assert!(store.use_once("issuer jti-1", NOW + 60, NOW).await.unwrap());
        assert!(
            !store
                .use_once("issuer jti-1", NOW + 60, NOW + 1)
                .await
                .unwrap(),
            "a replay is refused"
        );
        assert!(store.use_once("issuer jti-2", NOW + 60, NOW).await.unwrap());
        assert!(
            store.use_once("other jti-1", NOW + 60, NOW).await.unwrap(),
            "another issuer's identifier of the same name is its own"
        );
    })
    .await;
}
