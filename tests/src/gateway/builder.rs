//! What a test asks of its gateway: routes, provider, store, TLS and any extra config, written into
//! a config file and started ([`GatewayBuilder::start`] and its kin).

use gateway_assertion::{KeyAlgorithm, SigningKey};
use tempfile::TempDir;

use super::GatewayUnderTest;
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
