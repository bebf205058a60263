//! JSON text to a value with the position of every node, in one pass.
//!
//! JSON documents are read here rather than by the YAML parser: it is
//! faster, and JSON that YAML refuses (a surrogate pair escape such as
//! `\ud83d\ude00`, as Python writes non-ASCII text) still reads.

use serde_json::{Map, Number, Value};

use super::load::{LoadError, MAX_DEPTH, Parsed, Pos, Positions, ROOT};

/// Parses `text` as one JSON value.
pub(super) fn parse(file: &str, text: &str) -> Result<Parsed, LoadError> {
    let mut reader = Reader {
        text: text.as_bytes(),
        at: 0,
        line: 1,
        line_start: 0,
        counted_at: 0,
        counted_column: 1,
        positions: Positions::default(),
    };
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    reader.at = bom;
    reader.line_start = bom;
    reader.counted_at = bom;
    let result = reader.skip_space().and_then(|()| {
        reader.positions = Positions::new(reader.pos());
        let root = reader.value(0, ROOT)?;
        reader.skip_space()?;
        if reader.at < reader.text.len() {
            return Err("more after the JSON value".to_owned());
        }
        Ok(root)
    });
    match result {
        Ok(root) => Ok(Parsed {
            root,
            positions: reader.positions,
        }),
        Err(message) => {
            let pos = reader.pos();
            Err(LoadError::Syntax {
                file: file.to_owned(),
                line: pos.line,
                column: pos.column,
                message,
            })
        }
    }
}

struct Reader<'t> {
    text: &'t [u8],
    at: usize,
    line: usize,
    /// Byte offset where the current line starts.
    line_start: usize,
    /// The column is counted in characters, incrementally: the column at
    /// `counted_at` (on the current line).
    counted_at: usize,
    counted_column: usize,
    positions: Positions,
}

type Step<T> = std::result::Result<T, String>;

impl Reader<'_> {
    /// The position of `self.at`.
    fn pos(&mut self) -> Pos {
        if self.counted_at < self.line_start {
            self.counted_at = self.line_start;
            self.counted_column = 1;
        }
        let end = self.at.min(self.text.len());
        // Characters, not bytes: count the bytes that start one.
        self.counted_column += self.text[self.counted_at..end]
            .iter()
            .filter(|&&b| (b & 0xC0) != 0x80)
            .count();
        self.counted_at = end;
        Pos {
            line: self.line,
            column: self.counted_column,
            index: self.at,
        }
    }

    fn skip_space(&mut self) -> Step<()> {
        while let Some(&b) = self.text.get(self.at) {
            match b {
                b' ' | b'\t' | b'\r' => self.at += 1,
                b'\n' => {
                    self.at += 1;
                    self.line += 1;
                    self.line_start = self.at;
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// The value at `self.at`, whose position is node `id`'s.
    fn value(&mut self, depth: usize, id: u32) -> Step<Value> {
        if depth > MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        let pos = self.pos();
        self.positions.set(id, pos);
        match self.text.get(self.at) {
            Some(b'{') => self.object(depth, id),
            Some(b'[') => self.array(depth, id, pos),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.word("true", Value::Bool(true)),
            Some(b'f') => self.word("false", Value::Bool(false)),
            Some(b'n') => self.word("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err("expected a JSON value".to_owned()),
            None => Err("the text ends where a value was expected".to_owned()),
        }
    }

    fn object(&mut self, depth: usize, id: u32) -> Step<Value> {
        self.at += 1;
        let mut map = Map::new();
        self.skip_space()?;
        if self.text.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.skip_space()?;
            if self.text.get(self.at) != Some(&b'"') {
                return Err("expected a key in double quotes".to_owned());
            }
            // An entry is reported at its key, where a reader looks.
            let key_pos = self.pos();
            let key = self.string()?;
            self.skip_space()?;
            if self.text.get(self.at) != Some(&b':') {
                return Err("expected `:` after the key".to_owned());
            }
            self.at += 1;
            self.skip_space()?;
            let child = self.positions.child(id, &key, key_pos);
            let value = self.value(depth + 1, child)?;
            self.positions.set(child, key_pos);
            map.insert(key, value);
            self.skip_space()?;
            match self.text.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Value::Object(map));
                }
                _ => return Err("expected `,` or `}` in an object".to_owned()),
            }
        }
    }

    /// An array; `pos` (its own) stands in for each item's until the item
    /// is read.
    fn array(&mut self, depth: usize, id: u32, pos: Pos) -> Step<Value> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_space()?;
        if self.text.get(self.at) == Some(&b']') {
            self.at += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_space()?;
            let child = self.positions.item(id, items.len(), pos);
            items.push(self.value(depth + 1, child)?);
            self.skip_space()?;
            match self.text.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err("expected `,` or `]` in an array".to_owned()),
            }
        }
    }

    fn word(&mut self, word: &str, value: Value) -> Step<Value> {
        if self.text[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err("expected a JSON value".to_owned())
        }
    }

    fn number(&mut self) -> Step<Value> {
        let start = self.at;
        while let Some(b) = self.text.get(self.at) {
            if matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                self.at += 1;
            } else {
                break;
            }
        }
        let slice = std::str::from_utf8(&self.text[start..self.at]).unwrap_or_default();
        let number = if let Ok(n) = slice.parse::<u64>() {
            Number::from(n)
        } else if let Ok(n) = slice.parse::<i64>() {
            Number::from(n)
        } else {
            let invalid = || format!("invalid number {slice}");
            let float: f64 = slice.parse().map_err(|_| invalid())?;
            if !slice
                .trim_start_matches('-')
                .starts_with(|c: char| c.is_ascii_digit())
            {
                self.at = start;
                return Err(invalid());
            }
            Number::from_f64(float).ok_or_else(invalid)?
        };
        Ok(Value::Number(number))
    }

    /// A string at `self.at` (its opening quote), unescaped.
    fn string(&mut self) -> Step<String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let start = self.at;
            while let Some(&b) = self.text.get(self.at) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.at += 1;
            }
            // The text is UTF-8 and the run stops at ASCII bytes only.
            out.push_str(std::str::from_utf8(&self.text[start..self.at]).unwrap_or_default());
            match self.text.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escaped = self.text.get(self.at).copied();
                    self.at += 1;
                    match escaped {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => out.push(self.unicode()?),
                        _ => {
                            self.at -= 2;
                            return Err("invalid escape in a string".to_owned());
                        }
                    }
                }
                Some(_) => return Err("a control character in a string".to_owned()),
                None => return Err("the text ends inside a string".to_owned()),
            }
        }
    }

    /// The character of a `\uXXXX` escape (after the `u`), joining a
    /// surrogate pair; a lone surrogate becomes U+FFFD.
    fn unicode(&mut self) -> Step<char> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first) && self.text[self.at..].starts_with(b"\\u") {
            let save = self.at;
            self.at += 2;
            let second = self.hex4()?;
            if (0xDC00..0xE000).contains(&second) {
                let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                return Ok(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            self.at = save;
        }
        Ok(char::from_u32(first).unwrap_or('\u{fffd}'))
    }

    fn hex4(&mut self) -> Step<u32> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| "invalid \\u escape".to_owned())?;
        self.at += 4;
        Ok(digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_positions_and_escapes() {
        let text =
            "{\"a\": [1, -2.5e3, true, null],\n \"é\": {\"b\": \"x\\ud83d\\ude00\\u00e9\\n\"}}";
        let parsed = parse("t.json", text).unwrap();
        assert_eq!(
            parsed.root,
            serde_json::json!({"a": [1, -2500.0, true, null], "é": {"b": "x😀é\n"}})
        );
        let at = |p: &str| {
            let pos = parsed.positions.get(p).unwrap();
            (pos.line, pos.column)
        };
        assert_eq!(at(""), (1, 1));
        assert_eq!(at("/a"), (1, 2));
        assert_eq!(at("/a/1"), (1, 11));
        assert_eq!(at("/é"), (2, 2));
        assert_eq!(at("/é/b"), (2, 8), "columns count characters");
    }

    #[test]
    fn errors_have_a_place() {
        for (text, line, column) in [
            ("{\"a\": 1,\n \"b\" 2}", 2, 6),
            ("{\"a\": [1, 2}", 1, 12),
            ("{\"a\": \"x", 1, 9),
            ("{\"a\": 1} x", 1, 10),
            ("{\"a\": tru}", 1, 7),
        ] {
            match parse("t.json", text) {
                Err(LoadError::Syntax {
                    line: l, column: c, ..
                }) => assert_eq!((l, c), (line, column), "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
