//! The authorization server with the `local` provider, driven by the official TypeScript SDK client
//! through discovery, registration, login, consent, code, tokens, tools, refresh and revocation.

use std::io::Write as _;
use std::process::{Command, Stdio};

use integration_tests::{
    EchoTarget, GatewayBuilder, GatewayUnderTest, binary, free_port, node,
    supervised_backend_route, wait_for_port,
};
use serde_json::{Value, json};

/// An argon2id hash made by the gateway's own `hash-password`.
pub fn hash_password(password: &str) -> String {
    let mut child = Command::new(binary("mcp-auth-gateway"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

pub struct AuthStack {
    pub gateway: GatewayUnderTest,
    pub _echo: EchoTarget,
}

/// A gateway with the local provider (user `alice`, password `wonderland`) in front of a supervised
/// mcp-backend at `/mcp`.
pub async fn auth_stack(extra: &str) -> AuthStack {
    auth_stack_with(extra, GatewayBuilder::new()).await
}

/// A users file for the `local` provider with `alice` (password `wonderland`, in the group
/// `admins`) and `bob` (password `builder`, in no group). It is left behind in the temporary
/// directory: the gateway reads it when it starts, and again when a test restarts it.
pub fn users_file() -> std::path::PathBuf {
    let users = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        users.path(),
        format!(
            "[[users]]\nusername = \"alice\"\npassword_hash = \"{}\"\nemail = \"alice@example.com\"\ngroups = [\"admins\"]\n\n\
             [[users]]\nusername = \"bob\"\npassword_hash = \"{}\"\n",
            hash_password("wonderland"),
            hash_password("builder")
        ),
    )
    .unwrap();
    users.keep().unwrap().1
}

/// The same, from a builder the caller has set up (environment variables, say).
pub async fn auth_stack_with(extra: &str, builder: GatewayBuilder) -> AuthStack {
    auth_stack_routed(extra, "", builder).await
}

/// The same, with `route_extra` lines in the `/mcp` route's table (its scopes, say).
pub async fn auth_stack_routed(
    extra: &str,
    route_extra: &str,
    builder: GatewayBuilder,
) -> AuthStack {
    let echo = EchoTarget::start().await;
    let users_path = users_file();
    let origin = builder.origin();
    let backend_port = free_port();
    let gateway = builder
        .section(&format!(
            "[provider]\nkind = \"local\"\nusers_file = {users:?}\n\n{extra}\n\n{route}",
            users = users_path.display().to_string(),
            route = supervised_backend_route(&origin, backend_port, &echo.url(), route_extra),
        ))
        .start()
        .await;
    wait_for_port(backend_port, "the supervised mcp-backend").await;
    AuthStack {
        gateway,
        _echo: echo,
    }
}

fn plan(gateway: &GatewayUnderTest, extra: Value) -> Value {
    let mut plan =
        json!({ "url": gateway.url("/mcp"), "username": "alice", "password": "wonderland" });
    plan.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    plan
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_client_completes_the_whole_flow_with_the_local_provider() {
    let stack = auth_stack("").await;
    let gateway = &stack.gateway;
    let report = node::run("oauth-flow.mjs", &plan(gateway, json!({}))).await;
    assert!(report.get("error").is_none(), "{report:#}");

    // The user agent went /authorize -> /login -> (post) -> /consent -> (post) -> the app.
    let paths = node::visited_paths(&report);
    assert_eq!(
        paths,
        vec!["/authorize", "/login", "/login", "/consent", "/consent"],
        "{report:#}"
    );
    let consent = node::page_with_form(&report, "consent");
    assert_eq!(consent["frameOptions"], "DENY");
    assert!(
        consent["csp"]
            .as_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let text = consent["text"].as_str().unwrap();
    for shown in [
        "Integration Test App",
        "127.0.0.1",
        "mcp",
        &gateway.url("/mcp"),
        "alice",
    ] {
        assert!(
            text.contains(shown),
            "the consent page names {shown:?}: {text}"
        );
    }

    // The authorization request was OAuth 2.1 with PKCE S256 and the resource; the answer came with iss.
    let authorize = url::Url::parse(report["authorizeUrl"].as_str().unwrap()).unwrap();
    let query: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["resource"], gateway.url("/mcp"));
    assert_eq!(report["redirect"]["iss"], gateway.origin);
    assert_eq!(report["stateMatched"], true);
    assert_eq!(
        report["registered"]["redirect_uris"],
        json!(["http://127.0.0.1:1/oauth/callback"])
    );
    assert!(
        report["registered"].get("client_secret").is_none(),
        "a public client gets no secret"
    );

    assert_eq!(
        report["tools"],
        json!(["make_authenticated_request", "show_auth_token"])
    );
    assert_ne!(report["shown"]["isError"], true, "{}", report["shown"]);
    assert_ne!(report["request"]["isError"], true, "{}", report["request"]);
    assert_eq!(
        report["request"]["structuredContent"]["args"]["message"],
        "from the oauth flow"
    );
    let tokens = &report["tokens"][0];
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "mcp");
    assert!(tokens["expires_in"].as_u64().unwrap() > 0);
    // The backend never saw the client's token.
    let access = tokens["access_token"].as_str().unwrap();
    let shown = report["shown"]["content"][0]["text"].as_str().unwrap();
    assert!(!shown.ends_with(&access[access.len() - 4..]), "{shown}");

    assert_eq!(report["refresh"]["result"], "AUTHORIZED");
    assert_eq!(report["refresh"]["accessChanged"], true);
    assert_eq!(report["refresh"]["refreshRotated"], true);
    assert_ne!(report["afterRefresh"]["isError"], true);

    assert_eq!(report["revokeStatus"], 200);
    assert_eq!(
        report["afterRevoke"]["status"], 401,
        "a revoked grant's access token is refused at once"
    );
    assert!(
        report["afterRevoke"]["challenge"]
            .as_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert_eq!(report["refreshAfterRevoke"]["status"], 400);
    assert_eq!(
        report["refreshAfterRevoke"]["body"]["error"],
        "invalid_grant"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn denying_consent_returns_access_denied_to_the_app() {
    let stack = auth_stack("").await;
    let report = node::run(
        "oauth-flow.mjs",
        &plan(&stack.gateway, json!({ "consent": "deny" })),
    )
    .await;
    assert!(report.get("error").is_none(), "{report:#}");
    assert_eq!(report["denied"]["error"], "access_denied");
    assert_eq!(report["denied"]["iss"], stack.gateway.origin);
    assert!(report["denied"].get("code").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confidential_client_authenticates_at_the_token_endpoint() {
    let stack = auth_stack("").await;
    for method in ["client_secret_post", "client_secret_basic"] {
        let report = node::run(
            "oauth-flow.mjs",
            &plan(&stack.gateway, json!({ "tokenAuth": method })),
        )
        .await;
        assert!(report.get("error").is_none(), "{method}: {report:#}");
        assert!(
            report["registered"]["client_secret"]
                .as_str()
                .is_some_and(|s| s.len() >= 32),
            "{method}"
        );
        assert_eq!(report["registered"]["client_secret_expires_at"], 0);
        assert_eq!(report["tools"].as_array().unwrap().len(), 2, "{method}");
    }
}
