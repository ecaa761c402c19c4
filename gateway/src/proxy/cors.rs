//! CORS for browser-based clients such as MCP Inspector: discovery documents, and the authorization
//! server's endpoints that browsers call with `fetch` (one preflight answer for both), are readable
//! from any origin; MCP routes only from allowed origins, with the headers MCP needs exposed.

use http::{HeaderMap, HeaderName, header};

use crate::mcp;

use super::respond::Headers;

/// Request headers a browser may send on an MCP route.
const MCP_REQUEST_HEADERS: [HeaderName; 8] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::ACCEPT,
    mcp::SESSION_ID,
    mcp::PROTOCOL_VERSION,
    HeaderName::from_static("last-event-id"),
    mcp::METHOD,
    mcp::NAME,
];
const MCP_EXPOSED_HEADERS: &str = "Mcp-Session-Id, WWW-Authenticate, MCP-Protocol-Version";
const DOCUMENT_ALLOWED_HEADERS: &str = "Authorization, Content-Type, MCP-Protocol-Version";

/// The `Origin` header, if the request has exactly one.
pub(super) fn origin(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
}

/// Whether an `Origin` value is on the list (exact, after lowercasing scheme and host).
pub(super) fn is_allowed(origin: &str, allowed: &[String]) -> bool {
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    allowed.contains(&origin)
}

/// The request headers a preflight may be granted on an MCP route: the standard ones and any
/// `Mcp-Param-*`. `None` if it asks for something else.
fn mcp_preflight_headers(headers: &HeaderMap) -> Option<String> {
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
        if MCP_REQUEST_HEADERS.iter().any(|h| h == name.as_str())
            || name.starts_with(mcp::PARAM_PREFIX)
        {
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

/// The CORS headers of a response on an MCP route to a request from the allowed `origin`.
pub(super) fn route_headers(origin: Option<&str>) -> Headers {
    match origin {
        Some(origin) => vec![
            ("access-control-allow-origin", origin.to_owned()),
            (
                "access-control-expose-headers",
                MCP_EXPOSED_HEADERS.to_owned(),
            ),
            ("vary", "Origin".to_owned()),
        ],
        None => Vec::new(),
    }
}

/// The answer to a preflight on an MCP route: from an allowed `origin`, the methods and the headers
/// it asked for (`None` if it asked for one MCP does not use); with no `Origin`, just `Allow`.
pub(super) fn route_preflight(origin: Option<&str>, request: &HeaderMap) -> Option<Headers> {
    let Some(origin) = origin else {
        return Some(vec![("allow", "GET, POST, DELETE, OPTIONS".into())]);
    };
    let allowed_headers = mcp_preflight_headers(request)?;
    let mut headers = route_headers(Some(origin));
    headers.push((
        "access-control-allow-methods",
        "GET, POST, DELETE, OPTIONS".into(),
    ));
    headers.push(("access-control-allow-headers", allowed_headers));
    headers.push(("access-control-max-age", "600".into()));
    Some(headers)
}

/// The answer to a preflight for what any origin may call with `methods`: the public documents
/// (metadata, JWKS: `GET, HEAD, OPTIONS`) and the authorization server endpoints browsers call
/// (`POST, OPTIONS`).
pub(super) fn any_origin_preflight(methods: &str) -> Headers {
    vec![
        ("access-control-allow-origin", "*".into()),
        ("access-control-allow-methods", methods.into()),
        (
            "access-control-allow-headers",
            DOCUMENT_ALLOWED_HEADERS.into(),
        ),
        ("access-control-max-age", "86400".into()),
    ]
}
