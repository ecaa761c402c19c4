//! The login and consent pages in a real browser (Debian's Chromium through playwright-core), with a
//! screenshot of each page kept in `target/e2e-screenshots/`.

use integration_tests::oauth::{Pkce, register, token};
use integration_tests::{free_port, node, workspace_root};
use serde_json::json;

use crate::oauth_flow::auth_stack;

#[tokio::test(flavor = "multi_thread")]
async fn a_real_browser_signs_in_and_consents() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").is_file(),
        "Chromium is missing: `apt-get install chromium` (.ci/run does)"
    );
    let stack = auth_stack("").await;
    let gateway = &stack.gateway;
    // A redirect URI on an ordinary port (browsers refuse port 1); nothing listens there, the browser's
    // request to it is answered by the test.
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let (status, registered) = register(
        gateway,
        json!({ "client_name": "Browser App", "redirect_uris": [redirect], "token_endpoint_auth_method": "none" }),
    )
    .await;
    assert_eq!(status, 201);
    let client = registered["client_id"].as_str().unwrap().to_owned();
    let pkce = Pkce::new();
    let screenshots = workspace_root().join("target/e2e-screenshots");
    let report = node::run(
        "browser-flow.mjs",
        &json!({
            "authorizeUrl": integration_tests::oauth::authorize_url(gateway, &client, &pkce, &[("redirect_uri", &redirect)]),
            "redirectUri": redirect,
            "username": "alice",
            "password": "wonderland",
            "screenshots": screenshots,
        }),
    )
    .await;
    assert!(report.get("error").is_none(), "{report:#}");
    assert_eq!(report["titles"], json!(["Sign in", "Allow access?", "App"]));
    let consent = report["consentText"].as_str().unwrap();
    assert!(
        consent.contains("Browser App")
            && consent.contains("127.0.0.1")
            && consent.contains("alice"),
        "{consent}"
    );
    for path in report["screenshots"].as_array().unwrap() {
        let bytes = std::fs::read(path.as_str().unwrap()).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 1000,
            "{path} is a real screenshot"
        );
    }

    // The code the browser brought back is good.
    let landed = &report["redirect"];
    assert_eq!(landed["state"], "st");
    assert_eq!(landed["iss"], gateway.origin);
    let code = landed["code"].as_str().expect("a code");
    let (status, tokens) = token(
        gateway,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client),
            ("code", code),
            ("code_verifier", &pkce.verifier),
            ("redirect_uri", &redirect),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
}
