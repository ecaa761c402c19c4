//! The results as a Markdown report: the main table with its ratios and the goals they meet, then the
//! other measurements, then how the run was made.

use std::fmt::Write;
use std::path::Path;

use crate::Cli;
use crate::procs::version;

/// The median of several runs of one target.
#[derive(Debug, Clone, Copy, Default)]
pub struct Row {
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// CPU time of the measured process (the proxy; for `a`, the upstream) per request, in µs.
    pub cpu_us: f64,
}

/// The median of `values`.
fn median_of(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The median of each column separately.
pub fn median(rows: &[Row]) -> Row {
    let med = |f: fn(&Row) -> f64| median_of(rows.iter().map(f).collect());
    Row {
        rate: med(|r| r.rate),
        p50_ms: med(|r| r.p50_ms),
        p99_ms: med(|r| r.p99_ms),
        cpu_us: med(|r| r.cpu_us),
    }
}

pub struct Report {
    pub title: String,
    pub setup: Vec<String>,
    /// (key, label, one row per run) in table order: a, b, p, h, c.
    pub main: Vec<(&'static str, &'static str, Vec<Row>)>,
    pub extra: Vec<(String, String)>,
}

impl Report {
    fn runs(&self, key: &str) -> Option<&[Row]> {
        self.main
            .iter()
            .find(|(k, ..)| *k == key)
            .map(|(.., runs)| runs.as_slice())
    }

    /// The median over runs of c's `column` divided by `key`'s in the same run: the targets of a run ran
    /// one after another, so a slow spell of the machine touches both sides of each ratio alike.
    fn ratio(&self, key: &str, column: fn(&Row) -> f64) -> Option<f64> {
        let (c, other) = (self.runs("c")?, self.runs(key)?);
        Some(median_of(
            c.iter()
                .zip(other)
                .map(|(c, o)| column(c) / column(o))
                .collect(),
        ))
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("# {}\n\n", self.title);
        out +=
            "| | requests/s | p50 ms | p99 ms | CPU µs per request |\n|---|---:|---:|---:|---:|\n";
        for (key, label, runs) in &self.main {
            let row = median(runs);
            let _ = writeln!(
                out,
                "| {key}. {label} | {:.0} | {:.3} | {:.3} | {:.1} |",
                row.rate, row.p50_ms, row.p99_ms, row.cpu_us
            );
        }
        out += "\nRatios: the median over runs of each run's ratio.\n\n";
        out += "| ratio | CPU per request | requests/s | p99 |\n|---|---:|---:|---:|\n";
        for key in ["p", "h", "b", "a"] {
            if let (Some(cpu), Some(rate), Some(p99)) = (
                self.ratio(key, |r| r.cpu_us),
                self.ratio(key, |r| r.rate),
                self.ratio(key, |r| r.p99_ms),
            ) {
                let _ = writeln!(out, "| c/{key} | {cpu:.2} | {rate:.2} | {p99:.2} |");
            }
        }
        out += "\n";
        let goal = |ok: bool| if ok { "met" } else { "**not met**" };
        for (key, what, bound) in [
            ("p", "at most 1.15 × the bare Pingora's", 1.15),
            ("h", "at most half of HAProxy's", 0.5),
            ("b", "no more than nginx's", 1.0),
        ] {
            if let Some(ratio) = self.ratio(key, |r| r.cpu_us) {
                let _ = writeln!(
                    out,
                    "- CPU per request {what}: {ratio:.2} ×, {}.",
                    goal(ratio <= bound)
                );
            }
        }
        out += "\n";
        for (what, value) in &self.extra {
            let _ = writeln!(out, "- {what}: {value}");
        }
        out += "\n## How this was run\n\n";
        for line in &self.setup {
            let _ = writeln!(out, "- {line}");
        }
        out
    }
}

/// How the run was made: the machine, the load, the proxies' versions, what CPU per request means.
pub fn setup(cli: &Cli, nginx: &Path, haproxy: &Path) -> Vec<String> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    vec![
        format!(
            "Machine: {cpu}, {} cores, Linux {}; all processes on this one machine, load generator included.",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            version("uname", &["-r"])
        ),
        format!(
            "Load: wrk ({}), 1 thread, {} kept-alive connections, `POST /mcp` of a JSON-RPC `tools/call` \
             with a bearer token; {} run(s) of {:?} per target, interleaved, median shown.",
            version("wrk", &["-v"]),
            cli.connections,
            cli.runs,
            cli.duration
        ),
        format!(
            "Upstream and b: {}; h: {}; p and c: Pingora 0.9 (the workspace's), release build. One worker \
             thread or process per proxy. b, h and c log every request; p does not.",
            version(nginx.to_str().unwrap(), &["-v"]),
            version(haproxy.to_str().unwrap(), &["-v"])
        ),
        "CPU per request: user + system time of the proxy's processes (for a, the upstream's) from \
         /proc/<pid>/stat over the run, divided by the requests answered."
            .to_owned(),
    ]
}
