//! Settings in two layers: the TOML file as written ([`FileConfig`], unknown keys refused), merged with
//! the command line and validated into the [`Settings`] the rest of the code uses. Every error names
//! where the bad value came from (`file: key` or `--flag`) and why, on one line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gateway_assertion::Expectations;
use http::HeaderName;
use serde::Deserialize;

use crate::cli::Cli;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9000";
pub const DEFAULT_TOKEN_ENV: &str = "API_KEY";
pub const DEFAULT_TARGET: &str = "https://httpbin.org/anything";
pub const DEFAULT_TARGET_TIMEOUT: Duration = Duration::from_secs(10);

/// The TOML file, exactly as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub allowed_hosts: Option<Vec<String>>,
    pub json_response: Option<bool>,
    pub gateway: GatewayFile,
    pub stdio: StdioFile,
    pub target: TargetFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayFile {
    pub jwks: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub token_header: Option<String>,
    pub trust_unsigned_headers: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StdioFile {
    pub token_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetFile {
    pub url: Option<String>,
    #[serde(with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

/// A setting that could not be used: where it came from, and why.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct ConfigError {
    origin: String,
    reason: String,
}

/// The validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub target: TargetSettings,
}

#[derive(Debug, Clone)]
pub enum Mode {
    Http(Box<HttpSettings>),
    Stdio { token_env: String },
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    pub allowed_hosts: Vec<String>,
    pub json_response: bool,
    pub token_header: HeaderName,
    pub trust: TrustSettings,
}

/// How forwarded headers are believed.
#[derive(Debug, Clone)]
pub enum TrustSettings {
    /// Only with a valid assertion signed by a key in the gateway's JWKS.
    Signed {
        jwks: JwksSource,
        expectations: Expectations,
    },
    /// Always (`trust_unsigned_headers`, for local development).
    Unsigned,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    Url(reqwest::Url),
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct TargetSettings {
    pub url: reqwest::Url,
    pub timeout: Duration,
}

/// Where a value came from, to name it in an error.
struct Origin<'a> {
    file: Option<&'a Path>,
}

impl Origin<'_> {
    /// Picks the flag's value over the file's, remembering which one spoke.
    fn pick<T>(
        &self,
        flag: Option<T>,
        flag_name: &str,
        file: Option<T>,
        key: &str,
    ) -> Option<(T, String)> {
        match (flag, file) {
            (Some(v), _) => Some((v, format!("--{flag_name}"))),
            (None, Some(v)) => Some((v, self.key(key))),
            (None, None) => None,
        }
    }

    fn key(&self, key: &str) -> String {
        match self.file {
            Some(path) => format!("{}: `{key}`", path.display()),
            None => format!("`{key}`"),
        }
    }
}

fn invalid(origin: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        origin: origin.into(),
        reason: reason.into(),
    }
}

impl FileConfig {
    /// Reads and parses a settings file; an unknown key or a value of the wrong type is an error that
    /// names the key.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(path.display().to_string(), format!("cannot read: {e}")))?;
        Self::parse(&text).map_err(|(key, reason)| match key {
            Some(key) => invalid(format!("{}: `{key}`", path.display()), reason),
            None => invalid(path.display().to_string(), reason),
        })
    }

    /// Parses TOML text; the error is the dotted key (when there is one) and the reason.
    pub fn parse(text: &str) -> Result<Self, (Option<String>, String)> {
        let deserializer =
            toml::Deserializer::parse(text).map_err(|e| (None, one_line(e.message())))?;
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let key = (path != ".").then_some(path);
            (key, one_line(e.inner().message()))
        })
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Settings {
    /// Merges the file named by `--config` (if any) with the flags, and validates the result.
    pub fn load(cli: &Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        Self::from_parts(cli, file)
    }

    pub fn from_parts(cli: &Cli, file: FileConfig) -> Result<Self, ConfigError> {
        let origin = Origin {
            file: cli.config.as_deref(),
        };
        let target = target_settings(cli, &file, &origin)?;
        let mode = if cli.stdio {
            let token_env = origin
                .pick(
                    cli.token_env.clone(),
                    "token-env",
                    file.stdio.token_env,
                    "stdio.token_env",
                )
                .map(|(name, from)| {
                    if name.is_empty() || name.contains('=') || name.contains('\0') {
                        Err(invalid(from, "not a valid environment variable name"))
                    } else {
                        Ok(name)
                    }
                })
                .transpose()?
                .unwrap_or_else(|| DEFAULT_TOKEN_ENV.to_owned());
            Mode::Stdio { token_env }
        } else {
            Mode::Http(Box::new(http_settings(cli, file, &origin)?))
        };
        Ok(Settings { mode, target })
    }
}

impl Settings {
    /// What these settings would serve, for `--check`. Holds no secret: there is none in them.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        match &self.mode {
            Mode::Stdio { token_env } => {
                out += &format!("stdio: MCP over stdin/stdout, token from ${token_env}\n");
            }
            Mode::Http(http) => {
                out += &format!(
                    "http: MCP at http://{}/mcp, health at /healthz\n",
                    http.listen
                );
                out += &format!("  allowed hosts: {}\n", http.allowed_hosts.join(", "));
                out += &format!("  token header: {}\n", http.token_header);
                match &http.trust {
                    TrustSettings::Unsigned => {
                        out += "  trust: UNSIGNED headers (local development only)\n"
                    }
                    TrustSettings::Signed { jwks, expectations } => {
                        let jwks = match jwks {
                            JwksSource::Url(url) => url.to_string(),
                            JwksSource::File(path) => path.display().to_string(),
                        };
                        out += &format!(
                            "  trust: assertions signed by {jwks}, iss {}, aud {}\n",
                            expectations.issuer, expectations.audience
                        );
                    }
                }
            }
        }
        out += &format!(
            "target: {} (timeout {:?})\n",
            self.target.url, self.target.timeout
        );
        out
    }
}

fn target_settings(
    cli: &Cli,
    file: &FileConfig,
    origin: &Origin,
) -> Result<TargetSettings, ConfigError> {
    let url = match origin.pick(
        cli.target.clone(),
        "target",
        file.target.url.clone(),
        "target.url",
    ) {
        Some((raw, from)) => http_url(&raw).map_err(|reason| invalid(from, reason))?,
        None => reqwest::Url::parse(DEFAULT_TARGET).expect("the default target is a URL"),
    };
    let timeout = match origin.pick(
        cli.target_timeout,
        "target-timeout",
        file.target.timeout,
        "target.timeout",
    ) {
        Some((t, from)) if t.is_zero() => return Err(invalid(from, "must be longer than zero")),
        Some((t, _)) => t,
        None => DEFAULT_TARGET_TIMEOUT,
    };
    Ok(TargetSettings { url, timeout })
}

fn http_settings(
    cli: &Cli,
    file: FileConfig,
    origin: &Origin,
) -> Result<HttpSettings, ConfigError> {
    let listen = origin
        .pick(cli.listen, "listen", file.listen, "listen")
        .map(|(addr, _)| addr)
        .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("the default address parses"));
    let allowed_hosts = match origin.pick(
        cli.allowed_hosts.clone(),
        "allowed-hosts",
        file.allowed_hosts,
        "allowed_hosts",
    ) {
        Some((hosts, from)) if hosts.iter().any(|h| h.trim().is_empty()) => {
            return Err(invalid(from, "an empty host name"));
        }
        Some((hosts, _)) => hosts,
        None => vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
    };
    let token_header = match origin.pick(
        cli.token_header.clone(),
        "token-header",
        file.gateway.token_header,
        "gateway.token_header",
    ) {
        Some((name, from)) => HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(from, format!("{name:?} is not a valid header name")))?,
        None => HeaderName::from_static(gateway_assertion::TOKEN_HEADER),
    };
    let unsigned =
        cli.trust_unsigned_headers || file.gateway.trust_unsigned_headers.unwrap_or(false);
    let trust = if unsigned {
        TrustSettings::Unsigned
    } else {
        signed(
            cli,
            origin,
            file.gateway.jwks,
            file.gateway.issuer,
            file.gateway.audience,
        )?
    };
    Ok(HttpSettings {
        listen,
        allowed_hosts,
        json_response: file.json_response.unwrap_or(false),
        token_header,
        trust,
    })
}

/// How the gateway's signed headers are checked: its keys, issuer and audience, each required.
fn signed(
    cli: &Cli,
    origin: &Origin,
    jwks: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
) -> Result<TrustSettings, ConfigError> {
    let required = |flag: Option<String>, flag_name: &str, value: Option<String>, key: &str| {
        origin.pick(flag, flag_name, value, key).ok_or_else(|| {
            invalid(
                origin.key(key),
                format!("required (or --{flag_name}) unless trust_unsigned_headers is set"),
            )
        })
    };
    let (jwks, jwks_from) = required(
        cli.gateway_jwks.clone(),
        "gateway-jwks",
        jwks,
        "gateway.jwks",
    )?;
    let (issuer, issuer_from) = required(
        cli.gateway_issuer.clone(),
        "gateway-issuer",
        issuer,
        "gateway.issuer",
    )?;
    let (audience, audience_from) = required(
        cli.audience.clone(),
        "audience",
        audience,
        "gateway.audience",
    )?;
    if issuer.trim().is_empty() {
        return Err(invalid(issuer_from, "must not be empty"));
    }
    if audience.trim().is_empty() {
        return Err(invalid(audience_from, "must not be empty"));
    }
    Ok(TrustSettings::Signed {
        jwks: jwks_source(&jwks).map_err(|reason| invalid(jwks_from, reason))?,
        expectations: Expectations { issuer, audience },
    })
}

fn http_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{raw:?} is not an http or https URL"));
    }
    Ok(url)
}

/// A JWKS location: an http(s) URL, or else a path to a readable file.
fn jwks_source(raw: &str) -> Result<JwksSource, String> {
    if raw.starts_with("http://") || raw.starts_with("https://") {
        return http_url(raw).map(JwksSource::Url);
    }
    let path = PathBuf::from(raw);
    if !path.is_file() {
        return Err(format!(
            "{raw:?} is neither an http(s) URL nor a readable file"
        ));
    }
    Ok(JwksSource::File(path))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
