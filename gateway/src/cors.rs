//! CORS for browser-based clients such as MCP Inspector: discovery documents are readable from any
//! origin; MCP routes only from allowed origins, with the headers MCP needs exposed.

use http::HeaderMap;

/// Request headers a browser may send on an MCP route.
const MCP_REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "mcp-method",
    "mcp-name",
];
pub const MCP_EXPOSED_HEADERS: &str = "Mcp-Session-Id, WWW-Authenticate, MCP-Protocol-Version";
pub const DOCUMENT_ALLOWED_HEADERS: &str = "Authorization, Content-Type, MCP-Protocol-Version";

/// The `Origin` header, if the request has exactly one.
pub fn origin(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
}

/// Whether an `Origin` value is on the list (exact, after lowercasing scheme and host).
pub fn is_allowed(origin: &str, allowed: &[String]) -> bool {
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    allowed.contains(&origin)
}

/// The request headers a preflight may be granted on an MCP route: the standard ones and any
/// `Mcp-Param-*`. `None` if it asks for something else.
pub fn mcp_preflight_headers(headers: &HeaderMap) -> Option<String> {
    let requested = headers
        .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut granted = Vec::new();
    for name in requested
        .split(',')
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
    {
        if MCP_REQUEST_HEADERS.contains(&name.as_str()) || name.starts_with("mcp-param-") {
            granted.push(name);
        } else {
            return None;
        }
    }
    if granted.is_empty() {
        granted.extend(MCP_REQUEST_HEADERS.iter().map(|h| h.to_string()));
    }
    Some(granted.join(", "))
}
