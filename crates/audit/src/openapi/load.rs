//! YAML (and so JSON) text to a [`Document`]: one value per file plus the
//! position of every node.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Number, Value};

use super::Document;

/// Deepest nesting accepted; deeper documents are refused rather than
/// risking the stack.
pub(super) const MAX_DEPTH: usize = 128;

/// Why a document could not be read. Every variant names the file, and the
/// line when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: {message}")]
    Io { file: String, message: String },
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: is empty (expected an OpenAPI 3.0 or 3.1 document)")]
    Empty { file: String },
    #[error("{file}: not an OpenAPI 3.0 or 3.1 document (no top-level `openapi` key): {found}")]
    NotOpenApi { file: String, found: String },
}

/// Where a node starts: 1-based line and column, and its index in the
/// file (in characters), which orders nodes on one line (minified JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
    pub index: usize,
}

/// One file read into a value, with the position of every node by JSON
/// pointer (`""` is the root).
#[derive(Debug)]
pub(super) struct Parsed {
    pub root: Value,
    pub positions: Positions,
}

/// The position of every node of one file, found by JSON pointer.
///
/// A node is its parent's id and its key (an array item's key is its
/// index), kept in one buffer: no string per node, and a lookup walks the
/// pointer's tokens from the root. Only what a lookup needs is stored.
#[derive(Debug, Clone, Default)]
pub(crate) struct Positions {
    nodes: Vec<Node>,
    /// Every node's key, unescaped, back to back.
    keys: String,
    /// The hash of (parent, key) to the first node with that hash; nodes
    /// with the same hash are chained through [`Node::next`].
    index: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
}

#[derive(Debug, Clone)]
struct Node {
    parent: u32,
    key_start: u32,
    key_len: u32,
    /// The next node whose (parent, key) has the same hash, or [`NONE`].
    next: u32,
    pos: Pos,
}

const NONE: u32 = u32::MAX;

/// The id of the root node.
pub(super) const ROOT: u32 = 0;

impl Positions {
    /// Positions whose root starts at `pos`.
    pub(super) fn new(pos: Pos) -> Positions {
        Positions {
            nodes: vec![Node {
                parent: NONE,
                key_start: 0,
                key_len: 0,
                next: NONE,
                pos,
            }],
            keys: String::new(),
            index: HashMap::default(),
        }
    }

    /// Sets where node `id` is.
    pub(super) fn set(&mut self, id: u32, pos: Pos) {
        self.nodes[id as usize].pos = pos;
    }

    /// The node under `parent` at `key`, made at `pos` when it is new (a
    /// key written twice is one node, as in the value).
    pub(super) fn child(&mut self, parent: u32, key: &str, pos: Pos) -> u32 {
        let hash = hash(parent, key.as_bytes());
        let first = self.index.get(&hash).copied().unwrap_or(NONE);
        if let Some(found) = self.find(first, parent, key) {
            return found;
        }
        let id = u32::try_from(self.nodes.len()).expect("fewer than 2^32 nodes");
        let key_start = u32::try_from(self.keys.len()).expect("keys under 4 GiB");
        self.keys.push_str(key);
        self.nodes.push(Node {
            parent,
            key_start,
            key_len: u32::try_from(key.len()).expect("a key under 4 GiB"),
            next: first,
            pos,
        });
        self.index.insert(hash, id);
        id
    }

    /// As [`Positions::child`], for the `index`-th item of an array.
    pub(super) fn item(&mut self, parent: u32, index: usize, pos: Pos) -> u32 {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = index;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let key = std::str::from_utf8(&digits[at..]).unwrap_or_default();
        self.child(parent, key, pos)
    }

    /// The node `parent`/`key` in the chain that starts at `id`.
    fn find(&self, mut id: u32, parent: u32, key: &str) -> Option<u32> {
        while id != NONE {
            let node = &self.nodes[id as usize];
            let start = node.key_start as usize;
            if node.parent == parent
                && self.keys.get(start..start + node.key_len as usize) == Some(key)
            {
                return Some(id);
            }
            id = node.next;
        }
        None
    }

    /// Where the node at `pointer` starts, or its nearest ancestor that has
    /// a position; `None` for a pointer that is neither `""` nor starts
    /// with `/`.
    pub(crate) fn get(&self, pointer: &str) -> Option<Pos> {
        let root = self.nodes.first()?;
        if pointer.is_empty() {
            return Some(root.pos);
        }
        let rest = pointer.strip_prefix('/')?;
        let mut id = ROOT;
        let mut key = String::new();
        for token in rest.split('/') {
            // A token with an escape that is not `~0` or `~1` names no key.
            if !unescape(token, &mut key) {
                break;
            }
            let first = self
                .index
                .get(&hash(id, key.as_bytes()))
                .copied()
                .unwrap_or(NONE);
            match self.find(first, id, &key) {
                Some(child) => id = child,
                None => break,
            }
        }
        Some(self.nodes[id as usize].pos)
    }
}

/// `token` (RFC 6901) into `out`, unescaped; false when it holds a `~`
/// that is not `~0` or `~1`.
fn unescape(token: &str, out: &mut String) -> bool {
    out.clear();
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return false,
            }
        } else {
            out.push(c);
        }
    }
    true
}

/// A hash of a node's parent and key; the map takes it as it is.
fn hash(parent: u32, key: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (u64::from(parent) << 32 | key.len() as u64).wrapping_mul(K);
    for chunk in key.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h.rotate_left(23) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    // Every bit of the input reaches the bits the table probes with.
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h
}

/// A hasher for keys that are hashes already.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The one-line way forward for a Swagger 2.0 document.
pub(crate) fn swagger_advice(file: &str) -> String {
    format!(
        "a Swagger 2.0 document, which candor does not read: convert it to OpenAPI 3 first, \
         e.g. `npx swagger2openapi {file} -o openapi.yaml`"
    )
}

/// Reads any YAML (or JSON) file into a value with positions; nothing
/// OpenAPI-specific.
pub(super) fn parse_value(file: &str, text: &str) -> Result<Parsed, LoadError> {
    if text.trim_start_matches('\u{feff}').trim().is_empty() {
        return Err(LoadError::Empty {
            file: file.to_owned(),
        });
    }
    // JSON is read by the JSON reader; what fails there and starts like
    // JSON may still be YAML (a flow mapping `{openapi: 3.1.0}`).
    let json_error = if text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with(['{', '['])
    {
        match super::json::parse(file, text) {
            Ok(parsed) => return Ok(parsed),
            Err(e) => Some(e),
        }
    } else {
        None
    };
    let docs = MarkedYaml::load_from_str(text).map_err(|e| {
        json_error.clone().unwrap_or_else(|| LoadError::Syntax {
            file: file.to_owned(),
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_owned(),
        })
    })?;
    let invalid = |line: usize, message: String| LoadError::Invalid {
        file: file.to_owned(),
        line,
        message,
    };
    let node = match docs.as_slice() {
        [one] => one,
        [] => {
            return Err(LoadError::Empty {
                file: file.to_owned(),
            });
        }
        [_, second, ..] => {
            return Err(invalid(
                second.span.start.line(),
                "more than one YAML document in the file".to_owned(),
            ));
        }
    };
    let mut positions = Positions::new(pos(&node.span.start));
    let root = convert(node, ROOT, &mut positions, 0).map_err(|(line, m)| invalid(line, m))?;
    Ok(Parsed { root, positions })
}

/// The line of `pointer` in `parsed`, 1 when it has none.
fn line_of(parsed: &Parsed, pointer: &str) -> usize {
    parsed.positions.get(pointer).map_or(1, |p| p.line)
}

/// Checks that `parsed` is an OpenAPI 3.0 or 3.1 document; its version.
pub(super) fn openapi_version(file: &str, parsed: &Parsed) -> Result<String, LoadError> {
    let root = &parsed.root;
    let invalid = |line: usize, message: String| LoadError::Invalid {
        file: file.to_owned(),
        line,
        message,
    };
    let Some(map) = root.as_object() else {
        return Err(LoadError::NotOpenApi {
            file: file.to_owned(),
            found: format!("a YAML/JSON {}", kind_of(root)),
        });
    };
    let version = match map.get("openapi") {
        Some(Value::String(v)) => v.clone(),
        Some(other) => {
            return Err(invalid(
                line_of(parsed, "/openapi"),
                format!("openapi: expected a version string such as \"3.1.0\", found {other}"),
            ));
        }
        None if map.get("swagger").is_some() => {
            return Err(invalid(line_of(parsed, "/swagger"), swagger_advice(file)));
        }
        None => {
            return Err(LoadError::NotOpenApi {
                file: file.to_owned(),
                found: describe_keys("a mapping", map.keys().map(String::as_str)),
            });
        }
    };
    if !(version.starts_with("3.0") || version.starts_with("3.1")) {
        let line = line_of(parsed, "/openapi");
        if version.starts_with('2') {
            return Err(invalid(line, swagger_advice(file)));
        }
        return Err(invalid(
            line,
            format!("openapi: version {version:?} is not supported (3.0.x and 3.1.x are)"),
        ));
    }
    if !map.get("paths").is_none_or(Value::is_object) {
        return Err(invalid(
            line_of(parsed, "/paths"),
            "paths: expected a mapping of path templates to path items".to_owned(),
        ));
    }
    Ok(version)
}

/// `a mapping with keys `a`, `b`, `c`` (the first few).
pub(crate) fn describe_keys<'k>(what: &str, keys: impl Iterator<Item = &'k str>) -> String {
    let keys: Vec<String> = keys.map(|k| format!("`{k}`")).collect();
    match keys.len() {
        0 => format!("an empty {}", what.trim_start_matches("a ")),
        n if n <= 6 => format!("{what} with keys {}", keys.join(", ")),
        n => format!(
            "{what} with keys {}, ... ({n} in all)",
            keys[..6].join(", ")
        ),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "sequence (array)",
        Value::Object(_) => "mapping",
    }
}

pub(super) fn parse(file: &str, text: &str) -> Result<Document, LoadError> {
    let parsed = parse_value(file, text)?;
    let version = openapi_version(file, &parsed)?;
    Ok(Document::new(file.to_owned(), version, parsed))
}

/// Converts one node, recording its position as node `id`.
fn convert(
    node: &MarkedYaml<'_>,
    id: u32,
    lines: &mut Positions,
    depth: usize,
) -> Result<Value, (usize, String)> {
    let line = node.span.start.line();
    if depth > MAX_DEPTH {
        return Err((line, format!("nesting deeper than {MAX_DEPTH} levels")));
    }
    let at = pos(&node.span.start);
    lines.set(id, at);
    Ok(match &node.data {
        YamlData::Value(scalar) => scalar_value(scalar),
        YamlData::Representation(text, _, _) => Value::String(text.to_string()),
        YamlData::Tagged(_, inner) => convert(inner, id, lines, depth + 1)?,
        YamlData::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let child = lines.item(id, i, at);
                out.push(convert(item, child, lines, depth + 1)?);
            }
            Value::Array(out)
        }
        YamlData::Mapping(entries) => {
            let mut out = Map::with_capacity(entries.len());
            for (key, value) in entries {
                let key_pos = pos(&key.span.start);
                let key = match &key.data {
                    YamlData::Value(Scalar::String(s)) => s.to_string(),
                    YamlData::Value(scalar) => match scalar_value(scalar) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    },
                    YamlData::Representation(text, _, _) => text.to_string(),
                    _ => {
                        return Err((
                            key.span.start.line(),
                            "a mapping key must be a scalar".to_owned(),
                        ));
                    }
                };
                let child = lines.child(id, &key, key_pos);
                let converted = convert(value, child, lines, depth + 1)?;
                // An entry is reported at its key, where a reader looks.
                lines.set(child, key_pos);
                out.insert(key, converted);
            }
            Value::Object(out)
        }
        YamlData::Alias(_) => {
            return Err((line, "YAML aliases are not supported".to_owned()));
        }
        YamlData::BadValue => {
            return Err((line, "a value that is not valid YAML".to_owned()));
        }
    })
}

fn pos(marker: &saphyr::Marker) -> Pos {
    Pos {
        line: marker.line(),
        column: marker.col() + 1,
        index: marker.index(),
    }
}

fn scalar_value(scalar: &Scalar<'_>) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number((*i).into()),
        Scalar::FloatingPoint(f) => Number::from_f64(f.into_inner())
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.to_string())),
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "openapi: 3.0.3
info:
  title: t
  version: '1'
paths:
  /users/{id}:
    get:
      responses:
        '200':
          description: ok
        404:
          description: missing
";

    #[test]
    fn yaml_values_and_lines() {
        let doc = parse("api.yaml", YAML).unwrap();
        assert_eq!(doc.version, "3.0.3");
        assert_eq!(doc.root["info"]["version"], "1");
        let get = "/paths/~1users~1{id}/get";
        assert_eq!(doc.line(get), Some(7), "an entry is at its key");
        assert_eq!(
            doc.line(&format!("{get}/responses/200/description")),
            Some(10)
        );
        assert!(doc.root.pointer(&format!("{get}/responses/404")).is_some());
        assert_eq!(
            doc.line(&format!("{get}/responses/404/nothing/here")),
            Some(11)
        );
    }

    #[test]
    fn json_reads_too() {
        let doc = parse(
            "api.json",
            "{\n \"openapi\": \"3.1.0\",\n \"paths\": {}\n}\n",
        )
        .unwrap();
        assert_eq!(doc.version, "3.1.0");
        assert_eq!(doc.line("/openapi"), Some(2));
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = parse("bad.yaml", "openapi: 3.1.0\npaths:\n  /a: [\n").unwrap_err();
        assert!(matches!(err, LoadError::Syntax { .. }), "{err}");
        assert!(err.to_string().starts_with("bad.yaml:"), "{err}");
        let err = parse("v2.yaml", "swagger: '2.0'\n").unwrap_err();
        assert!(err.to_string().contains("Swagger 2.0"), "{err}");
        let err = parse("v4.yaml", "openapi: 4.0.0\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "v4.yaml:1: openapi: version \"4.0.0\" is not supported (3.0.x and 3.1.x are)"
        );
        let err = parse("n.yaml", "openapi: 3.1\n").unwrap_err();
        assert!(
            err.to_string().contains("expected a version string"),
            "{err}"
        );
        assert!(parse("e.yaml", "").is_err());
    }
}
