//! The quickstart as shipped, on free ports: it starts, serves its metadata, and the demo user completes a
//! tool call, first through the SDK client and then, as the README tells a person to, from MCP Inspector.

use integration_tests::inspector::Inspector;
use integration_tests::{Quickstart, node, workspace_root};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn the_quickstart_starts_and_the_demo_user_calls_a_tool() {
    let quickstart = Quickstart::start().await;
    let origin = &quickstart.origin;

    let metadata: Value =
        reqwest::get(format!("{origin}/.well-known/oauth-protected-resource/mcp"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(metadata["resource"], format!("{origin}/mcp"));
    let server: Value = reqwest::get(format!("{origin}/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(server["issuer"], *origin);
    assert_eq!(
        server["registration_endpoint"],
        format!("{origin}/register")
    );
    assert_eq!(server["code_challenge_methods_supported"], json!(["S256"]));

    let report = node::run(
        "oauth-flow.mjs",
        &json!({ "url": format!("{origin}/mcp"), "username": "demo", "password": "demo" }),
    )
    .await;
    assert!(report.get("error").is_none(), "{report:#}");
    assert_eq!(
        report["tools"],
        json!(["make_authenticated_request", "show_auth_token"])
    );
    assert_ne!(report["shown"]["isError"], true, "{}", report["shown"]);
    assert!(
        report["shown"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains('…')
    );

    // State went where the quickstart says: ./data under the directory it runs in.
    assert!(quickstart.dir.path().join("data/gateway.db").is_file());
    // And it told the user where to connect.
    let stdout = std::fs::read_to_string(quickstart.process.log_path("stdout")).unwrap();
    assert!(stdout.contains(&format!("{origin}/mcp")), "{stdout}");
    assert!(stdout.contains("demo"), "{stdout}");
}

/// The "done when": from the README's run command to an authorized tool call from MCP Inspector.
/// Inspector's own web UI, in Chromium, does what the README says: switch the server on, sign in as
/// `demo`, allow, and call `show_auth_token`.
#[tokio::test(flavor = "multi_thread")]
async fn mcp_inspector_signs_in_to_the_quickstart_and_calls_a_tool() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").is_file(),
        "Chromium is missing: `apt-get install chromium` (.ci/run does)"
    );
    let quickstart = Quickstart::start().await;
    let origin = &quickstart.origin;
    let inspector = Inspector::start(&format!("{origin}/mcp")).await;
    let report = node::run(
        "inspector-flow.mjs",
        &json!({
            "inspectorUrl": inspector.url,
            "gatewayOrigin": origin,
            "username": "demo",
            "password": "demo",
            "screenshots": workspace_root().join("target/e2e-screenshots"),
        }),
    )
    .await;
    assert!(report.get("error").is_none(), "{report:#}");
    // Both of the gateway's pages were shown: this Inspector had never been approved.
    assert_eq!(report["gatewayPages"], json!(["Sign in", "Allow access?"]));
    assert_eq!(report["connected"], true);
    assert_eq!(
        report["tools"],
        json!(["make_authenticated_request", "show_auth_token"])
    );
    // The backend saw a token (masked in the answer), so the call was authorized end to end.
    let result = report["result"].as_str().unwrap();
    assert!(result.contains('…'), "{result}");
    // The gateway logged the tool call for the demo user, through a client Inspector registered.
    let log = quickstart
        .process
        .wait_for_output(|log| {
            log.contains("tool=\"show_auth_token\"") && log.contains("user=demo")
        })
        .await;
    assert!(
        log.contains("tool=\"show_auth_token\"") && log.contains("user=demo"),
        "{log}"
    );
}
