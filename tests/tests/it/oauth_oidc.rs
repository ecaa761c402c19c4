//! The `oidc` provider against a real OpenID Connect provider (npm `oidc-provider`): discovery, the
//! code flow with PKCE and nonce, the ID token checked, the provider's token forwarded and refreshed.

use base64::Engine as _;
use integration_tests::oauth::refreshing;
use integration_tests::{
    EchoTarget, GatewayBuilder, Running, free_port, node, supervised_backend_route, wait_for_port,
    workspace_root,
};
use serde_json::json;

const SECRET: &str = "oidc-client-secret-0123456789";

pub struct Stack {
    pub gateway: integration_tests::GatewayUnderTest,
    /// What the provider says of its users from now on: a JSON file it reads at each use.
    pub accounts: std::path::PathBuf,
    _provider: Running,
    _echo: EchoTarget,
    _dir: tempfile::TempDir,
}

async fn oidc_stack(extra: &str) -> Stack {
    oidc_stack_routed(extra, "").await
}

/// The same, with `route_extra` lines in the `/mcp` route's table (its policy, say).
pub async fn oidc_stack_routed(extra: &str, route_extra: &str) -> Stack {
    let echo = EchoTarget::start().await;
    let builder = GatewayBuilder::new()
        .env("OIDC_SECRET", SECRET)
        .env(
            "TOKEN_KEY",
            &base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
        )
        .store("token_key_env = \"TOKEN_KEY\"");
    let origin = builder.origin();
    let provider_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let accounts = dir.path().join("accounts.json");
    // The provider's access tokens live 30 s, so that every use finds one close to expiry and refreshes it.
    let plan = json!({ "port": provider_port, "clientId": "gateway", "clientSecret": SECRET,
                       "redirectUri": format!("{origin}/callback"), "accessTokenTtl": 30,
                       "accountsFile": accounts.display().to_string() });
    let provider = Running::start(
        std::path::Path::new("node"),
        &[
            workspace_root()
                .join("tests/e2e/oidc-provider.mjs")
                .to_str()
                .unwrap(),
            &plan.to_string(),
        ],
        &[],
    );
    wait_for_port(provider_port, "oidc-provider").await;
    let backend_port = free_port();
    let gateway = builder
        .section(&format!(
            "[provider]\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:{provider_port}\"\nclient_id = \"gateway\"\n\
             client_secret_env = \"OIDC_SECRET\"\n{extra}\n\n{route}",
            route = supervised_backend_route(&origin, backend_port, &echo.url(), route_extra),
        ))
        .start()
        .await;
    wait_for_port(backend_port, "the supervised mcp-backend").await;
    Stack {
        gateway,
        accounts,
        _provider: provider,
        _echo: echo,
        _dir: dir,
    }
}

pub fn plan(stack: &Stack) -> serde_json::Value {
    json!({ "url": stack.gateway.url("/mcp"), "username": "alice", "password": "any" })
}

#[tokio::test(flavor = "multi_thread")]
async fn users_sign_in_at_an_openid_provider_and_its_token_is_forwarded_and_refreshed() {
    let stack = oidc_stack("").await;
    let report = node::run("oauth-flow.mjs", &plan(&stack)).await;
    assert!(report.get("error").is_none(), "{report:#}");

    let forms = node::forms(&report);
    assert_eq!(
        forms.first(),
        Some(&"consent"),
        "our consent comes before the provider: {report:#}"
    );
    assert!(forms.contains(&"upstream-login"), "{report:#}");
    let paths = node::visited_paths(&report);
    assert!(paths.contains(&"/callback"), "{paths:?}");

    // The ID token's user, and a verified email, are who the access token names.
    let claims =
        integration_tests::oauth::jwt_claims(report["tokens"][0]["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["email"], "alice@example.com");

    // The backend acted with the provider's (opaque) token, refreshed before each use that found it
    // close to expiry: two uses, two different provider tokens.
    let shown = report["shown"]["content"][0]["text"].as_str().unwrap();
    let later = report["afterRefresh"]["content"][0]["text"]
        .as_str()
        .unwrap();
    assert_ne!(report["shown"]["isError"], true, "{report:#}");
    assert!(
        !shown.starts_with("eyJ"),
        "not a token the gateway minted: {shown}"
    );
    assert_ne!(shown, later, "the provider's token was refreshed");
    assert_eq!(
        report["tools"],
        json!(["make_authenticated_request", "show_auth_token"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_outside_the_allowlists_is_turned_away() {
    let stack = oidc_stack("allowed_domains = [\"example.org\"]").await;
    let report = node::run("oauth-flow.mjs", &plan(&stack)).await;
    assert!(report.get("error").is_none(), "{report:#}");
    assert_eq!(report["denied"]["error"], "access_denied", "{report:#}");

    let stack = oidc_stack("allowed_emails = [\"alice@example.com\"]").await;
    let report = node::run("oauth-flow.mjs", &plan(&stack)).await;
    assert!(
        report.get("denied").is_none() && report.get("error").is_none(),
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_providers_groups_claim_is_what_a_policy_names() {
    let stack = oidc_stack_routed("", &crate::policy::requests_only_for("oidc-admins")).await;
    // alice is in oidc-admins at the provider: she sees and calls both tools.
    let report = node::run("oauth-flow.mjs", &plan(&stack)).await;
    assert!(report.get("error").is_none(), "{report:#}");
    assert_eq!(
        report["tools"],
        json!(["make_authenticated_request", "show_auth_token"])
    );
    assert!(
        report["request"]["content"].is_array(),
        "{}",
        report["request"]
    );
    // bob is not: the tool is not listed, and his app's call of it is refused.
    let mut bob = plan(&stack);
    bob["username"] = json!("bob");
    let report = node::run("oauth-flow.mjs", &bob).await;
    assert_eq!(report["tools"], json!(["show_auth_token"]), "{report:#}");
    let error = report["error"].as_str().unwrap_or_default();
    assert!(error.contains("make_authenticated_request"), "{report:#}");
}

/// What the provider says of a user is learnt again at each refresh: groups taken away at the
/// provider leave the next access token, and a provider that no longer says which groups the user
/// is in, where a policy reads them, ends the grant.
#[tokio::test(flavor = "multi_thread")]
async fn groups_and_email_are_learnt_again_at_each_refresh() {
    use integration_tests::oauth::{jwt_claims, query_of, token};
    let stack = oidc_stack_routed("", &crate::policy::requests_only_for("oidc-admins")).await;
    let mut plan = plan(&stack);
    plan["keepGrant"] = json!(true);
    let report = node::run("oauth-flow.mjs", &plan).await;
    assert!(report.get("error").is_none(), "{report:#}");
    let client_id = query_of(report["authorizeUrl"].as_str().unwrap())["client_id"].clone();
    let gateway = &stack.gateway;
    let refresh = async |refresh_token: &str| {
        let form = refreshing(client_id.as_str(), refresh_token);
        token(gateway, &form).await
    };
    let claims = jwt_claims(report["kept"]["access_token"].as_str().unwrap());
    assert_eq!(claims["groups"], json!(["staff", "oidc-admins"]));

    std::fs::write(
        &stack.accounts,
        json!({"alice": {"groups": ["staff"], "email": "alice@example.org"}}).to_string(),
    )
    .unwrap();
    let (status, tokens) = refresh(report["kept"]["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["groups"], json!(["staff"]), "{claims}");
    assert_eq!(claims["email"], "alice@example.org");

    std::fs::write(
        &stack.accounts,
        json!({"alice": {"groups": null}}).to_string(),
    )
    .unwrap();
    let (status, answer) = refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_grant")),
        "{answer}"
    );
    assert!(
        answer["error_description"]
            .as_str()
            .unwrap()
            .contains("no longer gives the user's groups"),
        "{answer}"
    );
}
