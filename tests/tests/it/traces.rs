//! OpenTelemetry traces, decoded by a real OTLP receiver: a tool call is one trace from the client's
//! `traceparent` through the gateway's spans (request, admission, backend call) into mcp-backend's
//! span of the tool; a message's `_meta.traceparent` is linked; the authorization server's steps and
//! its store calls are spans too; and no attribute holds a token.

use integration_tests::otlp::{OtlpReceiver, ReceivedSpan};
use integration_tests::{
    EchoTarget, GatewayBuilder, GatewayUnderTest, free_port, node, supervised_backend_route,
    wait_for_port,
};
use serde_json::{Value, json};

const CLIENT_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN: &str = "b7ad6b7169203331";
const META_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// POSTs one JSON-RPC message to `/mcp` in `session`, with `headers`: the answer's session and body.
async fn rpc(
    gateway: &GatewayUnderTest,
    token: &str,
    session: Option<&str>,
    headers: &[(&str, &str)],
    message: Value,
) -> (Option<String>, String) {
    let mut request = reqwest::Client::new()
        .post(gateway.url("/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(message.to_string());
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    (session, response.text().await.unwrap())
}

fn find(spans: &[ReceivedSpan], f: impl Fn(&ReceivedSpan) -> bool) -> Option<&ReceivedSpan> {
    spans.iter().find(|s| f(s))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_call_is_one_trace_from_the_client_through_the_gateway_into_the_backend() {
    let receiver = OtlpReceiver::start().await;
    let echo = EchoTarget::start().await;
    let builder = GatewayBuilder::new()
        // The supervised mcp-backend finds the collector where OpenTelemetry's tools look.
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint())
        // The client stands for a trusted proxy, whose trace (and its word on sampling) is taken.
        .server("trusted_proxies = [\"127.0.0.1\"]");
    let backend_port = free_port();
    let origin = builder.origin();
    let gateway = builder
        .section(&format!(
            "[telemetry]\notlp_endpoint = \"{}\"\nservice_name = \"gateway-under-test\"\n\n{}",
            receiver.endpoint(),
            supervised_backend_route(&origin, backend_port, &echo.url(), ""),
        ))
        .start()
        .await;
    wait_for_port(backend_port, "the supervised mcp-backend").await;
    let token = gateway.token("/mcp", "alice");

    let (session, _) = rpc(
        &gateway,
        &token,
        None,
        &[],
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "traces", "version": "1"}}}),
    )
    .await;
    let session = session.expect("a session");
    rpc(
        &gateway,
        &token,
        Some(&session),
        &[],
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let (_, answer) = rpc(
        &gateway,
        &token,
        Some(&session),
        &[("traceparent", &traceparent)],
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "make_authenticated_request", "arguments": {"message": "traced"}}}),
    )
    .await;
    assert!(answer.contains("traced"), "{answer}");
    // A message that names its trace in `_meta` (and its method in the headers, so that the body
    // is read before it is forwarded).
    let meta = format!("00-{META_TRACE}-00f067aa0ba902b7-01");
    rpc(
        &gateway,
        &token,
        Some(&session),
        &[
            ("mcp-method", "tools/call"),
            ("mcp-name", "show_auth_token"),
        ],
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "show_auth_token", "arguments": {}, "_meta": {"traceparent": meta}}}),
    )
    .await;

    let spans = receiver
        .wait_for(|spans| {
            let in_trace = |service: &str| {
                spans
                    .iter()
                    .any(|s| s.trace_id == CLIENT_TRACE && s.service == service)
            };
            in_trace("gateway-under-test")
                && in_trace("mcp-backend")
                && spans
                    .iter()
                    .any(|s| s.links.iter().any(|l| l == META_TRACE))
        })
        .await;
    let trace: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id == CLIENT_TRACE)
        .collect();

    // The gateway's server span continues the client's.
    let request = find(&spans, |s| {
        s.trace_id == CLIENT_TRACE && s.service == "gateway-under-test" && s.kind == 2
    })
    .unwrap_or_else(|| panic!("{trace:#?}"));
    assert_eq!(request.name, "POST /mcp");
    assert_eq!(request.parent_span_id, CLIENT_SPAN);
    for (key, value) in [
        ("http.route", "/mcp"),
        ("http.request.method", "POST"),
        ("http.response.status_code", "200"),
        ("mcp.method.name", "tools/call"),
        ("gen_ai.tool.name", "make_authenticated_request"),
        ("mcp.session.id", session_hash(&session).as_str()),
        ("enduser.id", "alice"),
    ] {
        assert_eq!(request.attribute(key), Some(value), "{key}: {request:#?}");
    }
    // Within it, the admission and the call to the backend.
    let child = |name: &str| {
        find(&spans, |s| {
            s.parent_span_id == request.span_id && s.name == name
        })
        .unwrap_or_else(|| panic!("no {name} span under the request: {trace:#?}"))
    };
    child("admission");
    let backend = child("backend /mcp");
    assert_eq!(backend.kind, 3, "a client span");
    assert_eq!(
        backend.attribute("server.port"),
        Some(backend_port.to_string().as_str())
    );
    // mcp-backend's span of the tool is the child of the gateway's call to it: one trace.
    let tool = find(&spans, |s| {
        s.service == "mcp-backend" && s.trace_id == CLIENT_TRACE
    })
    .unwrap_or_else(|| panic!("{trace:#?}"));
    assert_eq!(tool.name, "tools/call make_authenticated_request");
    assert_eq!(tool.parent_span_id, backend.span_id);

    // The message's own trace is linked from the request that carried it.
    let linked = find(&spans, |s| s.links.iter().any(|l| l == META_TRACE)).unwrap();
    assert_eq!(
        linked.attribute("gen_ai.tool.name"),
        Some("show_auth_token")
    );
    assert_ne!(linked.trace_id, META_TRACE);

    // No token anywhere.
    for span in &spans {
        for (key, value) in &span.attributes {
            assert!(!value.contains(&token[..20]), "{key} holds the token");
        }
    }
}

/// What a trace says of a session: the first 16 bytes of its id's SHA-256, in hex.
fn session_hash(session: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(session.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A client that is not a trusted proxy may say where its call belongs, but not have it traced:
/// its `traceparent` (sampled) is linked from a trace the gateway starts and samples itself, and no
/// attribute holds its session's id.
#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_clients_trace_is_linked_not_continued() {
    let receiver = OtlpReceiver::start().await;
    let backend = integration_tests::ScriptedBackend::start().await;
    let gateway = GatewayBuilder::new()
        .section(&format!(
            "[telemetry]\notlp_endpoint = \"{}\"\nservice_name = \"gateway-under-test\"\n\n\
             [[routes]]\npath = \"/mcp\"\nupstream = \"{}\"\n",
            receiver.endpoint(),
            backend.url("/mcp"),
        ))
        .start()
        .await;
    let token = gateway.token("/mcp", "alice");
    // The backend opens a session on the first request.
    let (session, _) = rpc(
        &gateway,
        &token,
        None,
        &[],
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    let session = session.expect("a session");
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    rpc(
        &gateway,
        &token,
        Some(&session),
        &[("traceparent", &traceparent)],
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    let spans = receiver
        .wait_for(|spans| {
            spans
                .iter()
                .any(|s| s.links.iter().any(|l| l == CLIENT_TRACE))
        })
        .await;
    assert!(
        spans.iter().all(|s| s.trace_id != CLIENT_TRACE),
        "the client's trace was continued: {spans:#?}"
    );
    let request = find(&spans, |s| s.links.iter().any(|l| l == CLIENT_TRACE)).unwrap();
    assert_eq!(request.name, "POST /mcp");
    assert_eq!(
        request.attribute("mcp.session.id"),
        Some(session_hash(&session).as_str())
    );
    for span in &spans {
        for (key, value) in &span.attributes {
            assert!(
                !value.contains("a-session-id"),
                "{key} holds the session id"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_authorization_servers_steps_and_store_calls_are_spans() {
    let receiver = OtlpReceiver::start().await;
    let telemetry = format!("[telemetry]\notlp_endpoint = \"{}\"\n", receiver.endpoint());
    let stack = crate::oauth_flow::auth_stack(&telemetry).await;
    let plan =
        json!({ "url": stack.gateway.url("/mcp"), "username": "alice", "password": "wonderland" });
    let report = node::run("oauth-flow.mjs", &plan).await;
    assert!(report.get("error").is_none(), "{report:#}");

    let spans = receiver
        .wait_for(|spans| {
            ["oauth /token", "oauth /register", "oauth /login"]
                .iter()
                .all(|name| spans.iter().any(|s| s.name == *name))
        })
        .await;
    let token = find(&spans, |s| s.name == "oauth /token").unwrap();
    let server = find(&spans, |s| s.span_id == token.parent_span_id).unwrap();
    assert_eq!(server.name, "POST /token", "{spans:#?}");
    let store = find(&spans, |s| {
        s.parent_span_id == token.span_id && s.name.starts_with("store ")
    })
    .unwrap_or_else(|| panic!("no store span under the token endpoint's: {spans:#?}"));
    assert_eq!(store.attribute("db.system.name"), Some("sqlite"));
    // A refused refresh (after revocation) is an error on its span.
    assert!(
        spans
            .iter()
            .any(|s| s.name == "oauth /token" && s.attribute("error.type") == Some("invalid_grant")),
        "{spans:#?}"
    );
}
