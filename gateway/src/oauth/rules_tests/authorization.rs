//! `/authorize`: errors on a page until the client and its redirect are trusted, then back to the
//! client with `state` and `iss`.

use serde_json::json;

use super::{
    AsEndpoint, Browser, Harness, ORIGIN, Pkce, REDIRECT, authorize_query, has_location, location,
    query_of, text_of,
};

#[tokio::test]
async fn authorize_errors_before_the_redirect_is_trusted_show_a_page() {
    let harness = Harness::new();
    let client = harness.public_client().await;
    let pkce = Pkce::new();
    let mut browser = Browser::default();
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
        let query = authorize_query(&client, &pkce, &overrides);
        let response = browser.get(&harness, AsEndpoint::Authorize, &query).await;
        assert_eq!(
            response.status().as_u16(),
            400,
            "{why}: {}",
            text_of(&response)
        );
        assert!(!has_location(&response), "{why}: never a redirect");
        assert!(text_of(&response).contains("Authorization failed"), "{why}");
    }
    let repeated = format!("{}&state=again", authorize_query(&client, &pkce, &[]));
    let response = browser
        .get(&harness, AsEndpoint::Authorize, &repeated)
        .await;
    assert_eq!(
        (response.status().as_u16(), has_location(&response)),
        (400, false),
        "a repeated parameter"
    );
    let response = browser
        .send(
            &harness,
            AsEndpoint::Authorize,
            http::Method::POST,
            Some(authorize_query(&client, &pkce, &[])),
            "",
        )
        .await;
    assert_eq!(response.status().as_u16(), 405, "only GET");
}

#[tokio::test]
async fn later_authorize_errors_go_back_to_a_configured_client_with_state_and_iss() {
    let harness = Harness::new();
    let client = harness.configured_client().await;
    let pkce = Pkce::new();
    let mut browser = Browser::default();
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
        let query = authorize_query(&client, &pkce, &overrides);
        let response = browser.get(&harness, AsEndpoint::Authorize, &query).await;
        assert_eq!(response.status().as_u16(), 302, "{overrides:?}");
        let location = location(&response);
        assert!(location.starts_with(REDIRECT), "{location}");
        let query = query_of(&location);
        assert_eq!(query["error"], error, "{overrides:?}");
        assert_eq!(query["state"], "st");
        assert_eq!(query["iss"], ORIGIN);
        assert!(!query.contains_key("code"));
        // A client anyone registered gets the same error on this server's page, not at its URI.
        let registered = harness.public_client().await;
        let query = authorize_query(&registered, &pkce, &overrides);
        let response = browser.get(&harness, AsEndpoint::Authorize, &query).await;
        assert_eq!(response.status().as_u16(), 400, "{overrides:?}");
        assert!(
            !has_location(&response),
            "no redirect before the user acted"
        );
        assert!(text_of(&response).contains(error), "{overrides:?}");
    }
    // A long state goes through whole; a loopback redirect may use another port; the resource may
    // carry a trailing slash.
    let state = "s".repeat(2000);
    let resource = format!("{ORIGIN}/mcp/");
    let overrides = [
        ("state", state.as_str()),
        ("redirect_uri", "http://127.0.0.1:5555/callback"),
        ("resource", &resource),
    ];
    let query = authorize_query(&client, &pkce, &overrides);
    let redirect = browser.authorize(&harness, &query).await;
    assert_eq!(redirect["state"], state);
    assert!(redirect.contains_key("code"));
}

#[tokio::test]
async fn an_app_redirect_gets_its_errors_on_a_page_until_the_user_acts() {
    let harness = Harness::new();
    let (status, body) = harness
        .register(&json!({ "redirect_uris": ["com.example.app:/cb"], "token_endpoint_auth_method": "none" }))
        .await;
    assert_eq!(status, 201, "{body}");
    let client = body["client_id"].as_str().unwrap();
    let overrides = [
        ("redirect_uri", "com.example.app:/cb"),
        ("response_type", "token"),
    ];
    let query = authorize_query(client, &Pkce::new(), &overrides);
    let response = Browser::default()
        .get(&harness, AsEndpoint::Authorize, &query)
        .await;
    assert_eq!(response.status().as_u16(), 400);
    assert!(!has_location(&response), "a link cannot launch the app");
    assert!(text_of(&response).contains("unsupported_response_type"));
}
