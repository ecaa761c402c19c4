//! `mcp-backend` refuses what did not come from the gateway: 401 with a JSON body, and no tool runs.

use std::sync::{Arc, Mutex};

use gateway_assertion::{ASSERTION_TYP, KeyAlgorithm, SigningKey};
use integration_tests::gateway_keys::now;
use integration_tests::{EchoTarget, GatewayKeys};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend::{Backend, TOKEN_ALICE, TOKEN_BOB};

const ACCEPT: &str = "application/json, text/event-stream";

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
}

fn call_tool(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": "make_authenticated_request", "arguments": {"message": "only with a valid assertion"}}})
}

async fn post(
    url: &str,
    headers: &[(&str, String)],
    body: &Value,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("accept", ACCEPT)
        .header("content-type", "application/json")
        .json(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("the backend answers");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("a body"))
}

fn assert_refused(status: StatusCode, body: &str, case: &str) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
    let body: Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("{case}: a JSON body, got {body}"));
    assert_eq!(body["error"], "unauthorized", "{case}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{case}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_without_a_valid_assertion_are_refused_and_run_no_tool() {
    let keys = GatewayKeys::new();
    let echo = EchoTarget::start().await;
    let backend = Backend::start(&keys, &echo.url(), &[]).await;
    let aud = backend.audience.clone();
    let good = |token: &str| {
        vec![
            ("x-forwarded-access-token", token.to_owned()),
            ("x-forwarded-user", "alice".to_owned()),
            (
                "x-gateway-assertion",
                keys.assertion(&aud, "alice", Some(token)),
            ),
        ]
    };

    // A session opened the proper way.
    let (status, headers, body) = post(&backend.url, &good(TOKEN_ALICE), &initialize()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = headers["mcp-session-id"].to_str().unwrap().to_owned();
    let mut in_session = good(TOKEN_ALICE);
    in_session.push(("mcp-session-id", session.clone()));
    let (status, _, body) = post(
        &backend.url,
        &in_session,
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let forger = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
    let forged = forger
        .sign(
            ASSERTION_TYP,
            &keys.claims(&aud, "alice", Some(TOKEN_ALICE)),
        )
        .unwrap();
    let mut expired = keys.claims(&aud, "alice", Some(TOKEN_ALICE));
    expired.iat = now() - 600;
    expired.exp = now() - 300;
    let mut long_lived = keys.claims(&aud, "alice", Some(TOKEN_ALICE));
    long_lived.exp = long_lived.iat + 3600;
    let mut other_issuer = keys.claims(&aud, "alice", Some(TOKEN_ALICE));
    other_issuer.iss = "http://evil.test".into();
    let wrong_audience = keys.assertion("http://127.0.0.1:1/other", "alice", Some(TOKEN_ALICE));
    let access_token_typed = keys.keys[0]
        .sign("at+jwt", &keys.claims(&aud, "alice", Some(TOKEN_ALICE)))
        .unwrap();

    let token = |t: &str| ("x-forwarded-access-token", t.to_owned());
    let user = |u: &str| ("x-forwarded-user", u.to_owned());
    let assertion = |a: String| ("x-gateway-assertion", a);
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no assertion", vec![token(TOKEN_ALICE), user("alice")]),
        (
            "forged signature",
            vec![token(TOKEN_ALICE), assertion(forged)],
        ),
        (
            "expired",
            vec![token(TOKEN_ALICE), assertion(keys.sign(0, &expired))],
        ),
        (
            "lifetime over 5 minutes",
            vec![token(TOKEN_ALICE), assertion(keys.sign(1, &long_lived))],
        ),
        (
            "wrong issuer",
            vec![token(TOKEN_ALICE), assertion(keys.sign(0, &other_issuer))],
        ),
        (
            "wrong audience",
            vec![token(TOKEN_ALICE), assertion(wrong_audience)],
        ),
        (
            "an access token as assertion",
            vec![token(TOKEN_ALICE), assertion(access_token_typed)],
        ),
        (
            "swapped token header",
            vec![
                token(TOKEN_BOB),
                assertion(keys.assertion(&aud, "alice", Some(TOKEN_ALICE))),
            ],
        ),
        (
            "token added to an assertion that binds none",
            vec![
                token(TOKEN_BOB),
                assertion(keys.assertion(&aud, "alice", None)),
            ],
        ),
        (
            "spoofed user header",
            vec![
                token(TOKEN_ALICE),
                user("mallory"),
                assertion(keys.assertion(&aud, "alice", Some(TOKEN_ALICE))),
            ],
        ),
        (
            "two assertion headers",
            vec![
                token(TOKEN_ALICE),
                assertion(keys.assertion(&aud, "alice", Some(TOKEN_ALICE))),
                assertion(keys.assertion(&aud, "alice", Some(TOKEN_ALICE))),
            ],
        ),
        (
            "garbage assertion",
            vec![token(TOKEN_ALICE), assertion("not-a-jwt".into())],
        ),
    ];
    for (id, (case, mut headers)) in cases.into_iter().enumerate() {
        headers.push(("mcp-session-id", session.clone()));
        let (status, _, body) = post(&backend.url, &headers, &call_tool(id as u64 + 10)).await;
        assert_refused(status, &body, case);
        // The same for opening a session.
        headers.pop();
        let (status, _, body) = post(&backend.url, &headers, &initialize()).await;
        assert_refused(status, &body, case);
    }
    // GET (the server's event stream) and DELETE (ending the session) need it too.
    let http = reqwest::Client::new();
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = http
            .request(method.clone(), &backend.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &session)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_refused(status, &response.text().await.unwrap(), method.as_str());
    }
    assert!(
        echo.authorizations().is_empty(),
        "a tool ran: {:?}",
        echo.authorizations()
    );

    // The session was not harmed: the proper headers still run the tool, exactly once.
    let (status, _, body) = post(&backend.url, &in_session, &call_tool(99)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("only with a valid assertion"),
        "the tool's echo: {body}"
    );
    assert_eq!(echo.authorizations(), vec![format!("Bearer {TOKEN_ALICE}")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_jwks_is_fetched_by_url_and_refetched_for_a_new_key() {
    // The gateway's JWKS served over HTTP, with a key set the test can rotate.
    let first = GatewayKeys::new();
    let rotated = GatewayKeys::new();
    let served = Arc::new(Mutex::new(first.jwks_json()));
    let fetches = Arc::new(Mutex::new(0u32));
    let app = {
        let (served, fetches) = (served.clone(), fetches.clone());
        axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let (served, fetches) = (served.clone(), fetches.clone());
                async move {
                    *fetches.lock().unwrap() += 1;
                    served.lock().unwrap().clone()
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let echo = EchoTarget::start().await;
    let backend = Backend::start(&first, &echo.url(), &["--gateway-jwks", &jwks_url]).await;
    let aud = backend.audience.clone();
    let with = |keys: &GatewayKeys| {
        vec![
            ("x-forwarded-access-token", TOKEN_ALICE.to_owned()),
            (
                "x-gateway-assertion",
                keys.assertion(&aud, "alice", Some(TOKEN_ALICE)),
            ),
        ]
    };

    for _ in 0..3 {
        let (status, _, body) = post(&backend.url, &with(&first), &initialize()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(*fetches.lock().unwrap(), 1, "the key set is cached");

    // The gateway rotates: an assertion by a key not yet seen makes the backend fetch again.
    *served.lock().unwrap() = rotated.jwks_json();
    let (status, _, body) = post(&backend.url, &with(&rotated), &initialize()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(*fetches.lock().unwrap(), 2);

    // A made-up kid cannot make it fetch on every request.
    let stranger = GatewayKeys::new();
    for _ in 0..5 {
        let (status, _, body) = post(&backend.url, &with(&stranger), &initialize()).await;
        assert_refused(status, &body, "unknown key");
    }
    assert!(
        *fetches.lock().unwrap() <= 4,
        "fetched {} times",
        fetches.lock().unwrap()
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_that_cannot_be_loaded_give_503_not_a_pass() {
    let keys = GatewayKeys::new();
    let echo = EchoTarget::start().await;
    let nowhere = format!(
        "http://127.0.0.1:{}/.well-known/jwks.json",
        integration_tests::free_port()
    );
    let backend = Backend::start(&keys, &echo.url(), &["--gateway-jwks", &nowhere]).await;
    let headers = vec![
        ("x-forwarded-access-token", TOKEN_ALICE.to_owned()),
        (
            "x-gateway-assertion",
            keys.assertion(&backend.audience, "alice", Some(TOKEN_ALICE)),
        ),
    ];
    let (status, _, body) = post(&backend.url, &headers, &initialize()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let body: Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(echo.authorizations().is_empty());
}
