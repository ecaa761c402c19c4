//! Closed-loop load from `wrk` (Debian's package): a fixed number of kept-alive connections sending one
//! request each as fast as answers come. A Lua script sets the request and reports exact numbers.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::Cli;
use crate::procs::Proc;
use crate::report::Row;

/// One request shape.
pub struct Request<'a> {
    pub method: &'a str,
    pub url: String,
    pub headers: Vec<(&'a str, String)>,
    pub body: Option<&'a str>,
}

/// What one `wrk` run measured.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub requests: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Load {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// Runs `wrk` with `connections` connections for `duration`; fails if any answer was not 2xx or 3xx, or
/// any socket error happened, so that a broken target can never pass for a fast one.
pub async fn run(
    request: &Request<'_>,
    connections: u32,
    duration: Duration,
    workdir: &Path,
) -> Result<Load> {
    // One script per target, since several `wrk` may load several targets at once.
    let name: String = request
        .url
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let script = workdir.join(format!("wrk-{name}.lua"));
    std::fs::write(&script, lua(request))?;
    let output = tokio::process::Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            // wrk takes whole seconds at the finest.
            &format!("-d{}s", duration.as_secs().max(1)),
            "--timeout",
            "5s",
            "-s",
            script.to_str().unwrap(),
            &request.url,
        ])
        .output()
        .await
        .context("running wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH "))
        .with_context(|| {
            format!(
                "wrk reported nothing: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    let f: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(f64::NAN))
        .collect();
    let [requests, micros, errors, p50, p99] = f[..] else {
        bail!("unexpected wrk report: {line}");
    };
    if errors > 0.0 {
        bail!("{errors} of {requests} requests to {} failed", request.url);
    }
    Ok(Load {
        requests: requests as u64,
        seconds: micros / 1e6,
        p50_ms: p50 / 1e3,
        p99_ms: p99 / 1e3,
    })
}

fn lua(request: &Request<'_>) -> String {
    let quote = |s: &str| format!("{s:?}");
    let mut script = format!("wrk.method = {}\n", quote(request.method));
    if let Some(body) = request.body {
        script += &format!("wrk.body = {}\n", quote(body));
    }
    for (name, value) in &request.headers {
        script += &format!("wrk.headers[{}] = {}\n", quote(name), quote(value));
    }
    script += r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"#;
    script
}

/// One closed-loop `wrk` run, with the CPU time `measured` spent on it.
pub async fn measure(
    request: &Request<'_>,
    cli: &Cli,
    work: &Path,
    measured: &Proc,
) -> Result<Row> {
    let before = measured.cpu_seconds();
    let load = run(request, cli.connections, cli.duration, work).await?;
    let cpu = measured.cpu_seconds() - before;
    Ok(Row {
        rate: load.rate(),
        p50_ms: load.p50_ms,
        p99_ms: load.p99_ms,
        cpu_us: cpu * 1e6 / load.requests as f64,
    })
}
