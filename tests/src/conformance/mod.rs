//! The official MCP conformance suite (`tests/conformance`, installed by
//! `npm ci --prefix tests/conformance`, on the Node.js 22 it pins) and the MCP server it runs
//! against: our fixture `tests/conformance/server.mjs`, which implements what the suite's server
//! scenarios call. Its `client` mode, with the gateway as the client, in [`client`].

pub mod client;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::node::node_for;
use crate::{Running, free_port, wait_for_port, workspace_root};

/// The fixture MCP server on a free port, stopped on drop.
pub struct Fixture {
    pub port: u16,
    pub process: Running,
}

impl Fixture {
    /// Starts the fixture; `get_delay_ms` holds each GET stream that long before it opens.
    pub async fn start(get_delay_ms: u64) -> Self {
        let dir = package_dir();
        let port = free_port();
        let process = Running::start(
            &node_for("conformance"),
            &[
                dir.join("server.mjs").to_str().expect("UTF-8"),
                "--port",
                &port.to_string(),
                "--get-delay-ms",
                &get_delay_ms.to_string(),
            ],
            &[],
        );
        wait_for_port(port, "the conformance fixture").await;
        Self { port, process }
    }

    /// Its MCP endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// What it counted of GET streams and sockets (`/_fixture/stats`).
    pub fn stats_url(&self) -> String {
        format!("http://127.0.0.1:{}/_fixture/stats", self.port)
    }
}

pub(crate) fn package_dir() -> std::path::PathBuf {
    let dir = workspace_root().join("tests/conformance");
    assert!(
        dir.join("node_modules/@modelcontextprotocol/conformance")
            .is_dir(),
        "the conformance suite is missing: run `npm ci --prefix tests/conformance` (the README's test command does)"
    );
    dir
}

/// One check of a scenario, as the suite recorded it.
#[derive(Debug)]
pub struct Check {
    pub name: String,
    /// `SUCCESS`, `FAILURE`, `WARNING`, `INFO`, …
    pub status: String,
    pub error: Option<String>,
}

/// The checks of one full run, by scenario.
#[derive(Debug)]
pub struct SuiteRun {
    pub scenarios: BTreeMap<String, Vec<Check>>,
    /// What the suite printed, for a failure message.
    pub output: String,
}

impl SuiteRun {
    /// The scenarios with a check that is neither a success nor information, each with what failed.
    pub fn not_passed(&self) -> Vec<String> {
        self.scenarios
            .iter()
            .filter_map(|(scenario, checks)| {
                let bad: Vec<String> = checks
                    .iter()
                    .filter(|c| c.status != "SUCCESS" && c.status != "INFO")
                    .map(|c| {
                        format!(
                            "{} {}: {}",
                            c.status,
                            c.name,
                            c.error.as_deref().unwrap_or("-")
                        )
                    })
                    .collect();
                (!bad.is_empty()).then(|| format!("{scenario} ({})", bad.join("; ")))
            })
            .collect()
    }

    /// How many checks the run made, not counting `INFO` notes (the count the suite prints).
    pub fn checks(&self) -> usize {
        self.scenarios
            .values()
            .flatten()
            .filter(|c| c.status != "INFO")
            .count()
    }
}

/// Runs every server scenario of the suite (`--suite all`) against `url`, with `bearer` on every
/// request when given (`bearer.mjs`), and reads the checks it saved.
pub async fn run_suite(url: &str, bearer: Option<&str>) -> SuiteRun {
    let dir = package_dir();
    let results = tempfile::tempdir().expect("a temporary directory");
    let mut command = tokio::process::Command::new(node_for("conformance"));
    if bearer.is_some() {
        command.arg("--import").arg(dir.join("bearer.mjs"));
    }
    command
        .arg(dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"))
        .args(["server", "--suite", "all", "--url", url, "-o"])
        .arg(results.path())
        .current_dir(results.path())
        .env_remove("BEARER")
        .kill_on_drop(true);
    if let Some(token) = bearer {
        command.env("BEARER", token);
    }
    // A full run takes seconds; a scenario that hangs (the suite waits 60 s for some) fails it.
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("the conformance suite finished within 5 minutes")
        .expect("the conformance suite can be run");
    let output = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let mut scenarios = BTreeMap::new();
    for entry in std::fs::read_dir(results.path()).expect("the results directory") {
        let path = entry.expect("an entry").path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        // `server-<scenario>-<timestamp>`, the timestamp `2026-11-27T15-52-53-267Z`.
        const TIMESTAMP: usize = "-2026-11-27T15-52-53-267Z".len();
        let Some(scenario) = name
            .strip_prefix("server-")
            .filter(|rest| rest.len() > TIMESTAMP && rest.ends_with('Z'))
            .map(|rest| rest[..rest.len() - TIMESTAMP].to_owned())
        else {
            continue;
        };
        let text = std::fs::read_to_string(path.join("checks.json"))
            .unwrap_or_else(|e| panic!("{name} has no checks.json ({e}):\n{output}"));
        let checks: Vec<Value> = serde_json::from_str(&text).expect("checks.json is JSON");
        let checks = checks
            .iter()
            .map(|c| Check {
                name: c["name"].as_str().unwrap_or_default().to_owned(),
                status: c["status"].as_str().unwrap_or_default().to_owned(),
                error: c["errorMessage"].as_str().map(str::to_owned),
            })
            .collect();
        scenarios.insert(scenario, checks);
    }
    SuiteRun { scenarios, output }
}
