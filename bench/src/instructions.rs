//! Instructions per request, counted by callgrind: the one measure here that does not move with the
//! machine's load. The proxy runs under valgrind with instrumentation off while it starts; then it is
//! switched on, warmed up, zeroed, loaded with `wrk` for a while, and dumped. The count is user-space
//! only (the kernel's share, the same for p and c, is left out), so the ratio it gives is the ratio
//! of the work each proxy's own code does, not of the CPU time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::targets::Target;
use crate::wrk::{self, Request};

/// The command line that runs a program under callgrind, its counts going to `out`.
pub fn under_callgrind(valgrind: &Path, out: &Path) -> Vec<String> {
    vec![
        valgrind.display().to_string(),
        "--tool=callgrind".into(),
        "--instr-atstart=no".into(),
        format!("--callgrind-out-file={}", out.display()),
    ]
}

/// Counts the instructions `target` (started with [`under_callgrind`] writing to `out`) spends per
/// answer to `request`, over `duration` of load from 8 connections. `dump` numbers the dumps of one
/// process (the first is 1).
pub async fn per_request(
    target: &Target,
    request: &Request<'_>,
    duration: Duration,
    out: &Path,
    dump: u32,
    workdir: &Path,
) -> Result<f64> {
    let pid = target.proc.pid().to_string();
    control(&pid, "--instr=on")?;
    // Warm-up: connections, caches, and code paths instrumented for the first time.
    wrk::run(request, 8, Duration::from_secs(1), workdir).await?;
    control(&pid, "--zero")?;
    let load = wrk::run(request, 8, duration, workdir).await?;
    control(&pid, "--dump")?;
    let dump = PathBuf::from(format!("{}.{dump}", out.display()));
    let instructions = totals(&dump)?;
    Ok(instructions / load.requests as f64)
}

fn control(pid: &str, command: &str) -> Result<()> {
    let status = Command::new("callgrind_control")
        .args([command, pid])
        .stdout(std::process::Stdio::null())
        .status()
        .context("running callgrind_control (Debian's valgrind package)")?;
    if !status.success() {
        bail!("callgrind_control {command} {pid}: {status}");
    }
    Ok(())
}

/// The `totals:` line of a callgrind dump: instructions executed.
fn totals(dump: &Path) -> Result<f64> {
    let text = std::fs::read_to_string(dump)
        .with_context(|| format!("reading the callgrind dump {}", dump.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("totals:"))
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no totals in {}", dump.display()))
}
