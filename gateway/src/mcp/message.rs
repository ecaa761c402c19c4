//! The JSON-RPC messages of a request body read whole before it is forwarded: for each, its id, its
//! method and the named thing it uses (the tool of `tools/call`, the URI of `resources/read`, …),
//! which the route's policy decides on ([`super::headers`] checks that the 2026-07-28 headers say
//! what the body says).
//!
//! The body is read one way only: within each object the gateway reads (a message, its `params`,
//! a completion's `ref`), a key given twice, or one that another parser would read as another key
//! ([`super::key_folding`]), makes the body ambiguous, and it is refused rather than decided on
//! one reading and forwarded to a backend that reads another.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{Error as _, IgnoredAny, MapAccess, Visitor};

use super::key_folding::{Ambiguous, Keys, fold};

use crate::config::Kind;
use crate::policy::Target;

/// One message of the body.
#[derive(Debug)]
pub(crate) struct Message<'a> {
    /// `None` for a notification (or a message without an id).
    pub id: Option<serde_json::Value>,
    pub method: Option<Cow<'a, str>>,
    pub target: Option<(Kind, Cow<'a, str>)>,
    /// `params._meta.traceparent`: the W3C trace context the message carries (MCP 2026-07-28).
    pub traceparent: Option<Cow<'a, str>>,
}

impl Message<'_> {
    pub(crate) fn target(&self) -> Option<Target<'_>> {
        self.target
            .as_ref()
            .map(|(kind, name)| Target { kind: *kind, name })
    }

    /// The list this message asks for, whose items a policy filters.
    pub(crate) fn list(&self) -> Option<Kind> {
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
pub(crate) struct Messages<'a> {
    pub batch: bool,
    pub messages: Vec<Message<'a>>,
}

/// Why a body is not read: not JSON-RPC at all (`-32700`), or JSON that another parser could
/// read as another message (`-32600`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unreadable {
    NotJsonRpc,
    Ambiguous(Ambiguous),
}

/// The fields read of a message, of its `params` and of a `completion/complete` reference.
const MESSAGE_FIELDS: &[&str] = &["jsonrpc", "id", "method", "params"];
const PARAMS_FIELDS: &[&str] = &["name", "uri", "ref", "_meta"];
const REFERENCE_FIELDS: &[&str] = &["type", "name", "uri"];

/// The methods whose message a policy decides on: a method that folds to one of them without
/// being it may be routed to it by a backend that matches methods loosely.
const DECIDED_METHODS: &[&str] = &[
    "tools/call",
    "tools/list",
    "prompts/get",
    "prompts/list",
    "resources/read",
    "resources/list",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
];

/// The marker of an ambiguity in serde's error, which carries no value of ours.
const AMBIGUOUS: &str = "ambiguous: ";

#[derive(Default)]
struct Wire<'a> {
    id: Option<serde_json::Value>,
    method: Option<Cow<'a, str>>,
    params: Option<Params<'a>>,
}

#[derive(Default)]
struct Params<'a> {
    name: Option<Cow<'a, str>>,
    uri: Option<Cow<'a, str>>,
    /// `completion/complete`'s reference to a prompt or a resource template.
    reference: Option<Reference<'a>>,
    /// `_meta.traceparent`, read leniently: a `_meta` of any shape is the backend's business,
    /// never a reason to refuse (and only a trace's link depends on it).
    traceparent: Option<String>,
}

#[derive(Default)]
struct Reference<'a> {
    kind: Option<Cow<'a, str>>,
    name: Option<Cow<'a, str>>,
    uri: Option<Cow<'a, str>>,
}

/// A string, borrowed from the body where it needs no unescaping.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// An optional string field's value (`null` is none).
fn text<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Cow<'de, str>>, A::Error> {
    Ok(map.next_value::<Option<Text<'de>>>()?.map(|t| t.0))
}

/// Reads the keys of an object the gateway reads, field by field: each key is checked against
/// `fields` ([`Keys`]) and `read` takes the value of a known one; others are skipped.
fn read_object<'de, A: MapAccess<'de>>(
    mut map: A,
    fields: &[&str],
    at: &str,
    mut read: impl FnMut(usize, &mut A) -> Result<(), A::Error>,
) -> Result<(), A::Error> {
    let mut keys = Keys::new(fields);
    while let Some(key) = map.next_key::<Text<'de>>()? {
        match keys.field(key.0, at) {
            Ok(Some(field)) => read(field, &mut map)?,
            Ok(None) => {
                map.next_value::<IgnoredAny>()?;
            }
            Err(ambiguous) => return Err(A::Error::custom(format!("{AMBIGUOUS}{ambiguous}"))),
        }
    }
    Ok(())
}

/// Implements `Deserialize` for one of the objects read, through [`read_object`].
macro_rules! object {
    ($type:ident, $fields:expr, $at:literal, |$value:ident, $field:ident, $map:ident| $read:block) => {
        impl<'de> Deserialize<'de> for $type<'de> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visit;
                impl<'de> Visitor<'de> for Visit {
                    type Value = $type<'de>;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("an object")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                        let mut $value = $type::default();
                        read_object(map, $fields, $at, |$field, $map: &mut A| $read)?;
                        Ok($value)
                    }
                }
                d.deserialize_map(Visit)
            }
        }
    };
}

object!(Wire, MESSAGE_FIELDS, "the message", |wire, field, map| {
    match field {
        // `"id": null` is an id (of an error about an unreadable request), unlike no `id` at all.
        1 => wire.id = Some(map.next_value()?),
        2 => wire.method = text(map)?,
        3 => wire.params = map.next_value()?,
        _ => {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(())
});

object!(Params, PARAMS_FIELDS, "params", |params, field, map| {
    match field {
        0 => params.name = text(map)?,
        1 => params.uri = text(map)?,
        2 => params.reference = map.next_value()?,
        _ => {
            let meta: serde_json::Value = map.next_value()?;
            params.traceparent = meta
                .get("traceparent")
                .and_then(|t| t.as_str())
                .map(str::to_owned);
        }
    }
    Ok(())
});

object!(
    Reference,
    REFERENCE_FIELDS,
    "params.ref",
    |reference, field, map| {
        match field {
            0 => reference.kind = text(map)?,
            1 => reference.name = text(map)?,
            _ => reference.uri = text(map)?,
        }
        Ok(())
    }
);

/// Reads the messages of `body`, or why it cannot be read one way only.
pub(crate) fn parse(body: &[u8]) -> Result<Messages<'_>, Unreadable> {
    let batch = first_byte(body)? == b'[';
    let messages = if batch {
        let wire = serde_json::from_slice::<Vec<Wire>>(body).map_err(unreadable)?;
        if wire.is_empty() {
            return Err(Unreadable::NotJsonRpc);
        }
        wire.into_iter()
            .map(message)
            .collect::<Result<Vec<_>, _>>()
            .map_err(Unreadable::Ambiguous)?
    } else {
        vec![single(body)?]
    };
    Ok(Messages { batch, messages })
}

/// Reads the first message of `body` (its only one, unless it is a batch), as [`parse`] reads it:
/// for a body labelled as it passes, where the usual body, one message, costs no list.
pub(crate) fn first(body: &[u8]) -> Result<Message<'_>, Unreadable> {
    if first_byte(body)? == b'[' {
        return parse(body).map(|mut all| all.messages.swap_remove(0));
    }
    single(body)
}

fn single(body: &[u8]) -> Result<Message<'_>, Unreadable> {
    let wire = serde_json::from_slice::<Wire>(body).map_err(unreadable)?;
    message(wire).map_err(Unreadable::Ambiguous)
}

fn first_byte(body: &[u8]) -> Result<u8, Unreadable> {
    body.iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace())
        .ok_or(Unreadable::NotJsonRpc)
}

/// What serde's error says of a body: an ambiguity the reader found, or no JSON-RPC.
fn unreadable(error: serde_json::Error) -> Unreadable {
    let text = error.to_string();
    match text.strip_prefix(AMBIGUOUS) {
        // serde adds where in the body it was: the detail ends before it.
        Some(detail) => Unreadable::Ambiguous(Ambiguous(
            detail
                .rsplit_once(" at line ")
                .map_or(detail, |(detail, _)| detail)
                .to_owned(),
        )),
        None => Unreadable::NotJsonRpc,
    }
}

fn message(wire: Wire<'_>) -> Result<Message<'_>, Ambiguous> {
    if let Some(method) = wire.method.as_deref() {
        let folded = fold(method);
        if folded != method && DECIDED_METHODS.contains(&folded.as_ref()) {
            return Err(Ambiguous(format!(
                "the method {method:?} reads as {:?} to some servers",
                folded.as_ref()
            )));
        }
    }
    let mut params = wire.params;
    let traceparent = params
        .as_mut()
        .and_then(|p| p.traceparent.take())
        .map(Cow::Owned);
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
    // A name with control characters (a NUL a C server stops at, say) names no tool of its own.
    if let Some((kind, name)) = &target
        && name.chars().any(char::is_control)
    {
        return Err(Ambiguous(format!(
            "the {} name holds a control character",
            kind.as_str()
        )));
    }
    Ok(Message {
        id: wire.id,
        method: wire.method,
        target,
        traceparent,
    })
}

/// The target of a use of `name`: one without its name (no `params`, no `name`, a `null` one) is
/// a use of "" to the policy.
fn named(kind: Kind, name: Option<Cow<'_, str>>) -> Option<(Kind, Cow<'_, str>)> {
    Some((kind, name.unwrap_or(Cow::Borrowed(""))))
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
