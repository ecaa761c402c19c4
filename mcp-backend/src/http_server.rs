//! Streamable HTTP: `/mcp` (rmcp's service behind the trust middleware) and `GET /healthz`.

use std::sync::Arc;

use anyhow::Context as _;
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::config::HttpSettings;
use crate::target::Target;
use crate::tools::AuthTools;
use crate::trust::{Trust, require_trusted};

/// Builds the router for `settings`; `shutdown` ends open sessions and streams when cancelled.
pub fn router(
    settings: &HttpSettings,
    target: Arc<Target>,
    shutdown: CancellationToken,
) -> axum::Router {
    let trust = Arc::new(Trust::new(
        settings.trust.clone(),
        settings.token_header.clone(),
        target.http_client(),
    ));
    if trust.is_unsigned() {
        tracing::warn!(
            "trust_unsigned_headers is set: forwarded token and identity headers are believed from \
             anyone who can reach this port. Use it for local development only."
        );
    }
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(settings.allowed_hosts.clone())
        .with_json_response(settings.json_response)
        .with_cancellation_token(shutdown);
    let mcp = StreamableHttpService::new(
        move || Ok(AuthTools::for_http(target.clone())),
        LocalSessionManager::default().into(),
        config,
    );
    axum::Router::new()
        .nest_service(
            "/mcp",
            tower::ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(trust, require_trusted))
                .service(mcp),
        )
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
}

/// Serves until SIGINT or SIGTERM.
pub async fn serve(settings: HttpSettings, target: Target) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let app = router(&settings, Arc::new(target), shutdown.child_token());
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    tracing::info!(address = %settings.listen, "serving MCP over Streamable HTTP at /mcp");
    // Without TCP_NODELAY, a reply written in two parts (head, then body) waits out the peer's delayed
    // ACK: 40 ms on every request through a proxy that keeps its connection open (the bench found it).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            stop_signal().await;
            shutdown.cancel();
        })
        .await
        .context("serving HTTP")
}

async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
