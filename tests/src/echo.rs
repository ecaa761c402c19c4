//! A local stand-in for httpbin's `/anything`: echoes the query and headers as JSON, and records the
//! `Authorization` header of every request. Some messages make it misbehave on purpose:
//! `status:NNN` answers that status, `not-json` answers plain text, `hang` never answers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

pub struct EchoTarget {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl EchoTarget {
    /// Serves on a free port on the current tokio runtime until dropped.
    pub async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/anything", get(echo))
            .with_state(seen.clone());
        let (port, server) = crate::process::serve_on_free_port(app).await;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Self { addr, seen, server }
    }

    /// The URL to configure as the tool's target.
    pub fn url(&self) -> String {
        format!("http://{}/anything", self.addr)
    }

    /// The `Authorization` header of each request so far (`-` where there was none).
    pub fn authorizations(&self) -> Vec<String> {
        self.seen.lock().expect("not poisoned").clone()
    }
}

impl Drop for EchoTarget {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn echo(
    State(seen): State<Arc<Mutex<Vec<String>>>>,
    Query(args): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    seen.lock().expect("not poisoned").push(authorization);
    match args.get("message").map(String::as_str) {
        Some("hang") => return std::future::pending::<Response>().await,
        Some("not-json") => return "plain text".into_response(),
        Some(m) if m.starts_with("status:") => {
            let code = m["status:".len()..].parse().unwrap_or(500);
            return StatusCode::from_u16(code)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response();
        }
        _ => {}
    }
    let headers: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                title_case(k.as_str()),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    axum::Json(json!({ "args": args, "headers": headers, "method": "GET" })).into_response()
}

/// httpbin shows header names as `Title-Case`.
fn title_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}
