//! The JSON-RPC messages of a request body read whole before it is forwarded: for each, its id, its
//! method and the named thing it uses (the tool of `tools/call`, the URI of `resources/read`, …),
//! which the route's policy decides on; and the check that the 2026-07-28 headers `Mcp-Method` and
//! `Mcp-Name` say what the body says.
//!
//! A field given twice (`"name"` twice in `params`) makes the body unreadable rather than letting
//! the policy read one copy and the backend another.

use std::borrow::Cow;

use base64::Engine as _;
use serde::Deserialize;

use crate::config::Kind;
use crate::policy::Target;

/// `Mcp-Method` and `Mcp-Name`, parsed once.
pub const MCP_METHOD: http::HeaderName = http::HeaderName::from_static("mcp-method");
pub const MCP_NAME: http::HeaderName = http::HeaderName::from_static("mcp-name");

/// One message of the body.
#[derive(Debug)]
pub struct Message<'a> {
    /// `None` for a notification (or a message without an id).
    pub id: Option<serde_json::Value>,
    pub method: Option<Cow<'a, str>>,
    pub target: Option<(Kind, Cow<'a, str>)>,
    /// `params._meta.traceparent`: the W3C trace context the message carries (MCP 2026-07-28).
    pub traceparent: Option<Cow<'a, str>>,
}

impl Message<'_> {
    pub fn target(&self) -> Option<Target<'_>> {
        self.target
            .as_ref()
            .map(|(kind, name)| Target { kind: *kind, name })
    }

    /// The list this message asks for, whose items a policy filters.
    pub fn list(&self) -> Option<Kind> {
        match self.method.as_deref()? {
            "tools/list" => Some(Kind::Tool),
            "resources/list" | "resources/templates/list" => Some(Kind::Resource),
            "prompts/list" => Some(Kind::Prompt),
            _ => None,
        }
    }
}

/// A body's messages: one, or a batch (JSON-RPC arrays, which MCP 2025-03-26 allows).
#[derive(Debug)]
pub struct Messages<'a> {
    pub batch: bool,
    pub messages: Vec<Message<'a>>,
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(default, deserialize_with = "present")]
    id: Option<serde_json::Value>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<Params<'a>>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uri: Option<Cow<'a, str>>,
    /// `completion/complete`'s reference to a prompt or a resource template.
    #[serde(borrow, rename = "ref")]
    reference: Option<Reference<'a>>,
    /// Read leniently: a `_meta` of any shape is the backend's business, never a reason to refuse.
    #[serde(default, rename = "_meta", deserialize_with = "traceparent_of")]
    meta: Option<String>,
}

/// `_meta.traceparent` when `_meta` is an object holding it as a string; else nothing.
fn traceparent_of<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let meta = serde_json::Value::deserialize(d)?;
    Ok(meta
        .get("traceparent")
        .and_then(|t| t.as_str())
        .map(str::to_owned))
}

#[derive(Deserialize)]
struct Reference<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uri: Option<Cow<'a, str>>,
}

/// `"id": null` is an id (of an error about an unreadable request), unlike no `id` at all.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// Reads the messages of `body`; `None` when it is not JSON-RPC that can be read unambiguously.
pub fn parse(body: &[u8]) -> Option<Messages<'_>> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    let (batch, wire) = if *first == b'[' {
        let wire: Vec<Wire> = serde_json::from_slice(body).ok()?;
        if wire.is_empty() {
            return None;
        }
        (true, wire)
    } else {
        (false, vec![serde_json::from_slice::<Wire>(body).ok()?])
    };
    Some(Messages {
        batch,
        messages: wire.into_iter().map(message).collect(),
    })
}

fn message(wire: Wire<'_>) -> Message<'_> {
    let mut params = wire.params;
    let traceparent = params.as_mut().and_then(|p| p.meta.take()).map(Cow::Owned);
    let target = match wire.method.as_deref() {
        Some("tools/call") => named(Kind::Tool, params.and_then(|p| p.name)),
        Some("prompts/get") => named(Kind::Prompt, params.and_then(|p| p.name)),
        Some("resources/read" | "resources/subscribe" | "resources/unsubscribe") => {
            named(Kind::Resource, params.and_then(|p| p.uri))
        }
        Some("completion/complete") => match params.and_then(|p| p.reference) {
            Some(r) if r.kind.as_deref() == Some("ref/resource") => named(Kind::Resource, r.uri),
            Some(r) => named(Kind::Prompt, r.name),
            None => named(Kind::Prompt, None),
        },
        _ => None,
    };
    Message {
        id: wire.id,
        method: wire.method,
        target,
        traceparent,
    }
}

/// The target of a use of `name`: one without its name (no `params`, no `name`, a `null` one) is
/// a use of "" to the policy.
fn named(kind: Kind, name: Option<Cow<'_, str>>) -> Option<(Kind, Cow<'_, str>)> {
    Some((kind, name.unwrap_or(Cow::Borrowed(""))))
}

/// Why the headers and the body disagree: the `-32020` error's message.
#[derive(Debug, PartialEq, Eq)]
pub struct Mismatch(pub String);

/// Checks `Mcp-Method` and `Mcp-Name`, where present, against the body (one message: 2026-07-28
/// has no batches). A method that names something needs `Mcp-Name` once `Mcp-Method` is sent.
pub fn check_headers(headers: &http::HeaderMap, body: &Messages) -> Result<(), Mismatch> {
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
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn a_meta_traceparent_is_read_and_a_meta_of_another_shape_refuses_nothing() {
        let traced = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_meta":{"progressToken":1,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}"#;
        let parsed = parse(traced).unwrap();
        assert_eq!(
            parsed.messages[0].traceparent.as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        for meta in [r#""text""#, "[1]", "null", r#"{"traceparent":7}"#, "{}"] {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"t","_meta":{meta}}}}}"#
            );
            let parsed = parse(body.as_bytes()).unwrap_or_else(|| panic!("{meta}"));
            assert_eq!(parsed.messages[0].target().unwrap().name, "t", "{meta}");
            assert_eq!(parsed.messages[0].traceparent, None, "{meta}");
        }
    }

    #[test]
    fn messages_name_what_they_use() {
        let body = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ech\u006f","arguments":{"name":"x"}}},
            {"jsonrpc":"2.0","id":"r","method":"resources/read","params":{"uri":"file:///a"}},
            {"jsonrpc":"2.0","id":null,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"}}},
            {"jsonrpc":"2.0","method":"notifications/initialized"},
            {"jsonrpc":"2.0","id":3,"method":"tools/list"}]"#;
        let parsed = parse(body).unwrap();
        assert!(parsed.batch);
        let m = &parsed.messages;
        assert_eq!(
            m[0].target(),
            Some(Target {
                kind: Kind::Tool,
                name: "echo"
            })
        );
        assert_eq!(m[0].id, Some(serde_json::json!(1)));
        assert_eq!(
            m[1].target(),
            Some(Target {
                kind: Kind::Resource,
                name: "file:///a"
            })
        );
        assert_eq!(
            m[2].target(),
            Some(Target {
                kind: Kind::Prompt,
                name: "p"
            })
        );
        assert_eq!(m[2].id, Some(serde_json::Value::Null));
        assert_eq!(m[3].id, None);
        assert_eq!(m[3].target(), None);
        assert_eq!(m[4].list(), Some(Kind::Tool));
        for body in [
            &br#"{"id":1,"method":"tools/call"}"#[..],
            br#"{"id":1,"method":"tools/call","params":{}}"#,
            br#"{"id":1,"method":"tools/call","params":{"name":null}}"#,
        ] {
            let call = parse(body).unwrap();
            let nameless = Target {
                kind: Kind::Tool,
                name: "",
            };
            assert_eq!(call.messages[0].target(), Some(nameless));
        }
    }

    #[test]
    fn an_ambiguous_body_is_unreadable() {
        for body in [
            &br#"{"id":1,"method":"tools/call","params":{"name":"safe","name":"delete_repo"}}"#[..],
            br#"{"id":1,"method":"tools/list","method":"tools/call","params":{"name":"x"}}"#,
            br#"{"id":1,"method":"tools/call","params":{"name":7}}"#,
            br#"[]"#,
            b"",
            b"not json",
            br#"{"id":1,"method":"tools/call"} trailing"#,
        ] {
            assert!(parse(body).is_none(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn headers_must_say_what_the_body_says() {
        let call =
            parse(br#"{"id":1,"method":"tools/call","params":{"name":"get weather"}}"#).unwrap();
        let check = |pairs: &[(&'static str, &str)]| check_headers(&headers(pairs), &call);
        assert_eq!(check(&[]), Ok(()), "older versions send neither");
        assert_eq!(
            check(&[
                ("mcp-method", "tools/call"),
                ("mcp-name", "=?base64?Z2V0IHdlYXRoZXI=?=")
            ]),
            Ok(())
        );
        let error =
            check(&[("mcp-method", "tools/call"), ("mcp-name", "get_weather")]).unwrap_err();
        assert_eq!(
            error.0,
            "Header mismatch: Mcp-Name header value 'get_weather' does not match body value 'get weather'"
        );
        assert!(check(&[("mcp-method", "tools/list"), ("mcp-name", "get weather")]).is_err());
        assert!(
            check(&[("mcp-method", "tools/call")])
                .unwrap_err()
                .0
                .contains("required")
        );
        assert!(check(&[("mcp-name", "=?base64?!!?=")]).is_err());
        assert!(
            check(&[
                ("mcp-method", "tools/call"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "x")
            ])
            .is_err()
        );
        let list = parse(br#"{"id":1,"method":"tools/list"}"#).unwrap();
        assert_eq!(
            check_headers(&headers(&[("mcp-method", "tools/list")]), &list),
            Ok(())
        );
        let batch = parse(br#"[{"id":1,"method":"tools/list"}]"#).unwrap();
        assert!(check_headers(&headers(&[("mcp-method", "tools/list")]), &batch).is_err());
    }
}
