//! The `github` provider: consent first, then GitHub (a local stand-in through endpoint overrides),
//! then the client's code; the backend acts with the user's GitHub token, which the store keeps sealed.

use base64::Engine as _;
use integration_tests::github::{CLIENT_ID, CLIENT_SECRET, GitHubStandIn};
use integration_tests::oauth::refreshing;
use integration_tests::oauth::{assert_oauth_error, jwt_claims};
use integration_tests::{
    EchoTarget, GatewayBuilder, free_port, node, supervised_backend_route, wait_for_port,
};
use serde_json::json;

struct Stack {
    gateway: integration_tests::GatewayUnderTest,
    github: GitHubStandIn,
    _echo: EchoTarget,
}

async fn github_stack(allowlists: &str) -> Stack {
    github_stack_routed(allowlists, "").await
}

/// The same, with `route_extra` lines in the `/mcp` route's table (its policy, say).
async fn github_stack_routed(allowlists: &str, route_extra: &str) -> Stack {
    github_stack_in_orgs(allowlists, route_extra, 0).await
}

/// The same, with the user in `more_orgs` organisations besides `acme`.
async fn github_stack_in_orgs(allowlists: &str, route_extra: &str, more_orgs: usize) -> Stack {
    let github = GitHubStandIn::with_orgs(more_orgs).await;
    let echo = EchoTarget::start().await;
    let builder = GatewayBuilder::new()
        .env("GITHUB_SECRET", CLIENT_SECRET)
        .env(
            "TOKEN_KEY",
            &base64::engine::general_purpose::STANDARD.encode([42u8; 32]),
        )
        // Another key, for a test that turns the sealed tokens unreadable.
        .env(
            "OTHER_TOKEN_KEY",
            &base64::engine::general_purpose::STANDARD.encode([43u8; 32]),
        );
    let origin = builder.origin();
    let backend_port = free_port();
    let gateway = builder
        .section(&format!(
            "[provider]\nkind = \"github\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret_env = \"GITHUB_SECRET\"\n\
             web_url = \"{gh}\"\napi_url = \"{gh}\"\n{allowlists}\n\n{route}",
            gh = github.origin,
            route = supervised_backend_route(&origin, backend_port, &echo.url(), route_extra),
        ))
        .store("token_key_env = \"TOKEN_KEY\"")
        .start()
        .await;
    wait_for_port(backend_port, "the supervised mcp-backend").await;
    Stack {
        gateway,
        github,
        _echo: echo,
    }
}

fn plan(stack: &Stack) -> serde_json::Value {
    json!({ "url": stack.gateway.url("/mcp"), "username": "unused", "password": "unused" })
}

#[tokio::test(flavor = "multi_thread")]
async fn users_sign_in_at_github_and_the_backend_gets_their_github_token() {
    let mut stack = github_stack("").await;
    let mut plan = plan(&stack);
    plan["keepGrant"] = json!(true);
    let report = node::run("oauth-flow.mjs", &plan).await;
    assert!(report.get("error").is_none(), "{report:#}");

    // Consent came before the browser went to GitHub.
    let paths = node::visited_paths(&report);
    assert_eq!(
        paths,
        vec![
            "/authorize",
            "/consent",
            "/consent",
            "/login/oauth/authorize",
            "/callback"
        ],
        "{report:#}"
    );
    let consent = node::page_with_form(&report, "consent");
    assert!(
        consent["text"]
            .as_str()
            .unwrap()
            .contains("Integration Test App")
    );
    assert!(
        consent["csp"]
            .as_str()
            .unwrap()
            .contains(&stack.github.origin),
        "the form may lead to GitHub"
    );

    // The backend acted with the user's GitHub token (masked), not the client's nor a minted one.
    let github_token = stack.github.tokens().pop().expect("GitHub issued a token");
    let shown = report["shown"]["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        shown,
        format!(
            "{}…{}",
            &github_token[..4],
            &github_token[github_token.len() - 4..]
        )
    );
    assert_ne!(report["request"]["isError"], true, "{}", report["request"]);

    // The access token names the GitHub user.
    let claims = jwt_claims(report["tokens"][0]["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "github:4242");
    assert_eq!(claims["preferred_username"], "octocat");
    assert_eq!(
        claims["email"], "octocat@example.com",
        "the primary verified address"
    );

    // The GitHub token is sealed at rest.
    let db = stack
        .gateway
        .config
        .lines()
        .find(|l| l.starts_with("path = "))
        .unwrap();
    let db = db
        .trim_start_matches("path = ")
        .trim_matches('"')
        .to_owned();
    for file in [db.clone(), format!("{db}-wal")] {
        if let Ok(bytes) = std::fs::read(&file) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(&github_token),
                "{file} holds the GitHub token in the clear"
            );
        }
    }

    // Sealed with another key, the GitHub token cannot be read: the request fails closed (502),
    // where it used to go on with a token of the gateway's own in the GitHub token's place.
    let config = stack.gateway.config.replace(
        "token_key_env = \"TOKEN_KEY\"",
        "token_key_env = \"OTHER_TOKEN_KEY\"",
    );
    stack.gateway.rewrite_config(&config).await;
    let kept = report["kept"]["access_token"].as_str().unwrap();
    let response = reqwest::Client::new()
        .post(stack.gateway.url("/mcp"))
        .header("authorization", format!("Bearer {kept}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "bad_gateway", "{body}");
    // And the grant is over: a refresh ends it, so that the client signs in again instead of
    // refreshing into a 502 on every request.
    let refresh = [
        ("grant_type", "refresh_token"),
        (
            "refresh_token",
            report["kept"]["refresh_token"].as_str().unwrap(),
        ),
        (
            "client_id",
            report["registered"]["client_id"].as_str().unwrap(),
        ),
    ];
    let answer = integration_tests::oauth::token(&stack.gateway, &refresh).await;
    assert_oauth_error(&answer, 400, "invalid_grant", "no longer available");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_outside_the_allowlists_is_turned_away() {
    let stack = github_stack("allowed_orgs = [\"initech\"]").await;
    let report = node::run("oauth-flow.mjs", &plan(&stack)).await;
    assert!(report.get("error").is_none(), "{report:#}");
    assert_eq!(report["denied"]["error"], "access_denied", "{report:#}");
    assert!(
        report["denied"]["error_description"]
            .as_str()
            .unwrap()
            .contains("organisations")
    );

    let stack = github_stack("allowed_users = [\"octocat\"]\nallowed_orgs = [\"acme\"]").await;
    let report = node::run("oauth-flow.mjs", &plan(&stack)).await;
    assert!(
        report.get("denied").is_none() && report.get("error").is_none(),
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_no_longer_allowed_loses_their_grant_at_the_next_refresh() {
    // Allowed by numeric ids, which no rename changes: the user 4242 in the organisation 777.
    let mut stack = github_stack("allowed_user_ids = [4242]\nallowed_org_ids = [777]").await;
    let mut plan = plan(&stack);
    plan["keepGrant"] = json!(true);
    let report = node::run("oauth-flow.mjs", &plan).await;
    assert!(
        report.get("error").is_none() && report.get("denied").is_none(),
        "{report:#}"
    );
    let client = report["registered"]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let origin = stack.gateway.origin.clone();
    let refresh = |token: String| {
        let (origin, client) = (origin.clone(), client.clone());
        async move {
            let form = refreshing(client.as_str(), token.as_str());
            integration_tests::oauth::token(origin.as_str(), &form).await
        }
    };
    // While GitHub still says yes, a refresh asks it and goes through.
    let kept = report["kept"]["refresh_token"].as_str().unwrap().to_owned();
    let (status, tokens) = refresh(kept).await;
    assert_eq!(status, 200, "{tokens}");
    let next = tokens["refresh_token"].as_str().unwrap().to_owned();

    // The operator narrows the organisations: the next refresh ends the grant.
    let config = stack
        .gateway
        .config
        .replace("allowed_org_ids = [777]", "allowed_org_ids = [778]");
    stack.gateway.rewrite_config(&config).await;
    let answer = refresh(next).await;
    assert_oauth_error(&answer, 400, "invalid_grant", "organisations");
}

#[tokio::test(flavor = "multi_thread")]
async fn github_organisations_and_teams_are_groups_a_policy_can_name() {
    let stack = github_stack_routed("", &crate::policy::requests_only_for("777/31337")).await;
    let report = node::run("oauth-flow.mjs", &plan(&stack)).await;
    assert!(report.get("error").is_none(), "{report:#}");
    // The team's members may make requests: GitHub's organisations and teams became groups, by
    // the ids no rename changes.
    assert_ne!(report["request"]["isError"], true, "{}", report["request"]);
    assert!(
        report["request"]["content"].is_array(),
        "{}",
        report["request"]
    );
    let claims = jwt_claims(report["tokens"][0]["access_token"].as_str().unwrap());
    assert_eq!(claims["groups"], json!(["777", "777/31337"]));
    assert_eq!(claims.get("groups_truncated"), None);
}

/// GitHub's lists are read page after page: an organisation on the second page is a group; a user in
/// more organisations than the gateway reads meets every rule that denies by group.
#[tokio::test(flavor = "multi_thread")]
async fn github_groups_are_read_across_pages_and_a_list_cut_short_meets_every_deny() {
    let stack = github_stack_in_orgs("", &crate::policy::requests_only_for("9149"), 150).await;
    let report = node::run("oauth-flow.mjs", &plan(&stack)).await;
    assert!(report.get("error").is_none(), "{report:#}");
    assert!(
        report["request"]["content"].is_array(),
        "{}",
        report["request"]
    );
    let claims = jwt_claims(report["tokens"][0]["access_token"].as_str().unwrap());
    let groups = claims["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 152, "151 organisations and a team");
    assert!(groups.contains(&json!("9149")));

    let deny_a_group = "[routes.policy]\ndefault = \"allow\"\n\
        [[routes.policy.rules]]\nname = \"not-contractors\"\neffect = \"deny\"\n\
        tools = [\"make_authenticated_request\"]\ngroups = [\"555\"]\n";
    let stack = github_stack_in_orgs("", deny_a_group, 1500).await;
    let mut plan = plan(&stack);
    plan["keepGrant"] = json!(true);
    let report = node::run("oauth-flow.mjs", &plan).await;
    // Not seen in the group, but maybe in it: the call is refused.
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("-32602") && error.contains("make_authenticated_request"),
        "{report:#}"
    );
    let claims = jwt_claims(report["tokens"][0]["access_token"].as_str().unwrap());
    assert_eq!(claims["groups_truncated"], true, "{claims}");
    assert!(!claims["groups"].as_array().unwrap().contains(&json!("555")));
}
