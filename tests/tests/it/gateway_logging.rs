//! The access log: one line per request, written in batches, and none lost when the gateway stops.

use integration_tests::{GatewayBuilder, GatewayUnderTest, ScriptedBackend};

/// A gateway that logs only access lines and warnings: nothing else writes the batch out for it.
async fn start() -> (ScriptedBackend, GatewayUnderTest) {
    let backend = ScriptedBackend::start().await;
    let gateway = GatewayBuilder::new()
        .env("RUST_LOG", "warn,access=info")
        .section(&format!(
            "[[routes]]\npath = \"/mcp\"\nupstream = \"{}\"\n",
            backend.url("/mcp")
        ))
        .start()
        .await;
    (backend, gateway)
}

/// The paths of the access lines in `log`, in order.
fn logged_paths(log: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.contains(" access: "))
        .filter_map(|line| {
            let path = line.split(" path=").nth(1)?.split_whitespace().next()?;
            Some(path.to_owned())
        })
        .collect()
}

/// A request's line reaches stderr while the gateway keeps running (the batch is written out on a
/// timer, not only when it is full).
#[tokio::test]
async fn an_access_line_is_written_while_the_gateway_runs() {
    let (_backend, gateway) = start().await;
    let response = reqwest::get(gateway.url("/no-such-route/once"))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let log = gateway
        .process
        .wait_for_output(|log| logged_paths(log).contains(&"/no-such-route/once".to_owned()))
        .await;
    assert!(
        logged_paths(&log).contains(&"/no-such-route/once".to_owned()),
        "no access line within 10 s:\n{log}"
    );
}

/// Lines still waiting in the batch when the gateway is stopped at once (SIGINT, no grace period) are
/// written before it exits: every request has its line, once, in order.
#[tokio::test]
async fn access_lines_waiting_at_shutdown_are_written_out() {
    let (_backend, mut gateway) = start().await;
    let http = reqwest::Client::new();
    let wanted: Vec<String> = (0..50).map(|i| format!("/no-such-route/{i}")).collect();
    for path in &wanted {
        let response = http.get(gateway.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404);
    }
    let status = gateway.process.signal_and_wait("INT").await;
    assert!(status.success(), "{status}");
    let log = gateway.process.stderr();
    let logged: Vec<String> = logged_paths(&log)
        .into_iter()
        .filter(|p| p.starts_with("/no-such-route/"))
        .collect();
    assert_eq!(logged, wanted, "{log}");
}

/// Many batches' worth of lines, written by the log's own thread while requests keep adding to the
/// next batch: every line is written once, and in order.
#[tokio::test]
async fn full_batches_are_written_while_requests_go_on_and_keep_their_order() {
    let (_backend, gateway) = start().await;
    let http = reqwest::Client::new();
    // About 250 bytes a line: some five batches of 32 KiB.
    let wanted: Vec<String> = (0..600).map(|i| format!("/no-such-route/{i}")).collect();
    for path in &wanted {
        let response = http.get(gateway.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404);
    }
    let last = wanted.last().unwrap().clone();
    let log = gateway
        .process
        .wait_for_output(|log| logged_paths(log).contains(&last))
        .await;
    let logged: Vec<String> = logged_paths(&log)
        .into_iter()
        .filter(|p| p.starts_with("/no-such-route/"))
        .collect();
    assert_eq!(logged, wanted);
}

/// Nothing a terminal would act on reaches the log: not from the request line, not from an identity
/// an identity provider chose. The access line is written by hand, so this is the proof that it
/// escapes what it must.
#[tokio::test]
async fn no_terminal_escape_reaches_the_log() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (_backend, gateway) = start().await;
    let port: u16 = gateway.origin.rsplit(':').next().unwrap().parse().unwrap();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(b"GET /esc\x1b[31mape HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    let token = gateway.token("/mcp", "mallory\x1b[2J\n");
    let response = reqwest::Client::new()
        .post(gateway.url("/mcp"))
        .bearer_auth(token)
        .body("{}")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let log = gateway
        .process
        .wait_for_output(|log| log.contains("/esc") && log.contains("mallory"))
        .await;
    assert!(
        log.contains("/esc") && log.contains("user=\"mallory\\u{1b}[2J\\n\""),
        "both requests logged, the identity escaped (answered {status}):\n{log}"
    );
    assert!(!log.contains('\x1b'), "{log:?}");
}

/// The request id of the access line for `path`, if logged.
fn request_id_of(log: &str, path: &str) -> Option<String> {
    log.lines()
        .filter(|line| line.contains(" access: ") && line.contains(&format!(" path={path} ")))
        .find_map(|line| {
            let id = line
                .split(" request_id=")
                .nth(1)?
                .split_whitespace()
                .next()?;
            Some(id.to_owned())
        })
}

/// Sends the start of a request and resets the connection (an RST, as a client that crashes sends).
async fn send_half_and_reset(port: u16) {
    use tokio::io::AsyncWriteExt as _;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.write_all(b"GET /hea").await.unwrap();
    stream.set_zero_linger().unwrap();
    drop(stream);
}

/// A client that closes its SSE stream is normal, not an operator's problem: no warning, no error,
/// only the access line; so is one that resets its connection halfway through a request. A backend that cannot be reached is: a warning naming the
/// route and the request id of its access line.
#[tokio::test]
async fn closed_streams_are_quiet_and_backend_failures_are_warnings() {
    use futures::StreamExt as _;
    let backend = ScriptedBackend::start().await;
    let closed = integration_tests::free_port();
    let gateway = GatewayBuilder::new()
        .env("RUST_LOG", "warn,access=info")
        .section(&format!(
            "[[routes]]\npath = \"/mcp\"\nupstream = \"{}\"\n\n\
             [[routes]]\npath = \"/down/mcp\"\nupstream = \"http://127.0.0.1:{closed}/mcp\"\n",
            backend.url("/sse"),
        ))
        .start()
        .await;
    let port: u16 = gateway.origin.rsplit(':').next().unwrap().parse().unwrap();
    send_half_and_reset(port).await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let response = http
            .get(gateway.url("/mcp"))
            .bearer_auth(gateway.token("/mcp", "alice"))
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.bytes_stream();
        let first = body.next().await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&first).contains("data: first"));
        // Dropped mid-stream: the client ends it.
    }
    let down = http
        .post(gateway.url("/down/mcp"))
        .bearer_auth(gateway.token("/down/mcp", "alice"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 502);
    let log = gateway
        .process
        .wait_for_output(|log| {
            log.matches(" path=/mcp ").count() == 3 && request_id_of(log, "/down/mcp").is_some()
        })
        .await;
    let closed_lines: Vec<&str> = log.lines().filter(|l| l.contains(" path=/mcp ")).collect();
    assert_eq!(closed_lines.len(), 3, "{log}");
    assert!(
        closed_lines
            .iter()
            .all(|l| l.contains("status=200") && !l.contains("error=\"-\"")),
        "the access line records the stream's end: {log}"
    );
    let request_id = request_id_of(&log, "/down/mcp").expect("an access line for /down/mcp");
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert_eq!(warnings.len(), 1, "only the backend failure: {log}");
    assert!(
        warnings[0].contains(" WARN ")
            && warnings[0].contains("route=\"/down/mcp\"")
            && warnings[0].contains(&format!("request_id=\"{request_id}\"")),
        "{log}"
    );
}
