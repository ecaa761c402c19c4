//! Stopping and replacing a running gateway: SIGTERM drains (no new connections, requests in flight
//! finish, SSE streams end within the grace period), and a zero-downtime upgrade (`--upgrade`, then
//! SIGQUIT to the old process) hands the listening sockets over without losing a request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use integration_tests::{GatewayBuilder, ScriptedBackend};

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_accepting_lets_requests_finish_and_ends_streams_within_the_grace_period() {
    let backend = ScriptedBackend::start().await;
    let mut gateway = GatewayBuilder::new()
        .server("grace_period = \"3s\"")
        .section(&format!(
            "[[routes]]\npath = \"/finishing/mcp\"\nupstream = \"{finishing}\"\n\n\
             [[routes]]\npath = \"/held/mcp\"\nupstream = \"{held}\"\n",
            finishing = backend.url("/keepalive?ms=300&count=5"),
            held = backend.url("/sse"),
        ))
        .start()
        .await;
    let port: u16 = gateway.origin.rsplit(':').next().unwrap().parse().unwrap();
    let get = |path: &str| gateway.stream_get(path).send();
    // A stream that ends by itself after 1.5 s, and one its backend holds open.
    let finishing = get("/finishing/mcp").await.unwrap();
    let mut held = get("/held/mcp").await.unwrap();
    assert_eq!(
        (finishing.status().as_u16(), held.status().as_u16()),
        (200, 200)
    );
    let first = held.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("data: first"));

    let stopping = Instant::now();
    gateway.process.signal("TERM");
    // New connections are refused at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "still accepting 5 s after SIGTERM"
        );
        // Polling interval while waiting for the listener to close, not a guess at when.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The request in flight finishes whole.
    let body = finishing.text().await.expect("the stream ends cleanly");
    assert_eq!(body.matches(": keep-alive").count(), 5, "{body}");
    assert!(body.contains("data: done"), "{body}");
    // The held stream ends with the grace period, and the gateway exits.
    while let Ok(Some(_)) = held.chunk().await {}
    let status = gateway.process.wait_exit().await;
    assert!(status.success(), "{status}");
    let took = stopping.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_under_load_hands_the_sockets_over_and_loses_no_request() {
    let backend = ScriptedBackend::start().await;
    let mut gateway = GatewayBuilder::new()
        .section(&format!(
            "[[routes]]\npath = \"/a/mcp\"\nupstream = \"{}\"\n",
            backend.url("/mcp")
        ))
        .start()
        .await;
    let (url, token) = (gateway.url("/a/mcp"), gateway.token("/a/mcp", "alice"));
    let stop = Arc::new(AtomicBool::new(false));
    // Two busy clients: one keeping its connection alive (as MCP clients do), one opening a new
    // connection for each request. Each counts what was answered 200 and what failed.
    let clients = [
        reqwest::Client::new(),
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
    ];
    let busy: Vec<_> = clients
        .into_iter()
        .map(|http| {
            let (url, token, stop) = (url.clone(), token.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut served, mut closed, mut failed) = (0u32, 0u32, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let answer = http
                        .post(&url)
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .header("accept", "application/json, text/event-stream")
                        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
                        .send()
                        .await;
                    match answer {
                        Ok(response) if response.status() == 200 => {
                            served += 1;
                            let close = response
                                .headers()
                                .get("connection")
                                .is_some_and(|v| v == "close");
                            closed += u32::from(close);
                        }
                        Ok(response) => failed.push(format!("status {}", response.status())),
                        Err(error) => failed.push(format!("{error:?}")),
                    }
                }
                (served, closed, failed)
            })
        })
        .collect();

    let old = gateway.upgrade().await;
    // The new process serves a while longer, then the clients stop.
    let before = backend.requests().len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while backend.requests().len() < before + 50 {
        assert!(Instant::now() < deadline, "the new gateway does not serve");
        // Polling interval while the clients work, not a guess at how long they take.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for (i, client) in busy.into_iter().enumerate() {
        let (served, closed, failed) = client.await.unwrap();
        assert!(failed.is_empty(), "{} lost: {failed:?}", failed.len());
        assert!(served > 20, "{served}");
        // The old gateway told the client that keeps its connection to open a new one, rather
        // than close under it a connection it might be sending on.
        if i == 0 {
            assert!(closed > 0, "no response said Connection: close");
        }
    }
    // Both processes served: the old one up to the hand-over, the new one after.
    let lines = |log: &str| log.lines().filter(|l| l.contains("/a/mcp")).count();
    let (by_old, by_new) = (lines(&old.stderr()), lines(&gateway.process.stderr()));
    assert!(by_old > 0 && by_new > 0, "old {by_old}, new {by_new}");
}
