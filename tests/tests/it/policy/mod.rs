//! Per-tool policy through the real gateway: the official TypeScript SDK client, as two users with
//! different rights, against `mcp-backend` (answering in JSON) and the third-party
//! `server-everything` (answering on SSE streams); the 2026-07-28 headers checked against the body;
//! batches; the audit trail and the decisions metric. The headers and the bodies a policy route reads
//! are in [`bodies`], the step-up through the real OAuth flow in [`step_up`].

use integration_tests::{
    EchoTarget, GatewayBuilder, GatewayUnderTest, Running, ScriptedBackend, binary, free_port,
    node, wait_for_port,
};
use serde_json::{Value, json};

mod bodies;
mod step_up;

/// `/mcp`: mcp-backend answering in JSON; `/everything/mcp`: server-everything on SSE;
/// `/scripted/mcp`: a backend that records what reaches it. Each with a policy.
struct Stack {
    gateway: GatewayUnderTest,
    echo: EchoTarget,
    scripted: ScriptedBackend,
    _everything: Running,
    _backend_config: tempfile::TempDir,
}

const EVERYTHING_POLICY: &str = r#"
[routes.policy]
default = "deny"
[[routes.policy.rules]]
name = "no-env"
effect = "deny"
tools = ["get-env"]
[[routes.policy.rules]]
name = "everyone"
effect = "allow"
tools = ["echo", "get-sum"]
prompts = ["simple-prompt"]
resources = ["demo://resource/static/document/*"]
[[routes.policy.rules]]
name = "staff"
effect = "allow"
groups = ["staff"]
tools = ["get-*"]
"#;

async fn stack() -> Stack {
    let echo = EchoTarget::start().await;
    let scripted = ScriptedBackend::start().await;
    let (everything, everything_port) = node::server_everything().await;

    let builder = GatewayBuilder::new();
    let origin = builder.origin();
    let backend_port = free_port();
    let backend_config = tempfile::tempdir().unwrap();
    let backend_file = backend_config.path().join("backend.toml");
    std::fs::write(&backend_file, "json_response = true\n").unwrap();
    let gateway = builder
        .section(&format!(
            "[audit]\nfile = \"audit.jsonl\"\n\n\
             [[routes]]\npath = \"/mcp\"\nupstream = \"http://127.0.0.1:{backend_port}/mcp\"\n\
             [routes.command]\nprogram = {backend:?}\nargs = [\"--config\", {backend_file:?}, \"--listen\", \"127.0.0.1:{backend_port}\", \
             \"--gateway-jwks\", \"{origin}/.well-known/jwks.json\", \"--gateway-issuer\", \"{origin}\", \
             \"--audience\", \"http://127.0.0.1:{backend_port}/mcp\", \"--target\", \"{target}\"]\n\
             [routes.policy]\n\
             [[routes.policy.rules]]\neffect = \"allow\"\ntools = [\"show_auth_token\"]\n\
             [[routes.policy.rules]]\nname = \"writers\"\neffect = \"allow\"\ntools = [\"make_authenticated_request\"]\ngroups = [\"writers\"]\n\n\
             [[routes]]\npath = \"/everything/mcp\"\nupstream = \"http://127.0.0.1:{everything_port}/mcp\"\ncredentials = \"none\"\n\
             {EVERYTHING_POLICY}\n\
             [[routes]]\npath = \"/scripted/mcp\"\nupstream = \"{scripted}\"\n\
             [routes.policy]\n[[routes.policy.rules]]\nname = \"safe-only\"\neffect = \"allow\"\ntools = [\"safe\"]\n",
            backend = binary("mcp-backend").display().to_string(),
            backend_file = backend_file.display().to_string(),
            target = echo.url(),
            scripted = scripted.url("/mcp"),
        ))
        .start()
        .await;
    wait_for_port(backend_port, "the supervised mcp-backend").await;
    Stack {
        gateway,
        echo,
        scripted,
        _everything: everything,
        _backend_config: backend_config,
    }
}

/// The `[routes.policy]` of a route to mcp-backend on which anyone may show their token and only
/// members of `group` may make requests.
pub fn requests_only_for(group: &str) -> String {
    format!(
        "[routes.policy]\n\
         [[routes.policy.rules]]\neffect = \"allow\"\ntools = [\"show_auth_token\"]\n\
         [[routes.policy.rules]]\neffect = \"allow\"\ntools = [\"make_authenticated_request\"]\ngroups = [\"{group}\"]\n"
    )
}

/// An access token of `sub` in `groups` for the route at `path`.
fn token(gateway: &GatewayUnderTest, path: &str, sub: &str, groups: &[&str]) -> String {
    let mut claims = gateway.claims(path, sub, "mcp");
    claims["groups"] = json!(groups);
    claims["preferred_username"] = json!(sub);
    gateway.sign(&claims)
}

fn client(gateway: &GatewayUnderTest, path: &str, token: &str, steps: Value) -> Value {
    json!({
        "transport": { "type": "http", "url": gateway.url(path), "headers": { "Authorization": format!("Bearer {token}") } },
        "steps": steps,
    })
}

fn names<'a>(list: &'a Value, key: &str, field: &str) -> Vec<&'a str> {
    let mut names: Vec<&str> = list[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {list}"))
        .iter()
        .map(|t| t[field].as_str().unwrap())
        .collect();
    names.sort_unstable();
    names
}

/// The error a step ended in (the SDK throws a JSON-RPC error as `MCP error <code>: <message>`).
fn error(step: &Value) -> &str {
    step["error"]
        .as_str()
        .unwrap_or_else(|| panic!("the step did not fail: {step}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn two_users_see_only_what_they_may_use_and_are_refused_the_rest() {
    let stack = stack().await;
    let gateway = &stack.gateway;
    let ada = token(gateway, "/everything/mcp", "ada", &["staff"]);
    let bob = token(gateway, "/everything/mcp", "bob", &[]);
    let steps = |call: &str| {
        json!([
            { "op": "listTools" },
            { "op": "callTool", "name": "get-sum", "arguments": { "a": 1, "b": 2 } },
            { "op": "callTool", "name": call, "arguments": {} },
            { "op": "callTool", "name": "get-env", "arguments": {} },
            { "op": "listPrompts" },
            { "op": "getPrompt", "name": "args-prompt", "arguments": { "city": "Paris" } },
            { "op": "listResources" },
            { "op": "listResourceTemplates" },
            { "op": "readResource", "uri": "demo://resource/static/document/features.md" },
            { "op": "readResource", "uri": "demo://resource/dynamic/text/1" },
        ])
    };
    let results = node::run(
        "mcp-client.mjs",
        &json!([
            client(gateway, "/everything/mcp", &ada, steps("get-tiny-image")),
            client(gateway, "/everything/mcp", &bob, steps("get-tiny-image")),
        ]),
    )
    .await;
    let (ada, bob) = (&results[0], &results[1]);

    // Lists answered on SSE streams, cut down per caller and marked private.
    assert_eq!(
        names(&ada[0], "tools", "name"),
        [
            "echo",
            "get-annotated-message",
            "get-resource-links",
            "get-resource-reference",
            "get-structured-content",
            "get-sum",
            "get-tiny-image"
        ]
    );
    assert_eq!(names(&bob[0], "tools", "name"), ["echo", "get-sum"]);
    assert_eq!(bob[0]["cacheScope"], "private", "{}", bob[0]);
    assert_eq!(names(&bob[4], "prompts", "name"), ["simple-prompt"]);
    let documents = names(&bob[6], "resources", "uri");
    assert!(
        !documents.is_empty()
            && documents
                .iter()
                .all(|u| u.starts_with("demo://resource/static/document/")),
        "{documents:?}"
    );
    assert_eq!(bob[7]["resourceTemplates"], json!([]), "{}", bob[7]);

    // Calls: allowed ones are served, the rest refused with the name and nothing of the rules.
    assert_eq!(
        ada[1]["content"][0]["text"]
            .as_str()
            .map(|t| t.contains('3')),
        Some(true),
        "{}",
        ada[1]
    );
    assert_eq!(bob[1]["isError"], Value::Null, "{}", bob[1]);
    assert!(
        ada[2]["content"].is_array(),
        "ada may get the image: {}",
        ada[2]
    );
    let refused = error(&bob[2]);
    assert!(
        refused.contains("-32602") && refused.contains("get-tiny-image"),
        "{refused}"
    );
    assert!(
        !refused.contains("staff") && !refused.contains("rule"),
        "no detail of the rules: {refused}"
    );
    assert!(
        error(&ada[3]).contains("get-env"),
        "a deny rule wins over the later allow"
    );
    assert!(error(&bob[5]).contains("args-prompt"));
    assert!(bob[8]["contents"].is_array(), "{}", bob[8]);
    assert!(error(&bob[9]).contains("demo://resource/dynamic/text/1"));

    // The audit trail: one line per decision, with the rule that made it and never an argument.
    // Written in batches within 100 ms: read once the last decisions are there.
    let wanted = ["\"get-tiny-image\"", "\"get-env\"", "\"filtered\""];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let audit = loop {
        let text = std::fs::read_to_string(gateway.dir().join("audit.jsonl")).unwrap_or_default();
        let lines_of = |user: &str| {
            text.lines()
                .filter(|l| l.contains(&format!("\"user\":\"{user}\"")))
                .collect::<Vec<_>>()
        };
        let complete = ["ada", "bob"].iter().all(|user| {
            let lines = lines_of(user);
            wanted.iter().all(|w| lines.iter().any(|l| l.contains(w)))
        });
        if complete || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |user: &str, name: &str| {
        lines
            .iter()
            .find(|l| l["user"] == user && l["name"] == name)
            .unwrap_or_else(|| panic!("no audit line of {user} {name}: {audit}"))
    };
    let denied = find("bob", "get-tiny-image");
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["rule"], "default");
    assert_eq!(denied["kind"], "tool");
    assert_eq!(denied["route"], "/everything/mcp");
    assert_eq!(denied["status"], 200);
    assert_eq!(find("ada", "get-env")["rule"], "no-env");
    assert_eq!(find("ada", "get-tiny-image")["decision"], "allow");
    assert_eq!(find("ada", "get-tiny-image")["rule"], "staff");
    let list = lines
        .iter()
        .find(|l| l["user"] == "bob" && l["method"] == "tools/list")
        .expect("the list is audited");
    assert_eq!(list["rule"], "filtered");
    assert!(list["hidden"].as_u64().unwrap() >= 10, "{list}");
    assert!(
        !audit.contains("Paris") && !audit.contains("eyJ"),
        "no arguments, no tokens: {audit}"
    );

    let metrics = gateway.metrics().await;
    // Refused tools: get-env twice, get-tiny-image once. A refused name is labelled only once the
    // tool was called (get-env never was: "other").
    let denied: f64 = metrics
        .iter()
        .filter(|(series, _)| {
            series.starts_with("mcp_gateway_policy_decisions_total{decision=\"deny\",kind=\"tool\",route=\"/everything/mcp\"")
        })
        .map(|(_, count)| count)
        .sum();
    assert_eq!(denied, 3.0, "{metrics:?}");
    // get-tiny-image is labelled if ada's call came before bob's refusal (the clients run at once).
    let unnamed = metrics.get("mcp_gateway_policy_decisions_total{decision=\"deny\",kind=\"tool\",route=\"/everything/mcp\",tool=\"other\"}");
    assert!(matches!(unnamed, Some(n) if *n >= 2.0), "{metrics:?}");
    // Refused messages were not forwarded, and are not counted as if they had been.
    assert_eq!(
        metrics.get("mcp_gateway_mcp_requests_total{mcp_method=\"tools/call\",route=\"/everything/mcp\",tool=\"get-env\"}"),
        None
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_backend_lists_per_caller_and_a_refused_call_never_reaches_it() {
    let stack = stack().await;
    let gateway = &stack.gateway;
    let bob = token(gateway, "/mcp", "bob", &[]);
    let carol = token(gateway, "/mcp", "carol", &["writers"]);
    let steps = json!([
        { "op": "listTools" },
        { "op": "callTool", "name": "make_authenticated_request", "arguments": { "message": "hi" } },
        { "op": "callTool", "name": "show_auth_token" },
    ]);
    let bob_results = node::run(
        "mcp-client.mjs",
        &client(gateway, "/mcp", &bob, steps.clone()),
    )
    .await;
    assert_eq!(names(&bob_results[0], "tools", "name"), ["show_auth_token"]);
    assert_eq!(bob_results[0]["cacheScope"], "private");
    assert!(error(&bob_results[1]).contains("make_authenticated_request"));
    assert!(bob_results[2]["content"].is_array(), "{}", bob_results[2]);
    assert!(
        stack.echo.authorizations().is_empty(),
        "the refused call reached the backend's tool"
    );

    let carol_results = node::run("mcp-client.mjs", &client(gateway, "/mcp", &carol, steps)).await;
    assert_eq!(
        names(&carol_results[0], "tools", "name"),
        ["make_authenticated_request", "show_auth_token"]
    );
    assert_eq!(
        carol_results[1]["structuredContent"]["args"]["message"], "hi",
        "{}",
        carol_results[1]
    );
    assert_eq!(stack.echo.authorizations().len(), 1);
}
