//! Which MCP method (and tool) a request carries: from the `Mcp-Method` / `Mcp-Name` headers when the
//! client sends them, else from a bounded copy of the start of the JSON-RPC body. The copy is taken
//! as chunks pass through; the forward never waits for it.

use serde::Deserialize;

/// The most of a body kept for this.
const MAX_PEEK: usize = 64 * 1024;

#[derive(Debug, Default)]
pub struct McpPeek {
    pub method: Option<String>,
    pub tool: Option<String>,
    buffer: Vec<u8>,
    done: bool,
}

#[derive(Deserialize)]
struct Message {
    method: Option<String>,
    params: Option<Params>,
}

#[derive(Deserialize)]
struct Params {
    name: Option<String>,
}

impl McpPeek {
    /// Takes what the headers say; if they name the method, the body need not be read.
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        // Parsed names: a lookup by `&str` parses the name on every request.
        const METHOD: http::HeaderName = http::HeaderName::from_static("mcp-method");
        const NAME: http::HeaderName = http::HeaderName::from_static("mcp-name");
        let get = |name: &http::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let method = get(&METHOD);
        let tool = get(&NAME);
        let done = method.is_some();
        Self {
            method,
            tool,
            buffer: Vec::new(),
            done,
        }
    }

    /// Feeds a body chunk; parses once the body ends or the buffer is full.
    pub fn feed(&mut self, chunk: Option<&[u8]>, end_of_stream: bool) {
        if self.done {
            return;
        }
        if let Some(chunk) = chunk {
            let room = MAX_PEEK - self.buffer.len();
            self.buffer
                .extend_from_slice(&chunk[..chunk.len().min(room)]);
            if chunk.len() > room {
                // Too long to parse whole: leave it unlabelled rather than guess.
                self.done = true;
                self.buffer = Vec::new();
                return;
            }
        }
        if end_of_stream {
            self.done = true;
            if let Ok(message) = serde_json::from_slice::<Message>(&self.buffer) {
                self.method = message.method;
                if self.method.as_deref() == Some("tools/call") {
                    self.tool = message.params.and_then(|p| p.name);
                }
            }
            self.buffer = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_and_tool_come_from_the_body_in_pieces() {
        let mut peek = McpPeek::default();
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
        peek.feed(Some(&body[..10]), false);
        peek.feed(Some(&body[10..]), false);
        peek.feed(None, true);
        assert_eq!(peek.method.as_deref(), Some("tools/call"));
        assert_eq!(peek.tool.as_deref(), Some("echo"));
    }

    #[test]
    fn headers_win_and_oversize_bodies_are_left_alone() {
        let mut headers = http::HeaderMap::new();
        headers.insert("mcp-method", "tools/list".parse().unwrap());
        let peek = McpPeek::from_headers(&headers);
        assert_eq!(peek.method.as_deref(), Some("tools/list"));

        let mut peek = McpPeek::default();
        peek.feed(Some(&vec![b' '; MAX_PEEK + 1]), true);
        assert_eq!(peek.method, None);
    }
}
