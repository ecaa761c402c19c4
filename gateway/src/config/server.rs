//! `[server]`, `[metrics]` and `[limits]`: where the gateway listens (and with which certificate,
//! [`super::tls`]), the origin clients use, the browser origins it allows, and the size limits of a
//! request.

use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

use super::file::FileConfig;
use super::tls::TlsFiles;
use super::{ConfigError, Errors};

pub(super) const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";
pub(super) const DEFAULT_MAX_BODY: u64 = 4 * 1024 * 1024;
pub(super) const DEFAULT_MAX_HEADERS: usize = 32 * 1024;
pub(super) const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
pub(super) const DEFAULT_HTTP2_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub(super) const DEFAULT_CONNECTIONS_PER_CLIENT: u32 = 256;
pub(super) const DEFAULT_REQUESTS_PER_CLIENT: u32 = 512;

/// How the process listens: set at start, and changed only by a restart ([`super::Start`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listener {
    pub listen: SocketAddr,
    pub threads: usize,
    pub grace_period: Duration,
    pub metrics_listen: Option<SocketAddr>,
    pub http2_idle_timeout: Duration,
    /// Where the listening sockets are handed to a new gateway (`--upgrade`); `None`: in the
    /// runtime directory (resolved at start).
    pub upgrade_socket: Option<std::path::PathBuf>,
    /// HTTPS on `listen` (its certificate files may change: they are [`ServerSettings::tls`]).
    pub https: bool,
}

/// The server's settings that a reload swaps, as [`super::Config`] holds them.
#[derive(Debug, Clone)]
pub(crate) struct ServerSettings {
    /// The public origin, without a trailing slash.
    pub public_url: String,
    /// Browser origins allowed on the MCP routes, normalised (`scheme://host[:port]`).
    pub allowed_origins: Vec<String>,
    pub max_request_body_bytes: u64,
    pub max_request_header_bytes: usize,
    /// The longest a request body may take to arrive whole.
    pub body_timeout: Duration,
    /// Per client address (0: no limit).
    pub max_connections_per_client: u32,
    pub max_requests_per_client: u32,
    pub welcome: Option<String>,
    pub trusted_proxies: TrustedProxies,
    /// HTTPS on `listen`, with these files.
    pub tls: Option<TlsFiles>,
    /// The `Strict-Transport-Security` value responses carry, with HTTPS.
    pub hsts: Option<String>,
    /// Reload when the config file or the users file changes.
    pub watch_config: bool,
}

/// The proxies whose word on the client's address is believed, and the header they write it in.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies {
    pub networks: Vec<ipnet::IpNet>,
    pub header: ClientAddressHeader,
}

impl TrustedProxies {
    pub(crate) fn contains(&self, address: std::net::IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(&address))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum ClientAddressHeader {
    #[default]
    XForwardedFor,
    /// RFC 7239's `Forwarded: for=…`.
    Forwarded,
}

pub(super) fn settings(
    file: &FileConfig,
    errors: &Errors,
) -> Result<(Listener, ServerSettings), ConfigError> {
    let listen = file.server.listen.parse::<SocketAddr>().map_err(|e| {
        errors.at(
            "server.listen",
            format!("{:?} is not an address: {e}", file.server.listen),
        )
    })?;
    let public_url = origin_of(&file.server.public_url)
        .map_err(|reason| errors.at("server.public_url", reason))?;
    if !file.server.allow_insecure_http && !secure_enough(&public_url) {
        return Err(errors.at(
            "server.public_url",
            "must be https (plain http only on loopback: localhost, 127.0.0.1, [::1]); \
             set server.allow_insecure_http = true for development",
        ));
    }
    let threads = file.server.threads.unwrap_or(2);
    if !(1..=256).contains(&threads) {
        return Err(errors.at("server.threads", "must be between 1 and 256"));
    }
    let mut allowed_origins = vec![public_url.clone()];
    for (i, origin) in file.server.allowed_origins.iter().enumerate() {
        let origin = origin_of(origin)
            .map_err(|reason| errors.at(&format!("server.allowed_origins[{i}]"), reason))?;
        allowed_origins.push(origin);
    }
    let metrics_listen = metrics_listen(file.metrics.listen.as_deref(), errors)?;
    if metrics_listen == Some(listen) {
        return Err(errors.at("metrics.listen", "must differ from server.listen"));
    }
    let (max_request_body_bytes, max_request_header_bytes) = limits(file, errors)?;
    let trusted_proxies = trusted_proxies(file, errors)?;
    let tls = super::tls::settings(file.server.tls.as_ref(), errors)?;
    let hsts = hsts(file, errors)?;
    if tls.is_some() && public_url.starts_with("http:") {
        return Err(errors.at(
            "server.public_url",
            "is http, but server.tls makes the gateway serve https",
        ));
    }
    let listener = Listener {
        listen,
        threads,
        grace_period: file.server.grace_period.unwrap_or(Duration::from_secs(5)),
        metrics_listen,
        http2_idle_timeout: file
            .limits
            .http2_idle_timeout
            .unwrap_or(DEFAULT_HTTP2_IDLE_TIMEOUT),
        upgrade_socket: file.server.upgrade_socket.clone(),
        https: tls.is_some(),
    };
    let server = ServerSettings {
        public_url,
        allowed_origins,
        max_request_body_bytes,
        max_request_header_bytes,
        body_timeout: file.limits.body_timeout.unwrap_or(DEFAULT_BODY_TIMEOUT),
        max_connections_per_client: file
            .limits
            .max_connections_per_client
            .unwrap_or(DEFAULT_CONNECTIONS_PER_CLIENT),
        max_requests_per_client: file
            .limits
            .max_requests_per_client
            .unwrap_or(DEFAULT_REQUESTS_PER_CLIENT),
        welcome: file.server.welcome.clone(),
        trusted_proxies,
        tls,
        hsts,
        watch_config: file.server.watch_config,
    };
    Ok((listener, server))
}

/// `server.tls.hsts`: with HTTPS, what browsers are told of it (RFC 6797): a year, by default.
fn hsts(file: &FileConfig, errors: &Errors) -> Result<Option<String>, ConfigError> {
    let Some(tls) = &file.server.tls else {
        return Ok(None);
    };
    let value = tls.hsts.as_deref().unwrap_or("max-age=31536000").trim();
    if value.is_empty() {
        return Ok(None);
    }
    let max_age = value
        .split(';')
        .next()
        .and_then(|first| first.trim().strip_prefix("max-age="))
        .is_some_and(|age| !age.is_empty() && age.bytes().all(|b| b.is_ascii_digit()));
    if !max_age || http::HeaderValue::from_str(value).is_err() {
        return Err(errors.at(
            "server.tls.hsts",
            "a Strict-Transport-Security value beginning with max-age=<seconds> \
             (\"max-age=31536000; includeSubDomains\", say), or \"\" for none",
        ));
    }
    Ok(Some(value.to_owned()))
}

/// `server.trusted_proxies` and `server.client_address_header`.
fn trusted_proxies(file: &FileConfig, errors: &Errors) -> Result<TrustedProxies, ConfigError> {
    let mut networks = Vec::new();
    for (i, text) in file.server.trusted_proxies.iter().enumerate() {
        let network = text
            .parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                errors.at(
                    &format!("server.trusted_proxies[{i}]"),
                    format!("{text:?} is not an address or a CIDR block (10.0.0.0/8, fd00::/8)"),
                )
            })?;
        networks.push(network.trunc());
    }
    let header = match file.server.client_address_header.as_deref() {
        None => ClientAddressHeader::XForwardedFor,
        Some(name) if name.eq_ignore_ascii_case("x-forwarded-for") => {
            ClientAddressHeader::XForwardedFor
        }
        Some(name) if name.eq_ignore_ascii_case("forwarded") => ClientAddressHeader::Forwarded,
        Some(other) => {
            return Err(errors.at(
                "server.client_address_header",
                format!("{other:?} is neither \"X-Forwarded-For\" nor \"Forwarded\""),
            ));
        }
    };
    if file.server.client_address_header.is_some() && networks.is_empty() {
        return Err(errors.at(
            "server.client_address_header",
            "is read only from trusted_proxies, and there are none",
        ));
    }
    Ok(TrustedProxies { networks, header })
}

/// `metrics.listen`: an address, or `"off"`.
fn metrics_listen(value: Option<&str>, errors: &Errors) -> Result<Option<SocketAddr>, ConfigError> {
    match value {
        Some("off") => Ok(None),
        Some(addr) => Ok(Some(addr.parse().map_err(|e| {
            errors.at(
                "metrics.listen",
                format!("{addr:?} is not an address or \"off\": {e}"),
            )
        })?)),
        None => Ok(Some(
            DEFAULT_METRICS_LISTEN.parse().expect("a valid default"),
        )),
    }
}

/// `[limits]`: the largest request body and header section.
fn limits(file: &FileConfig, errors: &Errors) -> Result<(u64, usize), ConfigError> {
    let body = file
        .limits
        .max_request_body_bytes
        .unwrap_or(DEFAULT_MAX_BODY);
    let headers = file
        .limits
        .max_request_header_bytes
        .unwrap_or(DEFAULT_MAX_HEADERS);
    if body == 0 {
        return Err(errors.at("limits.max_request_body_bytes", "must be more than zero"));
    }
    for (key, timeout) in [
        ("limits.body_timeout", file.limits.body_timeout),
        ("limits.http2_idle_timeout", file.limits.http2_idle_timeout),
    ] {
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(errors.at(key, "must be more than zero"));
        }
    }
    if !(1024..=64 * 1024).contains(&headers) {
        return Err(errors.at(
            "limits.max_request_header_bytes",
            "must be between 1024 and 65536",
        ));
    }
    Ok((body, headers))
}

/// Whether an origin may serve an authorization server: https, or http on a loopback host, as
/// OAuth 2.1 (§1.5) and the MCP authorization spec require.
fn secure_enough(origin: &str) -> bool {
    let Ok(url) = Url::parse(origin) else {
        return false;
    };
    url.scheme() == "https"
        || match url.host() {
            Some(url::Host::Domain(name)) => name == "localhost" || name.ends_with(".localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
}

/// `scheme://host[:port]` of an http(s) URL that has no path, query or fragment; lowercase scheme and host.
pub(super) fn origin_of(raw: &str) -> Result<String, String> {
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{raw:?} is not an http or https URL"));
    }
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(format!(
            "{raw:?} must be an origin only: scheme, host and port, with no path"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
