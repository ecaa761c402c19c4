//! The two tools, with the names, descriptions and arguments of the original Go example.
//!
//! Each call finds its caller in its own request: over HTTP, the [`Caller`] that
//! [`crate::trust::require_trusted`] put into the HTTP request's extensions (which rmcp hands on in
//! [`http::request::Parts`]); over stdio, the one caller the process was started for.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use tracing::Instrument as _;

use crate::caller::Caller;
use crate::mask::mask_token;
use crate::target::{EchoSummary, Target};
use crate::telemetry::tool_span;

/// Arguments of `make_authenticated_request`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct MakeAuthenticatedRequestArgs {
    /// The message to include in the request
    pub message: String,
}

/// The MCP server: one per session over HTTP, one per process over stdio.
#[derive(Clone)]
pub struct AuthTools {
    target: Arc<Target>,
    /// The caller over stdio, where there are no HTTP requests to carry one.
    stdio_caller: Option<Arc<Caller>>,
    tool_router: ToolRouter<Self>,
}

const NO_TOKEN: &str = "No authentication token was received with this request.";

#[tool_router]
impl AuthTools {
    /// A server for HTTP, where each request brings its caller.
    pub fn for_http(target: Arc<Target>) -> Self {
        Self {
            target,
            stdio_caller: None,
            tool_router: Self::tool_router(),
        }
    }

    /// A server for stdio, acting for one caller.
    pub fn for_stdio(target: Arc<Target>, caller: Caller) -> Self {
        Self {
            target,
            stdio_caller: Some(Arc::new(caller)),
            tool_router: Self::tool_router(),
        }
    }

    fn caller(&self, ctx: &RequestContext<RoleServer>) -> Option<Caller> {
        ctx.extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>().cloned())
            .or_else(|| self.stdio_caller.as_deref().cloned())
    }

    #[tool(description = "Make an authenticated HTTP request to httpbin.org/anything")]
    async fn make_authenticated_request(
        &self,
        Parameters(args): Parameters<MakeAuthenticatedRequestArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<EchoSummary>, String> {
        let caller = self.caller(&ctx).unwrap_or_default();
        let span = tool_span("make_authenticated_request", &ctx);
        let outcome = match &caller.token {
            None => Err(NO_TOKEN.to_owned()),
            Some(token) => self
                .target
                .call(&args.message, token)
                .instrument(span)
                .await
                .map_err(|e| e.to_string()),
        };
        log_call(
            "make_authenticated_request",
            &caller,
            &ctx,
            outcome.as_ref().err(),
        );
        outcome.map(Json)
    }

    #[tool(description = "Show the current authentication token")]
    async fn show_auth_token(&self, ctx: RequestContext<RoleServer>) -> CallToolResult {
        let _span = tool_span("show_auth_token", &ctx).entered();
        let caller = self.caller(&ctx).unwrap_or_default();
        let result = match &caller.token {
            Some(token) => Ok(mask_token(token.secret())),
            None => Err(NO_TOKEN.to_owned()),
        };
        log_call("show_auth_token", &caller, &ctx, result.as_ref().err());
        match result {
            Ok(masked) => CallToolResult::success(vec![ContentBlock::text(masked)]),
            Err(reason) => CallToolResult::error(vec![ContentBlock::text(reason)]),
        }
    }
}

/// One line per tool call: which tool, which request, which user, and how it went. Never the token.
fn log_call(tool: &str, caller: &Caller, ctx: &RequestContext<RoleServer>, error: Option<&String>) {
    let user = caller.user_for_log();
    let client_id = caller.client_id.as_deref().unwrap_or("-");
    let rpc_id = &ctx.id;
    match error {
        None => {
            tracing::info!(tool, request_id = %caller.request_id, %rpc_id, %user, %client_id, "tool call succeeded")
        }
        Some(reason) => {
            tracing::info!(tool, request_id = %caller.request_id, %rpc_id, %user, %client_id, %reason, "tool call failed")
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for AuthTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "mcp-backend",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "Tools that act with the caller's token from the gateway: make_authenticated_request calls \
                 the configured target with it; show_auth_token shows it masked.",
            )
    }
}
