//! A real `mcp-auth-gateway` for a test: ports picked first, a config written from the test's routes,
//! a signing key the test holds too (so it can mint the gateway's access tokens), killed on drop.

use std::collections::BTreeMap;

use gateway_assertion::{KeyAlgorithm, SigningKey};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::gateway_keys::now;
use crate::{Running, binary, free_port};

pub struct GatewayBuilder {
    pub port: u16,
    pub metrics_port: u16,
    server_extra: String,
    store_extra: String,
    tokens_extra: String,
    sections: String,
    envs: Vec<(String, String)>,
    /// The `[store]` table instead of a SQLite file of its own.
    store_table: Option<String>,
    /// A signing key shared with other gateways (replicas), instead of one of its own.
    key: Option<String>,
    /// The public URL, when it is not the gateway's own origin (replicas behind one name).
    public_url: Option<String>,
    /// Signing keys made by the gateway and kept in its store, instead of a key file.
    key_in_store: bool,
    /// HTTPS on the gateway's own listener, and more lines of its `[server.tls]` table.
    tls: Option<GatewayTls>,
    tls_extra: String,
}

/// The files of a gateway's own HTTPS: what it serves, and the CA its clients trust.
#[derive(Clone)]
pub struct GatewayTls {
    pub cert_file: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
    pub ca_file: std::path::PathBuf,
}

impl GatewayTls {
    /// A certificate for 127.0.0.1 from a CA made in `dir`, with that CA's file.
    pub fn issued(dir: &std::path::Path) -> Self {
        let ca = crate::tls::TestCa::new(dir);
        let issued = ca.server("gateway");
        Self {
            cert_file: issued.cert,
            key_file: issued.key,
            ca_file: ca.ca_file(),
        }
    }

    /// A client that trusts the CA, negotiating HTTP/2 or HTTP/1.1 by ALPN, reporting each
    /// connection's certificate (`reqwest::tls::TlsInfo`).
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let ca = std::fs::read(&self.ca_file).expect("the CA certificate");
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("a PEM certificate"))
            .tls_info(true)
    }
}

impl GatewayBuilder {
    pub fn new() -> Self {
        Self {
            port: free_port(),
            metrics_port: free_port(),
            server_extra: String::new(),
            store_extra: String::new(),
            tokens_extra: String::new(),
            sections: String::new(),
            envs: Vec::new(),
            store_table: None,
            key: None,
            public_url: None,
            key_in_store: false,
            tls: None,
            tls_extra: String::new(),
        }
    }

    /// A replica: state in Redis at `redis_url`, the signing key `key_pem` (EdDSA; `None`: the
    /// replicas make and share theirs in the store), and `public_url` as the name clients reach
    /// every replica by.
    pub fn replica(mut self, redis_url: &str, key_pem: Option<&str>, public_url: &str) -> Self {
        self.store_table = Some(format!("kind = \"redis\"\nurl = \"{redis_url}\"\n"));
        self.key = key_pem.map(str::to_owned);
        self.key_in_store = key_pem.is_none();
        self.public_url = Some(public_url.to_owned());
        self
    }

    /// Sets an environment variable of the gateway process (secrets come from there).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.envs.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `http://127.0.0.1:PORT` (`https` with [`Self::tls`]): the gateway's public URL and issuer.
    pub fn origin(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Serves HTTPS with these files (`[server.tls]`); the harness's own requests trust the CA.
    pub fn tls(mut self, tls: &GatewayTls) -> Self {
        self.tls = Some(tls.clone());
        self
    }

    /// Adds lines to the `[server.tls]` table (with [`Self::tls`]).
    pub fn tls_lines(mut self, lines: &str) -> Self {
        self.tls_extra += lines;
        self.tls_extra += "\n";
        self
    }

    /// A client for this gateway: one trusting its CA when it serves HTTPS.
    fn client(&self) -> reqwest::Client {
        match &self.tls {
            Some(tls) => tls.client_builder().build().expect("a client"),
            None => reqwest::Client::new(),
        }
    }

    /// Adds lines to the `[server]` table.
    pub fn server(mut self, lines: &str) -> Self {
        self.server_extra += lines;
        self.server_extra += "\n";
        self
    }

    /// Adds lines to the `[tokens]` table.
    pub fn tokens(mut self, lines: &str) -> Self {
        self.tokens_extra += lines;
        self.tokens_extra += "\n";
        self
    }

    /// Adds lines to the `[store]` table.
    pub fn store(mut self, lines: &str) -> Self {
        self.store_extra += lines;
        self.store_extra += "\n";
        self
    }

    /// Adds TOML after the `[server]` table: `[[routes]]` entries, `[limits]`, ….
    pub fn section(mut self, toml: &str) -> Self {
        self.sections += toml;
        self.sections += "\n";
        self
    }

    pub async fn start(self) -> GatewayUnderTest {
        let (dir, key, config, config_path) = self.write_config();
        let envs: Vec<(&str, &str)> = self
            .envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut process = Running::start(
            &binary("mcp-auth-gateway"),
            &["--config", config_path.to_str().expect("UTF-8")],
            &envs,
        );
        process
            .wait_ready_with(&self.client(), &format!("{}/readyz", self.origin()))
            .await;
        GatewayUnderTest {
            http: self.client(),
            tls: self.tls.clone(),
            origin: self.origin(),
            metrics_port: self.metrics_port,
            key,
            process,
            config,
            config_path,
            envs: self.envs,
            _dir: dir,
        }
    }

    /// Runs a gateway that must refuse to start: returns what it wrote to stderr, once it has
    /// exited with a failure (within 30 s).
    pub async fn start_refused(self) -> String {
        let (_dir, _, _, config_path) = self.write_config();
        let run = tokio::process::Command::new(binary("mcp-auth-gateway"))
            .args(["--config", config_path.to_str().expect("UTF-8")])
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(std::time::Duration::from_secs(30), run)
            .await
            .expect("the gateway exits within 30 s")
            .expect("the gateway runs");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success(), "the gateway started: {stderr}");
        stderr
    }

    /// The gateway's directory, key and config file (written), and the config's text.
    fn write_config(&self) -> (TempDir, SigningKey, String, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let key = match &self.key {
            Some(pem) => SigningKey::from_pkcs8_pem(KeyAlgorithm::EdDsa, pem).expect("a key"),
            None => SigningKey::generate(KeyAlgorithm::EdDsa).expect("a key"),
        };
        let key_path = dir.path().join("signing-key.pem");
        std::fs::write(&key_path, key.pkcs8_pem()).expect("the key file");
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{origin}\"\n{grace}upgrade_socket = {socket:?}\n{extra}\n{tls}\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics}\"\n\n[tokens]\n{key}\n{tokens_extra}\n\
             [store]\n{store}\n{store_extra}\n{sections}",
            port = self.port,
            origin = self.public_url.clone().unwrap_or_else(|| self.origin()),
            extra = self.server_extra,
            // A test may set its own.
            grace = if self.server_extra.contains("grace_period") {
                ""
            } else {
                "grace_period = \"1s\"\n"
            },
            socket = dir.path().join("upgrade.sock").display().to_string(),
            tls = self.tls.as_ref().map_or(String::new(), |tls| format!(
                "[server.tls]\ncert_file = {:?}\nkey_file = {:?}\n{}",
                tls.cert_file.display().to_string(),
                tls.key_file.display().to_string(),
                self.tls_extra,
            )),
            metrics = self.metrics_port,
            key = if self.key_in_store {
                String::new()
            } else {
                format!("signing_key_file = {:?}", key_path.display().to_string())
            },
            store = self.store_table.clone().unwrap_or_else(|| {
                format!(
                    "path = {:?}",
                    dir.path().join("gateway.db").display().to_string()
                )
            }),
            sections = self.sections,
            store_extra = self.store_extra,
            tokens_extra = self.tokens_extra,
        );
        let config_path = dir.path().join("gateway.toml");
        std::fs::write(&config_path, &config).expect("the config file");
        (dir, key, config, config_path)
    }
}

impl Default for GatewayBuilder {
    fn default() -> Self {
        Self::new()
    }
}

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
