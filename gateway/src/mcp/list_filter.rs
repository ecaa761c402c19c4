//! Lists on a route with a policy, cut down to what the caller may use (and what a step-up would let
//! them use, so that they can find it), and marked `cacheScope: "private"`: the list is the caller's.
//!
//! Answers are recognised by their shape — a JSON-RPC result holding `tools`, `resources`,
//! `resourceTemplates` or `prompts` — not by their id, which the client chooses (`1.0` is not `1`
//! to a JSON library, and a batch may repeat one). The filter runs on the answer to any POST that
//! asked for a list, and on every GET stream, where a resumed stream may replay one. A JSON answer
//! is held whole and rewritten; on an SSE stream each event that holds a result is rewritten when it
//! is complete, and every other event — progress, requests to the client,
//! `notifications/tools/list_changed` — passes as it came.
//!
//! What it cannot read is not passed on: an answer in another content type or encoding, JSON that
//! does not parse, or more than it holds becomes a JSON-RPC error for each list asked; an SSE event
//! holding a result it cannot read, or one cut off by the end of the stream, is dropped.

use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use serde_json::Value;

use super::key_folding::fold;
use crate::config::Kind;

/// The most of an answer, or of one SSE event, held to filter it.
const MAX_HELD: usize = 16 * 1024 * 1024;

/// The fields of a result that are lists: the key their items are named by, and their kind.
const LISTS: &[(&str, &str, Kind)] = &[
    ("tools", "name", Kind::Tool),
    ("resources", "uri", Kind::Resource),
    ("resourceTemplates", "uriTemplate", Kind::Resource),
    ("prompts", "name", Kind::Prompt),
];

pub(crate) struct ListFilter {
    /// The ids of the lists the request asked for, for the errors that replace what cannot be read
    /// (none for a GET stream).
    asked: Vec<Value>,
    mode: Mode,
    held: BytesMut,
    /// How far `held` was searched for the end of an event: the start of its last, unfinished line.
    searched: usize,
    /// Items taken out of the lists, for the audit trail.
    pub hidden: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A JSON answer, held whole.
    Json,
    /// An SSE stream, event by event.
    Sse,
    /// An answer that holds no list (no body, or an error status with one of another type).
    Pass,
    /// An answer it cannot read: replaced by the errors, the rest dropped.
    Unreadable,
    /// Replaced or given up on: the rest is dropped.
    Dropped,
}

impl ListFilter {
    /// A filter of the answer to a request that asked for the lists `asked` (by id; none for a GET
    /// stream).
    pub(crate) fn new(asked: Vec<Value>) -> Self {
        Self {
            asked,
            mode: Mode::Pass,
            held: BytesMut::new(),
            searched: 0,
            hidden: 0,
        }
    }

    /// Looks at the backend's response header: the answer is held or streamed by its type, and
    /// loses its length, which filtering changes.
    pub(crate) fn start(&mut self, response: &mut ResponseHeader) -> pingora::Result<()> {
        let header = |name| {
            response
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        };
        let content_type = header(http::header::CONTENT_TYPE);
        let encoding = header(http::header::CONTENT_ENCODING);
        let has_body =
            response.status.is_success() && response.status != http::StatusCode::ACCEPTED;
        self.mode = if !(encoding.is_empty() || encoding == "identity") {
            Mode::Unreadable
        } else if content_type.starts_with("text/event-stream") {
            Mode::Sse
        } else if content_type.starts_with("application/json") {
            Mode::Json
        } else if has_body && !self.asked.is_empty() {
            Mode::Unreadable
        } else {
            Mode::Pass
        };
        match self.mode {
            Mode::Pass | Mode::Dropped => {}
            Mode::Sse => {
                response.remove_header(&http::header::CONTENT_LENGTH);
            }
            Mode::Json | Mode::Unreadable => {
                response.remove_header(&http::header::CONTENT_LENGTH);
                response.remove_header(&http::header::CONTENT_ENCODING);
                response.insert_header(http::header::CONTENT_TYPE, "application/json")?;
                response.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
            }
        }
        Ok(())
    }

    /// Filters a chunk of the body; `allowed` says whether the caller may see an item.
    pub(crate) fn filter(
        &mut self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        allowed: &dyn Fn(Kind, &str) -> bool,
    ) {
        if self.mode == Mode::Pass {
            return;
        }
        let chunk = body.take().unwrap_or_default();
        let out = match self.mode {
            Mode::Pass | Mode::Dropped => Bytes::new(),
            Mode::Unreadable => self.give_up(),
            Mode::Json if self.held.len() + chunk.len() > MAX_HELD => self.give_up(),
            Mode::Json => {
                self.held.extend_from_slice(&chunk);
                if end_of_stream {
                    let held = std::mem::take(&mut self.held).freeze();
                    match self.rewrite_json(&held, allowed) {
                        Some(rewritten) => rewritten,
                        None => self.give_up(),
                    }
                } else {
                    Bytes::new()
                }
            }
            Mode::Sse => self.events(&chunk, allowed),
        };
        *body = Some(out);
    }

    /// The errors in place of what cannot be read; nothing after them.
    fn give_up(&mut self) -> Bytes {
        self.mode = Mode::Dropped;
        self.held = BytesMut::new();
        let errors: Vec<Value> = self
            .asked
            .iter()
            .map(|id| {
                serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603,
                    "message": "The gateway could not read the backend's answer to filter it"}})
            })
            .collect();
        let body = match errors.as_slice() {
            [] => return Bytes::new(),
            [one] => one.clone(),
            _ => Value::Array(errors),
        };
        Bytes::from(serde_json::to_vec(&body).expect("JSON"))
    }

    /// A whole JSON answer, one response or a batch's array, filtered; `None` if it is not JSON.
    fn rewrite_json(
        &mut self,
        held: &Bytes,
        allowed: &dyn Fn(Kind, &str) -> bool,
    ) -> Option<Bytes> {
        let mut value: Value = serde_json::from_slice(held).ok()?;
        Some(if self.filter_value(&mut value, allowed) {
            Bytes::from(serde_json::to_vec(&value).expect("JSON"))
        } else {
            held.clone()
        })
    }

    /// The complete events of the stream so far, each filtered.
    fn events(&mut self, chunk: &[u8], allowed: &dyn Fn(Kind, &str) -> bool) -> Bytes {
        self.held.extend_from_slice(chunk);
        let mut out = BytesMut::new();
        loop {
            match event_end(&self.held, self.searched) {
                Ok(end) => {
                    let event = self.held.split_to(end).freeze();
                    self.searched = 0;
                    out.extend_from_slice(&self.rewrite_event(event, allowed));
                }
                Err(searched) => {
                    self.searched = searched;
                    break;
                }
            }
        }
        if self.held.len() > MAX_HELD {
            // One event larger than any list: dropped, and the stream after it.
            self.mode = Mode::Dropped;
            self.held = BytesMut::new();
        }
        out.freeze()
    }

    /// An SSE event (with its blank line), its data rewritten when it holds a list. Only an event
    /// that may hold a result is parsed.
    fn rewrite_event(&mut self, event: Bytes, allowed: &dyn Fn(Kind, &str) -> bool) -> Bytes {
        if !may_hold_result(&event) {
            return event;
        }
        let Ok(text) = std::str::from_utf8(&event) else {
            return Bytes::new();
        };
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        let mut data = String::new();
        let mut others: Vec<&str> = Vec::new();
        for line in text.lines() {
            if let Some(value) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value.strip_prefix(' ').unwrap_or(value));
            } else if !line.is_empty() {
                others.push(line);
            }
        }
        let Ok(mut message) = serde_json::from_str::<Value>(&data) else {
            // A result the filter cannot read may be a list: not passed on.
            return Bytes::new();
        };
        if !self.filter_value(&mut message, allowed) {
            return event;
        }
        let mut out = String::with_capacity(event.len());
        for line in others {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str("data: ");
        out.push_str(&serde_json::to_string(&message).expect("JSON"));
        out.push_str("\n\n");
        Bytes::from(out)
    }

    /// Filters the lists of one JSON-RPC message, or of each in a batch; whether any was found.
    fn filter_value(&mut self, value: &mut Value, allowed: &dyn Fn(Kind, &str) -> bool) -> bool {
        match value {
            Value::Array(items) => items.iter_mut().fold(false, |found, item| {
                self.filter_value(item, allowed) | found
            }),
            // Keys are matched as a client that folds them would read them (Go's
            // `encoding/json`): a `Result` or a `Tools` is filtered as `result` and `tools` are.
            Value::Object(message) => {
                let mut found = false;
                for (key, result) in message.iter_mut() {
                    let Value::Object(result) = result else {
                        continue;
                    };
                    if fold(key) != "result" {
                        continue;
                    }
                    let mut lists = false;
                    for (field, items) in result.iter_mut() {
                        let folded = fold(field);
                        let Some((_, key, kind)) = LISTS.iter().find(|(f, ..)| fold(f) == folded)
                        else {
                            continue;
                        };
                        lists = true;
                        match items {
                            Value::Array(items) => {
                                let before = items.len();
                                items.retain(|item| shown(item, key, *kind, allowed));
                                self.hidden += before - items.len();
                            }
                            // A list that is not one is no list to show.
                            other => *other = Value::Array(Vec::new()),
                        }
                    }
                    if lists {
                        result.insert("cacheScope".into(), Value::from("private"));
                    }
                    found |= lists;
                }
                found
            }
            _ => false,
        }
    }
}

/// Whether an event may hold a key a client reads as `result`: one that spells it in any case, or
/// could spell it otherwise (an escape, a character outside ASCII such as `ſ`).
fn may_hold_result(event: &[u8]) -> bool {
    event.windows(6).any(|w| w.eq_ignore_ascii_case(b"result"))
        || event.windows(2).any(|w| w == b"\\u")
        || !event.is_ascii()
}

/// Whether the caller is shown a list's `item`, named by its `key`: an item named one way only
/// (no other key a client could read as its name), that the caller may use.
fn shown(item: &Value, key: &str, kind: Kind, allowed: &dyn Fn(Kind, &str) -> bool) -> bool {
    let Value::Object(fields) = item else {
        return false;
    };
    let name_keys = fields.keys().filter(|k| fold(k) == fold(key)).count();
    name_keys == 1
        && fields
            .get(key)
            .and_then(Value::as_str)
            .is_some_and(|name| allowed(kind, name))
}

/// Where the first complete SSE event in `buffer` ends (after its blank line; lines end in CRLF,
/// LF or CR), searching from `from`, the start of a line; else where the search may resume.
fn event_end(buffer: &[u8], from: usize) -> Result<usize, usize> {
    let mut line_start = from;
    let mut i = from;
    while i < buffer.len() {
        let end = match buffer[i] {
            b'\n' => i + 1,
            b'\r' => match buffer.get(i + 1) {
                Some(b'\n') => i + 2,
                Some(_) => i + 1,
                // A CR last: an LF may follow in the next chunk.
                None => return Err(line_start),
            },
            _ => {
                i += 1;
                continue;
            }
        };
        if i == line_start {
            return Ok(end);
        }
        line_start = end;
        i = end;
    }
    Err(line_start)
}

#[cfg(test)]
#[path = "list_filter_tests.rs"]
mod tests;
