//! Pre-registered clients, introspection and rate limits.

use integration_tests::GatewayBuilder;
use integration_tests::oauth::{
    Agent, Pkce, REDIRECT, authorize, authorize_url, exchange, public_client, register,
    register_response, token,
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
    let stack = auth_stack_with(&extra, GatewayBuilder::new().env("BACKEND_SECRET", SECRET)).await;
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
    let introspect = |token: String, secret: &'static str| {
        let url = gateway.url("/introspect");
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

    // Revoked: inactive.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let response = reqwest::Client::new()
        .post(gateway.url("/revoke"))
        .form(&[("token", refresh), ("client_id", "first-party")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, body) = introspect(access, SECRET).await;
    assert_eq!(body, json!({ "active": false }));
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
        let (status, _) = token(
            gateway,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client),
                ("refresh_token", "x"),
            ],
        )
        .await;
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
