//! Per-tool policy through the real gateway: the official TypeScript SDK client, as two users with
//! different rights, against `mcp-backend` (answering in JSON) and the third-party
//! `server-everything` (answering on SSE streams); the 2026-07-28 headers checked against the body;
//! batches; the audit trail and the decisions metric. The step-up through the real OAuth flow is in
//! `policy_step_up`.

use integration_tests::{
    EchoTarget, GatewayBuilder, GatewayUnderTest, Running, ScriptedBackend, binary, free_port,
    node, wait_for_port,
};
use serde_json::{Value, json};

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

async fn post(
    gateway: &GatewayUnderTest,
    token: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(gateway.url("/scripted/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body.to_owned()).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_must_match_the_body_and_policy_reads_only_the_body() {
    let stack = stack().await;
    let gateway = &stack.gateway;
    let token = gateway.token("/scripted/mcp", "ada");
    let call = |name: &str| {
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": {"x": 1}}}).to_string()
    };

    // Older versions send no headers: decided on the body, and forwarded byte for byte.
    let body = call("safe");
    assert_eq!(post(gateway, &token, &[], &body).await.0, 200);
    assert_eq!(stack.scripted.bodies().last().unwrap(), body.as_bytes());

    // 2026-07-28 headers that agree, plain or Base64-encoded.
    let agree = post(
        gateway,
        &token,
        &[("mcp-method", "tools/call"), ("mcp-name", "safe")],
        &body,
    )
    .await;
    assert_eq!(agree.0, 200, "{agree:?}");
    let encoded = post(
        gateway,
        &token,
        &[
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?c2FmZQ==?="),
        ],
        &body,
    )
    .await;
    assert_eq!(encoded.0, 200, "{encoded:?}");
    let forwarded = stack.scripted.requests();
    assert_eq!(
        forwarded.last().unwrap()["mcp-name"],
        "=?base64?c2FmZQ==?=",
        "forwarded untouched"
    );

    let reached = stack.scripted.bodies().len();
    // A header that names an allowed tool over a body that calls another: refused, whatever the header says.
    for (headers, mentions) in [
        (
            vec![("mcp-method", "tools/call"), ("mcp-name", "safe")],
            "Mcp-Name header value 'safe' does not match body value 'delete_all'",
        ),
        (
            vec![("mcp-method", "tools/list"), ("mcp-name", "delete_all")],
            "Mcp-Method header value 'tools/list'",
        ),
        (
            vec![("mcp-method", "tools/call")],
            "Mcp-Name header is required",
        ),
    ] {
        let (status, answer) = post(gateway, &token, &headers, &call("delete_all")).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], -32020, "{answer}");
        assert_eq!(answer["id"], 7);
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains(mentions),
            "{answer}"
        );
    }
    // No header at all: the body decides, and the call is refused.
    let (status, answer) = post(gateway, &token, &[], &call("delete_all")).await;
    assert_eq!(status, 200);
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    // Mcp-Param-* headers are forwarded untouched.
    let (status, _) = post(
        gateway,
        &token,
        &[("mcp-param-region", "=?base64?ZXU=?=")],
        &call("safe"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        stack.scripted.requests().last().unwrap()["mcp-param-region"],
        "=?base64?ZXU=?="
    );

    // Bodies that cannot be read one way only are refused, not guessed at: one that is not
    // JSON-RPC (-32700), and one another parser would read otherwise (-32600).
    for (body, code) in [
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","name":"delete_all"}}"#,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe"}} {"x":1}"#,
            -32700,
        ),
        (
            "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"safe\"}}",
            -32700,
        ),
        ("not json", -32700),
    ] {
        let (status, answer) = post(gateway, &token, &[], body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
    }
    // Only a POST carries a body on a route with a policy: another method's would go unread.
    let response = reqwest::Client::new()
        .get(gateway.url("/scripted/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .body(call("delete_all"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // Larger than the gateway reads before forwarding: refused on a route with a policy.
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "safe", "arguments": {"pad": "x".repeat(70_000)}}}).to_string();
    let (status, _) = post(gateway, &token, &[], &big).await;
    assert_eq!(status, 413);
    assert_eq!(
        stack.scripted.bodies().len(),
        reached + 1,
        "only the call with an Mcp-Param header got through"
    );

    // A batch (2025-03-26) with one refused call: nothing of it is forwarded, each request answered.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "safe"}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "delete_all"}},
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}},
    ])
    .to_string();
    let (status, answer) = post(gateway, &token, &[], &batch).await;
    assert_eq!(status, 200);
    let answers = answer.as_array().unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(answers.len(), 2, "{answer}");
    assert_eq!(answers[0]["id"], 1);
    assert!(
        answers[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Not processed")
    );
    assert!(
        answers[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("delete_all")
    );
    assert_eq!(
        stack.scripted.bodies().len(),
        reached + 1,
        "nothing of the batch was forwarded"
    );
    let allowed = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "safe"}},
        {"jsonrpc": "2.0", "id": 2, "method": "ping"},
    ])
    .to_string();
    assert_eq!(post(gateway, &token, &[], &allowed).await.0, 200);
    assert_eq!(stack.scripted.bodies().last().unwrap(), allowed.as_bytes());
}

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

#[tokio::test(flavor = "multi_thread")]
async fn bodies_too_large_or_too_slow_to_decide_on_are_refused_and_never_forwarded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let stack = stack().await;
    let gateway = &stack.gateway;
    let token = gateway.token("/scripted/mcp", "ada");

    // Larger than the gateway reads before forwarding, without a Content-Length.
    let chunks: Vec<Result<String, std::io::Error>> =
        (0..70).map(|_| Ok(" ".repeat(1000))).collect();
    let response = reqwest::Client::new()
        .post(gateway.url("/scripted/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    // The gateway may answer before the client has sent it all, and close: then the client sees
    // the reset instead.
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
    }

    // A body that stops coming: refused once the gateway's wait is over, not held forever.
    let port: u16 = gateway.origin.rsplit(':').next().unwrap().parse().unwrap();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST /scripted/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"jsonrpc\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the gateway never answered the stalled body");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(stack.scripted.bodies().is_empty(), "nothing was forwarded");
}
