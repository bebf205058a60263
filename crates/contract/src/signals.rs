//! A success body read only as far as [`crate::failure_signal`] looks: its
//! top-level members that may report a failure; the rest is checked and
//! skipped, never built.
//!
//! Most recorded exchanges are 2xx JSON, so this is the parse that runs
//! most often, when it runs: a body that cannot name a signal key is not
//! parsed. Otherwise it accepts exactly what `serde_json::from_slice::<Value>`
//! accepts (the same parser paths check every number, string and nesting
//! level), so a body that does not parse is still `None`.

use std::fmt;
use std::sync::LazyLock;

use memchr::memmem;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// `body` as [`crate::failure_signal`] needs it: an object with only the
/// members it reads (`data` as `true` when it is there and not null), or
/// `null` for any other JSON value; `None` when `body` is not JSON.
///
/// A body that cannot hold such a member is not parsed at all: with no
/// escape in it, a key reads as its own bytes, so a body without one of
/// `"success"`, `"ok"`, `"status"` or `"error` cannot report a failure
/// (its `None` means the same to the rule as "does not parse"). Most
/// success bodies are skipped so, at a few SIMD scans instead of a parse:
/// the body was just read once already, as a string of the recording.
pub(crate) fn success_body(body: &[u8]) -> Option<Value> {
    if !may_signal(body) {
        return None;
    }
    serde_json::from_slice::<Signals>(body).ok().map(|s| s.0)
}

/// The keys `failure_signal` reads, quoted (`"error` finds `"errors"` too).
static SIGNAL_KEYS: LazyLock<[memmem::Finder<'static>; 4]> = LazyLock::new(|| {
    [
        memmem::Finder::new(b"\"success\""),
        memmem::Finder::new(b"\"ok\""),
        memmem::Finder::new(b"\"status\""),
        memmem::Finder::new(b"\"error"),
    ]
});

/// Whether `body` may have a top-level member `failure_signal` reads: it
/// holds an escape (a key could be spelt with one), or one of the keys.
fn may_signal(body: &[u8]) -> bool {
    memchr::memchr(b'\\', body).is_some() || SIGNAL_KEYS.iter().any(|key| key.find(body).is_some())
}

struct Signals(Value);

impl<'de> Deserialize<'de> for Signals {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SignalsVisitor)
    }
}

struct SignalsVisitor;

impl<'de> Visitor<'de> for SignalsVisitor {
    type Value = Signals;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Signals, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let key = key.as_str();
            match key {
                "success" | "ok" | "status" | "error" | "errors" => {
                    // Duplicate keys: the last one wins, as in a `Value`.
                    let value: Value = map.next_value()?;
                    out.insert(key.to_owned(), value);
                }
                "data" => {
                    // Only whether it is null matters to the rule.
                    let Present(present) = map.next_value()?;
                    let value = if present {
                        Value::Bool(true)
                    } else {
                        Value::Null
                    };
                    out.insert(key.to_owned(), value);
                }
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(Signals(Value::Object(out)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Signals, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Signals(Value::Null))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Signals, E> {
        Ok(Signals(Value::Null))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Signals, E> {
        Ok(Signals(Value::Null))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Signals, E> {
        Ok(Signals(Value::Null))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Signals, E> {
        Ok(Signals(Value::Null))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Signals, E> {
        Ok(Signals(Value::Null))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Signals, E> {
        Ok(Signals(Value::Null))
    }
}

/// An object key, borrowed from the body when it has no escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Key<'de>, E> {
        Ok(Key::Borrowed(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Key<'de>, E> {
        Ok(Key::Owned(value.to_owned()))
    }
}

/// Whether a value is there and not null; the value itself is skipped.
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PresentVisitor)
    }
}

struct PresentVisitor;

impl<'de> Visitor<'de> for PresentVisitor {
    type Value = Present;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Present, E> {
        Ok(Present(false))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Present, A::Error> {
        SkipVisitor.visit_map(map).map(|_| Present(true))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Present, A::Error> {
        SkipVisitor.visit_seq(seq).map(|_| Present(true))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Present, E> {
        Ok(Present(true))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Present, E> {
        Ok(Present(true))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Present, E> {
        Ok(Present(true))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Present, E> {
        Ok(Present(true))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Present, E> {
        Ok(Present(true))
    }
}

/// Any JSON value, read through `deserialize_any` (as a `Value` is, so
/// numbers and strings are checked the same way) and dropped. Not serde's
/// `IgnoredAny`: it skips numbers by their syntax alone, so `1e400` would
/// pass where a `Value` refuses it.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_key::<Skip>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure_signal;

    /// The reduced body gives the same signal as the whole one, and parses
    /// exactly when the whole one does.
    #[test]
    fn same_signal_and_same_acceptance_as_a_value() {
        let bodies = [
            r#"{"success":false,"items":[1,2,{"a":"b"}]}"#,
            r#"{"ok":false}"#,
            r#"{"status":"FAILED","x":1}"#,
            r#"{"error":{"code":7},"data":null}"#,
            r#"{"errors":[{"m":"x"}],"data":{"a":1}}"#,
            r#"{"errors":[{"m":"x"}],"data":null}"#,
            r#"{"errors":[],"data":{"a":1}}"#,
            r#"{"error":"x","error":""}"#,
            r#"{"data":1,"data":null,"errors":["e"]}"#,
            r#"{"items":[{"error":"nested, not top level"}]}"#,
            r#"{"a\u0041":1,"error\u0073":["x"]}"#,
            r#"[{"error":"x"}]"#,
            r#""error""#,
            "12",
            "null",
            "{}",
            r#"{"a":1e400}"#,
            r#"{"a":[1,2,}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":1} x"#,
            "{\"a\":\"\x01\"}",
            r#"{"a":-}"#,
            "",
        ];
        for body in bodies {
            let whole = serde_json::from_slice::<Value>(body.as_bytes()).ok();
            let reduced = success_body(body.as_bytes());
            if may_signal(body.as_bytes()) {
                assert_eq!(whole.is_some(), reduced.is_some(), "{body}");
            } else {
                assert!(reduced.is_none(), "not parsed: {body}");
            }
            assert_eq!(
                whole.as_ref().and_then(failure_signal),
                reduced.as_ref().and_then(failure_signal),
                "{body}"
            );
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(serde_json::from_str::<Value>(&deep).is_err());
        assert!(
            success_body(deep.as_bytes()).is_none(),
            "the same depth limit"
        );
        assert!(success_body(b"{\"a\":\"\xff\"}").is_none(), "not UTF-8");
    }

    /// Only a body that may name a signal key is parsed: one spelt with an
    /// escape included.
    #[test]
    fn a_body_without_a_signal_key_is_not_parsed() {
        for body in [
            r#"{"id":1,"state":"failed","tags":["fail"]}"#,
            r#"{"data":[{"id":1}],"page":2}"#,
            r#"{"okay":false,"statuses":[]}"#,
        ] {
            assert!(!may_signal(body.as_bytes()), "{body}");
        }
        for body in [
            r#"{"ok":false}"#,
            r#"{"id":1,"status":"error"}"#,
            r#"{"errors":["x"]}"#,
            r#"{"x":{"success":true}}"#,
            r#"{"succ\u0065ss":false}"#,
        ] {
            assert!(may_signal(body.as_bytes()), "{body}");
        }
        let escaped = success_body(br#"{"succ\u0065ss":false}"#);
        assert_eq!(
            escaped.as_ref().and_then(failure_signal).as_deref(),
            Some("\"success\":false")
        );
    }
}
