//! A real `redis-server` (Debian's package) for the tests, on a free port, without persistence;
//! killed on drop.

use std::path::Path;

use crate::{Running, free_port, wait_for_port};

pub struct RedisServer {
    pub port: u16,
    _process: Running,
}

impl RedisServer {
    pub async fn start() -> Self {
        let port = free_port();
        let process = Running::start(
            Path::new("redis-server"),
            &[
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            &[],
        );
        wait_for_port(port, "redis-server").await;
        Self {
            port,
            _process: process,
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}
