//! `command` routes: the gateway starts the route's MCP server, restarts it with backoff when it exits,
//! prefixes its output with the route in the gateway's log, and stops it with itself.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::config::BackendCommand;

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run this long resets the backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// How long a stopping child gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

pub(crate) struct Supervisor {
    route: String,
    command: BackendCommand,
    running: Arc<AtomicBool>,
}

impl Supervisor {
    pub(crate) fn new(route: String, command: BackendCommand) -> Self {
        Self {
            route,
            command,
            running: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether the child is up now, for `/readyz`.
    pub(crate) fn running_flag(&self) -> Arc<AtomicBool> {
        self.running.clone()
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let mut command = Command::new(&self.command.program);
        command
            .args(&self.command.args)
            .envs(&self.command.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &self.command.working_dir {
            command.current_dir(dir);
        }
        // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which is
        // async-signal-safe. It asks the kernel to kill the child if the gateway dies, even by
        // SIGKILL, so that a supervised server never outlives its gateway.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        for (stream, is_err) in [
            (
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
                false,
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
                true,
            ),
        ] {
            let Some(stream) = stream else { continue };
            let route = self.route.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if is_err {
                        tracing::info!(target: "supervised", "[{route}] {line}");
                    } else {
                        tracing::info!(target: "supervised", "[{route}] (stdout) {line}");
                    }
                }
            });
        }
        Ok(child)
    }
}

#[async_trait]
impl BackgroundService for Supervisor {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let started = Instant::now();
            match self.spawn() {
                Ok(mut child) => {
                    tracing::info!(route = %self.route, program = %self.command.program, pid = child.id(), "started the route's command");
                    self.running.store(true, Ordering::Release);
                    tokio::select! {
                        status = child.wait() => {
                            self.running.store(false, Ordering::Release);
                            tracing::warn!(route = %self.route, status = ?status.ok(), "the route's command exited; restarting after {backoff:?}");
                        }
                        _ = shutdown.changed() => {
                            self.running.store(false, Ordering::Release);
                            stop(&mut child).await;
                            return;
                        }
                    }
                }
                Err(error) => {
                    tracing::error!(route = %self.route, program = %self.command.program, %error, "cannot start the route's command; retrying after {backoff:?}");
                }
            }
            if started.elapsed() >= HEALTHY_RUN {
                backoff = FIRST_BACKOFF;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// SIGTERM, then SIGKILL if it lingers.
async fn stop(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()) {
        // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own child, not yet reaped.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}
