//! `/register` (RFC 7591): what is accepted, echoed, narrowed or refused.

use serde_json::json;

use super::{AsEndpoint, Harness, REDIRECT, json_of};

#[tokio::test]
async fn registration_validates_and_echoes_metadata() {
    let harness = Harness::new();
    let (status, body) = harness
        .register(&json!({ "client_name": "App", "redirect_uris": ["https://app.example/cb", "http://localhost/cb"],
            "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "client_secret_basic",
            "scope": "mcp", "application_type": "web" }))
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
            json!({ "redirect_uris": [REDIRECT], "client_name": "x".repeat(201) }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": [REDIRECT], "client_uri": "http://app.example" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": [REDIRECT], "application_type": "desktop" }),
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
        let (status, body) = harness.register(&metadata).await;
        assert_eq!(status, 400, "{metadata}: {body}");
        assert_eq!(body["error"], error, "{metadata}");
    }
    let response = harness
        .call(
            AsEndpoint::Register,
            http::Method::POST,
            None,
            &[("content-type", "text/plain")],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(json_of(&response)["error"], "invalid_client_metadata");
}

#[tokio::test]
async fn registration_drops_the_standard_scopes_it_does_not_issue_and_gives_public_clients_no_secret()
 {
    let harness = Harness::new();
    let (status, body) = harness
        .register(
            &json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
            "scope": "openid mcp offline_access" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["scope"], "mcp", "what was registered is what is said");
    assert!(body.get("client_secret").is_none(), "{body}");
    assert_eq!(body["grant_types"], json!(["authorization_code"]));
}
