//! Users' connections kept apart per user and route, replaced only by a refresh of themselves, and
//! ended; registrations per issuer and redirect URI; connect flows taken once.

use super::super::*;
use super::{NOW, each_store, user};

fn connection(sub: &str, route: &str, connected_at: u64) -> ConnectionRecord {
    ConnectionRecord {
        sub: sub.into(),
        route: route.into(),
        resource: format!("https://backend.example{route}"),
        issuer: "https://as.example".into(),
        client_id: "gw".into(),
        tokens: format!("sealed for {sub} at {route}"),
        expires_at: Some(connected_at + 3600),
        connected_at,
        refreshed_at: None,
    }
}

#[tokio::test]
async fn connections_are_kept_per_user_and_route_and_ended() {
    each_store(async |store| {
        let alice_tracker = connection("alice", "/tracker", NOW);
        let alice_wiki = connection("alice", "/wiki", NOW);
        // A user id with the characters of a key's hash tag stays one user's.
        let bob_tracker = connection("b{o}b:x", "/tracker", NOW);
        for c in [&alice_tracker, &alice_wiki, &bob_tracker] {
            store.put_connection(c).await.unwrap();
        }
        assert_eq!(
            store.connection("alice", "/tracker").await.unwrap(),
            Some(alice_tracker.clone())
        );
        assert_eq!(
            store.connection("b{o}b:x", "/tracker").await.unwrap(),
            Some(bob_tracker.clone())
        );
        assert_eq!(store.connection("alice", "/reports").await.unwrap(), None);
        assert_eq!(store.connection("carol", "/tracker").await.unwrap(), None);
        assert_eq!(
            store.connections("alice").await.unwrap(),
            [alice_tracker.clone(), alice_wiki.clone()]
        );
        assert_eq!(store.connections("b{o}b:x").await.unwrap(), [bob_tracker]);
        assert!(store.connections("carol").await.unwrap().is_empty());

        // Connecting again replaces the connection.
        let again = connection("alice", "/tracker", NOW + 10);
        store.put_connection(&again).await.unwrap();
        assert_eq!(
            store.connection("alice", "/tracker").await.unwrap(),
            Some(again.clone())
        );

        assert_eq!(
            store.delete_connection("alice", "/tracker").await.unwrap(),
            Some(again)
        );
        assert_eq!(
            store.delete_connection("alice", "/tracker").await.unwrap(),
            None
        );
        assert_eq!(store.connections("alice").await.unwrap(), [alice_wiki]);
    })
    .await;
}

#[tokio::test]
async fn a_refresh_is_written_only_over_the_connection_it_refreshed() {
    each_store(async |store| {
        let first = connection("alice", "/tracker", NOW);
        store.put_connection(&first).await.unwrap();
        let refreshed = ConnectionRecord {
            tokens: "sealed, refreshed".into(),
            refreshed_at: Some(NOW + 100),
            ..first.clone()
        };
        assert!(store.replace_connection(&refreshed).await.unwrap());
        assert_eq!(
            store.connection("alice", "/tracker").await.unwrap(),
            Some(refreshed.clone())
        );

        // The user connected again meanwhile: the older connection's refresh is dropped.
        let newer = connection("alice", "/tracker", NOW + 200);
        store.put_connection(&newer).await.unwrap();
        assert!(!store.replace_connection(&refreshed).await.unwrap());
        assert_eq!(
            store.connection("alice", "/tracker").await.unwrap(),
            Some(newer)
        );

        // Or disconnected: a refresh brings nothing back.
        store.delete_connection("alice", "/tracker").await.unwrap();
        assert!(!store.replace_connection(&refreshed).await.unwrap());
        assert_eq!(store.connection("alice", "/tracker").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn registrations_are_kept_per_issuer_and_redirect_uri() {
    each_store(async |store| {
        let registration = RegistrationRecord {
            issuer: "https://as.example/tenant".into(),
            redirect_uri: "https://gw.example/connect/callback".into(),
            client_id: "dyn-1".into(),
            secret: Some("sealed secret".into()),
            auth_method: "client_secret_basic".into(),
            registered_at: NOW,
            expires_at: 0,
        };
        store.put_registration(&registration).await.unwrap();
        let found = |issuer: &'static str, redirect: &'static str| {
            let store = store.clone();
            async move { store.registration(issuer, redirect).await.unwrap() }
        };
        assert_eq!(
            found(
                "https://as.example/tenant",
                "https://gw.example/connect/callback"
            )
            .await,
            Some(registration.clone())
        );
        // Another issuer (a path apart), or another redirect URI, has a registration of its own.
        assert_eq!(
            found("https://as.example", "https://gw.example/connect/callback").await,
            None
        );
        assert_eq!(
            found(
                "https://as.example/tenant",
                "https://other.example/connect/callback"
            )
            .await,
            None
        );
        store
            .delete_registration(
                "https://as.example/tenant",
                "https://gw.example/connect/callback",
            )
            .await
            .unwrap();
        assert_eq!(
            found(
                "https://as.example/tenant",
                "https://gw.example/connect/callback"
            )
            .await,
            None
        );
    })
    .await;
}

#[tokio::test]
async fn connect_flows_complete_once_and_expire() {
    each_store(async |store| {
        let flow = ConnectFlow {
            sub: "alice".into(),
            route: "/tracker".into(),
            resource: "https://backend.example/tracker".into(),
            issuer: "https://as.example".into(),
            client_id: "gw".into(),
            verifier: "sealed verifier".into(),
            redirect_uri: "https://gw.example/connect/callback".into(),
            pending: Some(PendingAuthorization {
                client_id: "c1".into(),
                redirect_uri: "http://127.0.0.1/cb".into(),
                redirect_uri_given: true,
                state: Some("s".into()),
                scope: "mcp".into(),
                resource: "http://gw/tracker".into(),
                code_challenge: "x".into(),
                csrf: "t".into(),
                browser_hash: "b".into(),
                user: Some(user()),
                expires_at: NOW + 600,
                idp_verifier: None,
                idp_nonce: None,
                failed_logins: 0,
                consented: true,
            }),
            user: Some(user()),
            idp_tokens: None,
            expires_at: NOW + 600,
        };
        store.put_connect_flow("s1", &flow).await.unwrap();
        store.put_connect_flow("s2", &flow).await.unwrap();
        assert_eq!(
            store.take_connect_flow("s1", NOW).await.unwrap(),
            Some(flow.clone())
        );
        assert_eq!(store.take_connect_flow("s1", NOW).await.unwrap(), None);
        assert_eq!(
            store.take_connect_flow("s2", NOW + 601).await.unwrap(),
            None
        );
        // A store without expiring keys purges flows past their time (Redis lets the key expire).
        if !store.is_shared() {
            store.put_connect_flow("s3", &flow).await.unwrap();
            store.purge_expired(NOW + 601).await.unwrap();
            assert_eq!(store.take_connect_flow("s3", NOW).await.unwrap(), None);
        }
    })
    .await;
}
