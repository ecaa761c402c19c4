//! The access line, one per request. As text it is written by hand, timestamp and level included,
//! straight into the log's batch: through `tracing`'s formatter it cost the gateway 16,000 of its
//! 158,000 instructions per request (BENCHMARKS.md), most of it the formatter scanning each
//! character for terminal escapes. The line reads as before; `RUST_LOG` still filters it by its
//! `access` target; and nothing in it can carry an escape (the identity fields are quoted with
//! Rust's escaping, the rest are ids, config values, an HTTP method and a URI path). As JSON it goes
//! through `tracing` with its fields as fields, for log pipelines to index.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::SystemTime;

use crate::cli::LogFormat;
use crate::log_writer::{ACCESS, LogWriter};

/// Where access lines go, and in which format.
#[derive(Clone)]
pub struct AccessLog {
    pub format: LogFormat,
    pub writer: LogWriter,
}

/// What is logged of one request.
pub struct AccessLine<'a> {
    pub request_id: &'a str,
    pub route: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub duration_ms: f64,
    /// The caller's `sub` and client, and Pingora's error type: `-` when there is none. Quoted and
    /// escaped, since a `sub` comes from an identity provider.
    pub user: &'a str,
    pub client_id: &'a str,
    pub error: &'a str,
}

thread_local! {
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(256));
}

impl AccessLine<'_> {
    pub fn emit(&self, log: &AccessLog) {
        if !tracing::enabled!(target: ACCESS, tracing::Level::INFO) {
            return;
        }
        match log.format {
            LogFormat::Text => LINE.with_borrow_mut(|line| {
                line.clear();
                // As `tracing`'s text format has it: RFC 3339 UTC to the microsecond, level, target.
                let _ = write!(
                    line,
                    "{}  INFO {ACCESS}: ",
                    humantime::format_rfc3339_micros(SystemTime::now())
                );
                self.write_text(line);
                line.push('\n');
                log.writer.write_batched(line.as_bytes());
            }),
            LogFormat::Json => tracing::info!(
                target: ACCESS,
                request_id = self.request_id,
                route = self.route,
                method = self.method,
                path = self.path,
                status = self.status,
                duration_ms = self.duration_ms,
                user = self.user,
                client_id = self.client_id,
                error = self.error,
            ),
        }
    }

    /// `request_id=… route=… method=… path=… status=… duration_ms=… user="…" client_id="…" error="…"`
    fn write_text(&self, line: &mut String) {
        for (name, value) in [
            ("request_id=", self.request_id),
            (" route=", self.route),
            (" method=", self.method),
            (" path=", self.path),
        ] {
            line.push_str(name);
            line.push_str(value);
        }
        // Writing to a String cannot fail.
        let _ = write!(
            line,
            " status={} duration_ms={} user={:?} client_id={:?} error={:?}",
            self.status, self.duration_ms, self.user, self.client_id, self.error
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_line_escapes_what_an_identity_provider_chose() {
        let mut line = String::new();
        AccessLine {
            request_id: "r1",
            route: "/mcp",
            method: "POST",
            path: "/mcp",
            status: 200,
            duration_ms: 0.25,
            user: "mallory\" status=500\n",
            client_id: "-",
            error: "-",
        }
        .write_text(&mut line);
        assert_eq!(
            line,
            r#"request_id=r1 route=/mcp method=POST path=/mcp status=200 duration_ms=0.25 user="mallory\" status=500\n" client_id="-" error="-""#
        );
    }
}
