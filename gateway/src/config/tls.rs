//! `[server.tls]`: the certificate chain and private key the gateway's own listener serves. The files
//! are read and checked here — that each holds what it should and that the key is the certificate's —
//! when the config is read, and again whenever they change while the gateway runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::file::TlsFile;
use super::{ConfigError, Errors};

/// The files of `[server.tls]`, relative paths resolved against the config file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Why the files cannot be served, naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsFilesError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate", .0.display())]
    NoCertificate(PathBuf),
    #[error("the first certificate in {} cannot be read: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", .0.display())]
    NoKey(PathBuf),
    #[error("the private key in {} cannot sign: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error(
        "the private key in {} is not the key of the first certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
}

impl TlsFilesError {
    /// The `[server.tls]` key an error belongs to.
    fn key(&self, files: &TlsFiles) -> &'static str {
        match self {
            Self::Read { path, .. } if *path == files.key_file => "server.tls.key_file",
            Self::Read { .. } | Self::NoCertificate(_) | Self::BadCertificate { .. } => {
                "server.tls.cert_file"
            }
            Self::NoKey(_) | Self::BadKey { .. } | Self::KeyMismatch { .. } => {
                "server.tls.key_file"
            }
        }
    }
}

impl TlsFiles {
    /// Reads the chain and the key and checks that they belong together: what the listener serves.
    pub(crate) fn load(&self) -> Result<Arc<CertifiedKey>, TlsFilesError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsFilesError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let chain_pem = read(&self.cert_file)?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
            .collect::<Result<_, _>>()
            .map_err(|_| TlsFilesError::NoCertificate(self.cert_file.clone()))?;
        if chain.is_empty() {
            return Err(TlsFilesError::NoCertificate(self.cert_file.clone()));
        }
        let key_pem = read(&self.key_file)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|_| TlsFilesError::NoKey(self.key_file.clone()))?;
        // The provider Pingora's TLS uses.
        let provider = rustls::crypto::ring::default_provider();
        let signing_key =
            provider
                .key_provider
                .load_private_key(key)
                .map_err(|e| TlsFilesError::BadKey {
                    path: self.key_file.clone(),
                    reason: e.to_string(),
                })?;
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            // Unknown: a key type that cannot tell its public key; the handshake will tell.
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
                Ok(Arc::new(certified))
            }
            Err(rustls::Error::InconsistentKeys(_)) => Err(TlsFilesError::KeyMismatch {
                cert: self.cert_file.clone(),
                key: self.key_file.clone(),
            }),
            Err(other) => Err(TlsFilesError::BadCertificate {
                path: self.cert_file.clone(),
                reason: other.to_string(),
            }),
        }
    }
}

/// `[server.tls]`, checked by loading it.
pub(super) fn settings(
    tls: Option<&TlsFile>,
    errors: &Errors,
) -> Result<Option<TlsFiles>, ConfigError> {
    let Some(tls) = tls else { return Ok(None) };
    // Relative to the config file, so a config works from any directory.
    let dir = errors.path.parent().unwrap_or(Path::new("."));
    let files = TlsFiles {
        cert_file: dir.join(&tls.cert_file),
        key_file: dir.join(&tls.key_file),
    };
    files
        .load()
        .map_err(|e| errors.at(e.key(&files), e.to_string()))?;
    Ok(Some(files))
}
