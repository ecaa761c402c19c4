//! `mcp-backend` driven by the official MCP TypeScript SDK client, over Streamable HTTP and stdio.

use integration_tests::gateway_keys::ISSUER;
use integration_tests::{EchoTarget, GatewayKeys, Running, binary, free_port, node};
use serde_json::{Value, json};

pub const TOKEN_ALICE: &str = "alice-upstream-token-0123456789-AAAA";
pub const TOKEN_BOB: &str = "bob-upstream-token-9876543210-BBBB";

/// A running backend that checks assertions against `keys`, with the echo target as its target.
pub struct Backend {
    pub process: Running,
    pub url: String,
    pub audience: String,
}

impl Backend {
    pub async fn start(keys: &GatewayKeys, target: &str, extra: &[&str]) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let url = format!("http://{listen}/mcp");
        let jwks = keys.jwks_path();
        let mut args = vec!["--listen", &listen];
        // The JWKS file unless the test names another source.
        if !extra.contains(&"--gateway-jwks") {
            args.extend(["--gateway-jwks", jwks.to_str().expect("a UTF-8 path")]);
        }
        args.extend([
            "--gateway-issuer",
            ISSUER,
            "--audience",
            &url,
            "--target",
            target,
        ]);
        args.extend_from_slice(extra);
        let mut process = Running::start(&binary("mcp-backend"), &args, &[]);
        process
            .wait_ready(&format!("http://{listen}/healthz"))
            .await;
        Self {
            process,
            audience: url.clone(),
            url,
        }
    }

    /// The headers the gateway would send for `sub` calling with `token`.
    pub fn gateway_headers(&self, keys: &GatewayKeys, sub: &str, token: &str) -> Value {
        json!({
            "X-Forwarded-Access-Token": token,
            "X-Forwarded-User": sub,
            "X-Gateway-Assertion": keys.assertion(&self.audience, sub, Some(token)),
        })
    }
}

fn all_tools_steps() -> Value {
    json!([
        { "op": "listTools" },
        { "op": "callTool", "name": "show_auth_token" },
        { "op": "callTool", "name": "make_authenticated_request", "arguments": { "message": "hello from the test" } },
    ])
}

/// The tool list: both tools, with the original descriptions and argument names.
fn assert_tool_list(list: &Value) {
    let tools = list["tools"].as_array().expect("a tool list");
    let by_name = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no tool {name} in {list}"))
    };
    assert_eq!(tools.len(), 2, "{list}");
    let request = by_name("make_authenticated_request");
    assert_eq!(
        request["description"],
        "Make an authenticated HTTP request to httpbin.org/anything"
    );
    assert_eq!(request["inputSchema"]["type"], "object");
    assert_eq!(
        request["inputSchema"]["properties"]["message"]["type"],
        "string"
    );
    assert_eq!(
        request["inputSchema"]["properties"]["message"]["description"],
        "The message to include in the request"
    );
    assert_eq!(request["inputSchema"]["required"], json!(["message"]));
    assert!(
        request["outputSchema"]["properties"]["headers"].is_object(),
        "{request}"
    );
    // Only formats JSON Schema's validators know (the TypeScript SDK warns of any other).
    assert_eq!(
        request["outputSchema"]["properties"]["status"],
        json!({"type": "integer", "minimum": 100, "maximum": 599, "description": "The HTTP status the target answered with."}),
        "{request}"
    );
    assert!(!request.to_string().contains("\"format\""), "{request}");
    let show = by_name("show_auth_token");
    assert_eq!(show["description"], "Show the current authentication token");
    assert!(
        show["inputSchema"]["properties"]
            .as_object()
            .is_none_or(|p| p.is_empty())
    );
}

fn text_of(result: &Value) -> &str {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {result}"))
}

/// `show_auth_token` and `make_authenticated_request` for a caller holding `token`.
fn assert_tool_results(results: &[Value], token: &str) {
    let shown = &results[1];
    assert_ne!(shown["isError"], true, "{shown}");
    assert_eq!(
        text_of(shown),
        format!("{}…{}", &token[..4], &token[token.len() - 4..])
    );

    let request = &results[2];
    assert_ne!(request["isError"], true, "{request}");
    let structured = &request["structuredContent"];
    assert_eq!(structured["status"], 200, "{request}");
    assert_eq!(structured["args"]["message"], "hello from the test");
    let expected = format!("Bearer {}…{}", &token[..4], &token[token.len() - 4..]);
    assert_eq!(structured["headers"]["Authorization"], expected.as_str());
    assert!(!text_of(request).is_empty());
    for result in results {
        assert!(
            !result.to_string().contains(token),
            "an unmasked token in {result}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_client_lists_and_calls_both_tools_over_http() {
    let keys = GatewayKeys::new();
    let echo = EchoTarget::start().await;
    let backend = Backend::start(&keys, &echo.url(), &[]).await;
    let plan = json!({
        "transport": { "type": "http", "url": backend.url, "headers": backend.gateway_headers(&keys, "alice", TOKEN_ALICE) },
        "steps": all_tools_steps(),
    });
    let results = node::run("mcp-client.mjs", &plan).await;
    let results = results.as_array().expect("step results");
    assert_tool_list(&results[0]);
    assert_tool_results(results, TOKEN_ALICE);
    // The token reached the target as a bearer credential, once, for the one call.
    assert_eq!(echo.authorizations(), vec![format!("Bearer {TOKEN_ALICE}")]);

    // One log line per tool call, with the request id and the user; never the token.
    let logs = backend.process.stderr();
    let calls: Vec<&str> = logs.lines().filter(|l| l.contains("tool call")).collect();
    assert_eq!(calls.len(), 2, "{logs}");
    for line in calls {
        assert!(
            line.contains("user=alice") && line.contains("request_id="),
            "{line}"
        );
    }
    assert!(!logs.contains(TOKEN_ALICE), "the token was logged:\n{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_client_uses_the_stdio_transport_with_the_token_from_the_environment() {
    let echo = EchoTarget::start().await;
    let backend = binary("mcp-backend");
    let stdio = |env: Value, extra: &[&str]| {
        let mut args = vec![json!("--stdio"), json!("--target"), json!(echo.url())];
        args.extend(extra.iter().map(|a| json!(a)));
        json!({
            "transport": { "type": "stdio", "command": backend, "args": args, "env": env },
            "steps": all_tools_steps(),
        })
    };
    let results = node::run(
        "mcp-client.mjs",
        &stdio(json!({ "API_KEY": TOKEN_ALICE }), &[]),
    )
    .await;
    let results = results.as_array().expect("step results");
    assert_tool_list(&results[0]);
    assert_tool_results(results, TOKEN_ALICE);

    // The variable's name is configurable.
    let results = node::run(
        "mcp-client.mjs",
        &stdio(
            json!({ "UPSTREAM_TOKEN": TOKEN_BOB }),
            &["--token-env", "UPSTREAM_TOKEN"],
        ),
    )
    .await;
    assert_tool_results(results.as_array().expect("step results"), TOKEN_BOB);

    // No token: both tools say so as a tool error; the target is never called without one.
    let results = node::run("mcp-client.mjs", &stdio(json!({}), &[])).await;
    for result in &results.as_array().expect("step results")[1..] {
        assert_eq!(result["isError"], true, "{result}");
        assert!(
            text_of(result).contains("No authentication token"),
            "{result}"
        );
    }
    assert_eq!(echo.authorizations().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn make_authenticated_request_reports_target_failures_as_tool_errors() {
    let keys = GatewayKeys::new();
    let echo = EchoTarget::start().await;
    let backend = Backend::start(&keys, &echo.url(), &["--target-timeout", "700ms"]).await;
    let call = |message: &str| json!({ "op": "callTool", "name": "make_authenticated_request", "arguments": { "message": message } });
    let plan = json!({
        "transport": { "type": "http", "url": backend.url, "headers": backend.gateway_headers(&keys, "alice", TOKEN_ALICE) },
        "steps": [call("status:503"), call("not-json"), call("hang"), call("fine")],
    });
    let results = node::run("mcp-client.mjs", &plan).await;
    let results = results.as_array().expect("step results");
    let expect_error = |result: &Value, needle: &str| {
        assert_eq!(result["isError"], true, "{result}");
        let text = text_of(result);
        assert!(text.contains(needle), "{text:?} should mention {needle:?}");
        assert!(!text.contains('\n'), "one line: {text:?}");
        assert!(!text.contains(TOKEN_ALICE));
    };
    expect_error(&results[0], "HTTP 503");
    expect_error(&results[1], "other than a JSON object");
    expect_error(&results[2], "did not answer within 700ms");
    assert_ne!(
        results[3]["isError"], true,
        "the server still works after failures: {}",
        results[3]
    );

    // A target that is down.
    let closed = format!("http://127.0.0.1:{}/anything", free_port());
    let down = Backend::start(&keys, &closed, &[]).await;
    let plan = json!({
        "transport": { "type": "http", "url": down.url, "headers": down.gateway_headers(&keys, "alice", TOKEN_ALICE) },
        "steps": [call("hello")],
    });
    let results = node::run("mcp-client.mjs", &plan).await;
    expect_error(&results[0], "could not be reached");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_clients_each_see_only_their_own_token() {
    let keys = GatewayKeys::new();
    let echo = EchoTarget::start().await;
    let backend = Backend::start(&keys, &echo.url(), &[]).await;
    let client = |sub: &str, token: &str| {
        json!({
            "transport": { "type": "http", "url": backend.url, "headers": backend.gateway_headers(&keys, sub, token) },
            "steps": [{ "op": "callTool", "name": "show_auth_token" }],
            "repeat": 25,
        })
    };
    let results = node::run(
        "mcp-client.mjs",
        &json!([client("alice", TOKEN_ALICE), client("bob", TOKEN_BOB)]),
    )
    .await;
    for (client, token) in results
        .as_array()
        .expect("two clients")
        .iter()
        .zip([TOKEN_ALICE, TOKEN_BOB])
    {
        let calls = client.as_array().expect("results");
        assert_eq!(calls.len(), 25);
        let expected = format!("{}…{}", &token[..4], &token[token.len() - 4..]);
        for call in calls {
            assert_eq!(text_of(call), expected, "{call}");
        }
    }
}
