//! The quickstart as shipped (`config/quickstart.toml` with its users file and `config/mcp-backend.toml`),
//! on free ports: it starts, serves its metadata, and the demo user completes a tool call.

use integration_tests::{Running, binary, free_port, node, wait_for_port, workspace_root};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn the_quickstart_starts_and_the_demo_user_calls_a_tool() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, metrics, backend) = (free_port(), free_port(), free_port());
    // The shipped files, with only their ports and the backend's path moved.
    let rewrite = |text: String| {
        text.replace("127.0.0.1:8080", &format!("127.0.0.1:{gateway}"))
            .replace("127.0.0.1:9464", &format!("127.0.0.1:{metrics}"))
            .replace("127.0.0.1:9000", &format!("127.0.0.1:{backend}"))
            .replace(
                "target/release/mcp-backend",
                &binary("mcp-backend").display().to_string(),
            )
    };
    for file in [
        "quickstart.toml",
        "mcp-backend.toml",
        "users/quickstart.toml",
    ] {
        let text = std::fs::read_to_string(workspace_root().join("config").join(file)).unwrap();
        let target = dir.path().join("config").join(file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, rewrite(text)).unwrap();
    }
    let mut process = Running::start_in(
        &binary("mcp-auth-gateway"),
        &["--config", "config/quickstart.toml"],
        dir.path(),
    );
    let origin = format!("http://127.0.0.1:{gateway}");
    process.wait_ready(&format!("{origin}/readyz")).await;
    wait_for_port(backend, "the quickstart's mcp-backend").await;

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
    assert_eq!(server["issuer"], origin);
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
    assert!(dir.path().join("data/gateway.db").is_file());
    // And it told the user where to connect.
    let stdout = std::fs::read_to_string(process.log_path("stdout")).unwrap();
    assert!(stdout.contains(&format!("{origin}/mcp")), "{stdout}");
    assert!(stdout.contains("demo"), "{stdout}");
}
