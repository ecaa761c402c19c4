//! Child processes that die with the test: output to log files, readiness by polling, kill on drop.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A free TCP port on 127.0.0.1. (Pingora cannot report the port it bound for `:0`, so the
/// harness picks one first.)
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Serves `app` on a free port of 127.0.0.1 on the current runtime: the port, and the task to abort.
pub async fn serve_on_free_port(app: axum::Router) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let port = listener.local_addr().expect("an address").port();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("the test server serves");
    });
    (port, server)
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port` (for servers with no health URL).
pub async fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running child process, killed when dropped.
pub struct Running {
    child: Child,
    logs: TempDir,
    pub name: String,
}

impl Running {
    /// Starts `program` with `args`, its stdout and stderr going to log files.
    pub fn start(program: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::spawn(program, args, envs, None)
    }

    /// The same, in the working directory `dir`.
    pub fn start_in(program: &Path, args: &[&str], dir: &Path) -> Self {
        Self::spawn(program, args, &[], Some(dir))
    }

    fn spawn(program: &Path, args: &[&str], envs: &[(&str, &str)], dir: Option<&Path>) -> Self {
        let logs = tempfile::tempdir().expect("a temporary directory");
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let out = std::fs::File::create(logs.path().join("stdout")).expect("a log file");
        let err = std::fs::File::create(logs.path().join("stderr")).expect("a log file");
        let mut command = Command::new(program);
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let child = command
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Self { child, logs, name }
    }

    /// The file that collects its `stdout` or `stderr`.
    pub fn log_path(&self, stream: &str) -> std::path::PathBuf {
        self.logs.path().join(stream)
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("stderr")).unwrap_or_default()
    }

    /// Waits up to 10 s for what the process wrote (stderr, then stdout) to satisfy `done`, and returns
    /// it either way, for the caller to assert on. The gateway writes its access log in batches, up to
    /// 100 ms after the request.
    pub async fn wait_for_output(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let output = self.stderr()
                + &std::fs::read_to_string(self.log_path("stdout")).unwrap_or_default();
            if done(&output) || Instant::now() > deadline {
                return output;
            }
            // Polling interval while waiting for a condition, not a guess at how long it takes.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends the process `signal` (`"HUP"`, `"QUIT"`, …).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", self.name);
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the process `signal` (`"TERM"`, `"INT"`, …) and waits up to 30 s for it to exit.
    pub async fn signal_and_wait(&mut self, signal: &str) -> std::process::ExitStatus {
        self.signal(signal);
        self.wait_exit().await
    }

    /// Waits up to 30 s for the process to exit.
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .expect("the process can be waited for")
            {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running after 30 s:\n{}",
                self.name,
                self.stderr()
            );
            // Polling interval while waiting for the exit, not a guess at how long it takes.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `url` until it answers 2xx; panics with the process's logs if it exits or 30 s pass.
    pub async fn wait_ready(&mut self, url: &str) {
        self.wait_ready_with(&reqwest::Client::new(), url).await;
    }

    /// The same, with a client of the caller's (trusting a test CA, say).
    pub async fn wait_ready_with(&mut self, http: &reqwest::Client, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited with {status} before it was ready:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            if let Ok(response) = http.get(url).timeout(Duration::from_secs(1)).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready at {url} within 30 s:\n{}",
                self.name,
                self.stderr()
            );
            // Polling interval while waiting for a condition, not a guess at how long startup takes.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Running {
    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// How many file descriptors it holds open.
    pub fn open_descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Its resident memory now, from `/proc/<pid>/status` (`VmRSS`), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process's status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS")
            * 1024
    }

    /// Kills the process and waits for it to be gone.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}
