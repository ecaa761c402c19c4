//! Reloading the config while the gateway runs, on `SIGHUP` or, with `server.watch_config`, when the
//! config file or the users file changes. The new config is read and checked first: a bad one is
//! refused with one log line and the old one keeps serving. A good one applies to new requests —
//! routes, backends, clients, users, policies, allowlists, limits, the certificate files — while
//! requests and streams already open carry on under the old ([`crate::proxy::LiveGateway`]). What
//! only a restart changes (listen addresses, threads, the store, the signing keys, the audit trail,
//! the routes' commands) keeps its running value and is named in the log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::{self, Config, Provider};
use crate::file_stamp::{Stamp, stamp};
use crate::proxy::Generations;
use crate::server::tls::ServedCertificate;
use crate::store::Store;
use crate::telemetry::metrics::METRICS;

/// How often the watched files are looked at, with `server.watch_config`.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) struct Reloader {
    pub path: PathBuf,
    pub generations: Generations,
    pub store: Arc<dyn Store>,
    pub certificate: Option<Arc<ServedCertificate>>,
    /// Set once SIGHUP is listened for: until then `/readyz` says 503, so that whoever waits for it
    /// may signal.
    pub listening: Arc<AtomicBool>,
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    #[error(transparent)]
    Invalid(#[from] config::ConfigError),
    #[error(
        "server.public_url changed ({0} to {1}): it is the issuer of every token, so it changes only with a restart"
    )]
    PublicUrl(String, String),
    #[error(
        "writing the config's clients to the store (those before the failure are written): {0}"
    )]
    Store(#[from] crate::store::StoreError),
    #[error("ending the grants of users the users file removed or changed: {0}")]
    Grants(#[from] crate::oauth::OAuthError),
}

impl Reloader {
    /// Reads the config again and, if it is good, serves it: what only a restart changes is returned.
    async fn reload(&self) -> Result<Vec<&'static str>, ReloadError> {
        let next = config::load(&self.path)?;
        let current = self.generations.current();
        let running = current.config();
        if next.live.server.public_url != running.server.public_url {
            return Err(ReloadError::PublicUrl(
                running.server.public_url.clone(),
                next.live.server.public_url.clone(),
            ));
        }
        // The next live part, under the start part in force; what the file would start otherwise
        // is named.
        let config::Reloaded {
            config: next,
            clients,
            restart: kept,
        } = running.reloaded(next);
        let changed_users = users_changed(running, &next);
        // The plain secrets of the config's clients go to the store hashed, and go no further.
        crate::oauth::sync_config_clients(self.store.as_ref(), &clients).await?;
        drop(clients);
        if let (Some(certificate), Some(files)) = (&self.certificate, &next.server.tls) {
            certificate.refresh(Some(files));
        }
        self.generations
            .replace(current.reconfigured(Arc::new(next), &self.store));
        // What the users file no longer says of a user ends what they hold under it.
        let gateway = self.generations.current();
        if let (false, Some(auth)) = (changed_users.is_empty(), gateway.auth()) {
            let ended = auth.end_grants_of(&changed_users).await?;
            tracing::info!(
                users = changed_users.join(", "),
                grants = ended,
                "ended the grants of users the users file removed or changed"
            );
        }
        Ok(kept)
    }

    /// Reloads, and says how it went in one log line and the metrics.
    async fn reload_and_log(&self, why: &str) {
        match self.reload().await {
            Ok(kept) => {
                METRICS.config_reloads.with_label_values(&["applied"]).inc();
                METRICS.config_in_force();
                let routes = self.generations.current().config().routes.len();
                if kept.is_empty() {
                    tracing::info!("{why}: reloaded {}, {routes} routes", self.path.display());
                } else {
                    tracing::warn!(
                        "{why}: reloaded {}, {routes} routes; unchanged until a restart: {}",
                        self.path.display(),
                        kept.join(", ")
                    );
                }
            }
            Err(error) => {
                METRICS.config_reloads.with_label_values(&["refused"]).inc();
                METRICS.config_reload_ok.set(0);
                tracing::error!(
                    "{why}: reload refused, still serving the previous config: {error}"
                );
            }
        }
    }

    /// The files whose change reloads, with `server.watch_config`: the config and its users file.
    fn watched(&self) -> Vec<PathBuf> {
        let config = self.generations.current().config().clone();
        let mut files = vec![self.path.clone()];
        if let Some(Provider::Local { file, .. }) = &config.auth.provider {
            files.push(file.clone());
        }
        files
    }
}

fn stamps(files: &[PathBuf]) -> Vec<Stamp> {
    files.iter().map(|f| stamp(f)).collect()
}

/// The users of the running users file whom the next one removes, or gives other groups or another
/// email: what they hold was granted on what is no longer so.
fn users_changed(running: &Config, next: &Config) -> Vec<String> {
    let (Some(Provider::Local { users: before, .. }), Some(Provider::Local { users: after, .. })) =
        (&running.auth.provider, &next.auth.provider)
    else {
        return Vec::new();
    };
    before
        .iter()
        .filter(|old| {
            !after.iter().any(|new| {
                new.username == old.username && new.groups == old.groups && new.email == old.email
            })
        })
        .map(|old| old.username.clone())
        .collect()
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
        self.listening.store(true, Ordering::Release);
        let mut files = self.watched();
        let mut seen = stamps(&files);
        let mut ticks = tokio::time::interval(WATCH_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Whether to watch is the config in force's to say.
            let watch = self.generations.current().config().server.watch_config;
            tokio::select! {
                Some(()) = hangups.recv() => {
                    let now = stamps(&files);
                    self.reload_and_log("SIGHUP").await;
                    // What the signal read, the watch need not read again.
                    seen = now;
                    if let Some(certificate) = &self.certificate {
                        certificate.refresh(None);
                    }
                }
                _ = ticks.tick(), if watch => {
                    let now = stamps(&files);
                    if now == seen {
                        continue;
                    }
                    self.reload_and_log(&changed(&files, &seen, &now)).await;
                    // The next change is one after the versions just read.
                    seen = now;
                }
                _ = shutdown.changed() => return,
            }
            // The files the config in force names, should that have changed.
            let next = self.watched();
            if next != files {
                seen = stamps(&next);
                files = next;
            }
        }
    }
}

/// "<file> changed", naming the first watched file that did.
fn changed(files: &[PathBuf], before: &[Stamp], now: &[Stamp]) -> String {
    let file = files
        .iter()
        .zip(before.iter().zip(now))
        .find(|(_, (b, n))| b != n)
        .map_or(Path::new("a watched file"), |(f, _)| f.as_path());
    format!("{} changed", file.display())
}
