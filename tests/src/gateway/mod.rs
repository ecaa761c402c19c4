//! A real `mcp-auth-gateway` for a test: ports picked first, a config written from the test's routes,
//! a signing key the test holds too (so it can mint the gateway's access tokens), killed on drop.

use std::collections::BTreeMap;

use gateway_assertion::SigningKey;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::gateway_keys::now;
use crate::{Running, binary};

mod builder;

pub use builder::{GatewayBuilder, GatewayTls};

pub struct GatewayUnderTest {
    pub origin: String,
    /// A client for it (trusting its CA when it serves HTTPS).
    pub http: reqwest::Client,
    tls: Option<GatewayTls>,
    pub metrics_port: u16,
    pub key: SigningKey,
    pub process: Running,
    pub config: String,
    config_path: std::path::PathBuf,
    envs: Vec<(String, String)>,
    _dir: TempDir,
}

impl GatewayUnderTest {
    /// Whether a plain request, on a connection of its own, is served promptly (within 2 s): the
    /// gateway is still itself, whatever else it is put through. The HTTP version it was served in.
    pub async fn still_serves(&self) -> http::Version {
        let client = match &self.tls {
            Some(tls) => tls.client_builder(),
            None => reqwest::Client::builder(),
        };
        let started = std::time::Instant::now();
        let response = client
            .build()
            .expect("a client")
            .get(self.url("/.well-known/oauth-authorization-server"))
            .timeout(std::time::Duration::from_secs(2))
            .send()
            .await
            .expect("served");
        assert_eq!(response.status(), 200);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        response.version()
    }

    /// The directory of the gateway's config file, where relative paths in it lead.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The gateway's SQLite store.
    pub fn store_path(&self) -> std::path::PathBuf {
        self._dir.path().join("gateway.db")
    }

    /// Runs `mcp-auth-gateway <args> --config <this gateway's config>` beside it, with its
    /// environment: whether it succeeded, and what it printed (stdout, then stderr).
    pub async fn command(&self, args: &[&str]) -> (bool, String) {
        let output = tokio::process::Command::new(binary("mcp-auth-gateway"))
            .args(args)
            .arg("--config")
            .arg(&self.config_path)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true)
            .output()
            .await
            .expect("the gateway's binary runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }

    /// Kills the gateway and starts it again on the same config, store and key.
    pub async fn restart(&mut self) {
        let binary = binary("mcp-auth-gateway");
        let args = ["--config", self.config_path.to_str().expect("UTF-8")];
        self.process.stop();
        let envs: Vec<(&str, &str)> = self
            .envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.process = Running::start(&binary, &args, &envs);
        self.process
            .wait_ready_with(&self.http, &format!("{}/readyz", self.origin))
            .await;
    }

    /// Replaces the config file with `config`, and sends SIGHUP to reload it: returns the log line
    /// that says how the reload went (`reloaded …` or `reload refused …`).
    pub async fn reload(&mut self, config: &str) -> String {
        std::fs::write(&self.config_path, config).expect("the config file");
        self.config = config.to_owned();
        self.reloaded_after(|process| process.signal("HUP")).await
    }

    /// Runs `cause` (a signal, a file edited) and waits for the next reload's log line.
    pub async fn reloaded_after(&mut self, cause: impl FnOnce(&Running)) -> String {
        let outcome = |log: &str| -> Vec<String> {
            log.lines()
                .filter(|l| l.contains(": reloaded ") || l.contains(": reload refused"))
                .map(str::to_owned)
                .collect()
        };
        let before = outcome(&self.process.stderr()).len();
        cause(&self.process);
        let log = self
            .process
            .wait_for_output(|log| outcome(log).len() > before)
            .await;
        outcome(&log)
            .get(before)
            .cloned()
            .unwrap_or_else(|| panic!("no reload was logged:\n{log}"))
    }

    /// A zero-downtime upgrade: starts a new gateway on the same config with `--upgrade`, has this
    /// one hand it the listening sockets (SIGQUIT) once it waits for them, and waits for this one
    /// to finish and exit. Returns the old process, exited, for its logs.
    pub async fn upgrade(&mut self) -> Running {
        let socket = self._dir.path().join("upgrade.sock");
        let args = [
            "--config",
            self.config_path.to_str().expect("UTF-8"),
            "--upgrade",
        ];
        let envs: Vec<(&str, &str)> = self
            .envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let new = Running::start(&binary("mcp-auth-gateway"), &args, &envs);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !socket.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the new gateway never waited for the sockets:\n{}",
                new.stderr()
            );
            // Polling interval while waiting for the new process, not a guess at its start.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.process.signal("QUIT");
        let mut old = std::mem::replace(&mut self.process, new);
        let status = old.wait_exit().await;
        assert!(status.success(), "the old gateway exited with {status}");
        self.process
            .wait_ready_with(&self.http, &format!("{}/readyz", self.origin))
            .await;
        old
    }

    /// Replaces the config file with `config` and restarts on it (same store and key).
    pub async fn rewrite_config(&mut self, config: &str) {
        std::fs::write(&self.config_path, config).expect("the config file");
        self.config = config.to_owned();
        self.restart().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// A POST of `body` to the route at `path`, as an MCP client sends one, with a valid token of
    /// `alice` for it.
    pub fn mcp_post(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
        self.mcp_post_on(&self.http, path, body)
    }

    /// A POST of `body` to the route at `path`, as an MCP client sends one, bearing `token`.
    pub fn mcp_post_as(
        &self,
        path: &str,
        token: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
    }

    /// The same, sent by `client` (one speaking only HTTP/1.1, say).
    pub fn mcp_post_on(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::RequestBuilder {
        client
            .post(self.url(path))
            .header(
                "authorization",
                format!("Bearer {}", self.token(path, "alice")),
            )
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
    }

    /// A GET of the route at `path` asking for its SSE stream, with a valid token of `alice`.
    pub fn stream_get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(self.url(path))
            .header("accept", "text/event-stream")
            .header(
                "authorization",
                format!("Bearer {}", self.token(path, "alice")),
            )
    }

    /// Access token claims as the gateway issues them, for the route at `path`.
    pub fn claims(&self, path: &str, sub: &str, scope: &str) -> Value {
        access_claims(&self.origin, &self.url(path), sub, scope, 600)
    }

    /// Signs claims as an access token (`typ: at+jwt`) with the gateway's key.
    pub fn sign(&self, claims: &Value) -> String {
        self.key.sign("at+jwt", claims).expect("signing")
    }

    /// A valid access token for the route at `path`.
    pub fn token(&self, path: &str, sub: &str) -> String {
        self.sign(&self.claims(path, sub, "mcp"))
    }

    /// The Prometheus text from the metrics listener, as `series -> value`.
    pub async fn metrics(&self) -> BTreeMap<String, f64> {
        let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .await
            .expect("the metrics listener answers")
            .text()
            .await
            .expect("a body");
        parse_prometheus(&text)
    }
}

/// Access token claims as a gateway at `issuer` issues them (RFC 9068) for `audience`, living `lifetime`
/// seconds, each with a `jti` of its own.
pub fn access_claims(issuer: &str, audience: &str, sub: &str, scope: &str, lifetime: u64) -> Value {
    let now = now();
    json!({
        "iss": issuer,
        "sub": sub,
        "aud": audience,
        "client_id": "test-client",
        "scope": scope,
        "iat": now,
        "exp": now + lifetime,
        "jti": format!("{sub}-{}", now_nanos()),
    })
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos()
}

/// A `[[routes]]` entry at `/mcp` whose backend is `mcp-backend` on `port`, supervised by the gateway
/// (a `command` route), trusting the gateway at `origin` and calling `target` for its tool. `extra` holds
/// more lines of the route's table, such as `resource_name`.
pub fn supervised_backend_route(origin: &str, port: u16, target: &str, extra: &str) -> String {
    format!(
        "[[routes]]\npath = \"/mcp\"\nupstream = \"http://127.0.0.1:{port}/mcp\"\n{extra}\n\
         [routes.command]\nprogram = {backend:?}\nargs = [\"--listen\", \"127.0.0.1:{port}\", \"--gateway-jwks\", \"{origin}/.well-known/jwks.json\", \
         \"--gateway-issuer\", \"{origin}\", \"--audience\", \"http://127.0.0.1:{port}/mcp\", \"--target\", \"{target}\"]\n",
        backend = binary("mcp-backend").display().to_string(),
    )
}

/// Parses Prometheus text exposition: every sample line as `name{labels}` (labels as written, which
/// the client library sorts by name) to its value. Panics on a line that is not valid exposition.
pub fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("not a number in {line:?}")),
        };
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unterminated labels in {line:?}");
        }
        samples.insert(series.to_owned(), value);
    }
    samples
}
