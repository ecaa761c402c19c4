//! A real Prometheus server (Debian's `prometheus` package) for the tests: it scrapes one target every
//! second with the repo's alert rules loaded, on a free port, killed on drop; and `promtool`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::{Running, free_port, workspace_root};

/// The job name the shipped alert rules expect.
pub const JOB: &str = "mcp-auth-gateway";

pub struct PrometheusServer {
    pub port: u16,
    _process: Running,
    _dir: TempDir,
}

/// The shipped Prometheus files: `config/prometheus/<name>`.
pub fn shipped(name: &str) -> PathBuf {
    workspace_root().join("config/prometheus").join(name)
}

fn installed(program: &str) -> PathBuf {
    let path = Path::new("/usr/bin").join(program);
    assert!(
        path.is_file(),
        "{program} is missing: install Debian's prometheus package (.ci/run does)"
    );
    path
}

/// Runs `promtool` with `args`: its output, once it succeeded.
pub fn promtool(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new(installed("promtool"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    let mut input = child.stdin.take().expect("a stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("writing to promtool");
    drop(input);
    let output = child.wait_with_output().expect("promtool runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "promtool {args:?} failed: {text}");
    text
}

impl PrometheusServer {
    /// Scrapes `targets` (`host:port`) as job [`JOB`] every second, evaluating the shipped alerts.
    pub async fn scraping(targets: &[String]) -> Self {
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules:?}\n\
                 scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: [{targets}]\n",
                targets = targets.join(", "),
                rules = shipped("alerts.yml").display().to_string(),
            ),
        )
        .expect("writing prometheus.yml");
        let port = free_port();
        let process = Running::start(
            &installed("prometheus"),
            &[
                &format!("--config.file={}", config.display()),
                &format!("--storage.tsdb.path={}", dir.path().join("data").display()),
                &format!("--web.listen-address=127.0.0.1:{port}"),
            ],
            &[],
        );
        let mut server = Self {
            port,
            _process: process,
            _dir: dir,
        };
        let ready = format!("http://127.0.0.1:{port}/-/ready");
        server._process.wait_ready(&ready).await;
        server
    }

    /// `GET /api/v1/<path>`: its `data`, once the answer is a success.
    pub async fn api(&self, path: &str) -> Value {
        let url = format!("http://127.0.0.1:{}/api/v1/{path}", self.port);
        let answer: Value = reqwest::get(&url)
            .await
            .expect("Prometheus answers")
            .json()
            .await
            .expect("JSON");
        assert_eq!(answer["status"], "success", "{url}: {answer}");
        answer["data"].clone()
    }

    /// An instant query's result vector.
    pub async fn query(&self, promql: &str) -> Vec<Value> {
        let path = format!("query?query={}", urlencode(promql));
        let data = self.api(&path).await;
        data["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `promql` until it returns a sample, within 30 s: the sample's value.
    pub async fn wait_for(&self, promql: &str) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(sample) = self.query(promql).await.first() {
                return sample["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .expect("a sample value");
            }
            assert!(
                Instant::now() < deadline,
                "no sample for {promql} within 30 s"
            );
            // Polling interval while waiting for a scrape, not a guess at how long it takes.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
