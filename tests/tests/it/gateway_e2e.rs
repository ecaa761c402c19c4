//! The whole data plane with real parts: the official TypeScript SDK client through the gateway to
//! `mcp-backend` (a supervised `command` route) and to a third-party server
//! (`@modelcontextprotocol/server-everything`); sessions bound to users; metrics that count.

use std::time::{Duration, Instant};

use integration_tests::{
    GatewayBuilder, GatewayUnderTest, Running, free_port, node, supervised_backend_route,
    wait_for_port,
};
use serde_json::{Value, json};

use crate::backend::TOKEN_ALICE;

/// A gateway with `/mcp` -> a supervised mcp-backend, and `/everything/mcp` -> server-everything.
struct Stack {
    gateway: GatewayUnderTest,
    _everything: Running,
    _echo: integration_tests::EchoTarget,
}

async fn stack() -> Stack {
    let echo = integration_tests::EchoTarget::start().await;
    let (everything, everything_port) = node::server_everything().await;

    let builder = GatewayBuilder::new();
    let backend_port = free_port();
    let origin = builder.origin();
    let gateway = builder
        .section(&format!(
            "{route}\n\
             [[routes]]\npath = \"/everything/mcp\"\nupstream = \"http://127.0.0.1:{everything_port}/mcp\"\ncredentials = \"none\"\n",
            route = supervised_backend_route(
                &origin,
                backend_port,
                &echo.url(),
                "resource_name = \"mcp-backend\""
            ),
        ))
        .start()
        .await;
    // Ready means the supervised backend is running; wait until it also answers through the gateway.
    wait_for_port(backend_port, "the supervised mcp-backend").await;
    Stack {
        gateway,
        _everything: everything,
        _echo: echo,
    }
}

fn client(gateway: &GatewayUnderTest, path: &str, sub: &str, steps: Value) -> Value {
    json!({
        "transport": { "type": "http", "url": gateway.url(path), "headers": { "Authorization": format!("Bearer {}", gateway.token(path, sub)) } },
        "steps": steps,
    })
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {result}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_client_calls_our_backend_and_a_third_party_server_through_the_gateway() {
    let stack = stack().await;
    let gateway = &stack.gateway;
    let before = gateway.metrics().await;

    let backend_steps = json!([
        { "op": "listTools" },
        { "op": "callTool", "name": "show_auth_token" },
        { "op": "callTool", "name": "make_authenticated_request", "arguments": { "message": "through the gateway" } },
    ]);
    let everything_steps = json!([
        { "op": "listTools" },
        { "op": "callTool", "name": "echo", "arguments": { "message": "hello everything" } },
    ]);
    let results = node::run(
        "mcp-client.mjs",
        &json!([
            client(gateway, "/mcp", "alice", backend_steps),
            client(gateway, "/everything/mcp", "bob", everything_steps)
        ]),
    )
    .await;

    let ours = results[0].as_array().expect("results");
    let names: Vec<&str> = ours[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"make_authenticated_request") && names.contains(&"show_auth_token"));
    // The backend saw the token the gateway minted for it (masked), never the client's.
    let shown = text(&ours[1]);
    assert_ne!(ours[1]["isError"], true, "{}", ours[1]);
    assert!(shown.contains('…') && shown.chars().count() == 9, "{shown}");
    assert!(
        shown.starts_with("eyJ"),
        "a JWT the gateway minted: {shown}"
    );
    let client_token = gateway.token("/mcp", "alice");
    assert!(
        !shown.ends_with(&client_token[client_token.len() - 4..]),
        "not the client's token: {shown}"
    );
    assert_ne!(ours[2]["isError"], true, "{}", ours[2]);
    assert_eq!(
        ours[2]["structuredContent"]["args"]["message"],
        "through the gateway"
    );

    let theirs = results[1].as_array().expect("results");
    assert!(
        theirs[0]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "echo"),
        "{}",
        theirs[0]
    );
    assert!(
        text(&theirs[1]).contains("hello everything"),
        "{}",
        theirs[1]
    );

    // Counters moved by what was sent.
    let after = gateway.metrics().await;
    let delta = |series: &str| {
        after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
    };
    assert_eq!(
        delta(
            "mcp_gateway_mcp_requests_total{mcp_method=\"tools/call\",route=\"/mcp\",tool=\"show_auth_token\"}"
        ),
        1.0
    );
    assert_eq!(
        delta(
            "mcp_gateway_mcp_requests_total{mcp_method=\"tools/call\",route=\"/mcp\",tool=\"make_authenticated_request\"}"
        ),
        1.0
    );
    assert_eq!(
        delta("mcp_gateway_mcp_requests_total{mcp_method=\"tools/list\",route=\"/mcp\",tool=\"\"}"),
        1.0
    );
    assert_eq!(
        delta(
            "mcp_gateway_mcp_requests_total{mcp_method=\"tools/call\",route=\"/everything/mcp\",tool=\"echo\"}"
        ),
        1.0
    );
    assert_eq!(
        delta("mcp_gateway_mcp_requests_total{mcp_method=\"initialize\",route=\"/mcp\",tool=\"\"}"),
        1.0
    );
    assert!(
        delta("mcp_gateway_requests_total{method=\"POST\",route=\"/mcp\",status=\"200\"}") >= 4.0
    );
    assert!(
        after
            .keys()
            .any(|k| k.starts_with("process_resident_memory_bytes")),
        "process metrics are exported"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_refusals_by_route_and_reason() {
    let stack = stack().await;
    let gateway = &stack.gateway;
    let before = gateway.metrics().await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let response = http
            .post(gateway.url("/mcp"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let response = http
        .post(gateway.url("/mcp"))
        .header(
            "authorization",
            format!("Bearer {}", gateway.token("/everything/mcp", "alice")),
        )
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let after = gateway.metrics().await;
    let delta = |series: &str| {
        after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
    };
    assert_eq!(
        delta("mcp_gateway_auth_failures_total{reason=\"no_token\",route=\"/mcp\"}"),
        3.0
    );
    assert_eq!(
        delta("mcp_gateway_auth_failures_total{reason=\"wrong_audience\",route=\"/mcp\"}"),
        1.0
    );
    assert_eq!(
        delta("mcp_gateway_requests_total{method=\"POST\",route=\"/mcp\",status=\"401\"}"),
        4.0
    );
    assert_eq!(
        delta("mcp_gateway_request_duration_seconds_count{route=\"/mcp\"}"),
        4.0
    );
}

async fn post(
    gateway: &GatewayUnderTest,
    token: &str,
    session: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(gateway.url("/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_serves_only_the_user_who_opened_it() {
    let stack = stack().await;
    let gateway = &stack.gateway;
    let alice = gateway.token("/mcp", "alice");
    let bob = gateway.token("/mcp", "bob");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let response = post(gateway, &alice, None, init).await;
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = response.text().await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(
        post(gateway, &alice, Some(&session), initialized)
            .await
            .status(),
        202
    );

    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let stolen = post(gateway, &bob, Some(&session), list.clone()).await;
    assert_eq!(
        stolen.status(),
        404,
        "another user's token on this session is an unknown session"
    );
    let body: Value = stolen.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32001);
    let own = post(gateway, &alice, Some(&session), list).await;
    assert_eq!(own.status(), 200);
    assert!(own.text().await.unwrap().contains("show_auth_token"));

    // A session id the gateway never saw opened is unknown, whoever presents it.
    let made_up = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    assert_eq!(
        post(gateway, &alice, Some("made-up-session"), made_up)
            .await
            .status(),
        404
    );
    // Bob cannot end it either.
    let delete = |token: String| {
        let url = gateway.url("/mcp");
        let session = session.clone();
        async move {
            reqwest::Client::new()
                .delete(url)
                .header("authorization", format!("Bearer {token}"))
                .header("mcp-session-id", session)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(delete(bob.clone()).await, 404);
    assert!(delete(alice.clone()).await.is_success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_command_backend_is_restarted() {
    let stack = stack().await;
    let gateway = &stack.gateway;
    let pid_of = |logs: &str| -> Vec<u32> {
        logs.lines()
            .filter(|l| l.contains("started the route's command"))
            .filter_map(|l| {
                l.split("pid=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    };
    let pids = pid_of(&gateway.process.stderr());
    assert_eq!(pids.len(), 1, "{}", gateway.process.stderr());
    let status = std::process::Command::new("kill")
        .args(["-9", &pids[0].to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pids = pid_of(&gateway.process.stderr());
        if pids.len() == 2 {
            assert_ne!(pids[0], pids[1]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not restarted:\n{}",
            gateway.process.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And it serves again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let results = node::run(
            "mcp-client.mjs",
            &client(
                gateway,
                "/mcp",
                "alice",
                json!([{ "op": "callTool", "name": "show_auth_token" }]),
            ),
        )
        .await;
        if results[0].get("error").is_none() && results[0]["isError"] != true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted backend never served: {results}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        gateway.process.stderr().contains("[/mcp]"),
        "its output is prefixed with the route"
    );
    let _ = TOKEN_ALICE;
}
