//! Which MCP method (and tool) a request carries: from the `Mcp-Method` / `Mcp-Name` headers when the
//! client sends them, else from a bounded copy of the start of the JSON-RPC body, read by the one
//! reader of messages ([`super::message`]). The copy is taken as chunks pass through; the forward
//! never waits for it.

use std::borrow::Cow;

/// The most of a body kept for this.
const MAX_PEEK: usize = 64 * 1024;

#[derive(Debug, Default)]
pub(crate) struct McpPeek {
    /// Borrowed for the methods MCP defines (see [`crate::telemetry::metrics::mcp_method_label`]).
    pub method: Option<Cow<'static, str>>,
    pub tool: Option<String>,
    buffer: Vec<u8>,
    done: bool,
}

impl McpPeek {
    /// Takes what the headers say; if they name the method, the body need not be read.
    pub(crate) fn from_headers(headers: &http::HeaderMap) -> Self {
        let get = |name: &http::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let method = get(&super::METHOD).map(Cow::Owned);
        let tool = get(&super::NAME);
        let done = method.is_some();
        Self {
            method,
            tool,
            buffer: Vec::new(),
            done,
        }
    }

    /// What a body read whole says: its first message's method, and tool.
    pub(crate) fn known(messages: &super::message::Messages) -> Self {
        Self::of(messages.messages.first())
    }

    fn of(first: Option<&super::message::Message>) -> Self {
        let method = first.and_then(|m| m.method.as_deref()).map(known_method);
        let tool = first
            .and_then(|m| m.target())
            .filter(|t| t.kind == crate::config::Kind::Tool)
            .map(|t| t.name.to_owned());
        Self {
            method,
            tool,
            buffer: Vec::new(),
            done: true,
        }
    }

    /// Feeds a body chunk; parses once the body ends or the buffer is full.
    pub(crate) fn feed(&mut self, chunk: Option<&[u8]>, end_of_stream: bool) {
        if self.done {
            return;
        }
        let chunk = chunk.unwrap_or_default();
        if end_of_stream && self.buffer.is_empty() && chunk.len() <= MAX_PEEK {
            // The whole body in one chunk, the usual case: parsed where it lies, without a copy.
            self.done = true;
            self.parse(chunk);
            return;
        }
        let room = MAX_PEEK - self.buffer.len();
        if chunk.len() > room {
            // Too long to parse whole: leave it unlabelled rather than guess.
            self.done = true;
            self.buffer = Vec::new();
            return;
        }
        self.buffer.extend_from_slice(chunk);
        if end_of_stream {
            self.done = true;
            let buffer = std::mem::take(&mut self.buffer);
            self.parse(&buffer);
        }
    }

    /// Read as the inspection reads a body ([`super::message::first`]): a body it would refuse as
    /// unreadable or ambiguous is left unlabelled; a batch is labelled by its first message.
    fn parse(&mut self, body: &[u8]) {
        if let Ok(first) = super::message::first(body) {
            *self = Self::of(Some(&first));
        }
    }
}

/// A method as kept: the label's own text when MCP defines it, which costs no allocation.
fn known_method(method: &str) -> Cow<'static, str> {
    match crate::telemetry::metrics::mcp_method_label(method) {
        "other" => Cow::Owned(method.to_owned()),
        known => Cow::Borrowed(known),
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
        let mut peek = McpPeek::default();
        peek.feed(Some(br#"{"method":"tools/list","#), false);
        peek.feed(Some(&vec![b' '; MAX_PEEK]), false);
        peek.feed(Some(br#""id":1}"#), true);
        assert_eq!(peek.method, None);
    }

    #[test]
    fn a_whole_body_in_one_chunk_is_read_and_escapes_are_undone() {
        let mut peek = McpPeek::default();
        let body = br#"{"method":"tools\/call","params":{"name":"ech\u006f"},"id":1}"#;
        peek.feed(Some(body), true);
        assert_eq!(peek.method.as_deref(), Some("tools/call"));
        assert_eq!(peek.tool.as_deref(), Some("echo"));

        // A batch is labelled by its first message.
        let mut peek = McpPeek::default();
        peek.feed(
            Some(br#"[{"method":"tools/call","params":{"name":"a"}},{"method":"ping"}]"#),
            true,
        );
        assert_eq!(peek.method.as_deref(), Some("tools/call"));
        assert_eq!(peek.tool.as_deref(), Some("a"));

        // Not JSON-RPC, not a tool call, or a body the inspection would refuse as ambiguous: no tool.
        for body in [
            &br#"{"method":"tools/list","params":{"name":"x"}}"#[..],
            b"not json",
            br#"{"method":"tools/call","params":{"name":"x","Name":"y"}}"#,
            br#"{"method":"tools/call","METHOD":"x","params":{"name":"x"}}"#,
        ] {
            let mut peek = McpPeek::default();
            peek.feed(Some(body), true);
            assert_eq!(peek.tool, None);
        }
    }
}
