//! A backend written in Go (`tests/go-backend/main.go`, standard library only), which reads JSON the
//! way Go MCP servers do: keys matched case-insensitively, with Unicode folding, the last one
//! winning. Built once per test process with Debian's `golang-go`; started on a free port and
//! killed on drop. What it ran is at `/log`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::{Running, free_port, workspace_root};

pub struct GoBackend {
    pub port: u16,
    _process: Running,
}

/// One request as the Go backend read it and ran it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Ran {
    pub method: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uri: String,
}

/// Builds the Go backend into the target directory, once.
fn built() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out_dir = workspace_root().join("target").join("go-backend");
        std::fs::create_dir_all(&out_dir).expect("target/go-backend");
        let binary = out_dir.join("go-backend");
        let status = Command::new("go")
            .current_dir(workspace_root().join("tests/go-backend"))
            .args(["build", "-o"])
            .arg(&binary)
            .arg("main.go")
            // Go's build cache, kept in the target directory rather than the home directory.
            .env("GOCACHE", out_dir.join("cache"))
            .env("GO111MODULE", "off")
            .status()
            .expect("`go` runs: install Debian's golang-go (the Go-parser tests need it)");
        assert!(status.success(), "building tests/go-backend failed");
        binary
    })
}

/// A request as it arrived at the Go backend.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Arrival {
    pub method: String,
    pub path: String,
    /// The body's length.
    pub body: usize,
}

impl GoBackend {
    /// Starts it; with `drop_nul`, it also drops NUL bytes from keys before decoding.
    pub async fn start(drop_nul: bool) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["-listen", listen.as_str()];
        if drop_nul {
            args.push("-nul");
        }
        let mut process = Running::start(built(), &args, &[]);
        process
            .wait_ready(&format!("http://{listen}/healthz"))
            .await;
        Self {
            port,
            _process: process,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request that reached it, in order.
    pub async fn arrivals(&self) -> Vec<Arrival> {
        reqwest::get(self.url("/requests"))
            .await
            .expect("the Go backend answers")
            .json()
            .await
            .expect("its log is JSON")
    }

    /// Everything it read and ran so far, in order.
    pub async fn ran(&self) -> Vec<Ran> {
        reqwest::get(self.url("/log"))
            .await
            .expect("the Go backend answers")
            .json()
            .await
            .expect("its log is JSON")
    }
}
