//! A scripted backend for the gateway's tests, on a free port of the current runtime:
//! - `POST /mcp` records the headers of a request whose body arrived whole, and echoes them (and
//!   its `Mcp-Session-Id`), or refuses it with a 401 when told to ([`ScriptedBackend::refuse_next`]);
//! - `GET /sse` and `POST /sse` (and `GET /mcp`, a session's stream) send one event, then hold the stream open until
//!   [`ScriptedBackend::release`];
//! - `GET /keepalive?ms=N&count=K` sends K SSE comments N ms apart, then a final event;
//! - anything under `/hang` never answers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Notify;

#[derive(Clone, Default)]
struct Shared {
    seen: Arc<Mutex<Vec<HeaderMap>>>,
    bodies: Arc<Mutex<Vec<axum::body::Bytes>>>,
    release: Arc<Notify>,
    /// How many of the next `POST /mcp`s are refused with a 401, as a backend refuses a token.
    refusals: Arc<std::sync::atomic::AtomicUsize>,
}

pub struct ScriptedBackend {
    pub port: u16,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl ScriptedBackend {
    pub async fn start() -> Self {
        let shared = Shared::default();
        let app = axum::Router::new()
            .route("/mcp", post(record).get(sse_held))
            .route("/sse", get(sse_held).post(sse_held))
            .route("/keepalive", get(keepalive))
            .route("/hang", any(std::future::pending::<Response>))
            .with_state(shared.clone());
        let (port, server) = crate::process::serve_on_free_port(app).await;
        Self {
            port,
            shared,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Refuses the next `POST /mcp` with a 401 (it is still recorded).
    pub fn refuse_next(&self) {
        self.shared
            .refusals
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// The headers of every `POST /mcp` so far.
    pub fn requests(&self) -> Vec<HeaderMap> {
        self.shared.seen.lock().expect("not poisoned").clone()
    }

    /// The body of every `POST /mcp` so far, as it arrived.
    pub fn bodies(&self) -> Vec<axum::body::Bytes> {
        self.shared.bodies.lock().expect("not poisoned").clone()
    }

    /// Lets a held `/sse` stream send its second event and end.
    pub fn release(&self) {
        self.shared.release.notify_waiters();
    }
}

impl Drop for ScriptedBackend {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Records only requests whose whole body arrived: a request cut off mid-body was not let in.
async fn record(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let echoed: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                json!(v.to_str().unwrap_or("<binary>")),
            )
        })
        .collect();
    // A request without a session opens one, as an MCP server's initialize does.
    let session = Some(
        headers
            .get("mcp-session-id")
            .cloned()
            .unwrap_or_else(|| axum::http::HeaderValue::from_static("echo-session")),
    );
    shared.seen.lock().expect("not poisoned").push(headers);
    shared.bodies.lock().expect("not poisoned").push(body);
    let refuse = shared
        .refusals
        .fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        )
        .is_ok();
    if refuse {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Bearer error=\"invalid_token\"")],
        )
            .into_response();
    }
    let mut response =
        axum::Json(json!({"jsonrpc": "2.0", "id": 1, "result": {"headers": echoed}}))
            .into_response();
    if let Some(session) = session {
        response.headers_mut().insert("mcp-session-id", session);
    }
    response
}

fn sse(body: Body) -> Response {
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(body)
        .expect("a response")
}

async fn sse_held(State(shared): State<Shared>) -> Response {
    let release = shared.release.clone();
    let stream = async_stream(move |tx| async move {
        let notified = release.notified();
        let _ = tx.send("id: 1\ndata: first\n\n".to_owned()).await;
        notified.await;
        let _ = tx.send("id: 2\ndata: second\n\n".to_owned()).await;
    });
    sse(stream)
}

#[derive(Deserialize)]
struct KeepAlive {
    ms: u64,
    count: u32,
}

async fn keepalive(Query(q): Query<KeepAlive>) -> Response {
    sse(async_stream(move |tx| async move {
        let _ = tx.send("id: 0\ndata: open\n\n".to_owned()).await;
        for _ in 0..q.count {
            // The interval is the behaviour under test: a quiet but live stream.
            tokio::time::sleep(Duration::from_millis(q.ms)).await;
            if tx.send(": keep-alive\n\n".to_owned()).await.is_err() {
                return;
            }
        }
        let _ = tx.send("id: 1\ndata: done\n\n".to_owned()).await;
    }))
}

/// A streaming body fed by a task through a channel.
fn async_stream<F, Fut>(produce: F) -> Body
where
    F: FnOnce(tokio::sync::mpsc::Sender<String>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(16);
    tokio::spawn(produce(tx));
    Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    }))
}
