//! A real `redis-server` (Debian's package) for the tests, on a free port; killed on drop. Without
//! persistence, or with an append-only file that a restart reads back.

use std::path::{Path, PathBuf};

use crate::{Running, free_port, wait_for_port};

pub struct RedisServer {
    pub port: u16,
    /// Where its append-only file lives, when it keeps one.
    dir: Option<PathBuf>,
    /// Its other arguments: TLS and users.
    extra: Vec<String>,
    process: Running,
}

/// A user of a server with access control, and the only one allowed in.
pub struct RedisUser<'a> {
    pub name: &'a str,
    pub password: &'a str,
}

impl RedisServer {
    /// A server that keeps nothing.
    pub async fn start() -> Self {
        Self::launch(free_port(), None, Vec::new()).await
    }

    /// A server that speaks only TLS with `server`'s certificate, asks each client for a certificate
    /// from `ca`, and lets in only `user` (the `default` user is off), as a Redis exposed beyond
    /// one machine is run. Reached at [`RedisServer::tls_url`].
    pub async fn start_tls(ca: &Path, server: &crate::tls::Issued, user: RedisUser<'_>) -> Self {
        let path = |p: &Path| p.display().to_string();
        let extra = [
            "--port",
            "0",
            "--tls-cert-file",
            &path(&server.cert),
            "--tls-key-file",
            &path(&server.key),
            "--tls-ca-cert-file",
            &path(ca),
            "--tls-auth-clients",
            "yes",
            "--user",
            "default",
            "off",
            "--user",
            user.name,
            "on",
            &format!(">{}", user.password),
            "~*",
            "&*",
            "+@all",
        ];
        Self::launch(free_port(), None, extra.map(str::to_owned).to_vec()).await
    }

    /// A server that keeps everything in an append-only file in `dir`, fsynced every write, as an
    /// operator runs the gateway's Redis.
    pub async fn start_persistent(dir: &Path) -> Self {
        Self::launch(free_port(), Some(dir.to_owned()), Vec::new()).await
    }

    async fn launch(port: u16, dir: Option<PathBuf>, extra: Vec<String>) -> Self {
        let port_text = port.to_string();
        // With TLS the port is the TLS port, and the plain one is off.
        let port_flag = if extra.is_empty() {
            "--port"
        } else {
            "--tls-port"
        };
        let mut args = vec![port_flag, &port_text, "--bind", "127.0.0.1", "--save", ""];
        let dir_text = dir.as_ref().map(|d| d.display().to_string());
        match &dir_text {
            Some(dir) => args.extend([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                dir,
            ]),
            None => args.extend(["--appendonly", "no"]),
        }
        args.extend(extra.iter().map(String::as_str));
        let process = Running::start(Path::new("redis-server"), &args, &[]);
        wait_for_port(port, "redis-server").await;
        Self {
            port,
            dir,
            extra,
            process,
        }
    }

    /// Stops the server: its clients find nobody on its port.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts it again on the same port (and file).
    pub async fn restart(&mut self) {
        self.process.stop();
        *self = Self::launch(self.port, self.dir.take(), std::mem::take(&mut self.extra)).await;
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `rediss://127.0.0.1:PORT`, for a server started with [`RedisServer::start_tls`].
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }
}

/// A local Redis Cluster of three masters (no replicas), made with `redis-server --cluster-enabled
/// yes` and `redis-cli --cluster create`; killed on drop.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    _nodes: Vec<Running>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut ports = Vec::new();
        while ports.len() < 3 {
            // Each node also listens on its port + 10000, for the cluster bus.
            let port = free_port();
            if port < 55_000
                && !ports.contains(&port)
                && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
            {
                ports.push(port);
            }
        }
        let mut nodes = Vec::new();
        for port in &ports {
            let port_text = port.to_string();
            let config_file = format!("nodes-{port}.conf");
            let dir_text = dir.path().display().to_string();
            let args = [
                "--port",
                &port_text,
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &config_file,
                "--dir",
                &dir_text,
                "--save",
                "",
                "--appendonly",
                "no",
            ];
            nodes.push(Running::start(Path::new("redis-server"), &args, &[]));
        }
        for port in &ports {
            wait_for_port(*port, "a Redis Cluster node").await;
        }
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = std::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli (Debian's redis-tools) makes the cluster");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = Self {
            ports,
            _nodes: nodes,
            _dir: dir,
        };
        cluster.wait_until_ok().await;
        cluster
    }

    /// Waits until every node says the cluster is ok (its slots all served).
    async fn wait_until_ok(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        for port in &self.ports {
            loop {
                let info = std::process::Command::new("redis-cli")
                    .args(["-p", &port.to_string(), "cluster", "info"])
                    .output()
                    .expect("redis-cli runs");
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the Redis Cluster is not ok within 30 s"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }

    /// `redis://127.0.0.1:PORT` of one of its nodes.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.ports[0])
    }
}
