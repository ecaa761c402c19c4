//! The authorization server's rules, one bad input at a time: each gets its clear error, and nothing
//! is issued or let in.

use integration_tests::oauth::{
    Agent, Pkce, REDIRECT, authorize, authorize_url, exchange, public_client, query_of, register,
    token,
};
use serde_json::{Value, json};

use crate::oauth_flow::auth_stack;

#[tokio::test(flavor = "multi_thread")]
async fn registration_validates_and_echoes_metadata() {
    let stack = auth_stack("").await;
    let gateway = &stack.gateway;
    let (status, body) = register(
        gateway,
        json!({ "client_name": "App", "redirect_uris": ["https://app.example/cb", "http://localhost/cb"],
                "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "client_secret_basic",
                "scope": "mcp", "application_type": "web" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["redirect_uris"],
        json!(["https://app.example/cb", "http://localhost/cb"])
    );
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert!(body["client_id_issued_at"].as_u64().is_some());
    assert!(body["client_secret"].is_string());
    assert_eq!(body["client_secret_expires_at"], 0);

    for (metadata, error) in [
        (json!({ "redirect_uris": [] }), "invalid_redirect_uri"),
        (json!({ "client_name": "no uris" }), "invalid_redirect_uri"),
        (
            json!({ "redirect_uris": ["http://app.example/cb"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["https://app.example/cb#frag"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["javascript:alert(1)"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": [REDIRECT], "grant_types": ["implicit"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": [REDIRECT], "response_types": ["token"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": [REDIRECT], "scope": "mcp admin" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": "not a list" }),
            "invalid_client_metadata",
        ),
    ] {
        let (status, body) = register(gateway, metadata.clone()).await;
        assert_eq!(status, 400, "{metadata}: {body}");
        assert_eq!(body["error"], error, "{metadata}");
    }
    let response = reqwest::Client::new()
        .post(gateway.url("/register"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn authorize_errors_before_the_redirect_is_trusted_show_a_page() {
    let stack = auth_stack("").await;
    let gateway = &stack.gateway;
    let client = public_client(gateway).await;
    let pkce = Pkce::new();
    let mut agent = Agent::new();
    for (overrides, why) in [
        (vec![("client_id", "")], "no client"),
        (vec![("client_id", "no-such-client")], "unknown client"),
        (
            vec![("redirect_uri", "https://evil.example/cb")],
            "unregistered redirect",
        ),
        (
            vec![("redirect_uri", "http://127.0.0.1:1/callback/../evil")],
            "path trick",
        ),
        (
            vec![("redirect_uri", "http://localhost:1/callback")],
            "another loopback host",
        ),
    ] {
        let (status, location, body) = agent
            .get(&authorize_url(gateway, &client, &pkce, &overrides))
            .await;
        assert_eq!(status, 400, "{why}: {body}");
        assert!(location.is_none(), "{why}: never a redirect");
        assert!(body.contains("Authorization failed"), "{why}");
    }
    let repeated = format!(
        "{}&state=again",
        authorize_url(gateway, &client, &pkce, &[])
    );
    let (status, location, _) = agent.get(&repeated).await;
    assert_eq!((status, location), (400, None), "a repeated parameter");
}

#[tokio::test(flavor = "multi_thread")]
async fn later_authorize_errors_go_back_with_state_and_iss() {
    let stack = auth_stack("").await;
    let gateway = &stack.gateway;
    let client = public_client(gateway).await;
    let pkce = Pkce::new();
    let mut agent = Agent::new();
    for (overrides, error) in [
        (
            vec![("code_challenge", ""), ("code_challenge_method", "")],
            "invalid_request",
        ),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", "short")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            vec![("resource", "http://elsewhere.example/mcp")],
            "invalid_target",
        ),
        (vec![("scope", "mcp admin")], "invalid_scope"),
    ] {
        let (status, location, _) = agent
            .get(&authorize_url(gateway, &client, &pkce, &overrides))
            .await;
        assert_eq!(status, 302, "{overrides:?}");
        let location = location.unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        let query = query_of(&location);
        assert_eq!(query["error"], error, "{overrides:?}");
        assert_eq!(query["state"], "st");
        assert_eq!(query["iss"], gateway.origin);
        assert!(!query.contains_key("code"));
    }
    // A long state goes through whole; a loopback redirect may use another port; the resource may
    // carry a trailing slash.
    let state = "s".repeat(2000);
    let other_port = "http://127.0.0.1:5555/callback";
    let url = authorize_url(
        gateway,
        &client,
        &pkce,
        &[
            ("state", &state),
            ("redirect_uri", other_port),
            ("resource", &format!("{}/", gateway.url("/mcp"))),
        ],
    );
    let query = authorize(gateway, &mut agent, &url, "alice", "wonderland").await;
    assert_eq!(query["state"], state);
    assert!(query.contains_key("code"));
}

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

/// A token request built from a fresh code: `(client, code, verifier, other client) -> form`.
type Bad = fn(&str, &str, &str, &str) -> Vec<(String, String)>;

fn owned(form: Vec<(&str, &str)>) -> Vec<(String, String)> {
    form.into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_endpoint_checks_verifier_redirect_and_client() {
    let stack = auth_stack("").await;
    let gateway = &stack.gateway;
    let other_client = public_client(gateway).await;
    let cases: Vec<(&str, Bad, u16, &str)> = vec![
        (
            "wrong verifier",
            |c, code, v, _| owned(exchange(c, code, &format!("{v}x"))),
            400,
            "invalid_grant",
        ),
        (
            "no verifier",
            |c, code, v, _| {
                owned(
                    exchange(c, code, v)
                        .into_iter()
                        .filter(|(k, _)| *k != "code_verifier")
                        .collect(),
                )
            },
            400,
            "invalid_request",
        ),
        (
            "another redirect_uri",
            |c, code, v, _| {
                let mut form = owned(exchange(c, code, v));
                form.retain(|(k, _)| k != "redirect_uri");
                form.push(("redirect_uri".into(), "http://127.0.0.1:1/other".into()));
                form
            },
            400,
            "invalid_grant",
        ),
        (
            "another client",
            |_, code, v, other| owned(exchange(other, code, v)),
            400,
            "invalid_grant",
        ),
        (
            "an unknown client",
            |_, code, v, _| owned(exchange("no-such-client", code, v)),
            401,
            "invalid_client",
        ),
        (
            "a secret from a public client",
            |c, code, v, _| {
                let mut form = owned(exchange(c, code, v));
                form.push(("client_secret".into(), "guess".into()));
                form
            },
            401,
            "invalid_client",
        ),
        (
            "another resource",
            |c, code, v, _| {
                let mut form = owned(exchange(c, code, v));
                form.push(("resource".into(), "http://elsewhere.example/mcp".into()));
                form
            },
            400,
            "invalid_target",
        ),
        (
            "an unsupported grant",
            |c, _, _, _| owned(vec![("grant_type", "password"), ("client_id", c)]),
            400,
            "unsupported_grant_type",
        ),
    ];
    for (case, make, status, error) in cases {
        let (client, code, pkce) = code_for(&stack).await;
        let form = make(&client, &code, &pkce.verifier, &other_client);
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (got, body) = token(gateway, &pairs).await;
        assert_eq!(got, status, "{case}: {body}");
        assert_eq!(body["error"], error, "{case}");
        assert!(body.get("access_token").is_none(), "{case}");
    }
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
    let (status, body) = token(
        gateway,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", refresh),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "and its refresh token"
    );
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
    // Default grace: two refreshes at once with the same token both succeed.
    let stack = auth_stack("").await;
    let gateway = &stack.gateway;
    let (client, code, pkce) = code_for(&stack).await;
    let (_, tokens) = token(gateway, &exchange(&client, &code, &pkce.verifier)).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", client.as_str()),
        ("refresh_token", refresh.as_str()),
    ];
    let (a, b) = tokio::join!(token(gateway, &form), token(gateway, &form));
    assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
    assert_ne!(a.1["refresh_token"], b.1["refresh_token"]);
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
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", client.as_str()),
        ("refresh_token", refresh),
    ];
    let (status, rotated) = token(gateway, &form).await;
    assert_eq!(status, 200, "{rotated}");
    let (status, body) = token(gateway, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let newest = rotated["refresh_token"].as_str().unwrap();
    let (status, _) = token(
        gateway,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", newest),
        ],
    )
    .await;
    assert_eq!(
        status, 400,
        "the whole grant is revoked, the newest token too"
    );
    assert_eq!(
        mcp_status(gateway, rotated["access_token"].as_str().unwrap()).await,
        401
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
async fn login_and_consent_need_their_csrf_token_and_the_browser_that_started() {
    let stack = auth_stack("").await;
    let gateway = &stack.gateway;
    let client = public_client(gateway).await;
    let pkce = Pkce::new();
    let mut agent = Agent::new();
    let (_, location, _) = agent
        .get(&authorize_url(gateway, &client, &pkce, &[]))
        .await;
    let (_, _, login) = agent.get(&location.unwrap()).await;
    let pending = integration_tests::oauth::hidden(&login, "pending");
    let csrf = integration_tests::oauth::hidden(&login, "csrf");

    let (status, _, _) = agent
        .post_form(
            &gateway.url("/login"),
            &[
                ("pending", &pending),
                ("csrf", "forged"),
                ("username", "alice"),
                ("password", "wonderland"),
            ],
        )
        .await;
    assert_eq!(status, 403, "a login form with a forged CSRF token");
    let (status, _, _) = agent
        .post_form(
            &gateway.url("/login"),
            &[
                ("pending", &pending),
                ("username", "alice"),
                ("password", "wonderland"),
            ],
        )
        .await;
    assert_eq!(status, 403, "a login form without its CSRF token");
    let (status, _, page) = agent
        .post_form(
            &gateway.url("/login"),
            &[
                ("pending", &pending),
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", "wrong"),
            ],
        )
        .await;
    assert_eq!(status, 401);
    assert!(page.contains("wrong"), "{page}");

    let mut stranger = Agent::new();
    let (status, _, _) = stranger
        .post_form(
            &gateway.url("/login"),
            &[
                ("pending", &pending),
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", "wonderland"),
            ],
        )
        .await;
    assert_eq!(
        status, 400,
        "another browser cannot finish this authorization"
    );

    let (status, location, _) = agent
        .post_form(
            &gateway.url("/login"),
            &[
                ("pending", &pending),
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", "wonderland"),
            ],
        )
        .await;
    assert_eq!(status, 302);
    let (_, _, consent) = agent.get(&location.unwrap()).await;
    let (status, location, _) = agent
        .post_form(
            &gateway.url("/consent"),
            &[("pending", &pending), ("decision", "approve")],
        )
        .await;
    assert_eq!(
        (status, location),
        (403, None),
        "consent without its CSRF token"
    );
    let (status, location, _) = agent
        .post_form(
            &gateway.url("/consent"),
            &[
                ("pending", &pending),
                ("csrf", &integration_tests::oauth::hidden(&consent, "csrf")),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(status, 302);
    assert!(query_of(&location.unwrap()).contains_key("code"));
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
    let (status, body) = token(
        &stack.gateway,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", refresh),
        ],
    )
    .await;
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

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_uri_left_out_of_the_authorization_may_be_left_out_of_the_token_request() {
    let stack = auth_stack("").await;
    let gateway = &stack.gateway;
    let client = public_client(gateway).await;
    let pkce = Pkce::new();
    // The client registered one redirect URI, so /authorize may omit it (OAuth 2.1 §4.1.1)...
    let url = authorize_url(gateway, &client, &pkce, &[("redirect_uri", "")]);
    let query = authorize(gateway, &mut Agent::new(), &url, "alice", "wonderland").await;
    // ...and then /token need not repeat it (§4.1.3); naming another one still fails.
    let base = [
        ("grant_type", "authorization_code"),
        ("client_id", client.as_str()),
        ("code", query["code"].as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let (status, body) = token(gateway, &base).await;
    assert_eq!(status, 200, "{body}");

    let query = authorize(gateway, &mut Agent::new(), &url, "alice", "wonderland").await;
    let mut form = base.to_vec();
    form[2] = ("code", query["code"].as_str());
    form.push(("redirect_uri", "http://127.0.0.1:1/elsewhere"));
    let (status, body) = token(gateway, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}
