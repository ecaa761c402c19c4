//! The audit trail: one JSON line per MCP message a route's policy decided — when, which request,
//! route, user and client, the method and the tool, resource or prompt, the decision and the rule
//! that made it, the HTTP status and the duration — and one per user connecting to a route's
//! backend or their connection ending (`event`). Never a token, and never a call's arguments.
//!
//! Lines go to their own file (appended) or to stdout, apart from the log, in batches as the access
//! log does ([`crate::telemetry::log_writer`]): a request does not wait for the disk. A line is written within
//! 100 ms, and what waits is written out when the gateway stops; a crash loses at most that.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use crate::telemetry::log_writer::{LogWriter, Sink};

pub(crate) struct AuditLog {
    writer: LogWriter,
}

/// One decision, as written.
#[derive(Serialize)]
pub(crate) struct AuditLine<'a> {
    pub request_id: &'a str,
    pub route: &'a str,
    pub user: &'a str,
    pub client_id: &'a str,
    pub method: &'a str,
    /// "tool", "resource" or "prompt"; absent for a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'a str>,
    /// The tool's or prompt's name, or the resource's URI.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub name: &'a str,
    /// "allow", "deny" or "step_up".
    pub decision: &'a str,
    /// The rule's name, "default", or "filtered" for a list.
    pub rule: &'a str,
    /// For a list: how many items the caller was not shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<usize>,
    pub status: u16,
    pub duration_ms: f64,
}

/// A user's connection to a route's backend made or ended ([`crate::connections`]).
#[derive(Serialize)]
pub(crate) struct ConnectionLine<'a> {
    /// "connected" or "disconnected".
    pub event: &'a str,
    pub route: &'a str,
    pub user: &'a str,
    /// The backend's authorization server.
    pub issuer: &'a str,
    /// Why it ended: "user", "operator", "refresh_refused", "server_changed", "token_refused",
    /// "more_scope", "expired", "key_changed".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

#[derive(Serialize)]
struct Stamped<'a, L> {
    time: String,
    #[serde(flatten)]
    line: &'a L,
}

impl AuditLog {
    /// Opens the trail at `file` (created if need be, and appended to), or on stdout.
    pub(crate) fn open(file: Option<&Path>) -> io::Result<Self> {
        let sink = match file {
            None => Sink::Stdout,
            Some(path) => Sink::File(OpenOptions::new().create(true).append(true).open(path)?),
        };
        Ok(Self {
            writer: LogWriter::start_to(sink),
        })
    }

    /// Writes out what waits (before the process exits).
    pub(crate) fn flush(&self) {
        self.writer.flush();
    }

    /// Adds one line. A failed write is reported in the log; the request it records is done.
    pub(crate) fn write(&self, line: &impl Serialize) {
        let stamped = Stamped {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            line,
        };
        let mut bytes = serde_json::to_vec(&stamped).expect("JSON");
        bytes.push(b'\n');
        self.writer.write_batched(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_decision_is_one_json_line_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, "earlier\n").unwrap();
        let log = AuditLog::open(Some(&path)).unwrap();
        let line = AuditLine {
            request_id: "r1",
            route: "/mcp",
            user: "ada",
            client_id: "c1",
            method: "tools/call",
            kind: Some("tool"),
            name: "delete_repo",
            decision: "deny",
            rule: "default",
            hidden: None,
            status: 200,
            duration_ms: 1.5,
        };
        log.write(&line);
        log.write(&AuditLine {
            method: "tools/list",
            kind: None,
            name: "",
            decision: "allow",
            rule: "filtered",
            hidden: Some(3),
            ..line
        });
        log.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "earlier");
        let first: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(first["name"], "delete_repo");
        assert_eq!(first["decision"], "deny");
        assert!(first["time"].as_str().unwrap().ends_with('Z'));
        assert!(first.get("hidden").is_none());
        let second: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(second["hidden"], 3);
        assert!(second.get("name").is_none() && second.get("kind").is_none());
    }

    #[test]
    fn a_connection_ended_is_a_line_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(Some(&path)).unwrap();
        log.write(&ConnectionLine {
            event: "disconnected",
            route: "/tracker",
            user: "ada",
            issuer: "https://as.example",
            reason: Some("operator"),
        });
        log.flush();
        let line: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
        assert_eq!(line["event"], "disconnected");
        assert_eq!(line["reason"], "operator");
        assert!(line["time"].as_str().unwrap().ends_with('Z'));
        assert!(line.get("decision").is_none());
    }
}
