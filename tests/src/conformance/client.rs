//! The conformance suite's `client` mode (its newer version, `conformance-client` in
//! `tests/conformance/package.json`), with the gateway as the OAuth client of the suite's mock
//! servers: for each scenario the suite starts a mock MCP server and authorization server and runs
//! our adapter (`tests/e2e/conformance-adapter.mjs`) with its URL; the adapter runs the gateway with
//! that URL as a route's backend and signs a user in through it.

use std::time::Duration;

use serde_json::Value;

use super::{Check, package_dir};
use crate::node::node_for;
use crate::{binary, workspace_root};

/// What one scenario's run came to.
#[derive(Debug)]
pub struct ScenarioRun {
    /// Whether the suite judged it passed (its exit status).
    pub passed: bool,
    /// What its mock servers recorded, `INFO` notes left out.
    pub checks: Vec<Check>,
    /// What the suite printed, for a failure message: its checks and the adapter's output.
    pub output: String,
}

impl ScenarioRun {
    /// The checks that are neither a success nor skipped, as `STATUS name`.
    pub fn not_passed(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c.status != "SUCCESS" && c.status != "SKIPPED")
            .map(|c| format!("{} {}", c.status, c.name))
            .collect()
    }

    /// The status of the check named `name`, if the scenario recorded it.
    pub fn status_of(&self, name: &str) -> Option<&str> {
        self.checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.status.as_str())
    }
}

/// Runs `scenario` (`auth/…`) with the gateway as the client, signing in the `local` provider's
/// `alice` of `users_file`. Every scenario runs on the 2025-11-25 protocol, the one the official
/// TypeScript SDK client speaks: those introduced for the 2026-07-28 draft are forced to it.
pub async fn run_scenario(scenario: &str, users_file: &std::path::Path) -> ScenarioRun {
    let dir = package_dir();
    let results = tempfile::tempdir().expect("a temporary directory");
    let node = node_for("conformance");
    let adapter = workspace_root().join("tests/e2e/conformance-adapter.mjs");
    let run = tokio::process::Command::new(&node)
        .arg(dir.join("node_modules/conformance-client/dist/index.js"))
        .args(["client", "--scenario", scenario])
        .args(["--spec-version", "2025-11-25", "--force", "-o"])
        .arg(results.path())
        // The suite splits the command at spaces and appends the mock server's URL.
        .arg("--command")
        .arg(format!("{} {}", node.display(), adapter.display()))
        .env("GATEWAY_BIN", binary("mcp-auth-gateway"))
        .env("USERS_FILE", users_file)
        .current_dir(results.path())
        .kill_on_drop(true)
        .output();
    // A scenario takes a second or two; the suite gives the client 30 s.
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .unwrap_or_else(|_| panic!("{scenario} finished within 2 minutes"))
        .expect("the conformance suite can be run");
    let printed = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let checks = read_checks(results.path(), scenario)
        .unwrap_or_else(|e| panic!("{scenario}: {e}\n{printed}"));
    ScenarioRun {
        passed: output.status.success(),
        checks,
        output: printed,
    }
}

/// The checks the suite saved for `scenario`, under `<results>/auth/<name>-<timestamp>/`.
fn read_checks(results: &std::path::Path, scenario: &str) -> Result<Vec<Check>, String> {
    let (folder, name) = scenario.rsplit_once('/').unwrap_or(("", scenario));
    let parent = results.join(folder);
    let entries = std::fs::read_dir(&parent).map_err(|e| format!("no results ({e})"))?;
    let run = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(name))
                .is_some_and(|rest| rest.starts_with("-2"))
        })
        .ok_or("no results for it")?;
    let text = std::fs::read_to_string(run.join("checks.json"))
        .map_err(|e| format!("no checks.json ({e})"))?;
    let checks: Vec<Value> = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    Ok(checks
        .iter()
        .map(|c| Check {
            name: c["id"].as_str().unwrap_or_default().to_owned(),
            status: c["status"].as_str().unwrap_or_default().to_owned(),
            error: c["errorMessage"].as_str().map(str::to_owned),
        })
        .filter(|c| c.status != "INFO")
        .collect())
}
