//! The MCP protocol as the gateway reads it, apart from Pingora:
//! - a POST's JSON-RPC messages, one model read one way only ([`message`], with object keys as other
//!   parsers fold them in [`key_folding`]): the inspection decides on them, the list filter takes
//!   their ids, and the [`peek`] labels a body with them when it is not read first;
//! - the `Mcp-Method` and `Mcp-Name` headers checked against the body ([`headers`]);
//! - list answers filtered per caller ([`list_filter`]);
//! - the MCP header names, defined here once.

pub(crate) mod headers;
pub(crate) mod key_folding;
pub(crate) mod list_filter;
pub(crate) mod message;
pub(crate) mod peek;

use http::HeaderName;

// The MCP headers the gateway reads or sets, parsed once: a lookup by `&str` parses the name on
// every request.
/// `Mcp-Session-Id`: the session a request belongs to.
pub(crate) const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// `MCP-Protocol-Version`: the version the client and server agreed on.
pub(crate) const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// `Mcp-Method`: a POST's JSON-RPC method, in a header (2026-07-28 and later).
pub(crate) const METHOD: HeaderName = HeaderName::from_static("mcp-method");
/// `Mcp-Name`: the tool, prompt or resource a POST names, in a header.
pub(crate) const NAME: HeaderName = HeaderName::from_static("mcp-name");
/// The prefix of the headers that carry a tool's parameters (`Mcp-Param-<name>`).
pub(crate) const PARAM_PREFIX: &str = "mcp-param-";
