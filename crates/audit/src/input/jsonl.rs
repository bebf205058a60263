//! JSON lines: one exchange per line.
//!
//! ```json
//! {"request":{"method":"POST","url":"https://api.example/users","headers":{"content-type":"application/json"},"body":"{}"},
//!  "response":{"status":201,"headers":{"location":"/users/7"},"body_base64":"e30="}}
//! ```
//! (on one line). Header names are case-insensitive; a header's value is a
//! string or an array of strings, one per field line. A body is a UTF-8
//! `body` or a base64 `body_base64`; headers and bodies may be missing.
//! Blank lines are ignored; a line that is not such an object is skipped
//! with a message naming the offending key.

use std::fmt;
use std::io::{self, BufRead};
use std::ops::ControlFlow;

use candor_contract::{Exchange, Request, Response};
use http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{Batch, BatchKind, Entry, Recorded};
use crate::Skipped;

/// A batch ends after this many bytes of lines...
const BATCH_BYTES: usize = 1 << 20;
/// ...or after this many lines, whichever comes first.
const BATCH_LINES: usize = 1024;

/// Raw lines, stored back to back in one buffer.
pub(super) struct Lines {
    data: Vec<u8>,
    spans: Vec<Span>,
}

struct Span {
    /// 1-based line number.
    line: usize,
    /// 0-based index among the non-blank lines.
    entry: usize,
    start: usize,
    end: usize,
}

impl Lines {
    fn new() -> Self {
        Lines {
            data: Vec::with_capacity(BATCH_BYTES + BATCH_BYTES / 4),
            spans: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.spans.len()
    }

    pub(super) fn parse(self, file: &str, mut each: impl FnMut(Entry)) {
        for span in &self.spans {
            let text = &self.data[span.start..span.end];
            each(match parse_line(text) {
                Ok(exchange) => Entry::Exchange(Recorded {
                    entry: span.entry,
                    line: Some(span.line),
                    exchange,
                }),
                Err(message) => Entry::Skipped(Skipped {
                    file: file.to_owned(),
                    line: Some(span.line),
                    entry: Some(span.entry),
                    message,
                }),
            });
        }
    }
}

/// Splits the input into lines, without any limit on a line's length, and
/// hands them to `emit` in batches.
pub(super) fn read_batches(
    mut reader: impl BufRead,
    mut emit: impl FnMut(Batch) -> ControlFlow<()>,
) -> io::Result<()> {
    let mut lines = Lines::new();
    let mut line = 0;
    let mut entry = 0;
    loop {
        let start = lines.data.len();
        if reader.read_until(b'\n', &mut lines.data)? == 0 {
            break;
        }
        line += 1;
        if lines.data[start..].iter().all(u8::is_ascii_whitespace) {
            lines.data.truncate(start);
            continue;
        }
        let end = lines.data.len();
        lines.spans.push(Span {
            line,
            entry,
            start,
            end,
        });
        entry += 1;
        if lines.data.len() >= BATCH_BYTES || lines.spans.len() >= BATCH_LINES {
            let full = std::mem::replace(&mut lines, Lines::new());
            if emit(Batch {
                kind: BatchKind::Lines(full),
            })
            .is_break()
            {
                return Ok(());
            }
        }
    }
    if lines.len() > 0 {
        let _ = emit(Batch {
            kind: BatchKind::Lines(lines),
        });
    }
    Ok(())
}

/// Parses one line into an exchange, or says what is wrong with it.
pub fn parse_line(text: &[u8]) -> Result<Exchange, String> {
    // Tracking the path costs a string per key: only a line that fails is
    // read again with it, for the message.
    let mut de = serde_json::Deserializer::from_slice(text);
    let line = match Line::deserialize(&mut de).and_then(|line| de.end().map(|()| line)) {
        Ok(line) => line,
        Err(_) => return Err(line_error(text)),
    };
    exchange(line)
}

/// What is wrong with a line that does not read, naming the key.
fn line_error(text: &[u8]) -> String {
    let mut de = serde_json::Deserializer::from_slice(text);
    let result = serde_path_to_error::deserialize::<_, Line>(&mut de).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            syntax_message(inner)
        } else {
            super::path_message(e.path(), &super::json_message(inner))
        }
    });
    match result.and_then(|_| de.end().map_err(|e| syntax_message(&e))) {
        Err(message) => message,
        // Both reads see the same bytes; this is only a backstop.
        Ok(()) => "invalid JSON".to_owned(),
    }
}

fn exchange(line: Line) -> Result<Exchange, String> {
    Ok(Exchange {
        request: Request {
            method: line.request.method,
            url: line.request.url,
            headers: line.request.headers.unwrap_or_default().0,
            body: body("request", line.request.body, line.request.body_base64)?,
        },
        response: Response {
            status: line.response.status,
            headers: line.response.headers.unwrap_or_default().0,
            body: body("response", line.response.body, line.response.body_base64)?,
        },
    })
}

fn syntax_message(error: &serde_json::Error) -> String {
    format!(
        "invalid JSON at column {}: {}",
        error.column(),
        super::json_message(error)
    )
}

fn body(side: &str, text: Option<String>, base64: Option<Base64>) -> Result<Vec<u8>, String> {
    match (text, base64) {
        (Some(_), Some(_)) => Err(format!(
            "{side}: both `body` and `body_base64` are set; keep one"
        )),
        (Some(text), None) => Ok(text.into_bytes()),
        (None, Some(bytes)) => Ok(bytes.0),
        (None, None) => Ok(Vec::new()),
    }
}

#[derive(Deserialize)]
#[serde(expecting = "an exchange: an object with `request` and `response`")]
struct Line {
    request: LineRequest,
    response: LineResponse,
}

#[derive(Deserialize)]
#[serde(expecting = "a request: an object with `method` and `url`")]
struct LineRequest {
    method: String,
    url: String,
    headers: Option<Headers>,
    body: Option<String>,
    body_base64: Option<Base64>,
}

#[derive(Deserialize)]
#[serde(expecting = "a response: an object with `status`")]
struct LineResponse {
    status: u16,
    headers: Option<Headers>,
    body: Option<String>,
    body_base64: Option<Base64>,
}

/// A base64 string, decoded while deserializing so that errors carry the key.
struct Base64(Vec<u8>);

impl<'de> Deserialize<'de> for Base64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Text::deserialize(deserializer)?;
        super::decode_base64(text.as_str())
            .map(Base64)
            .map_err(de::Error::custom)
    }
}

/// A string borrowed from the line when it has no escapes.
enum Text<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Text<'_> {
    fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Text<'de>, E> {
        Ok(Text::Borrowed(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Text<'de>, E> {
        Ok(Text::Owned(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Text<'de>, E> {
        Ok(Text::Owned(value))
    }
}

/// `{"name": "value" | ["value", ...]}`, converted straight into a map.
#[derive(Default)]
struct Headers(HeaderMap);

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeadersVisitor)
    }
}

struct HeadersVisitor;

impl<'de> Visitor<'de> for HeadersVisitor {
    type Value = Headers;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object mapping header names to a string or an array of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
        let mut headers = HeaderMap::new();
        while let Some(name) = map.next_key::<Text<'de>>()? {
            let values: FieldValues = map.next_value()?;
            let name = name.as_str();
            if super::is_pseudo_header(name) {
                continue;
            }
            let name = super::header_name(name).map_err(de::Error::custom)?;
            for value in values.0 {
                headers.append(&name, value);
            }
        }
        Ok(Headers(headers))
    }
}

/// The field lines of one header.
struct FieldValues(Vec<HeaderValue>);

impl<'de> Deserialize<'de> for FieldValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldValuesVisitor)
    }
}

struct FieldValuesVisitor;

fn field_value<E: de::Error>(value: String) -> Result<HeaderValue, E> {
    HeaderValue::try_from(value)
        .map_err(|_| E::custom("invalid header value: it contains control characters"))
}

impl<'de> Visitor<'de> for FieldValuesVisitor {
    type Value = FieldValues;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<FieldValues, E> {
        self.visit_string(value.to_owned())
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<FieldValues, E> {
        Ok(FieldValues(vec![field_value(value)?]))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<FieldValues, E> {
        Ok(FieldValues(vec![HeaderValue::from(value)]))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<FieldValues, E> {
        Ok(FieldValues(vec![HeaderValue::from(value)]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FieldValues, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(1));
        while let Some(value) = seq.next_element::<String>()? {
            values.push(field_value(value)?);
        }
        Ok(FieldValues(values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_line() {
        let ex = parse_line(
            br#"{"request":{"method":"POST","url":"https://api.example/users","headers":{"Content-Type":"application/json","X-Many":["a","b"]},"body":"{}"},"response":{"status":201,"headers":{"location":"/users/7"},"body_base64":"aGk="}}"#,
        )
        .unwrap();
        assert_eq!(ex.request.method, "POST");
        assert_eq!(ex.request.headers["content-type"], "application/json");
        let many: Vec<_> = ex.request.headers.get_all("x-many").iter().collect();
        assert_eq!(many, ["a", "b"]);
        assert_eq!(ex.request.body, b"{}");
        assert_eq!(ex.response.status, 201);
        assert_eq!(ex.response.body, b"hi");
    }

    #[test]
    fn headers_and_bodies_may_be_missing() {
        let ex = parse_line(br#"{"request":{"method":"GET","url":"/"},"response":{"status":204}}"#)
            .unwrap();
        assert!(ex.request.headers.is_empty());
        assert!(ex.response.body.is_empty());
    }

    #[test]
    fn errors_name_the_key() {
        let err = |text: &str| parse_line(text.as_bytes()).unwrap_err();
        assert_eq!(
            err(r#"{"request":{"method":"GET","url":"/"},"response":{"status":"x"}}"#),
            r#"response.status: invalid type: string "x", expected u16"#
        );
        assert_eq!(
            err(r#"{"request":{"method":"GET","url":"/"},"response":{"status":70000}}"#),
            "response.status: invalid value: integer `70000`, expected u16"
        );
        assert_eq!(
            err(r#"{"request":{"method":"GET","url":"/"},"response":{}}"#),
            "response: missing field `status`"
        );
        assert_eq!(
            err(r#"{"response":{"status":200}}"#),
            "missing field `request`"
        );
        assert!(
            err(r#"{"request":{"method":"GET","url":"/","headers":{"bad name":"x"}},"response":{"status":200}}"#)
                .starts_with("request.headers: invalid header name \"bad name\"")
        );
        assert!(
            err(r#"{"request":{"method":"GET","url":"/","headers":{"x":"a\nb"}},"response":{"status":200}}"#)
                .starts_with("request.headers.x: invalid header value")
        );
        assert!(
            err(r#"{"request":{"method":"GET","url":"/"},"response":{"status":200,"body_base64":"!"}}"#)
                .starts_with("response.body_base64: invalid base64")
        );
        assert!(err(r#"{"request":"#).starts_with("invalid JSON at column"));
        assert_eq!(
            err(r#""GET /""#),
            "invalid type: string \"GET /\", expected an exchange: an object with `request` and `response`"
        );
        assert!(
            err(r#"{"request":{"method":"GET","url":"/"},"response":{"status":200}} x"#)
                .starts_with("invalid JSON")
        );
    }
}
