//! HAR 1.2, read leniently and streamed.
//!
//! Real exports omit members the specification requires (`cache`,
//! `timings`, `cookies`, `queryString`, sizes), so the model here asks only
//! for what the rules need: method, URL, status, headers and bodies. The
//! document is never held whole: a serde visitor walks `log.entries` and
//! hands each entry on, as raw JSON text, as soon as it ends; memory is
//! bounded by the batches in flight whatever the file's size.
//!
//! Entries that cannot be linted are skipped with a reason: aborted
//! requests (`status: 0`, common in browser exports), or entries that do
//! not fit the model. HTTP/2 pseudo-headers (`:authority`, ...) are
//! dropped; browsers join repeated `Set-Cookie` lines with `\n`, which is
//! split back into field lines. Broken JSON is fatal.

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufReader, Read};
use std::ops::ControlFlow;
use std::rc::Rc;

use candor_contract::{Exchange, Request, Response};
use http::HeaderMap;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{Batch, BatchKind, Entry, Recorded};
use crate::Skipped;

/// A batch ends after this many entries...
const BATCH_ENTRIES: usize = 256;
/// ...or once about this many bytes of input went into it.
const BATCH_BYTES: u64 = 1 << 20;

/// Why a HAR stream could not be read to its end.
#[derive(Debug)]
pub(super) enum StreamError {
    Io(io::Error),
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    NotHar(String),
}

/// Entries of `log.entries`, as raw JSON text: the reader thread only
/// finds where each entry ends, workers parse them.
#[derive(Default)]
pub(super) struct Entries {
    items: Vec<(usize, Box<RawValue>)>,
}

impl Entries {
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    pub(super) fn parse(self, file: &str, mut each: impl FnMut(Entry)) {
        for (entry, raw) in self.items {
            each(match parse_entry(raw.get()) {
                Ok(exchange) => Entry::Exchange(Recorded {
                    entry,
                    line: None,
                    exchange,
                }),
                Err(message) => Entry::Skipped(Skipped {
                    file: file.to_owned(),
                    line: None,
                    entry: Some(entry),
                    message,
                }),
            });
        }
    }
}

/// Streams the entries of a HAR document to `emit`, in batches.
pub(super) fn read_batches(
    reader: impl Read,
    emit: impl FnMut(Batch) -> ControlFlow<()>,
) -> Result<(), StreamError> {
    let consumed = Rc::new(Cell::new(0));
    let reader = BufReader::with_capacity(
        64 * 1024,
        Counted {
            inner: reader,
            consumed: Rc::clone(&consumed),
        },
    );
    let mut batcher = Batcher {
        emit,
        consumed,
        batch: Entries::default(),
        batch_start: 0,
        next_entry: 0,
        stopped: false,
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let result = Root {
        on_entry: &mut |value| batcher.push(value),
    }
    .deserialize(&mut de)
    .and_then(|found| de.end().map(|()| found));
    if batcher.stopped {
        return Ok(());
    }
    let found = result.map_err(|e| match e.classify() {
        serde_json::error::Category::Io => StreamError::Io(e.into()),
        _ => StreamError::Json {
            line: e.line(),
            column: e.column(),
            message: super::json_message(&e),
        },
    })?;
    if !found.log {
        return Err(StreamError::NotHar(
            "the JSON object has no `log` member".to_owned(),
        ));
    }
    if !found.entries {
        return Err(StreamError::NotHar(
            "the HAR `log` has no `entries` array".to_owned(),
        ));
    }
    let _ = batcher.flush();
    Ok(())
}

/// Counts the bytes read, to size batches by input bytes.
struct Counted<R> {
    inner: R,
    consumed: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.set(self.consumed.get() + n as u64);
        Ok(n)
    }
}

struct Batcher<F> {
    emit: F,
    consumed: Rc<Cell<u64>>,
    batch: Entries,
    batch_start: u64,
    next_entry: usize,
    stopped: bool,
}

impl<F: FnMut(Batch) -> ControlFlow<()>> Batcher<F> {
    fn push(&mut self, raw: Box<RawValue>) -> ControlFlow<()> {
        self.batch.items.push((self.next_entry, raw));
        self.next_entry += 1;
        let consumed = self.consumed.get();
        if self.batch.len() >= BATCH_ENTRIES || consumed - self.batch_start >= BATCH_BYTES {
            self.batch_start = consumed;
            return self.flush();
        }
        ControlFlow::Continue(())
    }

    fn flush(&mut self) -> ControlFlow<()> {
        if self.batch.len() == 0 {
            return ControlFlow::Continue(());
        }
        let batch = Batch {
            kind: BatchKind::Har(std::mem::take(&mut self.batch)),
        };
        let flow = (self.emit)(batch);
        self.stopped = flow.is_break();
        flow
    }
}

type OnEntry<'a> = &'a mut dyn FnMut(Box<RawValue>) -> ControlFlow<()>;

/// What the walk over the document found.
struct Found {
    log: bool,
    entries: bool,
}

/// The top-level object: only `log` is looked into.
struct Root<'a> {
    on_entry: OnEntry<'a>,
}

impl<'de> DeserializeSeed<'de> for Root<'_> {
    type Value = Found;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Found, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Root<'_> {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a HAR object with a `log` member")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let mut found = Found {
            log: false,
            entries: false,
        };
        while let Some(key) = map.next_key::<String>()? {
            if key == "log" {
                found.log = true;
                found.entries |= map.next_value_seed(Log {
                    on_entry: &mut *self.on_entry,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// The `log` object: only `entries` is looked into. True when it has them.
struct Log<'a> {
    on_entry: OnEntry<'a>,
}

impl<'de> DeserializeSeed<'de> for Log<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Log<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the HAR `log` object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut entries = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "entries" {
                entries = true;
                map.next_value_seed(EntryList {
                    on_entry: &mut *self.on_entry,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(entries)
    }
}

/// `log.entries`: each element is handed on as soon as it is complete.
struct EntryList<'a> {
    on_entry: OnEntry<'a>,
}

impl<'de> DeserializeSeed<'de> for EntryList<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntryList<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the HAR `log.entries` array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(entry) = seq.next_element::<Box<RawValue>>()? {
            if (self.on_entry)(entry).is_break() {
                // The reader was told to stop: unwind the parse.
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct HarEntry {
    request: HarRequest,
    response: HarResponse,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HarRequest {
    method: String,
    url: String,
    headers: Option<Vec<HarHeader>>,
    post_data: Option<HarText>,
}

#[derive(Deserialize)]
struct HarResponse {
    status: u16,
    headers: Option<Vec<HarHeader>>,
    content: Option<HarText>,
}

#[derive(Deserialize)]
struct HarHeader {
    name: String,
    value: String,
}

/// `request.postData` and `response.content`: only the text matters.
#[derive(Deserialize)]
struct HarText {
    text: Option<String>,
    encoding: Option<String>,
}

/// Parses one element of `log.entries`, or says why it cannot be linted.
pub fn parse_entry(text: &str) -> Result<Exchange, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let entry: HarEntry = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| super::path_message(e.path(), &super::json_message(e.inner())))?;
    let HarEntry { request, response } = entry;
    if response.status == 0 {
        return Err("response.status is 0: the request was aborted or blocked, \
                    no response was recorded"
            .to_owned());
    }
    Ok(Exchange {
        request: Request {
            method: request.method,
            url: request.url,
            headers: headers("request", request.headers)?,
            body: body("request.postData", request.post_data)?,
        },
        response: Response {
            status: response.status,
            headers: headers("response", response.headers)?,
            body: body("response.content", response.content)?,
        },
    })
}

fn headers(side: &str, list: Option<Vec<HarHeader>>) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (i, HarHeader { name, value }) in list.into_iter().flatten().enumerate() {
        if super::is_pseudo_header(&name) {
            continue;
        }
        let at = |message| format!("{side}.headers[{i}]: {message}");
        let header = super::header_name(&name).map_err(at)?;
        if value.contains('\n') {
            for line in value.split('\n').map(|l| l.trim_end_matches('\r')) {
                if !line.is_empty() {
                    let line = super::header_value(&name, line.to_owned()).map_err(at)?;
                    map.append(&header, line);
                }
            }
        } else {
            map.append(&header, super::header_value(&name, value).map_err(at)?);
        }
    }
    Ok(map)
}

fn body(at: &str, part: Option<HarText>) -> Result<Vec<u8>, String> {
    let Some(HarText {
        text: Some(text),
        encoding,
    }) = part
    else {
        return Ok(Vec::new());
    };
    if encoding.is_some_and(|e| e.eq_ignore_ascii_case("base64")) {
        super::decode_base64(&text).map_err(|e| format!("{at}.text: {e}"))
    } else {
        Ok(text.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn convert(entry: Value) -> Result<Exchange, String> {
        parse_entry(&entry.to_string())
    }

    #[test]
    fn minimal_entry_converts() {
        let ex = convert(json!({
            "request": {"method": "GET", "url": "https://a.example/x",
                        "headers": [{"name": ":authority", "value": "a.example"},
                                    {"name": "Accept", "value": "application/json"}]},
            "response": {"status": 200,
                         "headers": [{"name": "set-cookie", "value": "a=1\nb=2"}],
                         "content": {"text": "aGk=", "encoding": "base64"}}
        }))
        .unwrap();
        assert_eq!(ex.request.headers.len(), 1);
        assert_eq!(ex.request.headers["accept"], "application/json");
        assert_eq!(ex.response.headers.get_all("set-cookie").iter().count(), 2);
        assert_eq!(ex.response.body, b"hi");
    }

    #[test]
    fn bad_entries_say_why() {
        let aborted = convert(json!({
            "request": {"method": "GET", "url": "/"},
            "response": {"status": 0}
        }));
        assert!(aborted.unwrap_err().contains("aborted"));
        let bad_status = convert(json!({
            "request": {"method": "GET", "url": "/"},
            "response": {"status": "x"}
        }));
        assert_eq!(
            bad_status.unwrap_err(),
            r#"response.status: invalid type: string "x", expected u16"#
        );
        let bad_header = convert(json!({
            "request": {"method": "GET", "url": "/",
                        "headers": [{"name": "bad name", "value": "x"}]},
            "response": {"status": 200}
        }));
        assert_eq!(
            bad_header.unwrap_err(),
            r#"request.headers[0]: invalid header name "bad name""#
        );
    }

    fn stream(text: &str) -> Result<Vec<usize>, StreamError> {
        let mut seen = Vec::new();
        read_batches(text.as_bytes(), |batch| {
            let BatchKind::Har(entries) = batch.kind else {
                unreachable!()
            };
            seen.extend(entries.items.iter().map(|(i, _)| *i));
            ControlFlow::Continue(())
        })?;
        Ok(seen)
    }

    #[test]
    fn streams_entries_and_skips_other_members() {
        let text = r#"{"log": {"version": "1.2", "pages": [{"x": [1, 2]}],
                       "entries": [{}, {"a": 1}, 3], "comment": "c"}}"#;
        assert_eq!(stream(text).unwrap(), [0, 1, 2]);
    }

    #[test]
    fn broken_documents_are_errors_with_positions() {
        match stream("{\"log\": {\"entries\": [{}, }") {
            Err(StreamError::Json {
                line: 1, column, ..
            }) => assert!(column > 20),
            other => panic!("{other:?}"),
        }
        assert!(matches!(stream("{\"x\": 1}"), Err(StreamError::NotHar(_))));
        assert!(matches!(
            stream("{\"log\": {}}"),
            Err(StreamError::NotHar(_))
        ));
        assert!(matches!(
            stream("{\"log\": []}"),
            Err(StreamError::Json { .. })
        ));
    }
}
