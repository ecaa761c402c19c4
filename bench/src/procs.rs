//! The processes a bench run starts: each killed on drop (SIGINT first, so Pingora and nginx exit
//! without a grace period), with the CPU time and memory of it and its children read from `/proc`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A process started by the bench.
pub struct Proc {
    child: Child,
    pub name: String,
    log: std::path::PathBuf,
}

impl Proc {
    /// Starts `program` with `args`, its output going to `<logs>/<name>.log`.
    pub fn start(
        name: &str,
        program: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        logs: &Path,
    ) -> Result<Self> {
        let log_path = logs.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(program)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Self {
            child,
            name: name.to_owned(),
            log: log_path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until something accepts connections on `port`; fails if the process exits first.
    pub async fn wait_port(&mut self, port: u16) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited with {status} before it listened:\n{}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} did not listen on {port} within 60 s", self.name);
            }
            // Polling interval while waiting for the port, not a guess at how long startup takes.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// CPU time (user + system) of the process and all its descendants still running, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let ticks: u64 = family(self.pid()).iter().map(|&p| cpu_ticks(p)).sum();
        ticks as f64 / clock_ticks_per_second()
    }

    /// Resident memory of the process and its descendants, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        family(self.pid()).iter().map(|&p| rss(p)).sum()
    }

    /// The file descriptors the process holds now.
    pub fn open_descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, |dir| dir.count())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `pid` and every process descended from it (nginx's workers, HAProxy's worker).
fn family(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        all.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
        i += 1;
    }
    all
}

/// utime + stime of `pid` (all its threads), in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of stat(5), so utime (14) and stime (15) sit at 11 and 12.
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The first line a `--version`-style command prints (to stdout or stderr).
pub fn version(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| "not found".into())
}

/// A program on the PATH or in the system directories Debian puts daemons in.
pub fn program(name: &str) -> Result<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("{name} is not installed (apt-get install {name})"))
}

/// Waits until a proxy is back to the descriptors it held before the streams (give or take a few
/// pooled connections), that is, has closed them.
pub async fn wait_descriptors_closed(proc: &Proc, before: usize) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let open = proc.open_descriptors();
        if open <= before + 8 {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("{} still holds {open} descriptors after 60 s", proc.name);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
