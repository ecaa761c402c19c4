//! Whether the gateway is on its way out: from the moment it hands its sockets to a new gateway
//! (SIGQUIT) or is told to stop (SIGTERM). From then on every HTTP/1.1 response says
//! `Connection: close`, so that a client that keeps its connection alive opens its next request on
//! a new connection (which the new gateway takes) instead of sending it down one this gateway is
//! about to close: a request sent just as an idle connection closes is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use pingora::server::{ExecutionPhase, ShutdownWatch};
use pingora::services::background::BackgroundService;
use tokio::sync::broadcast;

/// Follows Pingora's phases and raises the flag when the way out begins.
pub(crate) struct Watch {
    pub phases: std::sync::Mutex<Option<broadcast::Receiver<ExecutionPhase>>>,
    pub draining: Arc<AtomicBool>,
}

#[async_trait]
impl BackgroundService for Watch {
    async fn start(&self, _shutdown: ShutdownWatch) {
        let Some(mut phases) = self.phases.lock().ok().and_then(|mut p| p.take()) else {
            return;
        };
        loop {
            match phases.recv().await {
                Ok(
                    ExecutionPhase::GracefulUpgradeTransferringFds
                    | ExecutionPhase::GracefulTerminate
                    | ExecutionPhase::ShutdownStarted,
                ) => {
                    self.draining.store(true, Ordering::Release);
                    tracing::info!("draining: responses close their connections from now on");
                    return;
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
