//! The SQLite store works off the worker threads: a database file another process holds locked stalls
//! the requests that need it, never the proxy's worker thread and with it every other request.

use integration_tests::GatewayBuilder;
use integration_tests::oauth::{REDIRECT, register};
use serde_json::json;

use crate::oauth_flow::auth_stack_with;

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_database_stalls_only_the_requests_that_need_it() {
    // One worker thread: a store call blocking it would stall everything.
    let stack = auth_stack_with("", GatewayBuilder::new().server("threads = 1")).await;
    let gateway = &stack.gateway;
    let db = rusqlite::Connection::open(gateway.store_path()).unwrap();
    // Another process takes the write lock; the gateway's writes wait for it (up to 5 s).
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let origin = gateway.origin.clone();
    let registration = tokio::spawn(async move {
        let metadata = json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none" });
        register(origin.as_str(), metadata).await
    });
    // Meanwhile the gateway answers what needs no store, every time, well within the lock's wait.
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .unwrap();
    for _ in 0..20 {
        let health = client.get(gateway.url("/healthz")).send().await;
        let status = health.map(|r| r.status().as_u16());
        assert_eq!(status.ok(), Some(200), "/healthz stalled behind the store");
    }
    assert!(
        !registration.is_finished(),
        "the registration waits for the lock"
    );
    db.execute_batch("COMMIT").unwrap();
    let (status, body) = registration.await.unwrap();
    assert_eq!(status, 201, "and completes once it is released: {body}");
}
