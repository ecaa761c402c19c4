//! The gateway's own HTTPS listener and the certificate it serves, swapped without a restart: rustls
//! asks [`ServedCertificate`] for it at each handshake, and [`CertificateWatch`] re-reads the files
//! when they change (a certbot renewal) or on reload. A connection already open keeps the
//! certificate it was made with; a pair of files that does not load is logged and the old one stays.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::TlsFiles;
use crate::file_stamp::{Stamp, stamp};

/// How often the files are looked at: a `stat` of each, so cheap enough to notice a renewal at once.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct ServedCertificate {
    current: ArcSwap<CertifiedKey>,
    /// The files, and the stamps of the version last read (loaded or not).
    files: Mutex<(TlsFiles, [Stamp; 2])>,
}

impl ServedCertificate {
    /// Serves what `files` hold now; the config's check has loaded them once already.
    pub(crate) fn load(files: &TlsFiles) -> anyhow::Result<Arc<Self>> {
        let stamps = [stamp(&files.cert_file), stamp(&files.key_file)];
        let key = files.load()?;
        record_expiry(&key);
        Ok(Arc::new(Self {
            current: ArcSwap::new(key),
            files: Mutex::new((files.clone(), stamps)),
        }))
    }

    /// Re-reads the files if they changed since last read, or if `files` names others (a reload).
    pub(crate) fn refresh(&self, files: Option<&TlsFiles>) {
        let mut guard = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let (watched, stamps) = &mut *guard;
        let renamed = files.is_some_and(|f| f != watched);
        if let Some(files) = files {
            *watched = files.clone();
        }
        let now = [stamp(&watched.cert_file), stamp(&watched.key_file)];
        if !renamed && now == *stamps {
            return;
        }
        *stamps = now;
        match watched.load() {
            Ok(key) => {
                record_expiry(&key);
                self.current.store(key);
                tracing::info!(
                    cert_file = %watched.cert_file.display(),
                    "serving a new TLS certificate"
                );
            }
            // Logged once per version of the files: a renewal that writes the certificate before the
            // key is seen in between, and its next change is read again.
            Err(error) => tracing::warn!("keeping the TLS certificate served until now: {error}"),
        }
    }

    /// Pingora's listener settings: this certificate, HTTP/2 by ALPN beside HTTP/1.1, and rustls'
    /// defaults otherwise (TLS 1.2 and 1.3, its safe cipher suites).
    pub(crate) fn listener_settings(self: &Arc<Self>) -> anyhow::Result<TlsSettings> {
        // The paths are unused: a resolver set below takes their place.
        let mut settings = TlsSettings::intermediate("", "")?;
        settings.set_cert_resolver(self.clone());
        settings.enable_h2();
        Ok(settings)
    }
}

impl ResolvesServerCert for ServedCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The end of the served certificate's validity, as a metric to alert on.
fn record_expiry(key: &CertifiedKey) {
    let Some(leaf) = key.cert.first() else { return };
    match x509_parser::parse_x509_certificate(leaf) {
        Ok((_, cert)) => crate::telemetry::metrics::TLS_CERTIFICATE_EXPIRY
            .set(cert.validity().not_after.timestamp()),
        Err(error) => tracing::warn!("cannot read the TLS certificate's expiry: {error}"),
    }
}

/// Looks at the certificate's files every [`WATCH_INTERVAL`].
pub(crate) struct CertificateWatch(pub Arc<ServedCertificate>);

#[async_trait]
impl BackgroundService for CertificateWatch {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut ticks = tokio::time::interval(WATCH_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.0.refresh(None),
                _ = shutdown.changed() => return,
            }
        }
    }
}
