//! Runs the Node clients in `tests/e2e` (installed by `npm ci --prefix tests/e2e`).

use serde_json::Value;

use crate::workspace_root;

/// Runs `tests/e2e/<script>` with `plan` as its argument and returns the JSON it prints.
pub async fn run(script: &str, plan: &Value) -> Value {
    let dir = workspace_root().join("tests/e2e");
    assert!(
        dir.join("node_modules/@modelcontextprotocol/sdk").is_dir(),
        "the Node packages are missing: run `npm ci --prefix tests/e2e` (the README's test command does)"
    );
    let output = tokio::process::Command::new("node")
        .arg(dir.join(script))
        .arg(plan.to_string())
        .current_dir(&dir)
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
