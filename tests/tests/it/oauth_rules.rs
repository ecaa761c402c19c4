//! The authorization server's rules that need the whole chain: a revoked grant's token refused at
//! `/mcp`, refreshes racing over HTTP, a code's lifetime in real time, state that survives a
//! restart. Each rule about one request is a unit test of its handler (`gateway/src/oauth/rules_tests/`).

use integration_tests::oauth::refreshing;
use integration_tests::oauth::{
    Agent, Pkce, authorize, authorize_url, exchange, public_client, token,
};
use serde_json::Value;

use crate::oauth_flow::auth_stack;

/// A client, a code for it, and its PKCE verifier.
async fn code_for(stack: &crate::oauth_flow::AuthStack) -> (String, String, Pkce) {
    let gateway = &stack.gateway;
    let client = public_client(gateway).await;
    let pkce = Pkce::new();
    let mut agent = Agent::new();
    let query = authorize(
        gateway,
        &mut agent,
        &authorize_url(gateway, &client, &pkce, &[]),
        "alice",
        "wonderland",
    )
    .await;
    (client, query["code"].clone(), pkce)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_code_revokes_what_it_issued() {
    let stack = auth_stack("").await;
    let gateway = &stack.gateway;
    let (client, code, pkce) = code_for(&stack).await;
    let (status, tokens) = token(gateway, &exchange(&client, &code, &pkce.verifier)).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(gateway, access).await, 200);

    let (status, body) = token(gateway, &exchange(&client, &code, &pkce.verifier)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(
        mcp_status(gateway, access).await,
        401,
        "the first exchange's access token is revoked"
    );
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = token(gateway, &refreshing(&client, refresh)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "and its refresh token"
    );
    // Counted: one replay, one code exchanged (not the replay), two refusals at the token endpoint.
    let metrics = gateway.metrics().await;
    assert_eq!(metrics["mcp_gateway_authorization_code_replays_total"], 1.0);
    assert_eq!(
        metrics["mcp_gateway_tokens_issued_total{grant=\"authorization_code\"}"],
        1.0
    );
    assert_eq!(
        metrics["mcp_gateway_oauth_errors_total{endpoint=\"token\",error=\"invalid_grant\"}"],
        2.0
    );
    assert_eq!(metrics["mcp_gateway_refresh_token_reuse_total"], 0.0);
}

/// The status of an MCP initialize at `/mcp` with the access token `access`.
pub async fn mcp_status(gateway: &integration_tests::GatewayUnderTest, access: &str) -> u16 {
    reqwest::Client::new()
        .post(gateway.url("/mcp"))
        .header("authorization", format!("Bearer {access}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_refreshes_pass_but_a_late_reuse_revokes_the_grant() {
    // Default grace: two refreshes at once with the same token both succeed, with the same successor.
    let stack = auth_stack("").await;
    let gateway = &stack.gateway;
    let (client, code, pkce) = code_for(&stack).await;
    let (_, tokens) = token(gateway, &exchange(&client, &code, &pkce.verifier)).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let form = refreshing(client.as_str(), refresh.as_str());
    let (a, b) = tokio::join!(token(gateway, &form), token(gateway, &form));
    assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
    // Both get the one successor: the grant keeps one chain (issue 13).
    assert_eq!(a.1["refresh_token"], b.1["refresh_token"]);
    assert_ne!(a.1["refresh_token"], refresh.as_str());
    assert_eq!(
        mcp_status(gateway, a.1["access_token"].as_str().unwrap()).await,
        200
    );

    // No grace: reusing a rotated token is theft, and ends the grant.
    let strict = auth_stack("[auth]\nrefresh_grace = \"0s\"").await;
    let gateway = &strict.gateway;
    let (client, code, pkce) = code_for(&strict).await;
    let (_, tokens) = token(gateway, &exchange(&client, &code, &pkce.verifier)).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = refreshing(client.as_str(), refresh);
    let (status, rotated) = token(gateway, &form).await;
    assert_eq!(status, 200, "{rotated}");
    let (status, body) = token(gateway, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let newest = rotated["refresh_token"].as_str().unwrap();
    let (status, _) = token(gateway, &refreshing(&client, newest)).await;
    assert_eq!(
        status, 400,
        "the whole grant is revoked, the newest token too"
    );
    assert_eq!(
        mcp_status(gateway, rotated["access_token"].as_str().unwrap()).await,
        401
    );
    let metrics = gateway.metrics().await;
    assert_eq!(metrics["mcp_gateway_refresh_token_reuse_total"], 1.0);
    assert_eq!(
        metrics["mcp_gateway_tokens_issued_total{grant=\"refresh_token\"}"],
        1.0
    );
    // A refresh may narrow the scope, never widen it.
    let (client, code, pkce) = code_for(&strict).await;
    let (_, tokens) = token(gateway, &exchange(&client, &code, &pkce.verifier)).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = token(
        gateway,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", refresh),
            ("scope", "mcp admin"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_code_is_refused() {
    let stack = auth_stack("[auth]\ncode_lifetime = \"1s\"").await;
    let (client, code, pkce) = code_for(&stack).await;
    // The code's lifetime is what is under test: wait it out.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = token(&stack.gateway, &exchange(&client, &code, &pkce.verifier)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn registrations_grants_and_keys_survive_a_restart() {
    let mut stack = auth_stack("").await;
    let (client, code, pkce) = code_for(&stack).await;
    let (status, tokens) = token(&stack.gateway, &exchange(&client, &code, &pkce.verifier)).await;
    assert_eq!(status, 200);
    // A second grant, revoked before the restart: its access token must stay refused after it.
    let (client2, code2, pkce2) = code_for(&stack).await;
    let (_, revoked) = token(&stack.gateway, &exchange(&client2, &code2, &pkce2.verifier)).await;
    let response = reqwest::Client::new()
        .post(stack.gateway.url("/revoke"))
        .form(&[
            ("token", revoked["refresh_token"].as_str().unwrap()),
            ("client_id", client2.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let revoked_access = revoked["access_token"].as_str().unwrap().to_owned();
    assert_eq!(mcp_status(&stack.gateway, &revoked_access).await, 401);
    let jwks_before: Value = reqwest::get(stack.gateway.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    stack.gateway.restart().await;

    assert_eq!(
        mcp_status(&stack.gateway, &revoked_access).await,
        401,
        "revocation survives the restart"
    );
    let jwks_after: Value = reqwest::get(stack.gateway.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks_before, jwks_after);
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = token(&stack.gateway, &refreshing(&client, refresh)).await;
    assert_eq!(
        status, 200,
        "the client registered before the restart refreshes after it: {body}"
    );
    // And the registration itself is still there: a new authorization works without registering again.
    let mut agent = Agent::new();
    let query = authorize(
        &stack.gateway,
        &mut agent,
        &authorize_url(&stack.gateway, &client, &Pkce::new(), &[]),
        "alice",
        "wonderland",
    )
    .await;
    assert!(query.contains_key("code"), "{query:?}");
}
