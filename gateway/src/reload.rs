//! `SIGHUP`: re-read what can change while the gateway runs, without dropping a connection. Today that
//! is the HTTPS listener's certificate ([`crate::tls`]); the rest of the config still needs a restart.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::signal::unix::{SignalKind, signal};

use crate::tls::ServedCertificate;

pub struct Reloader {
    pub certificate: Option<Arc<ServedCertificate>>,
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // Listening replaces SIGHUP's default action, which would end the process.
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                tracing::error!("cannot listen for SIGHUP: {error}");
                return;
            }
        };
        loop {
            tokio::select! {
                Some(()) = hangups.recv() => {
                    tracing::info!("SIGHUP: re-reading the TLS certificate");
                    if let Some(certificate) = &self.certificate {
                        certificate.refresh(None);
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
