//! Where log lines go: stderr, with the access log written in batches (and the audit trail, to its
//! own file or stdout, in batches the same way). One `write` to stderr per
//! request was the largest single cost in the gateway's own code (BENCHMARKS.md), so `access` lines
//! collect in a buffer that reaches stderr when it holds 32 KiB, every 100 ms, or just before any
//! other line, which is written at once: warnings, errors and start-up lines are never held back, and
//! lines keep their order. The same trade as nginx's `access_log … buffer= flush=`.
//!
//! The batches are written by a thread of their own, outside the buffer's lock: a request appending an
//! access line does not wait for a `write` that the disk may hold up for milliseconds. Two writes at
//! once are the exception: a line that is written at once (a warning), or a request finding a
//! megabyte waiting (the thread has fallen behind, and a log that cannot keep up should slow the
//! gateway rather than fill its memory), waits for the thread's `write` while holding the buffer,
//! so that lines keep their order; requests appending meanwhile wait with it.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing::Metadata;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written: text for people, JSON for log pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The `tracing` target of the per-request access line, the only one that is batched.
pub(crate) const ACCESS: &str = "access";

/// A batch: when the buffer holds this much, the writing thread is woken.
const CAPACITY: usize = 32 * 1024;

/// The most of the access log that may wait in memory before requests write it themselves.
const BACKLOG: usize = 1024 * 1024;

/// How long an access line may wait.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// The writer behind the log; clones share one buffer.
#[derive(Clone, Default)]
pub(crate) struct LogWriter {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    buffer: Mutex<Vec<u8>>,
    /// Signalled when the buffer reaches a batch.
    full: Condvar,
    sink: Sink,
    /// Held from taking a batch until it is written to a file or stdout: batches keep their order.
    writing: Mutex<()>,
}

/// Where a writer's batches go.
#[derive(Default)]
pub(crate) enum Sink {
    #[default]
    Stderr,
    Stdout,
    /// A file opened for appending.
    File(std::fs::File),
}

impl Sink {
    fn write_all(&self, batch: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stderr => io::stderr().lock().write_all(batch),
            Sink::Stdout => io::stdout().lock().write_all(batch),
            Sink::File(file) => (&*file).write_all(batch),
        }
    }
}

impl LogWriter {
    /// A writer to stderr, with a thread of its own that writes out each batch, and whatever
    /// waited longer than [`FLUSH_EVERY`].
    pub(crate) fn start() -> Self {
        Self::start_to(Sink::Stderr)
    }

    /// The same, to `sink`.
    pub(crate) fn start_to(sink: Sink) -> Self {
        let writer = Self {
            shared: Arc::new(Shared {
                sink,
                ..Shared::default()
            }),
        };
        let flusher = writer.clone();
        std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || {
                loop {
                    let buffer = flusher.lock();
                    let (buffer, _) = flusher
                        .shared
                        .full
                        .wait_timeout_while(buffer, FLUSH_EVERY, |b| b.len() < CAPACITY)
                        .unwrap_or_else(PoisonError::into_inner);
                    write_out(buffer, &flusher.shared);
                }
            })
            .expect("a thread to flush the log");
        writer
    }

    /// Writes out whatever is waiting (before the process exits).
    pub(crate) fn flush(&self) {
        write_out(self.lock(), &self.shared);
    }

    /// Adds whole lines to the batch, as an `access` event's would be.
    pub(crate) fn write_batched(&self, lines: &[u8]) {
        let mut buffer = self.lock();
        let before = buffer.len();
        buffer.extend_from_slice(lines);
        if buffer.len() >= BACKLOG {
            write_out(buffer, &self.shared);
        } else if before < CAPACITY && buffer.len() >= CAPACITY {
            // Once per batch: waking the thread is a system call.
            drop(buffer);
            self.shared.full.notify_one();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.shared
            .buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Takes what the buffer holds and writes it to the sink after letting go of the buffer, so that
/// requests can go on adding lines meanwhile. The sink (stderr's lock, or the writer's own) is
/// taken before the buffer is let go: whoever takes the next batch writes it after this one, and
/// lines keep their order.
fn write_out(mut buffer: MutexGuard<'_, Vec<u8>>, shared: &Shared) {
    if buffer.is_empty() {
        return;
    }
    let batch = std::mem::replace(&mut *buffer, Vec::with_capacity(CAPACITY));
    if let Sink::Stderr = shared.sink {
        let mut stderr = io::stderr().lock();
        drop(buffer);
        // Nowhere to report a failed write to stderr; the lines are dropped either way.
        let _ = stderr.write_all(&batch);
        return;
    }
    let writing = shared
        .writing
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    drop(buffer);
    let written = shared.sink.write_all(&batch);
    drop(writing);
    if let Err(error) = written {
        tracing::error!(%error, "lines of the audit trail could not be written");
    }
}

/// One log line's writer: `tracing` formats the line and hands it over in one `write`.
pub(crate) struct Line<'a> {
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
            write_out(buffer, &self.writer.shared);
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
