//! Object keys as other JSON parsers read them. The gateway decides on a message and forwards its
//! bytes unchanged, so the backend must read the fields the gateway read, and no others. Parsers
//! disagree on keys: Go's `encoding/json` matches them case-insensitively, with Unicode folding
//! (`ſ` is `s`, the Kelvin sign `K` is `k`), the last of equal keys winning; some folded keys with a
//! NUL byte; serde reads a key only as written and skips the rest. So within an object the gateway
//! reads, two keys that fold to one are refused (a key given twice among them), and so is a key
//! that folds to a field the gateway reads without being that field.

use std::borrow::Cow;

use smallvec::SmallVec;
use unicode_normalization::UnicodeNormalization as _;

/// What a parser that folds keys could take `key` for: NUL bytes dropped, Unicode compatibility
/// forms composed (NFKC: `ſ` → `s`, full-width letters → ASCII), lowercased.
pub(crate) fn fold(key: &str) -> Cow<'_, str> {
    // The usual key folds to itself: no allocation on the request path.
    if key
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-/.$@".contains(&b))
    {
        return Cow::Borrowed(key);
    }
    let composed: String = key.chars().filter(|c| *c != '\0').nfkc().collect();
    Cow::Owned(composed.to_lowercase().nfkc().collect())
}

/// The keys of one object as they are read: which field each is, and whether another parser
/// could read the object otherwise.
pub(crate) struct Keys<'f, 'k> {
    /// The fields the gateway reads here, as written (all lowercase ASCII, so folded already).
    fields: &'f [&'f str],
    /// Every key so far, folded: borrowed from the body, as the usual key is, on the stack.
    seen: SmallVec<[Cow<'k, str>; 8]>,
}

/// Why an object can be read more than one way: the `-32600` error's detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ambiguous(pub String);

impl std::fmt::Display for Ambiguous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'f, 'k> Keys<'f, 'k> {
    pub(crate) fn new(fields: &'f [&'f str]) -> Self {
        Self {
            fields,
            seen: SmallVec::new(),
        }
    }

    /// The field `key` is (its index in `fields`), `None` for another key, or why the object is
    /// ambiguous. `at` names the object in the error (`params`, say).
    pub(crate) fn field(
        &mut self,
        key: Cow<'k, str>,
        at: &str,
    ) -> Result<Option<usize>, Ambiguous> {
        let folded = match &key {
            Cow::Borrowed(key) => fold(key),
            Cow::Owned(key) => Cow::Owned(fold(key).into_owned()),
        };
        let key = key.as_ref();
        if self.seen.iter().any(|s| *s == *folded) {
            return Err(Ambiguous(format!(
                "{at} has two keys that read as {:?}",
                folded.as_ref()
            )));
        }
        let exact = self.fields.iter().position(|f| *f == key);
        if exact.is_none()
            && let Some(field) = self.fields.iter().find(|f| **f == folded.as_ref())
        {
            return Err(Ambiguous(format!(
                "{at} has the key {key:?}, which other parsers read as {field:?}"
            )));
        }
        self.seen.push(folded);
        Ok(exact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fold_as_lenient_parsers_fold_them() {
        for (key, folded) in [
            ("name", "name"),
            ("Name", "name"),
            ("NAME", "name"),
            ("paramſ", "params"),
            ("\u{212a}ind", "kind"),
            ("method\u{0}", "method"),
            ("me\u{0}thod", "method"),
            ("ｍｅｔｈｏｄ", "method"),
            ("_META", "_meta"),
            ("uriTemplate", "uritemplate"),
        ] {
            assert_eq!(fold(key), folded, "{key:?}");
        }
        assert!(matches!(fold("arguments"), Cow::Borrowed(_)));
    }

    #[test]
    fn an_object_is_refused_when_a_key_could_be_read_as_another() {
        let read = |keys: &[&str]| {
            let mut check = Keys::new(&["method", "params"]);
            keys.iter()
                .map(|k| check.field(Cow::Borrowed(k), "the message"))
                .collect::<Result<Vec<_>, _>>()
        };
        assert_eq!(
            read(&["method", "params", "id", "Id2"]),
            Ok(vec![Some(0), Some(1), None, None])
        );
        for keys in [
            &["method", "METHOD"][..],
            &["METHOD"],
            &["method\u{0}"],
            &["paramſ"],
            &["id", "ID"],
            &["arguments", "arguments"],
            &["x", "X"],
        ] {
            assert!(read(keys).is_err(), "{keys:?}");
        }
        assert_eq!(
            read(&["method", "Method"]).unwrap_err().0,
            "the message has two keys that read as \"method\""
        );
        assert_eq!(
            read(&["Params"]).unwrap_err().0,
            "the message has the key \"Params\", which other parsers read as \"params\""
        );
    }
}
