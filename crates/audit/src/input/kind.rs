//! What a file is, told from its structure rather than its first bytes:
//! an OpenAPI document, a Swagger 2.0 one, HAR, JSON lines, or none.
//!
//! A JSON object is read only as far as its top-level keys need: a HAR's
//! `log` or a JSON line's `request` usually comes first, while a key-sorted
//! OpenAPI document may hold its `openapi` key after megabytes of
//! `components`. The scan tracks strings and nesting, no more, so it costs
//! a fraction of a parse; whatever is not a JSON object is left to the
//! YAML reader, which parses it once, for good.

/// What the scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing decided yet: feed more bytes, or call [`Scanner::finish`].
    NeedMore,
    /// Nothing but whitespace.
    Empty,
    Har,
    JsonLines,
    /// A JSON object with a top-level `openapi` key.
    OpenApi,
    /// A JSON object with a top-level `swagger` key, at this line.
    Swagger {
        line: usize,
    },
    /// Not a JSON object (YAML, or something else): only parsing tells.
    NotJson,
    /// JSON, but none of the three; what it is instead.
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A key or the end of the object.
    Key,
    /// Inside a key's string.
    InKey,
    /// The `:` after a key.
    Colon,
    /// A value, up to the next `,` at this depth.
    Value,
}

/// Keys of the top-level object kept for a message.
const KEYS_KEPT: usize = 8;
/// Longest key kept (longer ones decide nothing).
const KEY_BYTES: usize = 64;

/// Reads bytes until the kind of the content is known.
pub(crate) struct Scanner {
    /// Bytes seen, to recognise a BOM at the very start.
    seen: usize,
    started: bool,
    depth: usize,
    in_string: bool,
    escape: bool,
    line: usize,
    /// The line of the opening `{`.
    open_line: usize,
    expect: Expect,
    key: Vec<u8>,
    key_line: usize,
    keys: Vec<String>,
    /// A `request` or `response` key below the first line.
    spread_exchange: bool,
    /// The top-level value ended.
    closed: bool,
}

impl Scanner {
    pub(crate) fn new() -> Self {
        Scanner {
            seen: 0,
            started: false,
            depth: 0,
            in_string: false,
            escape: false,
            line: 1,
            open_line: 1,
            expect: Expect::Key,
            key: Vec::new(),
            key_line: 1,
            keys: Vec::new(),
            spread_exchange: false,
            closed: false,
        }
    }

    /// Reads `bytes`, the next part of the content.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Verdict {
        let mut bytes = bytes;
        if self.seen < 3 {
            // A UTF-8 byte order mark may open the content.
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            while let Some(&b) = bytes.first() {
                if b != BOM[self.seen] {
                    if self.seen > 0 {
                        // Part of a BOM, then something else: not text.
                        self.started = true;
                        return Verdict::NotJson;
                    }
                    self.seen = 3;
                    break;
                }
                self.seen += 1;
                bytes = &bytes[1..];
                if self.seen == 3 {
                    break;
                }
            }
        }
        for &b in bytes {
            if let Some(verdict) = self.byte(b) {
                return verdict;
            }
        }
        Verdict::NeedMore
    }

    /// The verdict at the end of the content.
    pub(crate) fn finish(&self) -> Verdict {
        if !self.started {
            return Verdict::Empty;
        }
        if !self.closed {
            // Broken or truncated JSON: the parser names the place.
            return Verdict::NotJson;
        }
        if self.spread_exchange {
            return Verdict::Other(
                "one exchange written over several lines (JSON lines need one exchange per line)"
                    .to_owned(),
            );
        }
        Verdict::Other(crate::openapi::describe_keys(
            "a JSON object",
            self.keys.iter().map(String::as_str),
        ))
    }

    fn byte(&mut self, b: u8) -> Option<Verdict> {
        if b == b'\n' {
            self.line += 1;
        }
        if !self.started {
            if b.is_ascii_whitespace() {
                return None;
            }
            self.started = true;
            return match b {
                b'{' => {
                    self.depth = 1;
                    self.open_line = self.line;
                    None
                }
                b'[' => Some(Verdict::Other("a JSON array".to_owned())),
                b'<' => Some(Verdict::Other(
                    "the content starts with '<' (HTML or XML?)".to_owned(),
                )),
                _ => Some(Verdict::NotJson),
            };
        }
        if self.closed {
            if b.is_ascii_whitespace() {
                return None;
            }
            // A second value: JSON lines, but the first is no exchange.
            return Some(Verdict::Other(if self.spread_exchange {
                "exchanges written over several lines (JSON lines need one exchange per line)"
                    .to_owned()
            } else {
                format!(
                    "JSON lines whose first line is not an exchange ({})",
                    crate::openapi::describe_keys(
                        "an object",
                        self.keys.iter().map(String::as_str)
                    )
                )
            }));
        }
        if self.in_string {
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_string = false;
                if self.depth == 1 && self.expect == Expect::InKey {
                    self.expect = Expect::Colon;
                    return self.key_done();
                }
            } else if self.depth == 1 && self.expect == Expect::InKey && self.key.len() < KEY_BYTES
            {
                self.key.push(b);
            }
            return None;
        }
        if self.depth == 1 {
            match (self.expect, b) {
                (_, b' ' | b'\t' | b'\r' | b'\n') => return None,
                (Expect::Key, b'"') => {
                    self.in_string = true;
                    self.expect = Expect::InKey;
                    self.key.clear();
                    self.key_line = self.line;
                    return None;
                }
                (Expect::Key, b'}') => {
                    self.depth = 0;
                    self.closed = true;
                    return None;
                }
                // An unquoted key: not JSON (a YAML flow mapping?).
                (Expect::Key | Expect::InKey, _) => return Some(Verdict::NotJson),
                (Expect::Colon, b':') => {
                    self.expect = Expect::Value;
                    return None;
                }
                (Expect::Colon, _) => return Some(Verdict::NotJson),
                (Expect::Value, b',') => {
                    self.expect = Expect::Key;
                    return None;
                }
                (Expect::Value, b'}') => {
                    self.depth = 0;
                    self.closed = true;
                    return None;
                }
                (Expect::Value, _) => {}
            }
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => self.depth = self.depth.saturating_sub(1).max(1),
            _ => {}
        }
        None
    }

    /// A top-level key was read: does it decide?
    fn key_done(&mut self) -> Option<Verdict> {
        let key = std::mem::take(&mut self.key);
        let verdict = match key.as_slice() {
            b"log" => Some(Verdict::Har),
            b"openapi" => Some(Verdict::OpenApi),
            b"swagger" => Some(Verdict::Swagger {
                line: self.key_line,
            }),
            b"request" | b"response" if self.key_line == self.open_line => Some(Verdict::JsonLines),
            b"request" | b"response" => {
                self.spread_exchange = true;
                None
            }
            _ => None,
        };
        if self.keys.len() < KEYS_KEPT {
            self.keys.push(String::from_utf8_lossy(&key).into_owned());
        }
        self.key = key;
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(text: &str) -> Verdict {
        let mut scanner = Scanner::new();
        match scanner.feed(text.as_bytes()) {
            Verdict::NeedMore => scanner.finish(),
            v => v,
        }
    }

    /// Fed one byte at a time, the verdict is the same.
    fn verdict_bytewise(text: &str) -> Verdict {
        let mut scanner = Scanner::new();
        for b in text.as_bytes() {
            let v = scanner.feed(std::slice::from_ref(b));
            if v != Verdict::NeedMore {
                return v;
            }
        }
        scanner.finish()
    }

    #[test]
    fn top_level_keys_decide_in_any_order() {
        let cases = [
            ("{\"log\":{}}", Verdict::Har),
            ("\u{feff}\n  {\n  \"log\": {", Verdict::Har),
            ("{\"request\":{}}\n{\"request\":{}}", Verdict::JsonLines),
            (
                "{\"response\":{\"status\":1},\"request\"",
                Verdict::JsonLines,
            ),
            (
                "{\"components\":{\"openapi\":1,\"x\":\"}\\\"\"},\"info\":{},\"openapi\":\"3.1.0\"",
                Verdict::OpenApi,
            ),
            (
                "{\n  \"info\": {},\n  \"swagger\": \"2.0\"}",
                Verdict::Swagger { line: 3 },
            ),
            ("", Verdict::Empty),
            (" \n\t ", Verdict::Empty),
            ("openapi: 3.1.0\n", Verdict::NotJson),
            ("{openapi: 3.1.0}", Verdict::NotJson),
            ("{\"info\": {", Verdict::NotJson),
            ("[1, 2]", Verdict::Other("a JSON array".to_owned())),
        ];
        for (text, want) in cases {
            assert_eq!(verdict(text), want, "{text:?}");
            assert_eq!(verdict_bytewise(text), want, "{text:?} byte by byte");
        }
    }

    #[test]
    fn other_json_is_named_by_its_keys() {
        assert_eq!(
            verdict("{\"name\": \"x\", \"version\": \"1\"}"),
            Verdict::Other("a JSON object with keys `name`, `version`".to_owned())
        );
        let Verdict::Other(found) = verdict("{\"a\":1}\n{\"b\":2}\n") else {
            panic!()
        };
        assert!(found.starts_with("JSON lines whose first line is not an exchange"));
        let Verdict::Other(found) = verdict("{\n  \"request\": {},\n  \"response\": {}\n}\n")
        else {
            panic!()
        };
        assert!(found.contains("over several lines"), "{found}");
    }
}
