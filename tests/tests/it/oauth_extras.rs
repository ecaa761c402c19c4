//! Pre-registered clients, introspection and rate limits.

use integration_tests::GatewayBuilder;
use integration_tests::oauth::refreshing;
use integration_tests::oauth::{
    Agent, Pkce, REDIRECT, assert_oauth_error, authorize, authorize_url, exchange, public_client,
    register, register_response, token,
};
use serde_json::{Value, json};

use crate::oauth_flow::{auth_stack, auth_stack_with};

const SECRET: &str = "backend-secret-0123456789abcdef";

#[tokio::test(flavor = "multi_thread")]
async fn a_first_party_client_from_the_config_skips_consent_and_a_confidential_one_authenticates() {
    let extra = format!(
        "[[clients]]\nclient_id = \"first-party\"\nclient_name = \"Our App\"\nredirect_uris = [\"{REDIRECT}\"]\nskip_consent = true\n\n\
         [[clients]]\nclient_id = \"backend\"\nredirect_uris = [\"https://backend.example/cb\"]\n\
         token_endpoint_auth_method = \"client_secret_basic\"\nclient_secret_env = \"BACKEND_SECRET\"\n"
    );
    let mut stack =
        auth_stack_with(&extra, GatewayBuilder::new().env("BACKEND_SECRET", SECRET)).await;
    let gateway = &stack.gateway;

    // Straight from login to the app: no consent page.
    let pkce = Pkce::new();
    let mut agent = Agent::new();
    let url = authorize_url(gateway, "first-party", &pkce, &[]);
    let (_, location, _) = agent.get(&url).await;
    let (_, _, login) = agent.get(&location.unwrap()).await;
    let (status, location, _) = agent
        .post_form(
            &gateway.url("/login"),
            &[
                (
                    "pending",
                    &integration_tests::oauth::hidden(&login, "pending"),
                ),
                ("csrf", &integration_tests::oauth::hidden(&login, "csrf")),
                ("username", "alice"),
                ("password", "wonderland"),
            ],
        )
        .await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert!(
        location.starts_with(REDIRECT),
        "no consent page: {location}"
    );
    let code = integration_tests::oauth::query_of(&location)["code"].clone();
    let (status, tokens) = token(gateway, &exchange("first-party", &code, &pkce.verifier)).await;
    assert_eq!(status, 200, "{tokens}");

    // The confidential client from the config introspects that token with its secret.
    let introspect_url = gateway.url("/introspect");
    let introspect = |token: String, secret: &'static str| {
        let url = introspect_url.clone();
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .basic_auth("backend", Some(secret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let (status, body) = introspect(access.clone(), SECRET).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], "alice");
    assert_eq!(body["client_id"], "first-party");
    assert_eq!(body["scope"], "mcp");
    assert_eq!(body["aud"], gateway.url("/mcp"));
    let (status, body) = introspect(access.clone(), "wrong-secret-0123456789").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (_, body) = introspect("garbage".into(), SECRET).await;
    assert_eq!(body, json!({ "active": false }));

    // A rotated refresh token is inactive; its successor is the active one.
    let first = tokens["refresh_token"].as_str().unwrap();
    let refresh = refreshing("first-party", first);
    let (status, refreshed) = token(gateway, &refresh).await;
    assert_eq!(status, 200, "{refreshed}");
    let (_, body) = introspect(first.to_owned(), SECRET).await;
    assert_eq!(body, json!({ "active": false }), "rotated");
    let current = refreshed["refresh_token"].as_str().unwrap();
    let (_, body) = introspect(current.to_owned(), SECRET).await;
    assert_eq!(body["active"], true);

    // Revoked: inactive.
    let response = reqwest::Client::new()
        .post(gateway.url("/revoke"))
        .form(&[("token", current), ("client_id", "first-party")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, body) = introspect(access.clone(), SECRET).await;
    assert_eq!(body, json!({ "active": false }));
    // And still after a restart, when only the store remembers the revocation.
    stack.gateway.restart().await;
    let (_, body) = introspect(access, SECRET).await;
    assert_eq!(body, json!({ "active": false }), "after a restart");

    // A client taken out of the config stops working at the next start.
    let first_party = format!(
        "[[clients]]\nclient_id = \"first-party\"\nclient_name = \"Our App\"\nredirect_uris = [\"{REDIRECT}\"]\nskip_consent = true\n"
    );
    assert!(stack.gateway.config.contains(&first_party));
    let without = stack.gateway.config.replace(&first_party, "");
    stack.gateway.rewrite_config(&without).await;
    let url = authorize_url(&stack.gateway, "first-party", &Pkce::new(), &[]);
    let (status, _, page) = Agent::new().get(&url).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("not registered"), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_client_cannot_introspect() {
    let stack = auth_stack("").await;
    let client = public_client(&stack.gateway).await;
    let response = reqwest::Client::new()
        .post(stack.gateway.url("/introspect"))
        .form(&[("token", "x"), ("client_id", client.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_requests_from_one_address_get_429_with_retry_after() {
    let stack = auth_stack("[rate_limits]\nregister = 2\ntoken = 3\nauthorize = 2").await;
    let gateway = &stack.gateway;
    let metadata = json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none" });
    assert_eq!(register(gateway, metadata.clone()).await.0, 201);
    let client = register(gateway, metadata.clone()).await.1["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = register_response(gateway, &metadata).await;
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "{wait}");

    for i in 0..4 {
        let (status, _) = token(gateway, &refreshing(&client, "x")).await;
        assert_eq!(status, if i < 3 { 400 } else { 429 }, "token request {i}");
    }
    let mut agent = Agent::new();
    let pkce = Pkce::new();
    let url = authorize_url(gateway, &client, &pkce, &[]);
    let _ = authorize(gateway, &mut agent, &url, "alice", "wonderland").await;
    let (status, _, _) = agent.get(&url).await;
    assert_eq!(status, 302, "the second authorization is still allowed");
    let (status, _, _) = agent.get(&url).await;
    assert_eq!(status, 429, "the third is not");
}

/// The status of a registration sent through a proxy that says the client is at `address`.
async fn register_from(gateway: &integration_tests::GatewayUnderTest, forwarded_for: &str) -> u16 {
    let metadata = json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none" });
    reqwest::Client::new()
        .post(gateway.url("/register"))
        .header("x-forwarded-for", forwarded_for)
        .json(&metadata)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_trusted_proxies_each_client_has_its_own_limit_and_an_ipv6_client_its_64() {
    let behind = GatewayBuilder::new().server("trusted_proxies = [\"127.0.0.0/8\"]");
    let stack = auth_stack_with("[rate_limits]\nregister = 2\nrevoke = 2", behind).await;
    let gateway = &stack.gateway;
    // Two proxies deep: the nearest (127.0.0.1) is trusted, the address before it is the client's.
    for (client, expected) in [
        ("198.51.100.1, 127.0.0.1", 201),
        ("198.51.100.1", 201),
        ("198.51.100.1", 429),
        // Another client behind the same proxy is not held back by the first.
        ("198.51.100.2", 201),
        // An IPv6 client is counted by its /64: a host holds a whole one.
        ("2001:db8::1", 201),
        ("2001:db8::2", 201),
        ("2001:db8::3", 429),
        ("2001:db8:0:1::1", 201),
    ] {
        assert_eq!(register_from(gateway, client).await, expected, "{client}");
    }
    // /revoke is limited too, as every endpoint of the authorization server.
    let client = public_client(gateway).await;
    let statuses = futures::future::join_all((0..3).map(|_| {
        reqwest::Client::new()
            .post(gateway.url("/revoke"))
            .header("x-forwarded-for", "198.51.100.3")
            .form(&[("token", "x"), ("client_id", client.as_str())])
            .send()
    }))
    .await;
    let mut statuses: Vec<u16> = statuses
        .iter()
        .map(|r| r.as_ref().unwrap().status().as_u16())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 429]);

    // Where no proxy is trusted, the header is anyone's word and counts for nothing: one bucket.
    let direct = auth_stack("[rate_limits]\nregister = 2").await;
    for (i, client) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .iter()
        .enumerate()
    {
        let expected = if i < 2 { 201 } else { 429 };
        assert_eq!(
            register_from(&direct.gateway, client).await,
            expected,
            "{client}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_user_name_is_limited_wherever_its_sign_in_attempts_come_from() {
    let behind = GatewayBuilder::new().server("trusted_proxies = [\"127.0.0.1\"]");
    let stack = auth_stack_with("[rate_limits]\nlogin = 0\nlogin_per_user = 3", behind).await;
    let gateway = &stack.gateway;
    let client = public_client(gateway).await;
    // Each attempt from another address, each with a fresh authorization request.
    let attempt = async |address: &str, user: &str, password: &str| {
        let mut agent = Agent::behind_proxy(address);
        let url = authorize_url(gateway, &client, &Pkce::new(), &[]);
        let (_, login, _) = agent.get(&url).await;
        let (_, _, page) = agent.get(&login.unwrap()).await;
        agent
            .post_form(
                &gateway.url("/login"),
                &[
                    (
                        "pending",
                        &integration_tests::oauth::hidden(&page, "pending"),
                    ),
                    ("csrf", &integration_tests::oauth::hidden(&page, "csrf")),
                    ("username", user),
                    ("password", password),
                ],
            )
            .await
    };
    for i in 0..3 {
        let (status, _, page) = attempt(&format!("198.51.100.{i}"), "alice", "guess").await;
        assert_eq!(status, 401, "{page}");
        assert!(page.contains("wrong"), "{page}");
    }
    let (status, _, page) = attempt("198.51.100.9", "Alice", "guess").await;
    assert_eq!(status, 429, "{page}");
    assert!(page.contains("Too many sign-in attempts"), "{page}");
    // Even the right password waits: the limit is what stops the guessing.
    let (status, _, _) = attempt("198.51.100.10", "alice", "wonderland").await;
    assert_eq!(status, 429);
    // Another user name is not held back.
    let (status, _, page) = attempt("198.51.100.11", "bob", "guess").await;
    assert_eq!(status, 401, "{page}");
    let metrics = gateway.metrics().await;
    let logins = |result: &str| {
        metrics[&format!("mcp_gateway_logins_total{{provider=\"local\",result=\"{result}\"}}")]
    };
    assert_eq!(
        (
            logins("wrong_password"),
            logins("rate_limited"),
            logins("success")
        ),
        (4.0, 2.0, 0.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_taken_out_of_the_users_file_loses_their_grant_at_the_next_refresh() {
    let mut stack = auth_stack("").await;
    let gateway = &stack.gateway;
    let client = public_client(gateway).await;
    let pkce = Pkce::new();
    let url = authorize_url(gateway, &client, &pkce, &[]);
    let back = authorize(gateway, &mut Agent::new(), &url, "alice", "wonderland").await;
    let (_, tokens) = token(gateway, &exchange(&client, &back["code"], &pkce.verifier)).await;
    let (access, refresh) = (
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
    );
    // The operator takes alice out (bob stays) and restarts.
    let users = gateway
        .config
        .lines()
        .find_map(|l| l.strip_prefix("users_file = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let bob = crate::oauth_flow::hash_password("builder");
    std::fs::write(
        &users,
        format!("[[users]]\nusername = \"bob\"\npassword_hash = \"{bob}\"\n"),
    )
    .unwrap();
    stack.gateway.restart().await;
    let gateway = &stack.gateway;
    let answer = token(gateway, &refreshing(&client, refresh)).await;
    assert_oauth_error(&answer, 400, "invalid_grant", "users file");
    // The grant is gone with it: the access token issued from it is refused now.
    assert_eq!(crate::oauth_rules::mcp_status(gateway, access).await, 401);
}
