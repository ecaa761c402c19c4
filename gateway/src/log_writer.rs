//! Where log lines go: stderr, with the access log written in batches. One `write` to stderr per
//! request was the largest single cost in the gateway's own code (BENCHMARKS.md), so `access` lines
//! collect in a buffer that reaches stderr when it holds 32 KiB, every 100 ms, or just before any
//! other line, which is written at once: warnings, errors and start-up lines are never held back, and
//! lines keep their order. The same trade as nginx's `access_log … buffer= flush=`.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tracing::Metadata;
use tracing_subscriber::fmt::MakeWriter;

/// The `tracing` target of the per-request access line, the only one that is batched.
pub const ACCESS: &str = "access";

/// How much of the access log may wait in memory.
const CAPACITY: usize = 32 * 1024;

/// How long an access line may wait.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// The writer behind the log; clones share one buffer.
#[derive(Clone, Default)]
pub struct LogWriter {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl LogWriter {
    /// A writer, with a thread of its own that writes out what waited longer than [`FLUSH_EVERY`].
    pub fn start() -> Self {
        let writer = Self::default();
        let flusher = writer.clone();
        std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    flusher.flush();
                }
            })
            .expect("a thread to flush the log");
        writer
    }

    /// Writes out whatever is waiting (on a timer, and before the process exits).
    pub fn flush(&self) {
        let mut buffer = self.lock();
        if !buffer.is_empty() {
            // Nowhere to report a failed write to stderr; the lines are dropped either way.
            let _ = write_out(&mut buffer);
        }
    }

    /// Adds whole lines to the batch, as an `access` event's would be.
    pub fn write_batched(&self, lines: &[u8]) {
        let mut buffer = self.lock();
        buffer.extend_from_slice(lines);
        if buffer.len() >= CAPACITY {
            let _ = write_out(&mut buffer);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn write_out(buffer: &mut Vec<u8>) -> io::Result<()> {
    let result = io::stderr().lock().write_all(buffer);
    buffer.clear();
    result
}

/// One log line's writer: `tracing` formats the line and hands it over in one `write`.
pub struct Line<'a> {
    writer: &'a LogWriter,
    batched: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.batched {
            self.writer.write_batched(bytes);
        } else {
            let mut buffer = self.writer.lock();
            buffer.extend_from_slice(bytes);
            write_out(&mut buffer)?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            writer: self,
            batched: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line<'a> {
        Line {
            writer: self,
            batched: meta.target() == ACCESS,
        }
    }
}
