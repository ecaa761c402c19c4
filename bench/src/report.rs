//! The results as a Markdown report: the main table with its ratios and the goals they meet, then the
//! other measurements, then how the run was made.

use std::fmt::Write;

/// The median of several runs of one target.
#[derive(Debug, Clone, Copy, Default)]
pub struct Row {
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// CPU time of the measured process (the proxy; for `a`, the upstream) per request, in µs.
    pub cpu_us: f64,
}

/// The median of each column separately.
pub fn median(rows: &[Row]) -> Row {
    let med = |f: fn(&Row) -> f64| {
        let mut v: Vec<f64> = rows.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
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
    /// (key, label, row) in table order: a, b, p, h, c.
    pub main: Vec<(&'static str, &'static str, Row)>,
    pub extra: Vec<(String, String)>,
}

impl Report {
    fn row(&self, key: &str) -> Option<Row> {
        self.main.iter().find(|(k, ..)| *k == key).map(|(.., r)| *r)
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("# {}\n\n", self.title);
        out +=
            "| | requests/s | p50 ms | p99 ms | CPU µs per request |\n|---|---:|---:|---:|---:|\n";
        for (key, label, row) in &self.main {
            let _ = writeln!(
                out,
                "| {key}. {label} | {:.0} | {:.3} | {:.3} | {:.1} |",
                row.rate, row.p50_ms, row.p99_ms, row.cpu_us
            );
        }
        if let Some(c) = self.row("c") {
            out += "\n| ratio | CPU per request | requests/s | p99 |\n|---|---:|---:|---:|\n";
            for key in ["p", "h", "b", "a"] {
                if let Some(other) = self.row(key) {
                    let _ = writeln!(
                        out,
                        "| c/{key} | {:.2} | {:.2} | {:.2} |",
                        c.cpu_us / other.cpu_us,
                        c.rate / other.rate,
                        c.p99_ms / other.p99_ms
                    );
                }
            }
            out += "\n";
            let goal = |ok: bool| if ok { "met" } else { "**not met**" };
            if let (Some(p), Some(h), Some(b)) = (self.row("p"), self.row("h"), self.row("b")) {
                let _ = writeln!(
                    out,
                    "- CPU per request at most 1.15 × the bare Pingora's: {:.2} ×, {}.",
                    c.cpu_us / p.cpu_us,
                    goal(c.cpu_us <= 1.15 * p.cpu_us)
                );
                let _ = writeln!(
                    out,
                    "- At most half of HAProxy's: {:.2} ×, {}.",
                    c.cpu_us / h.cpu_us,
                    goal(c.cpu_us <= 0.5 * h.cpu_us)
                );
                let _ = writeln!(
                    out,
                    "- No more than nginx's: {:.2} ×, {}.",
                    c.cpu_us / b.cpu_us,
                    goal(c.cpu_us <= b.cpu_us)
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
