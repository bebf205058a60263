//! Reading recorded traffic: HAR 1.2 and JSON lines, plain or gzip.
//!
//! The format and the compression are recognised from the content, never
//! from the file name ([`identify`] also tells OpenAPI documents apart).
//! Entries come out in batches so that the linter can spread the parsing
//! over several threads while memory stays flat.

pub mod har;
pub mod jsonl;
mod kind;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::ops::ControlFlow;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use candor_contract::Exchange;
use flate2::read::MultiGzDecoder;
use http::{HeaderName, HeaderValue};

use crate::Skipped;

/// The file name that means standard input.
pub const STDIN: &str = "-";

/// What every input may be, for messages about one that is none of them.
pub const EXPECTED: &str = "expected an OpenAPI 3.x document (YAML or JSON, with a top-level \
     `openapi` key), a HAR file, or JSON lines (one object with `request` and `response` per line)";

/// Read at a time while recognising the format.
const SCAN_CHUNK: usize = 64 * 1024;

/// A fatal problem with a whole input file. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{file}: cannot open: {error}")]
    Open { file: String, error: io::Error },
    #[error("{file}: cannot read{}: {error}", if *.gzip { " gzip data" } else { "" })]
    Read {
        file: String,
        gzip: bool,
        error: io::Error,
    },
    #[error("{file}: neither HAR nor JSON lines: {reason}")]
    Format { file: String, reason: String },
    #[error("{file}: is empty; {EXPECTED}")]
    Empty { file: String },
    #[error("{file}: not an OpenAPI 3.x document, a HAR file or JSON lines: {found}; {EXPECTED}")]
    Unrecognised { file: String, found: String },
    #[error("{file}:{line}: {}", crate::openapi::swagger_advice(file))]
    Swagger { file: String, line: usize },
    #[error("{file}: {why}")]
    Document { file: String, why: &'static str },
    #[error("{file}:{line}:{column}: invalid HAR: {message}")]
    Har {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
}

impl InputError {
    /// The I/O error underneath, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            InputError::Open { error, .. } | InputError::Read { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The two recorded-traffic formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// HAR 1.2: one JSON document whose `log.entries` are the exchanges.
    Har,
    /// One JSON object per line, each a `{"request":..,"response":..}`.
    JsonLines,
}

/// A file (or standard input) as raw bytes, before decompression.
pub struct RawInput {
    pub reader: Box<dyn Read + Send>,
    /// The size on disk, when known (not for pipes and stdin).
    pub len: Option<u64>,
}

/// Opens `path` for reading; `-` is standard input.
pub fn open(path: &str) -> Result<RawInput, InputError> {
    if path == STDIN {
        return Ok(RawInput {
            reader: Box::new(io::stdin()),
            len: None,
        });
    }
    let open_error = |error| InputError::Open {
        file: path.to_owned(),
        error,
    };
    let file = File::open(path).map_err(open_error)?;
    let meta = file.metadata().map_err(open_error)?;
    if meta.is_dir() {
        return Err(open_error(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory",
        )));
    }
    Ok(RawInput {
        reader: Box::new(file),
        len: meta.is_file().then_some(meta.len()),
    })
}

/// Recorded traffic whose compression and format are known, ready to read.
pub struct Traffic<'a> {
    format: Format,
    gzip: bool,
    reader: Box<dyn BufRead + Send + 'a>,
}

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Recorded traffic, HAR or JSON lines (plain or gzip).
    Traffic(Format),
    /// An OpenAPI document, or YAML that only parsing can tell: read it
    /// with [`crate::openapi::Document::load`].
    Document,
}

/// Tells what `path` holds, reading only as far as needed: a traffic
/// file's first entry, or a JSON document's top-level keys. A file that is
/// empty, Swagger 2.0 or none of the kinds is refused, naming what was
/// expected.
pub fn identify(path: &str) -> Result<Kind, InputError> {
    let raw = open(path)?;
    let (verdict, gzip, _, _) = scan(path, raw.reader)?;
    match verdict {
        kind::Verdict::Har => Ok(Kind::Traffic(Format::Har)),
        kind::Verdict::JsonLines => Ok(Kind::Traffic(Format::JsonLines)),
        kind::Verdict::OpenApi | kind::Verdict::NotJson if gzip => Err(InputError::Document {
            file: path.to_owned(),
            why: "gzip-compressed, and not recorded traffic: decompress an OpenAPI document first",
        }),
        kind::Verdict::OpenApi | kind::Verdict::NotJson => Ok(Kind::Document),
        other => Err(refusal(path, other)),
    }
}

/// The error for a verdict that is neither traffic nor a document.
fn refusal(file: &str, verdict: kind::Verdict) -> InputError {
    let file = file.to_owned();
    match verdict {
        kind::Verdict::Empty => InputError::Empty { file },
        kind::Verdict::Swagger { line } => InputError::Swagger { file, line },
        kind::Verdict::Other(found) => InputError::Unrecognised { file, found },
        kind::Verdict::OpenApi => InputError::Document {
            file,
            why: "an OpenAPI document, not recorded traffic: give it to `candor lint` as a file",
        },
        _ => InputError::Unrecognised {
            file,
            found: "content that is not a JSON object".to_owned(),
        },
    }
}

/// Decompresses `raw` if it is gzip and reads until the kind of its
/// content is known: the verdict, whether it was gzip, the bytes read
/// (decompressed) and the rest of the stream.
#[expect(clippy::type_complexity, reason = "one private helper")]
fn scan<'a>(
    file: &str,
    raw: impl Read + Send + 'a,
) -> Result<(kind::Verdict, bool, Vec<u8>, Box<dyn Read + Send + 'a>), InputError> {
    let mut raw = raw;
    let read_error = |gzip, error| InputError::Read {
        file: file.to_owned(),
        gzip,
        error,
    };
    let mut magic = Vec::with_capacity(2);
    read_at_least(&mut raw, &mut magic, 2).map_err(|e| read_error(false, e))?;
    let gzip = magic.starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read + Send + 'a> = Box::new(Cursor::new(magic).chain(raw));
    let mut stream: Box<dyn Read + Send + 'a> = if gzip {
        Box::new(MultiGzDecoder::new(stream))
    } else {
        stream
    };
    let mut head = Vec::new();
    let mut scanner = kind::Scanner::new();
    let verdict = loop {
        let start = head.len();
        let eof = read_at_least(&mut stream, &mut head, start + SCAN_CHUNK)
            .map_err(|e| read_error(gzip, e))?;
        match scanner.feed(&head[start..]) {
            kind::Verdict::NeedMore if eof => break scanner.finish(),
            kind::Verdict::NeedMore => {}
            verdict => break verdict,
        }
    };
    Ok((verdict, gzip, head, stream))
}

/// Decompresses `raw` if it is gzip and recognises its format.
///
/// `file` only names the input in errors. Anything but HAR or JSON lines
/// (an empty input, an OpenAPI document, other JSON) is refused.
pub fn decode<'a>(file: &str, raw: impl Read + Send + 'a) -> Result<Traffic<'a>, InputError> {
    let (verdict, gzip, mut head, stream) = scan(file, raw)?;
    let format = match verdict {
        kind::Verdict::Har => Format::Har,
        kind::Verdict::JsonLines => Format::JsonLines,
        kind::Verdict::NotJson => {
            let first = head
                .iter()
                .copied()
                .find(|b| !b.is_ascii_whitespace())
                .unwrap_or(b' ');
            return Err(InputError::Unrecognised {
                file: file.to_owned(),
                found: format!(
                    "the content starts with {:?}, not with a JSON object",
                    char::from(first)
                ),
            });
        }
        other => return Err(refusal(file, other)),
    };
    if head.starts_with(BOM) {
        head.drain(..BOM.len());
    }
    let reader = BufReader::with_capacity(256 * 1024, Cursor::new(head).chain(stream));
    Ok(Traffic {
        format,
        gzip,
        reader: Box::new(reader),
    })
}

impl Traffic<'_> {
    pub fn format(&self) -> Format {
        self.format
    }

    /// True when the content was gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// Reads every entry, handing them to `emit` in input order, in batches
    /// of about a megabyte. Stops early, without error, when `emit` breaks.
    ///
    /// Only the entries' boundaries are found here (line ends, or the end of
    /// each element of a HAR's `log.entries`); [`Batch::parse`] does the
    /// rest, on any thread. A HAR is streamed, never held whole.
    pub fn read_batches(
        self,
        file: &str,
        emit: impl FnMut(Batch) -> ControlFlow<()>,
    ) -> Result<(), InputError> {
        let gzip = self.gzip;
        let read_error = |error| InputError::Read {
            file: file.to_owned(),
            gzip,
            error,
        };
        match self.format {
            Format::JsonLines => jsonl::read_batches(self.reader, emit).map_err(read_error),
            Format::Har => har::read_batches(self.reader, emit).map_err(|e| match e {
                har::StreamError::Io(error) => read_error(error),
                har::StreamError::Json {
                    line,
                    column,
                    message,
                } => InputError::Har {
                    file: file.to_owned(),
                    line,
                    column,
                    message,
                },
                har::StreamError::NotHar(reason) => InputError::Format {
                    file: file.to_owned(),
                    reason,
                },
            }),
        }
    }
}

/// Entries read but not yet parsed; see [`Traffic::read_batches`].
pub struct Batch {
    kind: BatchKind,
}

enum BatchKind {
    Lines(jsonl::Lines),
    Har(har::Entries),
}

impl Batch {
    /// The number of entries in the batch.
    pub fn len(&self) -> usize {
        match &self.kind {
            BatchKind::Lines(lines) => lines.len(),
            BatchKind::Har(entries) => entries.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parses every entry into an exchange, or into the reason it was
    /// skipped, and hands them to `each` in order.
    pub fn parse(self, file: &str, each: impl FnMut(Entry)) {
        match self.kind {
            BatchKind::Lines(lines) => lines.parse(file, each),
            BatchKind::Har(entries) => entries.parse(file, each),
        }
    }
}

/// One entry of the input, parsed.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "entries are handed over one at a time, never stored"
)]
pub enum Entry {
    Exchange(Recorded),
    Skipped(Skipped),
}

/// An exchange and where it was recorded.
#[derive(Debug)]
pub struct Recorded {
    /// 0-based index of the exchange in its file.
    pub entry: usize,
    /// 1-based line, for JSON lines.
    pub line: Option<usize>,
    pub exchange: Exchange,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads into `buf` until it holds `want` bytes or the input ends; true at
/// the end of the input.
fn read_at_least(reader: &mut dyn Read, buf: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    let mut chunk = [0u8; 8192];
    while buf.len() < want {
        let room = (want - buf.len()).min(chunk.len());
        match reader.read(&mut chunk[..room]) {
            Ok(0) => return Ok(true),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Base64 as recorders write it: standard alphabet, padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes a base64 body, tolerating line breaks inside it.
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    BASE64.decode(text).or_else(|first| {
        if text.bytes().any(|b| b.is_ascii_whitespace()) {
            let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            BASE64
                .decode(compact)
                .map_err(|e| format!("invalid base64: {e}"))
        } else {
            Err(format!("invalid base64: {first}"))
        }
    })
}

/// HTTP/2 and HTTP/3 pseudo-header fields (`:authority`, `:status`, ...)
/// describe the request line or status line; they are not headers.
fn is_pseudo_header(name: &str) -> bool {
    name.starts_with(':')
}

/// A header name, lower-cased.
fn header_name(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name {name:?}"))
}

fn header_value(name: &str, value: String) -> Result<HeaderValue, String> {
    HeaderValue::try_from(value)
        .map_err(|_| format!("invalid value for header {name:?}: control characters"))
}

/// A serde_json error message without its trailing "at line L column C".
fn json_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&suffix) {
        Some(message) => message.to_owned(),
        None => text,
    }
}

/// `path: message`, or only the message when the error is at the root.
fn path_message(path: &serde_path_to_error::Path, message: &str) -> String {
    if path.iter().next().is_none() {
        message.to_owned()
    } else {
        format!("{path}: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_tolerates_missing_padding_and_line_breaks() {
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("aGk").unwrap(), b"hi");
        assert_eq!(decode_base64("aGVs\nbG8=").unwrap(), b"hello");
        assert!(
            decode_base64("!!")
                .unwrap_err()
                .starts_with("invalid base64")
        );
    }
}
