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

use crate::telemetry::log_writer::{ACCESS, LogFormat, LogWriter};

/// Where access lines go, and in which format; and the audit trail of policy decisions, when the
/// config asks for one.
#[derive(Clone)]
pub(crate) struct AccessLog {
    pub format: LogFormat,
    pub writer: LogWriter,
    pub audit: Option<std::sync::Arc<crate::telemetry::audit::AuditLog>>,
}

/// What is logged of one request.
pub(crate) struct AccessLine<'a> {
    pub request_id: &'a str,
    pub route: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    /// The client's address, as the trusted proxies tell it (`-` when unknown).
    pub client_ip: &'a str,
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
    static STAMP: RefCell<Stamp> = RefCell::new(Stamp::default());
}

/// The timestamp's text up to its seconds, made once a second rather than on every line.
#[derive(Default)]
struct Stamp {
    second: u64,
    text: String,
}

impl Stamp {
    /// Writes `now` as RFC 3339 UTC to the microsecond, as `tracing`'s text format has it.
    fn push(&mut self, line: &mut String, now: SystemTime) {
        let since_epoch = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        if self.text.is_empty() || self.second != since_epoch.as_secs() {
            self.second = since_epoch.as_secs();
            self.text = humantime::format_rfc3339_seconds(now).to_string();
            // `…:SSZ` without its `Z`, for the fraction to follow.
            self.text.pop();
        }
        line.push_str(&self.text);
        let mut fraction = *b".000000Z";
        let mut micros = since_epoch.subsec_micros();
        for digit in fraction[1..7].iter_mut().rev() {
            *digit = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        line.push_str(std::str::from_utf8(&fraction).expect("ASCII digits"));
    }
}

impl AccessLine<'_> {
    pub(crate) fn emit(&self, log: &AccessLog) {
        if !tracing::enabled!(target: ACCESS, tracing::Level::INFO) {
            return;
        }
        match log.format {
            LogFormat::Text => LINE.with_borrow_mut(|line| {
                line.clear();
                // As `tracing`'s text format has it: RFC 3339 UTC to the microsecond, level, target.
                STAMP.with_borrow_mut(|stamp| stamp.push(line, SystemTime::now()));
                line.push_str("  INFO ");
                line.push_str(ACCESS);
                line.push_str(": ");
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
                client_ip = self.client_ip,
                status = self.status,
                duration_ms = self.duration_ms,
                user = self.user,
                client_id = self.client_id,
                error = self.error,
            ),
        }
    }

    /// `request_id=… route=… method=… path=… client_ip=… status=… duration_ms=… user="…"
    /// client_id="…" error="…"`
    fn write_text(&self, line: &mut String) {
        for (name, value) in [
            ("request_id=", self.request_id),
            (" route=", self.route),
            (" method=", self.method),
            (" path=", self.path),
            (" client_ip=", self.client_ip),
        ] {
            line.push_str(name);
            line.push_str(value);
        }
        // Writing to a String cannot fail.
        let _ = write!(
            line,
            " status={} duration_ms={}",
            self.status, self.duration_ms
        );
        for (name, value) in [
            (" user=", self.user),
            (" client_id=", self.client_id),
            (" error=", self.error),
        ] {
            line.push_str(name);
            push_quoted(line, value);
        }
    }
}

/// `value` quoted as Rust's `{:?}` quotes it. Most values need no escape and are copied as they
/// are: the check folds over every byte without an early exit, so that it compiles to vector code.
fn push_quoted(line: &mut String, value: &str) {
    let plain = value.bytes().fold(true, |ok, b| {
        ok & (b' '..=b'~').contains(&b) & (b != b'"') & (b != b'\\')
    });
    if plain {
        line.push('"');
        line.push_str(value);
        line.push('"');
    } else {
        let _ = write!(line, "{value:?}");
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
            client_ip: "192.0.2.1",
            status: 200,
            duration_ms: 0.25,
            user: "mallory\" status=500\n",
            client_id: "-",
            error: "-",
        }
        .write_text(&mut line);
        assert_eq!(
            line,
            r#"request_id=r1 route=/mcp method=POST path=/mcp client_ip=192.0.2.1 status=200 duration_ms=0.25 user="mallory\" status=500\n" client_id="-" error="-""#
        );
    }

    #[test]
    fn timestamps_read_as_humantime_writes_them() {
        use std::time::Duration;
        let mut stamp = Stamp::default();
        let start = SystemTime::UNIX_EPOCH + Duration::from_micros(1_795_800_000_999_999);
        // Within one second, across a second, and back to an earlier second.
        for offset in [0, 1, 2, 1_000_000, 7, 86_400_000_001, 0] {
            let now = start + Duration::from_micros(offset);
            let mut line = String::new();
            stamp.push(&mut line, now);
            assert_eq!(line, humantime::format_rfc3339_micros(now).to_string());
        }
    }

    #[test]
    fn values_are_quoted_exactly_as_debug_quotes_them() {
        for value in [
            "",
            "alice",
            "a b~c",
            "quote\"",
            "back\\slash",
            "tab\t",
            "\u{1b}[31mred",
            "del\u{7f}",
            "zoë",
            "\u{202e}rtl",
        ] {
            let mut line = String::new();
            push_quoted(&mut line, value);
            assert_eq!(line, format!("{value:?}"));
        }
    }
}
