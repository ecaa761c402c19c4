//! The MCP requests the bench sends: the `tools/call` every protected request carries, and the
//! initialization of a session.

use anyhow::{Context, Result, bail};

use crate::wrk::Request;

/// The `tools/call` every protected request sends.
const TOOLS_CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"show_auth_token","arguments":{}}}"#;

/// A `POST` of [`TOOLS_CALL`] to `url` with `bearer` as its `Authorization`.
pub fn tools_call(url: String, bearer: String) -> Request<'static> {
    Request {
        method: "POST",
        url,
        headers: vec![
            ("Content-Type", "application/json".into()),
            ("Accept", "application/json, text/event-stream".into()),
            ("Authorization", bearer),
        ],
        body: Some(TOOLS_CALL),
    }
}

/// Initializes an MCP session at `url` and returns its id.
pub async fn mcp_session(url: &str, bearer: &str) -> Result<String> {
    let http = reqwest::Client::new();
    let send = |body: &'static str, session: Option<&str>| {
        let mut request = http
            .post(url)
            .header("authorization", bearer)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(id) = session {
            request = request
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", "2025-11-25");
        }
        request.send()
    };
    let answer = send(
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#,
        None,
    )
    .await?;
    if !answer.status().is_success() {
        bail!("initialize through the gateway: {}", answer.status());
    }
    let id = answer
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .context("no Mcp-Session-Id")?
        .to_owned();
    let status = send(
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        Some(&id),
    )
    .await?
    .status();
    if !status.is_success() {
        bail!("notifications/initialized: {status}");
    }
    Ok(id)
}
