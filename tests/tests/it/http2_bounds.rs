//! HTTP/2 bounded as HTTP/1.1 is: every request body, to the authorization server and to routes
//! alike, arrives whole within `limits.body_timeout` or is answered `408`; an idle HTTP/2
//! connection is closed; each client address holds at most so many connections and requests;
//! rapid resets, CONTINUATION floods and thousands of streams (real HTTP/2 clients: Node's `http2`,
//! raw frames, Debian's `h2load`) are each answered or closed in time, memory stays bounded and
//! ordinary clients are served throughout. A body on a policy route's GET is refused however it is
//! framed.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use integration_tests::{GatewayBuilder, GatewayTls, GatewayUnderTest, ScriptedBackend, node};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::oauth_flow::users_file;

const BODY_TIMEOUT: Duration = Duration::from_secs(2);
/// What a deadline may overrun by on a busy test machine: the watchdog looks five times a second.
const SLACK: Duration = Duration::from_millis(2500);
/// How much more the gateway may hold after 10,000 stalled streams than before.
const STALLED_RSS_BOUND: u64 = 64 * 1024 * 1024;

struct Stack {
    gateway: GatewayUnderTest,
    backend: ScriptedBackend,
    tls: GatewayTls,
    _dir: tempfile::TempDir,
}

/// A gateway serving HTTPS (HTTP/2 and HTTP/1.1) with the local provider, a route without a policy
/// and one with, short body and idle timeouts, and `limits` added to its `[limits]`.
async fn stack(limits: &str) -> Stack {
    let backend = ScriptedBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tls = GatewayTls::issued(dir.path());
    let gateway = GatewayBuilder::new()
        .tls(&tls)
        .section(&format!(
            "[provider]\nkind = \"local\"\nusers_file = {users:?}\n\n\
             [rate_limits]\ntoken = 0\nintrospect = 0\n\n\
             [limits]\nbody_timeout = \"2s\"\nhttp2_idle_timeout = \"1s\"\n{limits}\n\n\
             [[routes]]\npath = \"/mcp\"\nupstream = \"{mcp}\"\n\n\
             [[routes]]\npath = \"/policy/mcp\"\nupstream = \"{mcp}\"\n\
             [routes.policy]\ndefault = \"allow\"\n",
            users = users_file().display().to_string(),
            mcp = backend.url("/mcp"),
        ))
        .start()
        .await;
    Stack {
        gateway,
        backend,
        tls,
        _dir: dir,
    }
}

/// Runs a scenario of `h2-client.mjs` against the stack.
async fn h2(stack: &Stack, scenario: Value) -> Value {
    let mut plan = scenario;
    plan["origin"] = json!(stack.gateway.origin);
    plan["ca"] = json!(stack.tls.ca_file.display().to_string());
    node::run("h2-client.mjs", &plan).await
}

/// A plain request over a connection of its own, served promptly, over HTTP/2: the gateway is
/// still itself.
async fn still_serves(stack: &Stack) {
    assert_eq!(stack.gateway.still_serves().await, http::Version::HTTP_2);
}

fn outcomes(report: &Value) -> Vec<(String, u64)> {
    report["outcomes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_http2_bodies_are_answered_408_within_the_body_timeout_everywhere() {
    let stack = stack("").await;
    let token = stack.gateway.token("/mcp", "alice");
    let policy_token = stack.gateway.token("/policy/mcp", "alice");
    for (path, headers, content_type) in [
        ("/token", json!({}), "application/x-www-form-urlencoded"),
        (
            "/introspect",
            json!({}),
            "application/x-www-form-urlencoded",
        ),
        (
            "/mcp",
            json!({"authorization": format!("Bearer {token}")}),
            "application/json",
        ),
        (
            "/policy/mcp",
            json!({"authorization": format!("Bearer {policy_token}")}),
            "application/json",
        ),
    ] {
        let run = h2(
            &stack,
            json!({"scenario": "stalled", "count": 40, "connections": 2, "path": path,
                   "headers": headers, "content_type": content_type}),
        );
        let (report, ()) = tokio::join!(run, still_serves(&stack));
        assert_eq!(
            outcomes(&report),
            [("408".to_owned(), 40)],
            "{path}: {report}"
        );
        let max = Duration::from_millis(report["max_ms"].as_u64().unwrap());
        assert!(
            max >= BODY_TIMEOUT && max < BODY_TIMEOUT + SLACK,
            "{path}: {max:?}"
        );
    }
    assert!(
        stack.backend.bodies().is_empty(),
        "no half body reached the backend"
    );
    still_serves(&stack).await;
}

/// HTTP/1.1's bodies meet the same deadline: Pingora's reads are bounded by it.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_http1_body_meets_the_same_deadline() {
    let stack = stack("").await;
    let token = stack.gateway.token("/mcp", "alice");
    let client = stack.tls.client_builder().http1_only().build().unwrap();
    let half: Vec<Result<&'static str, std::io::Error>> = vec![Ok("{\"jsonrpc\":")];
    let stalled = futures::stream::iter(half).chain(futures::stream::pending());
    let started = Instant::now();
    let response = client
        .post(stack.gateway.url("/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("content-length", "100")
        .body(reqwest::Body::wrap_stream(stalled))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 408);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= BODY_TIMEOUT && elapsed < BODY_TIMEOUT + SLACK,
        "{elapsed:?}"
    );
    assert!(stack.backend.bodies().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_http2_connection_is_closed() {
    let stack = stack("").await;
    let report = h2(&stack, json!({"scenario": "idle", "wait_ms": 10_000})).await;
    let closed = report["closed_after_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("an idle connection was kept open: {report}"));
    assert!(
        closed >= 900 && closed < 1000 + SLACK.as_millis() as u64,
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rapid_resets_continuation_floods_and_stalled_streams_leave_the_gateway_serving_and_bounded()
 {
    let mut stack = stack("").await;
    still_serves(&stack).await;
    let before = stack.gateway.process.rss_bytes();

    // Streams opened and cancelled as fast as a client can: the connection is closed long before
    // the client runs out, and everyone else is served meanwhile.
    let (report, ()) = tokio::join!(
        h2(&stack, json!({"scenario": "rapid-reset", "count": 100_000})),
        still_serves(&stack)
    );
    eprintln!("rapid reset: {report}");
    assert_eq!(report["closed"], true, "{report}");
    assert!(report["sent"].as_u64().unwrap() < 100_000, "{report}");

    // Header blocks that never end: the connection is closed long before they add up.
    let report = h2(
        &stack,
        json!({"scenario": "continuation", "count": 4096, "wait_ms": 5000}),
    )
    .await;
    eprintln!("CONTINUATION flood: {report}");
    assert_eq!(report["closed"], true, "{report}");
    assert!(
        report["written"].as_u64().unwrap() < 16 * 1024 * 1024,
        "{report}"
    );
    still_serves(&stack).await;

    // 10,000 stalled /introspect streams from one address: those within the address's share of
    // requests in flight end at the body timeout; the rest are refused at once.
    let started = Instant::now();
    let (report, ()) = tokio::join!(
        h2(
            &stack,
            json!({"scenario": "stalled", "count": 10_000, "connections": 100,
                   "path": "/introspect", "content_type": "application/x-www-form-urlencoded"})
        ),
        still_serves(&stack)
    );
    eprintln!("10,000 stalled streams: {report}");
    let outcomes = outcomes(&report);
    let count = |status: &str| {
        outcomes
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(count("408") + count("429"), 10_000, "{report}");
    // The address's share at once (and more as the first end); most are refused.
    assert!(count("408") >= 512, "{report}");
    assert!(count("429") >= 5_000, "{report}");
    assert!(started.elapsed() < BODY_TIMEOUT + Duration::from_secs(20));
    still_serves(&stack).await;
    let after = stack.gateway.process.rss_bytes();
    let mib = |b: u64| b as f64 / 1048576.0;
    eprintln!(
        "gateway RSS before {:.1} MiB, after {:.1} MiB",
        mib(before),
        mib(after)
    );
    assert!(
        after < before + STALLED_RSS_BOUND,
        "RSS grew from {before} to {after}"
    );
    assert!(stack.gateway.process.is_running());
    assert!(!stack.gateway.process.stderr().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_streams_from_h2load_are_all_served() {
    let stack = stack("").await;
    let output = tokio::process::Command::new("h2load")
        .args(["-n", "5000", "-c", "4", "-m", "50"])
        .arg(
            stack
                .gateway
                .url("/.well-known/oauth-protected-resource/mcp"),
        )
        .output()
        .await
        .expect("h2load runs: install Debian's nghttp2-client");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("5000 succeeded, 0 failed, 0 errored, 0 timeout"),
        "{text}"
    );
    assert!(text.contains("status codes: 5000 2xx"), "{text}");
    assert!(text.contains("Application protocol: h2"), "{text}");
}

/// Over the per-client limits, a connection is closed at once and a request answered 429, while a
/// client at another address is served.
#[tokio::test(flavor = "multi_thread")]
async fn each_client_address_holds_at_most_its_share_of_connections_and_requests() {
    let backend = ScriptedBackend::start().await;
    let gateway = GatewayBuilder::new()
        .section(&format!(
            "[limits]\nmax_connections_per_client = 8\nmax_requests_per_client = 5\n\n\
             [[routes]]\npath = \"/mcp\"\nupstream = \"{}\"\n",
            backend.url("/mcp")
        ))
        .start()
        .await;
    let port: u16 = gateway.origin.rsplit(':').next().unwrap().parse().unwrap();
    let token = gateway.token("/mcp", "alice");
    let stalled = format!(
        "POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream.write_all(stalled.as_bytes()).await.unwrap();
        held.push(stream);
    }
    // The sixth request in flight: refused at once.
    let sixth = reqwest::Client::new()
        .get(gateway.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(sixth.status(), 429);
    assert_eq!(sixth.headers()["retry-after"], "1");
    // Connections: 5 held, and 3 more kept alive once answered (so the gateway has counted
    // them) make 8; the ninth is closed without a word.
    for _ in 0..3 {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = [0u8; 12];
        stream.read_exact(&mut answer).await.unwrap();
        assert_eq!(
            &answer, b"HTTP/1.1 429",
            "the address's requests are all taken"
        );
        held.push(stream);
    }
    let mut ninth = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let _ = ninth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(2), ninth.read(&mut buffer))
        .await
        .expect("closed at once");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "{read:?}: {}",
        String::from_utf8_lossy(&buffer)
    );
    // Another address is served meanwhile.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let served = other.get(gateway.url("/healthz")).send().await.unwrap();
    assert_eq!(served.status(), 200);
    // Once they are gone, the address is served again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = reqwest::Client::new()
            .get(gateway.url("/healthz"))
            .send()
            .await;
        if response.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "the address is served again");
        // Polling interval while the gateway sees the closes, not a guess at how long.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// On a route with a policy only a POST carries a body: a GET, PUT or DELETE with one is refused
/// over HTTP/2 too, where a body needs neither a length nor chunks (it comes in DATA frames).
#[tokio::test(flavor = "multi_thread")]
async fn a_body_on_a_policy_routes_get_is_refused_however_it_is_framed() {
    let stack = stack("").await;
    let token = stack.gateway.token("/policy/mcp", "alice");
    let client = stack.tls.client_builder().build().unwrap();
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#;
    for method in [http::Method::GET, http::Method::PUT, http::Method::DELETE] {
        // A streamed body: no Content-Length, frames only.
        let frames: Vec<Result<&'static str, std::io::Error>> = vec![Ok(call)];
        let response = client
            .request(method.clone(), stack.gateway.url("/policy/mcp"))
            .header("authorization", format!("Bearer {token}"))
            .body(reqwest::Body::wrap_stream(futures::stream::iter(frames)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(response.status(), 400, "{method}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], -32600, "{method}: {answer}");
    }
}
