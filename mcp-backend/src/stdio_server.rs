//! MCP over stdin/stdout, for clients that start the server themselves; the token comes from an
//! environment variable, as in the original example.

use std::sync::Arc;

use anyhow::Context as _;
use rmcp::ServiceExt as _;

use crate::caller::{Caller, Token};
use crate::target::Target;
use crate::tools::AuthTools;

pub async fn serve(token_env: &str, target: Target) -> anyhow::Result<()> {
    let token = std::env::var(token_env).ok().and_then(|v| Token::parse(&v));
    if token.is_none() {
        tracing::warn!(
            variable = token_env,
            "no token in the environment; the tools will say so"
        );
    }
    let caller = Caller {
        token,
        user: std::env::var("USER").ok(),
        request_id: format!("stdio-{}", std::process::id()),
        ..Caller::default()
    };
    tracing::info!("serving MCP over stdio");
    let running = AuthTools::for_stdio(Arc::new(target), caller)
        .serve(rmcp::transport::stdio())
        .await
        .context("starting the stdio server")?;
    running.waiting().await.context("serving stdio")?;
    Ok(())
}
