//! What crosses the gateway: internal headers only as the gateway sets them ([`headers`]), SSE
//! unbuffered and unhurried, clear errors for dead, slow or oversized traffic.

use std::time::Duration;

use integration_tests::{GatewayBuilder, GatewayUnderTest, ScriptedBackend, free_port};
use reqwest::StatusCode;
use serde_json::Value;

mod headers;

async fn start(backend: &ScriptedBackend, extra: &str) -> GatewayUnderTest {
    let down = format!("http://127.0.0.1:{}/mcp", free_port());
    GatewayBuilder::new()
        .section(&format!(
            "[limits]\nmax_request_body_bytes = 65536\n\n\
             [[routes]]\npath = \"/echo/mcp\"\nupstream = \"{echo}\"\nbackend_audience = \"urn:test:echo\"\n\n\
             [[routes]]\npath = \"/bearer/mcp\"\nupstream = \"{echo}\"\ncredentials = \"bearer\"\n\n\
             [[routes]]\npath = \"/assertion/mcp\"\nupstream = \"{echo}\"\ncredentials = \"assertion\"\n\n\
             [[routes]]\npath = \"/none/mcp\"\nupstream = \"{echo}\"\ncredentials = \"none\"\n\n\
             [[routes]]\npath = \"/sse/mcp\"\nupstream = \"{sse}\"\nread_timeout = \"1s\"\n\n\
             [[routes]]\npath = \"/keepalive/mcp\"\nupstream = \"{keepalive}\"\nread_timeout = \"1s\"\nwrite_timeout = \"1s\"\n\n\
             [[routes]]\npath = \"/slow/mcp\"\nupstream = \"{hang}\"\nread_timeout = \"1s\"\n\n\
             [[routes]]\npath = \"/down/mcp\"\nupstream = \"{down}\"\nconnect_timeout = \"1s\"\n{extra}",
            echo = backend.url("/mcp"),
            sse = backend.url("/sse"),
            keepalive = backend.url("/keepalive?ms=400&count=8"),
            hang = backend.url("/hang"),
        ))
        .start()
        .await
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sse_event_arrives_before_the_backend_ends_the_stream() {
    let backend = ScriptedBackend::start().await;
    let gateway = start(&backend, "").await;
    let mut response = gateway.stream_get("/sse/mcp").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    assert!(response.headers().get("content-encoding").is_none());
    let first = tokio::time::timeout(Duration::from_secs(10), response.chunk())
        .await
        .expect("the first event came while the backend still held the stream open")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("data: first"));
    let open = gateway.metrics().await;
    assert_eq!(
        open.get("mcp_gateway_active_streams{route=\"/sse/mcp\"}"),
        Some(&1.0)
    );

    backend.release();
    let mut rest = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert!(String::from_utf8_lossy(&rest).contains("data: second"));
    // The gauge falls once the stream has ended (the access log phase runs just after).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let closed = gateway.metrics().await;
        if closed.get("mcp_gateway_active_streams{route=\"/sse/mcp\"}") == Some(&0.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stream gauge never fell"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_stream_outlives_the_timeouts_while_keep_alives_flow() {
    let backend = ScriptedBackend::start().await;
    let gateway = start(&backend, "").await;
    let started = std::time::Instant::now();
    let response = gateway.stream_get("/keepalive/mcp").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("the stream ends cleanly");
    // 8 keep-alives 400 ms apart: 3.2 s, over three times the route's 1 s read and write timeouts.
    assert!(started.elapsed() >= Duration::from_millis(3000));
    assert_eq!(body.matches(": keep-alive").count(), 8, "{body}");
    assert!(body.contains("data: done"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_or_slow_backend_gets_502_or_504_with_a_json_body() {
    let backend = ScriptedBackend::start().await;
    let gateway = start(&backend, "").await;
    let http = reqwest::Client::new();
    for (path, status, error) in [
        ("/down/mcp", 502, "bad_gateway"),
        ("/slow/mcp", 504, "gateway_timeout"),
    ] {
        let started = std::time::Instant::now();
        let response = http
            .post(gateway.url(path))
            .header(
                "authorization",
                format!("Bearer {}", gateway.token(path, "alice")),
            )
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{path} answered without hanging"
        );
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(body["error"], error, "{path}");
    }
}

/// A backend named by a host name is resolved (off the worker thread) and reached; one whose name
/// does not resolve gets a 502 with a JSON body, and the gateway goes on serving the others.
#[tokio::test(flavor = "multi_thread")]
async fn backends_by_host_name_are_reached_and_an_unknown_name_gets_502() {
    let backend = ScriptedBackend::start().await;
    // The test backend listens on 127.0.0.1; the gateway takes a name's IPv4 address when it has one,
    // so this holds where `localhost` is `::1` first too.
    let named = backend.url("/mcp").replace("127.0.0.1", "localhost");
    let extra = format!(
        "\n[[routes]]\npath = \"/named/mcp\"\nupstream = \"{named}\"\n\n\
         [[routes]]\npath = \"/nowhere/mcp\"\nupstream = \"http://no-such-host.invalid:9/mcp\"\n"
    );
    let gateway = start(&backend, &extra).await;
    let http = reqwest::Client::new();
    let call = |path: &'static str| {
        http.post(gateway.url(path))
            .header(
                "authorization",
                format!("Bearer {}", gateway.token(path, "alice")),
            )
            .body("{}")
            .send()
    };
    for round in 0..2 {
        let response = call("/nowhere/mcp").await.unwrap();
        assert_eq!(response.status().as_u16(), 502, "round {round}");
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(body["error"], "bad_gateway");
        let response = call("/named/mcp").await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_bodies_and_headers_get_413_and_431() {
    let backend = ScriptedBackend::start().await;
    let gateway = start(&backend, "").await;
    let http = reqwest::Client::new();
    let token = gateway.token("/echo/mcp", "alice");
    let big = "x".repeat(70_000);

    let response = http
        .post(gateway.url("/echo/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "payload_too_large"
    );

    // The same size without a Content-Length, streamed in chunks.
    let chunks: Vec<Result<String, std::io::Error>> =
        (0..70).map(|_| Ok("y".repeat(1000))).collect();
    let response = http
        .post(gateway.url("/echo/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    if let Ok(response) = response {
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    let response = http
        .post(gateway.url("/echo/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-padding", "p".repeat(40_000))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert!(
        backend.requests().is_empty(),
        "nothing oversized was forwarded"
    );
}

/// MCP 2026-07-28 makes `Mcp-Method` required: a POST declaring that version (or a later one)
/// without it is refused with `400` and `-32020`, on a route without a policy too, and never
/// reaches the backend; older versions send none and go on.
#[tokio::test(flavor = "multi_thread")]
async fn a_2026_07_28_request_without_mcp_method_is_refused() {
    let backend = ScriptedBackend::start().await;
    let gateway = start(&backend, "").await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    for version in ["2026-07-28", "2027-03-01"] {
        let response = gateway
            .mcp_post("/none/mcp", body)
            .header("mcp-protocol-version", version)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{version}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], -32020, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Mcp-Method header is required"),
            "{answer}"
        );
    }
    assert!(backend.requests().is_empty(), "nothing reached the backend");
    for (version, method) in [("2026-07-28", Some("tools/list")), ("2025-11-25", None)] {
        let mut request = gateway
            .mcp_post("/none/mcp", body)
            .header("mcp-protocol-version", version);
        if let Some(method) = method {
            request = request.header("mcp-method", method);
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            StatusCode::OK,
            "{version}"
        );
    }
    assert_eq!(backend.requests().len(), 2);
}
