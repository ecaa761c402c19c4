//! The answers to `tools/list`, `resources/list`, `resources/templates/list` and `prompts/list` on a
//! route with a policy, cut down to what the caller may use (and what a step-up would let them
//! use, so that they can find it), and marked `cacheScope: "private"`: the list is the caller's.
//!
//! The backend answers in JSON (held whole, then rewritten) or on an SSE stream (each event that
//! answers a list is rewritten when it is complete; every other event — progress, requests to the
//! client, `notifications/tools/list_changed` — passes as it came). Answers are recognised by the
//! ids of the list requests; once all are answered the rest of the stream passes untouched.

use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use serde_json::Value;

use crate::config::Kind;

/// The most of a JSON answer held to filter it; a larger one is replaced by an error.
const MAX_HELD: usize = 16 * 1024 * 1024;

pub struct ListFilter {
    /// The list requests not yet answered, by id.
    waiting: Vec<(Value, Kind)>,
    mode: Mode,
    held: BytesMut,
    /// Items taken out of the lists, for the audit trail.
    pub hidden: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Json,
    Sse,
    Pass,
}

impl ListFilter {
    pub fn new(waiting: Vec<(Value, Kind)>) -> Self {
        Self {
            waiting,
            mode: Mode::Pass,
            held: BytesMut::new(),
            hidden: 0,
        }
    }

    /// Looks at the backend's response header: a JSON answer loses its length, which filtering
    /// changes.
    pub fn start(&mut self, response: &mut ResponseHeader) -> pingora::Result<()> {
        let content_type = response
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim_start()
            .to_ascii_lowercase();
        self.mode = if content_type.starts_with("application/json") {
            response.remove_header(&http::header::CONTENT_LENGTH);
            response.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
            Mode::Json
        } else if content_type.starts_with("text/event-stream") {
            Mode::Sse
        } else {
            Mode::Pass
        };
        Ok(())
    }

    /// Filters a chunk of the body; `allowed` says whether the caller may see an item.
    pub fn filter(
        &mut self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        allowed: &dyn Fn(Kind, &str) -> bool,
    ) {
        match self.mode {
            Mode::Pass => {}
            Mode::Json => {
                if let Some(chunk) = body.take() {
                    if self.held.len() + chunk.len() > MAX_HELD {
                        self.mode = Mode::Pass;
                        self.held = BytesMut::new();
                        *body = Some(too_large(&self.waiting));
                        return;
                    }
                    self.held.extend_from_slice(&chunk);
                }
                if end_of_stream {
                    let held = std::mem::take(&mut self.held).freeze();
                    *body = Some(self.rewrite_json(held, allowed));
                } else {
                    *body = Some(Bytes::new());
                }
            }
            Mode::Sse => {
                if let Some(chunk) = body.take() {
                    self.held.extend_from_slice(&chunk);
                }
                let mut out = BytesMut::new();
                while let Some(end) = event_end(&self.held) {
                    let event = self.held.split_to(end).freeze();
                    out.extend_from_slice(&self.rewrite_event(event, allowed));
                    if self.waiting.is_empty() {
                        // Every list is answered: the rest of the stream passes as it comes.
                        self.mode = Mode::Pass;
                        break;
                    }
                }
                if self.mode == Mode::Pass || end_of_stream {
                    out.extend_from_slice(&std::mem::take(&mut self.held));
                }
                *body = Some(out.freeze());
            }
        }
    }

    /// A whole JSON answer, one response or a batch's array, filtered.
    fn rewrite_json(&mut self, held: Bytes, allowed: &dyn Fn(Kind, &str) -> bool) -> Bytes {
        let Ok(mut value) = serde_json::from_slice::<Value>(&held) else {
            return held;
        };
        let changed = match &mut value {
            Value::Array(items) => items.iter_mut().fold(false, |changed, item| {
                self.filter_message(item, allowed) | changed
            }),
            one => self.filter_message(one, allowed),
        };
        if changed {
            Bytes::from(serde_json::to_vec(&value).expect("JSON"))
        } else {
            held
        }
    }

    /// An SSE event (with its blank line), its data rewritten when it answers a list.
    fn rewrite_event(&mut self, event: Bytes, allowed: &dyn Fn(Kind, &str) -> bool) -> Bytes {
        let Ok(text) = std::str::from_utf8(&event) else {
            return event;
        };
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
            return event;
        };
        if !self.filter_message(&mut message, allowed) {
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

    /// Filters one JSON-RPC message if it answers a list request; whether it did.
    fn filter_message(
        &mut self,
        message: &mut Value,
        allowed: &dyn Fn(Kind, &str) -> bool,
    ) -> bool {
        let Some(id) = message.get("id") else {
            return false;
        };
        let Some(at) = self.waiting.iter().position(|(waiting, _)| waiting == id) else {
            return false;
        };
        let (_, kind) = self.waiting.swap_remove(at);
        let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) else {
            // An error answer: nothing to filter.
            return false;
        };
        let lists: &[(&str, &str)] = match kind {
            Kind::Tool => &[("tools", "name")],
            Kind::Resource => &[("resources", "uri"), ("resourceTemplates", "uriTemplate")],
            Kind::Prompt => &[("prompts", "name")],
        };
        for (list, key) in lists {
            if let Some(Value::Array(items)) = result.get_mut(*list) {
                let before = items.len();
                items.retain(|item| {
                    item.get(*key)
                        .and_then(Value::as_str)
                        .is_some_and(|name| allowed(kind, name))
                });
                self.hidden += before - items.len();
            }
        }
        result.insert("cacheScope".into(), Value::from("private"));
        true
    }
}

/// Where the first complete SSE event in `buffer` ends (after its blank line).
fn event_end(buffer: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buffer.len() {
        match buffer[i] {
            b'\n' if buffer.get(i + 1) == Some(&b'\n') => return Some(i + 2),
            b'\n' if buffer.get(i + 1..i + 3) == Some(b"\r\n") => return Some(i + 3),
            b'\r' if buffer.get(i + 1..i + 4) == Some(b"\n\r\n") => return Some(i + 4),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The answer in place of a list too large to filter: an error for each list request.
fn too_large(waiting: &[(Value, Kind)]) -> Bytes {
    let errors: Vec<Value> = waiting
        .iter()
        .map(|(id, _)| {
            serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": "The list is too large for the gateway to filter"}})
        })
        .collect();
    let body = match errors.as_slice() {
        [one] => one.clone(),
        _ => Value::Array(errors),
    };
    Bytes::from(serde_json::to_vec(&body).expect("JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn only_get(kind: Kind, name: &str) -> bool {
        kind != Kind::Tool || name.starts_with("get_")
    }

    fn header(content_type: &str) -> ResponseHeader {
        let mut response = ResponseHeader::build(200, None).unwrap();
        response
            .insert_header("content-type", content_type)
            .unwrap();
        response.insert_header("content-length", "10").unwrap();
        response
    }

    fn run(filter: &mut ListFilter, chunks: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut body = Some(Bytes::copy_from_slice(chunk));
            filter.filter(&mut body, i + 1 == chunks.len(), &only_get);
            out.extend_from_slice(&body.unwrap_or_default());
        }
        out
    }

    #[test]
    fn a_json_list_keeps_what_the_caller_may_use_and_is_private() {
        let mut filter = ListFilter::new(vec![(json!(7), Kind::Tool)]);
        let mut response = header("application/json");
        filter.start(&mut response).unwrap();
        assert!(response.headers.get("content-length").is_none());
        let body = json!({"jsonrpc": "2.0", "id": 7, "result": {"tools": [
            {"name": "get_a", "inputSchema": {}}, {"name": "delete_b"}, {"title": "no name"}
        ], "nextCursor": "c"}})
        .to_string();
        let out = run(
            &mut filter,
            &[&body.as_bytes()[..20], &body.as_bytes()[20..]],
        );
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            out["result"]["tools"],
            json!([{"name": "get_a", "inputSchema": {}}])
        );
        assert_eq!(out["result"]["cacheScope"], "private");
        assert_eq!(out["result"]["nextCursor"], "c");
        assert_eq!(filter.hidden, 2);
    }

    #[test]
    fn an_sse_list_is_rewritten_and_other_events_pass_as_they_came() {
        let mut filter = ListFilter::new(vec![(json!("l"), Kind::Tool)]);
        filter.start(&mut header("text/event-stream")).unwrap();
        let progress = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n";
        let answer = json!({"jsonrpc": "2.0", "id": "l", "result": {"tools": [{"name": "get_a"}, {"name": "rm"}]}}).to_string();
        let answer = format!("id: 1\r\ndata: {answer}\r\n\r\n");
        let after = "data: {\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":{\"tools\":[{\"name\":\"rm\"}]}}\n\n";
        let stream = format!("{progress}{answer}{after}");
        let bytes = stream.as_bytes();
        // Cut anywhere: in the middle of an event, of a line ending.
        for cut in [5, progress.len() + 3, progress.len() + answer.len() - 1] {
            let mut filter = ListFilter::new(vec![(json!("l"), Kind::Tool)]);
            filter.start(&mut header("text/event-stream")).unwrap();
            let out = String::from_utf8(run(&mut filter, &[&bytes[..cut], &bytes[cut..]])).unwrap();
            assert!(out.starts_with(progress), "{out}");
            assert!(out.ends_with(after), "not an answer to a list: {out}");
            let rewritten = &out[progress.len()..out.len() - after.len()];
            assert!(rewritten.starts_with("id: 1\n"), "{rewritten}");
            let data: Value = serde_json::from_str(
                rewritten
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(data["result"]["tools"], json!([{"name": "get_a"}]));
            assert_eq!(data["result"]["cacheScope"], "private");
        }
        let _ = filter;
    }

    #[test]
    fn other_answers_and_errors_pass_unchanged() {
        let mut filter = ListFilter::new(vec![(json!(1), Kind::Resource)]);
        filter.start(&mut header("application/json")).unwrap();
        let error = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}}"#;
        assert_eq!(run(&mut filter, &[error]), error);
        let mut filter = ListFilter::new(vec![(json!(1), Kind::Tool)]);
        filter.start(&mut header("text/plain")).unwrap();
        assert_eq!(run(&mut filter, &[b"hello"]), b"hello");
    }
}
