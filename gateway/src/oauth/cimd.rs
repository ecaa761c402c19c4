//! Client ID Metadata Documents: a `client_id` that is an https URL names a JSON document, served by
//! the client, that describes it. The gateway fetches it only at `/authorize`, with SSRF guards — the
//! host must resolve only to public addresses (unless the operator allows private ones), checked again
//! by the one HTTP client's resolver when it connects, no redirects, a size and a time limit — and
//! believes it only if its `client_id` is the URL itself. The client it describes is kept in the
//! store (shared by replicas) for the length of a sign-in; a failure is remembered for a minute, so
//! that a flood of one URL fetches it once.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;

use super::redirect;
use crate::cache::Cache;
use crate::config::{CimdSettings, PrivateUseSchemes};
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
        let resolver = PublicOnly {
            allow_private: settings.allow_private_network,
        };
        let http = reqwest::Client::builder()
            .dns_resolver(std::sync::Arc::new(resolver))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the host again, past the resolver's check.
            .no_proxy()
            .timeout(TIMEOUT)
            .user_agent(concat!("mcp-auth-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client");
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
        })
    }
}

/// The document's bytes: at most [`MAX_BYTES`], each read within [`TIMEOUT`].
async fn download(http: &reqwest::Client, url: url::Url) -> Result<Vec<u8>, CimdError> {
    let mut response = http
        .get(url)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| {
            CimdError::Fetch(if e.is_timeout() {
                "it took too long".into()
            } else {
                "the connection failed".to_owned()
            })
        })?;
    if !response.status().is_success() {
        return Err(CimdError::Fetch(format!("HTTP {}", response.status())));
    }
    let mut body = Vec::new();
    loop {
        let chunk = tokio::time::timeout(TIMEOUT, response.chunk())
            .await
            .map_err(|_| CimdError::Fetch("it took too long".into()))?
            .map_err(|_| CimdError::Fetch("the connection failed".into()))?;
        let Some(chunk) = chunk else { break };
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BYTES {
            return Err(CimdError::Fetch(format!(
                "it is larger than {MAX_BYTES} bytes"
            )));
        }
    }
    Ok(body)
}

/// The fetching client's resolver: a host resolves only if every address it has is public (unless
/// private networks are allowed), so that the address the connection goes to is one that was
/// checked, whatever a second DNS answer says.
struct PublicOnly {
    allow_private: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private && addresses.iter().any(|a| !is_public(a.ip())) {
                return Err(CimdError::PrivateAddress(host).into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// Whether an address is on the public internet: not private, loopback, link-local, unspecified,
/// multicast, shared (CGNAT), documentation or otherwise reserved.
pub(super) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            let first = segments[0];
            // NAT64 (64:ff9b::/96, and the local-use 64:ff9b:1::/48 of RFC 8215), 6to4 (2002::/16)
            // and IPv4-compatible (::/96) addresses carry an IPv4 address that may be private.
            let nat64 =
                segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..3] == [0x64, 0xff9b, 1];
            let compatible = segments[..6] == [0; 6];
            !(nat64
                || first == 0x2002
                || compatible
                || v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a00:1",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
