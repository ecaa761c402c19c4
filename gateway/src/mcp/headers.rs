//! The 2026-07-28 headers `Mcp-Method` and `Mcp-Name`: when a POST must send them, and the check
//! that they say what its body says ([`super::message`]), so that a proxy deciding on the headers
//! and a backend reading the body see one request.

use std::borrow::Cow;

use base64::Engine as _;

use super::message::Messages;
use super::{METHOD as MCP_METHOD, NAME as MCP_NAME, PROTOCOL_VERSION};

/// Why the headers and the body disagree: the `-32020` error's message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Mismatch(pub String);

/// Checks `Mcp-Method` and `Mcp-Name`, where present, against the body (one message: 2026-07-28
/// has no batches). A method that names something needs `Mcp-Name` once `Mcp-Method` is sent.
pub(crate) fn check_headers(headers: &http::HeaderMap, body: &Messages) -> Result<(), Mismatch> {
    let method_header = one(headers, &MCP_METHOD)?;
    let name_header = one(headers, &MCP_NAME)?;
    if method_header.is_none() && name_header.is_none() {
        return Ok(());
    }
    let (false, [message]) = (body.batch, body.messages.as_slice()) else {
        return Err(Mismatch(
            "Header mismatch: Mcp-Method and Mcp-Name describe one message, not a batch".into(),
        ));
    };
    let method = message.method.as_deref().unwrap_or_default();
    if let Some(header) = method_header
        && header != method.as_bytes()
    {
        return Err(Mismatch(format!(
            "Header mismatch: Mcp-Method header value '{}' does not match body value '{}'",
            shown(header),
            shown(method.as_bytes())
        )));
    }
    // What `Mcp-Name` names: required for these three, compared wherever a method names something
    // (`resources/subscribe`, say, where a client following later drafts sends it).
    let required = matches!(method, "tools/call" | "resources/read" | "prompts/get");
    let body_name = message.target.as_ref().map(|(_, name)| name.as_ref());
    match (name_header, body_name) {
        (None, None) => Ok(()),
        (None, Some(_)) if !required => Ok(()),
        (None, Some(_)) => Err(Mismatch(format!(
            "Header mismatch: Mcp-Name header is required for {method}"
        ))),
        (Some(header), body_name) => {
            let decoded = decode(header).ok_or_else(|| {
                Mismatch("Header mismatch: Mcp-Name header value is not valid Base64".into())
            })?;
            if Some(decoded.as_ref()) == body_name.map(str::as_bytes) {
                Ok(())
            } else {
                Err(Mismatch(format!(
                    "Header mismatch: Mcp-Name header value '{}' does not match body value '{}'",
                    shown(&decoded),
                    shown(body_name.unwrap_or_default().as_bytes())
                )))
            }
        }
    }
}

/// Whether a POST's protocol version requires `Mcp-Method` (2026-07-28 and later; versions are
/// dates, compared as text once they have a date's shape).
pub(crate) fn requires_method_header(headers: &http::HeaderMap) -> bool {
    let Some(version) = headers
        .get(&PROTOCOL_VERSION)
        .map(http::HeaderValue::as_bytes)
    else {
        return false;
    };
    let dated = version.len() == 10
        && version.iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    dated && version >= b"2026-07-28".as_slice()
}

/// The one value of `name`; sent twice is a mismatch in itself.
fn one<'h>(
    headers: &'h http::HeaderMap,
    name: &http::HeaderName,
) -> Result<Option<&'h [u8]>, Mismatch> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(Mismatch(format!(
            "Header mismatch: {name} header sent twice"
        )));
    }
    Ok(first.map(http::HeaderValue::as_bytes))
}

/// A header value, with the `=?base64?…?=` form undone (2026-07-28: names that are not plain
/// ASCII header text travel so).
fn decode(value: &[u8]) -> Option<Cow<'_, [u8]>> {
    match value
        .strip_prefix(b"=?base64?")
        .and_then(|v| v.strip_suffix(b"?="))
    {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .map(Cow::Owned),
        None => Some(Cow::Borrowed(value)),
    }
}

/// A value as the error shows it: bounded, and without quotes that would end it.
fn shown(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut shown: String = text.chars().take(100).filter(|c| *c != '\'').collect();
    if text.chars().count() > 100 {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
