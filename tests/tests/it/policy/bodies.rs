//! What a route with a policy reads before forwarding: the 2026-07-28 headers checked against the body,
//! batches, and bodies too large or too slow to decide on, which never reach the backend.

use serde_json::{Value, json};

use super::stack;
use integration_tests::GatewayUnderTest;

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
