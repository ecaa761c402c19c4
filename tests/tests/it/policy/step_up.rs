//! A caller steps up to a scope a policy reserves, through the real OAuth flow.

use integration_tests::{GatewayBuilder, node};
use serde_json::json;

/// `/mcp` offering `tools:admin`, which the rule that lets `admins` make requests reserves.
const STEP_UP_ROUTE: &str = "scopes_supported = [\"mcp\", \"tools:admin\"]\nrequired_scopes = [\"mcp\"]\n\
    [routes.policy]\n\
    [[routes.policy.rules]]\neffect = \"allow\"\ntools = [\"show_auth_token\"]\n\
    [[routes.policy.rules]]\nname = \"admins\"\neffect = \"allow\"\ntools = [\"make_authenticated_request\"]\n\
    groups = [\"admins\"]\nscopes = [\"tools:admin\"]\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_steps_up_to_a_reserved_scope_through_the_real_oauth_flow() {
    let stack =
        crate::oauth_flow::auth_stack_routed("", STEP_UP_ROUTE, GatewayBuilder::new()).await;
    let plan = |user: &str, password: &str| {
        json!({
            "url": stack.gateway.url("/mcp"), "username": user, "password": password,
            // The SDK (1.x) refreshes rather than re-authorizes when it holds a refresh token,
            // without the new scope (typescript-sdk #2255): an app that steps up has none.
            "noRefresh": true,
            "stepUp": { "name": "make_authenticated_request", "arguments": { "message": "stepped up" } },
        })
    };
    let (alice_plan, bob_plan) = (plan("alice", "wonderland"), plan("bob", "builder"));
    let (alice, bob) = tokio::join!(
        node::run("oauth-flow.mjs", &alice_plan),
        node::run("oauth-flow.mjs", &bob_plan),
    );

    // alice (in `admins`) signs in with the route's scope, sees the tool she may step up to, is
    // asked for `tools:admin` on calling it, authorizes again, and is served.
    assert_eq!(alice.get("error"), None, "{alice:#}");
    assert_eq!(alice["firstScope"], "mcp");
    assert_eq!(
        alice["tools"],
        json!(["make_authenticated_request", "show_auth_token"])
    );
    let step = &alice["stepUp"];
    assert!(
        step["firstError"]
            .as_str()
            .unwrap()
            .contains("Unauthorized"),
        "{step}"
    );
    let asked = url::Url::parse(step["authorizeUrl"].as_str().unwrap()).unwrap();
    let scope = asked
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(
        scope, "mcp tools:admin",
        "the challenge names what the call needs"
    );
    assert_eq!(step["scope"], "mcp tools:admin");
    assert_eq!(
        step["second"]["structuredContent"]["args"]["message"], "stepped up",
        "{step}"
    );

    // bob may not step up: the tool is not listed, and calling it is refused without a challenge.
    assert_eq!(bob.get("error"), None, "{bob:#}");
    assert_eq!(bob["tools"], json!(["show_auth_token"]));
    let step = &bob["stepUp"];
    let refused = step["firstError"].as_str().unwrap();
    assert!(
        refused.contains("-32602") && refused.contains("make_authenticated_request"),
        "{step}"
    );
    assert_eq!(
        step.get("authorizeUrl"),
        None,
        "no second authorization: {step}"
    );
}
