//! A real `redis-server` (Debian's package) for the tests, on a free port; killed on drop. Without
//! persistence, or with an append-only file that a restart reads back.

use std::path::{Path, PathBuf};

use crate::{Running, free_port, wait_for_port};

pub struct RedisServer {
    pub port: u16,
    /// Where its append-only file lives, when it keeps one.
    dir: Option<PathBuf>,
    process: Running,
}

impl RedisServer {
    /// A server that keeps nothing.
    pub async fn start() -> Self {
        Self::launch(free_port(), None).await
    }

    /// A server that keeps everything in an append-only file in `dir`, fsynced every write, as an
    /// operator runs the gateway's Redis.
    pub async fn start_persistent(dir: &Path) -> Self {
        Self::launch(free_port(), Some(dir.to_owned())).await
    }

    async fn launch(port: u16, dir: Option<PathBuf>) -> Self {
        let port_text = port.to_string();
        let mut args = vec!["--port", &port_text, "--bind", "127.0.0.1", "--save", ""];
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
        let process = Running::start(Path::new("redis-server"), &args, &[]);
        wait_for_port(port, "redis-server").await;
        Self { port, dir, process }
    }

    /// Stops the server: its clients find nobody on its port.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts it again on the same port (and file).
    pub async fn restart(&mut self) {
        self.process.stop();
        *self = Self::launch(self.port, self.dir.take()).await;
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}
