//! The quickstart as shipped (`config/quickstart.toml` with its users file and `config/mcp-backend.toml`),
//! started on free ports in a temporary directory: only its ports and the backend's path are moved.

use tempfile::TempDir;

use crate::{Running, binary, free_port, wait_for_port, workspace_root};

/// The running quickstart: the gateway, and the `mcp-backend` it supervises.
pub struct Quickstart {
    pub process: Running,
    /// `http://127.0.0.1:<port>`, where the shipped file says `127.0.0.1:8080`.
    pub origin: String,
    /// The directory it runs in (its `./data` lands here).
    pub dir: TempDir,
}

impl Quickstart {
    /// Copies the shipped files with their ports moved, starts the gateway in their directory, and waits
    /// until it and its backend are ready.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (gateway, metrics, backend) = (free_port(), free_port(), free_port());
        let rewrite = |text: String| {
            text.replace("127.0.0.1:8080", &format!("127.0.0.1:{gateway}"))
                .replace("127.0.0.1:9464", &format!("127.0.0.1:{metrics}"))
                .replace("127.0.0.1:9000", &format!("127.0.0.1:{backend}"))
                .replace(
                    "target/release/mcp-backend",
                    &binary("mcp-backend").display().to_string(),
                )
        };
        for file in [
            "quickstart.toml",
            "mcp-backend.toml",
            "users/quickstart.toml",
        ] {
            let text = std::fs::read_to_string(workspace_root().join("config").join(file)).unwrap();
            let target = dir.path().join("config").join(file);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(target, rewrite(text)).unwrap();
        }
        let mut process = Running::start_in(
            &binary("mcp-auth-gateway"),
            &["--config", "config/quickstart.toml"],
            dir.path(),
        );
        let origin = format!("http://127.0.0.1:{gateway}");
        process.wait_ready(&format!("{origin}/readyz")).await;
        wait_for_port(backend, "the quickstart's mcp-backend").await;
        Self {
            process,
            origin,
            dir,
        }
    }
}
