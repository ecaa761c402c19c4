//! Client ID Metadata Documents: a `client_id` that is an https URL names a JSON document, served by
//! the client, that describes it. The gateway fetches it only at `/authorize`, with SSRF guards — the
//! host must resolve only to public addresses (unless the operator allows private ones), checked again
//! by the one HTTP client's resolver when it connects, no redirects, a size and a time limit — and
//! believes it only if its `client_id` is the URL itself. The client it describes is kept in the
//! store (shared by replicas) for the length of a sign-in; a failure is remembered for a minute, so
//! that a flood of one URL fetches it once.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::redirect;
use crate::cache::Cache;
use crate::config::{CimdSettings, PrivateUseSchemes};
use crate::outbound::{self, is_public};
use crate::store::ClientRecord;

/// Real documents are a few hundred bytes; each one fetched is kept in the store for a while.
const MAX_BYTES: usize = 16 * 1024;
const TIMEOUT: Duration = Duration::from_secs(3);
/// Failed URLs remembered at most, and for how long.
const FAILURES_KEPT: usize = 10_000;
const FAILURE_SECS: u64 = 60;
/// How long a fetched client is kept in the store: as long as a sign-in with it may take (the
/// pending authorization's ten minutes, then the code's minute), whatever its `Cache-Control` says.
/// The next `/authorize` after that fetches it again, so a flood of documents costs the store at
/// most a quarter of an hour's worth, and a client that changed its document is read anew.
const KEPT: u64 = 900;

#[derive(Debug, thiserror::Error)]
pub(super) enum CimdError {
    #[error("the client_id {0} is not an https URL with a path")]
    NotAUrl(String),
    #[error("the host {0} is not on this server's list of client domains")]
    DomainNotAllowed(String),
    #[error("the host {0} resolves to a private or reserved address")]
    PrivateAddress(String),
    #[error("the client's metadata document could not be fetched: {0}")]
    Fetch(String),
    #[error("the client's metadata document is invalid: {0}")]
    Invalid(String),
    /// The same URL failed moments ago: not fetched again yet.
    #[error("{0} (tried moments ago)")]
    Recent(String),
}

#[derive(Deserialize)]
struct Document {
    client_id: String,
    client_name: String,
    redirect_uris: Vec<String>,
    client_uri: Option<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    scope: Option<String>,
}

pub(super) struct Cimd {
    settings: CimdSettings,
    /// The app schemes a document's redirect URIs may use.
    schemes: PrivateUseSchemes,
    /// URLs whose fetch failed lately, and why.
    failures: Cache<String, String>,
    /// One client for every fetch, whose resolver refuses what [`Cimd::address`] refuses.
    http: reqwest::Client,
}

impl Cimd {
    pub(super) fn new(settings: CimdSettings, schemes: PrivateUseSchemes) -> Self {
        let http = outbound::client(settings.allow_private_network, TIMEOUT);
        Self {
            settings,
            schemes,
            failures: Cache::new(FAILURES_KEPT),
            http,
        }
    }

    pub(super) fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// Whether `raw` is a document URL this server would fetch: https (or http where private
    /// networks are allowed), a path, on an allowed domain.
    pub(super) fn accepts_url(&self, raw: &str) -> bool {
        self.checked_url(raw).is_ok()
    }

    /// Whether a `client_id` is meant as a metadata document URL.
    pub(super) fn is_document_url(client_id: &str) -> bool {
        client_id.starts_with("https://") || client_id.starts_with("http://")
    }

    /// The client a metadata document URL describes, fetched now, to be kept until its
    /// `expires_at`; or why not (remembered for a minute).
    pub(super) async fn fetch_client(
        &self,
        url: &str,
        now: u64,
    ) -> Result<ClientRecord, CimdError> {
        if let Some(reason) = self.failures.get(url, now) {
            return Err(CimdError::Recent(reason));
        }
        match self.fetch(url, now).await {
            Ok(mut client) => {
                client.expires_at = now + KEPT;
                Ok(client)
            }
            Err(error) => {
                let until = now + FAILURE_SECS;
                self.failures
                    .insert(url.to_owned(), error.to_string(), until, now);
                Err(error)
            }
        }
    }

    async fn fetch(&self, raw: &str, now: u64) -> Result<ClientRecord, CimdError> {
        let (url, host) = self.checked_url(raw)?;
        let port = url.port_or_known_default().unwrap_or(443);
        // Checked here for a clear error; the resolver checks again when the client connects.
        self.address(&host, port).await?;
        let body = download(&self.http, url).await?;
        let document: Document =
            serde_json::from_slice(&body).map_err(|e| CimdError::Invalid(e.to_string()))?;
        self.described(raw, document, now)
    }

    /// The document's URL and host, if it may be fetched: https (http only where private networks
    /// are allowed, for tests), a path, no fragment or credentials, on an allowed domain.
    fn checked_url(&self, raw: &str) -> Result<(url::Url, String), CimdError> {
        let url = url::Url::parse(raw).map_err(|_| CimdError::NotAUrl(raw.to_owned()))?;
        let host = url
            .host_str()
            .ok_or_else(|| CimdError::NotAUrl(raw.to_owned()))?
            .to_owned();
        let insecure_ok = self.settings.allow_private_network && url.scheme() == "http";
        if (url.scheme() != "https" && !insecure_ok)
            || url.path() == "/"
            || url.fragment().is_some()
            || !url.username().is_empty()
        {
            return Err(CimdError::NotAUrl(raw.to_owned()));
        }
        let allowed = &self.settings.allowed_domains;
        let lower = host.to_ascii_lowercase();
        if !allowed.is_empty()
            && !allowed.iter().any(|d| {
                let d = d.to_ascii_lowercase();
                lower == d || lower.ends_with(&format!(".{d}"))
            })
        {
            return Err(CimdError::DomainNotAllowed(host));
        }
        Ok((url, host))
    }

    /// The address to fetch from: every address of the host must be public, unless private networks
    /// are allowed.
    async fn address(&self, host: &str, port: u16) -> Result<SocketAddr, CimdError> {
        let addresses: Vec<SocketAddr> = tokio::time::timeout(
            TIMEOUT,
            tokio::net::lookup_host((host.trim_matches(['[', ']']), port)),
        )
        .await
        .map_err(|_| CimdError::Fetch(format!("resolving {host} timed out")))?
        .map_err(|e| CimdError::Fetch(format!("resolving {host}: {e}")))?
        .collect();
        let Some(first) = addresses.first() else {
            return Err(CimdError::Fetch(format!("{host} has no address")));
        };
        if !self.settings.allow_private_network && addresses.iter().any(|a| !is_public(a.ip())) {
            return Err(CimdError::PrivateAddress(host.to_owned()));
        }
        Ok(*first)
    }

    /// The client a document describes, if it names itself by its URL and its redirect URIs and
    /// authentication are ones this server accepts.
    fn described(
        &self,
        raw: &str,
        document: Document,
        now: u64,
    ) -> Result<ClientRecord, CimdError> {
        if document.client_id != raw {
            return Err(CimdError::Invalid(format!(
                "its client_id {:?} is not its URL",
                document.client_id
            )));
        }
        if document.redirect_uris.is_empty() {
            return Err(CimdError::Invalid("it lists no redirect_uris".into()));
        }
        if let Some(problem) = document
            .redirect_uris
            .iter()
            .find_map(|u| redirect::registration_problem(u, &self.schemes))
        {
            return Err(CimdError::Invalid(problem));
        }
        match document.token_endpoint_auth_method.as_deref() {
            None | Some("none") => {}
            Some(other) => {
                return Err(CimdError::Invalid(format!(
                    "token_endpoint_auth_method {other} is not supported here"
                )));
            }
        }
        Ok(ClientRecord {
            client_id: document.client_id,
            secret_hash: None,
            secret_expires_at: 0,
            redirect_uris: document.redirect_uris,
            grant_types: document
                .grant_types
                .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]),
            response_types: vec!["code".into()],
            token_endpoint_auth_method: "none".into(),
            client_name: Some(document.client_name),
            client_uri: document.client_uri,
            scope: document.scope,
            application_type: None,
            issued_at: now,
            origin: "metadata_document".into(),
            skip_consent: false,
            expires_at: 0,
            jwks: None,
            jwks_uri: None,
        })
    }
}

/// The document's bytes: at most [`MAX_BYTES`], each read within [`TIMEOUT`].
async fn download(http: &reqwest::Client, url: url::Url) -> Result<Vec<u8>, CimdError> {
    let response = http
        .get(url)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| CimdError::Fetch(outbound::failure(&e)))?;
    if !response.status().is_success() {
        return Err(CimdError::Fetch(format!("HTTP {}", response.status())));
    }
    outbound::read_bounded(response, MAX_BYTES, TIMEOUT)
        .await
        .map_err(CimdError::Fetch)
}
