//! `mcp-gateway-bench`: what `mcp-auth-gateway` costs. In one run on one machine it starts a static
//! upstream (nginx), puts each proxy in front of it in turn — nginx `proxy_pass`, a bare Pingora, HAProxy
//! checking the JWT, the gateway — loads each with `wrk`, and reports requests/s, latency and the proxy's
//! CPU time per request, with ratios. Then: the full path to the real `mcp-backend`, the protected
//! resource metadata, the `refresh_token` grant, latency at a fixed rate, and memory per idle SSE stream.
//!
//! `bench/run` builds what it needs and runs this; see BENCHMARKS.md.

mod instructions;
mod mcp;
mod paced;
mod procs;
mod refresh;
mod replicas;
mod report;
mod scenarios;
mod sse;
mod targets;
mod token;
mod wrk;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    about = "What mcp-auth-gateway costs, beside a direct path, nginx, a bare Pingora and HAProxy"
)]
pub struct Cli {
    /// A few seconds in all: every measurement once and briefly, to catch a broken bench (CI runs this).
    #[arg(long)]
    pub quick: bool,
    /// Runs of each load; the tables show the median.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// The length of each load run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Kept-alive connections of the load generator.
    #[arg(long, default_value_t = 32)]
    pub connections: u32,
    /// Idle SSE streams to hold through the gateway, one measurement per count.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub streams: Vec<usize>,
    /// Start everything, print the addresses and a token, and wait for Ctrl-C instead of measuring: for
    /// profiling a target under a load of one's own.
    #[arg(long)]
    pub hold: bool,
    /// Where the report goes, as `<date>.md` (default `bench/results`; with --quick, nowhere).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve idle SSE streams on a port (the bench starts this itself).
    SseUpstream { port: u16 },
}

/// The workspace root (this crate sits in `bench/`).
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ sits in the workspace")
}

/// A program from this build (the bench's own target directory).
pub fn sibling(name: &str) -> Result<PathBuf> {
    let path = std::env::current_exe()?
        .parent()
        .context("the bench has a directory")?
        .join(name);
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: bench/run builds it",
        path.display()
    );
    Ok(path)
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut cli = Cli::parse();
    if let Some(Command::SseUpstream { port }) = cli.command {
        return sse::serve_upstream(port).await;
    }
    if cli.quick {
        cli.runs = 1;
        cli.duration = Duration::from_secs(1);
        cli.streams = vec![100];
    }
    let Some(report) = scenarios::run(&cli).await? else {
        return Ok(());
    };
    let text = report.markdown();
    println!("{text}");
    let out = match (&cli.out, cli.quick) {
        (Some(dir), _) => Some(dir.clone()),
        (None, false) => Some(workspace().join("bench/results")),
        (None, true) => None,
    };
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.md", scenarios::today()));
        std::fs::write(&path, text)?;
        eprintln!("written to {}", path.display());
    }
    Ok(())
}
