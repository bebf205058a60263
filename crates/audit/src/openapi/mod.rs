//! OpenAPI 3.0 and 3.1 documents, YAML or JSON, one file or many, with
//! the position of every node.
//!
//! Each file is read once into a plain [`serde_json::Value`] (JSON is
//! YAML, so one parser reads both) together with the line and column of
//! every node, keyed by its JSON pointer. Both versions are read through
//! the same value: the parts the contract cares about (paths, operations,
//! responses, headers, media types, security) have the same shape in 3.0
//! and 3.1, and where they differ (how roles are named) [`operations`]
//! normalises them.
//!
//! [`Document::load`] follows relative `$ref`s to other files (`./a.yaml`,
//! `../b.json#/X`) from the folder of the file that holds them, and reads
//! each file once, so cycles are safe. A node anywhere in the document has
//! an address: its JSON pointer in the root file (`/paths/~1a`), or `@N`
//! and its pointer in the N-th other file (`@3/get`). Once every file is
//! read, each followed `$ref` is rewritten to the address it points at
//! (`#@3/get`), so [`Document::resolve`] needs no context. A remote
//! reference (`https://...`) is never fetched: it stays as written, and
//! what depends on it is not judged.

mod json;
pub mod lint;
mod load;
mod model;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use load::Positions;
pub use load::{LoadError, Pos};
pub(crate) use load::{describe_keys, swagger_advice};
pub use model::{
    Declared, Location, MediaType, Operation, Parameter, RequestBody, ResponseDecl, Security,
    Unfollowed, operations,
};

/// How many `$ref` hops are followed before giving up (a cycle, or a chain
/// no real document has).
pub const MAX_REF_HOPS: usize = 32;

/// Keys whose members are names the author chose, never OpenAPI or JSON
/// Schema keywords: under them `example`, `default`, `enum` and `const` are
/// names, not literal values.
const NAME_MAPS: [&str; 22] = [
    "properties",
    "patternProperties",
    "dependentSchemas",
    "$defs",
    "definitions",
    "paths",
    "webhooks",
    "pathItems",
    "responses",
    "schemas",
    "parameters",
    "examples",
    "requestBodies",
    "headers",
    "securitySchemes",
    "links",
    "callbacks",
    "content",
    "encoding",
    "mapping",
    "variables",
    "scopes",
];

/// Keys whose value is literal data (an example, a default, an
/// enumeration): a `$ref` inside is data, not a reference.
const LITERALS: [&str; 4] = ["example", "default", "enum", "const"];

/// One OpenAPI document: its root file and the files it refers to.
#[derive(Debug, Clone)]
pub struct Document {
    /// The root file as the user named it.
    pub file: String,
    /// The `openapi` field, e.g. `3.0.3` or `3.1.0`.
    pub version: String,
    /// The root file's content.
    pub root: Value,
    positions: Positions,
    /// The other files, in the order they were first referred to: the
    /// file at address `@N` is `parts[N - 1]`.
    parts: Vec<Part>,
    /// Why each `$ref` that names another file was not followed, by the
    /// address of the node that holds it.
    unfollowed: HashMap<String, String>,
}

/// One file of a multi-file document, other than the root.
#[derive(Debug, Clone)]
struct Part {
    /// As reports name it: the path from the root file's folder, joined.
    file: String,
    root: Value,
    positions: Positions,
}

impl Document {
    fn new(file: String, version: String, parsed: load::Parsed) -> Document {
        Document {
            file,
            version,
            root: parsed.root,
            positions: parsed.positions,
            parts: Vec::new(),
            unfollowed: HashMap::new(),
        }
    }

    /// Reads and parses `path`, and every file its relative `$ref`s lead
    /// to.
    pub fn load(path: &str) -> Result<Document, LoadError> {
        let text = read(path)?;
        let mut doc = Document::parse(path, &text)?;
        doc.follow_files(Path::new(path))?;
        Ok(doc)
    }

    /// Parses `text` (YAML or JSON); `file` names it in errors. Nothing
    /// else is read: a `$ref` to another file stays unresolved.
    pub fn parse(file: &str, text: &str) -> Result<Document, LoadError> {
        load::parse(file, text)
    }

    /// Major.minor of the document, e.g. `(3, 1)`.
    pub fn minor_version(&self) -> Option<(u32, u32)> {
        let mut parts = self.version.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    }

    /// How many files the document spans (1 for a single file).
    pub fn file_count(&self) -> usize {
        1 + self.parts.len()
    }

    /// The node at `address` (a pointer in the root file, or `@N/...`).
    pub fn node(&self, address: &str) -> Option<&Value> {
        let (part, pointer) = split(address)?;
        lookup(self.part_root(part)?, pointer)
    }

    /// The file that holds `address`, as reports name it.
    pub fn file_of(&self, address: &str) -> &str {
        match split(address) {
            Some((part, _)) if part > 0 => self.parts.get(part - 1).map_or("", |p| &p.file),
            _ => &self.file,
        }
    }

    /// The JSON pointer of `address` inside its own file.
    pub fn local_pointer<'a>(&self, address: &'a str) -> &'a str {
        split(address).map_or(address, |(_, pointer)| pointer)
    }

    /// `file#/pointer` for an address, as a person would write the `$ref`.
    pub fn describe(&self, address: &str) -> String {
        match split(address) {
            Some((0, pointer)) => format!("#{pointer}"),
            Some((_, pointer)) => format!("{}#{pointer}", self.file_of(address)),
            None => address.to_owned(),
        }
    }

    /// Where the node at `address` starts, or its nearest ancestor that
    /// has a position.
    pub fn position(&self, address: &str) -> Option<Pos> {
        let (part, p) = split(address)?;
        let positions = match part {
            0 => &self.positions,
            n => &self.parts.get(n - 1)?.positions,
        };
        positions.get(p)
    }

    /// The line of the node at `address`, or of its nearest ancestor that
    /// has one.
    pub fn line(&self, address: &str) -> Option<usize> {
        self.position(address).map(|p| p.line)
    }

    /// Document order: the file (root first, then in the order files are
    /// referred to), then the place in it.
    pub fn order(&self, address: &str) -> (usize, usize) {
        let part = split(address).map_or(usize::MAX, |(part, _)| part);
        let index = self.position(address).map_or(usize::MAX, |p| p.index);
        (part, index)
    }

    /// Follows `value`'s `$ref` chain. Returns the target and its address
    /// (`from` when `value` is not a reference). A reference that cannot
    /// be followed (remote, to a file not read, dangling, cyclic) yields
    /// `None`.
    pub fn resolve<'a>(&'a self, value: &'a Value, from: &str) -> Option<(&'a Value, String)> {
        let mut current = value;
        let mut address = from.to_owned();
        for _ in 0..MAX_REF_HOPS {
            let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
                return Some((current, address));
            };
            let target = reference.strip_prefix('#')?;
            let target = percent_decode(target);
            current = self.node(&target)?;
            address = target;
        }
        None
    }

    /// Why the `$ref` held by the node at `address` names a file that was
    /// not read, when it does.
    pub fn unfollowed_file(&self, address: &str) -> Option<&str> {
        self.unfollowed.get(address).map(String::as_str)
    }

    /// The first server URL, if the document declares one.
    pub fn server_url(&self) -> Option<&str> {
        self.root.pointer("/servers/0/url").and_then(Value::as_str)
    }

    /// Where the API answers by the document: its first server URL, when
    /// it is an absolute http(s) URL without template variables, or a
    /// relative one and the document was served at `served_at` (an http(s)
    /// URL): then it is relative to that (OpenAPI 3, Server Object), and
    /// a document without servers is served by `/` there.
    pub fn base_url(&self, served_at: Option<&str>) -> Option<String> {
        let declared = match (self.root.get("servers"), served_at) {
            (None, Some(_)) => "/",
            _ => self.server_url()?,
        };
        if declared.contains('{') {
            return None;
        }
        let http = |url: &url::Url| matches!(url.scheme(), "http" | "https");
        match url::Url::parse(declared) {
            Ok(url) => http(&url).then(|| declared.to_owned()),
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                let base = url::Url::parse(served_at?).ok().filter(http)?;
                // An empty URL is the default server, `/`.
                let declared = if declared.is_empty() { "/" } else { declared };
                base.join(declared).ok().filter(http).map(String::from)
            }
            Err(_) => None,
        }
    }

    /// Every file's root with its address prefix (`""` for the root file).
    pub(crate) fn files(&self) -> impl Iterator<Item = (String, &Value)> {
        std::iter::once((String::new(), &self.root)).chain(
            self.parts
                .iter()
                .enumerate()
                .map(|(i, part)| (format!("@{}", i + 1), &part.root)),
        )
    }

    fn part_root(&self, part: usize) -> Option<&Value> {
        match part {
            0 => Some(&self.root),
            n => self.parts.get(n - 1).map(|p| &p.root),
        }
    }

    /// Reads every file the document's relative `$ref`s lead to, from the
    /// folder of the file that holds each, and rewrites each such `$ref`
    /// to the address it leads to. `root` is the root file on disk.
    fn follow_files(&mut self, root: &Path) -> Result<(), LoadError> {
        // Files by canonical path (so `a/../b.yaml` and `b.yaml` are one),
        // with their path on disk.
        let mut known: HashMap<PathBuf, usize> = HashMap::new();
        let mut disk: Vec<PathBuf> = vec![root.to_path_buf()];
        // Each file's path from the root file's folder.
        let root_folder = root.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut within: Vec<String> = vec![
            root.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ];
        if let Ok(canonical) = std::fs::canonicalize(root) {
            known.insert(canonical, 0);
        }
        let mut next = 0;
        while next < disk.len() {
            let part = next;
            next += 1;
            let prefix = if part == 0 {
                String::new()
            } else {
                format!("@{part}")
            };
            let mut refs = Vec::new();
            let Some(value) = self.part_root(part) else {
                continue;
            };
            visit_refs(value, &mut prefix.clone(), &mut |address, reference| {
                // A reference within the root file needs nothing done.
                if part > 0 || !reference.starts_with('#') {
                    refs.push((address.to_owned(), reference.to_owned()));
                }
            });
            // In document order, so files are numbered as a reader meets
            // them.
            refs.sort_by_cached_key(|(address, _)| self.order(address));
            let folder = disk[part]
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            // Names are the root file's folder as the user wrote it, then
            // the way from there, tidied.
            let from_root = Path::new(&within[part])
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let mut rewrites = Vec::new();
            for (address, reference) in refs {
                let (target, fragment) = match reference.split_once('#') {
                    Some((target, fragment)) => (target, fragment.to_owned()),
                    None => (reference.as_str(), String::new()),
                };
                if target.is_empty() {
                    if part > 0 {
                        rewrites.push((address, format!("#{prefix}{fragment}")));
                    }
                    continue;
                }
                if is_remote(target) {
                    continue;
                }
                let relative = percent_decode(target);
                if Path::new(&relative).is_absolute() {
                    self.unfollowed.insert(
                        address,
                        format!(
                            "is an absolute path ({relative}): candor follows only relative references"
                        ),
                    );
                    continue;
                }
                let on_disk = folder.join(&relative);
                let inside = normalize(&from_root.join(&relative));
                let shown = root_folder.join(&inside).to_string_lossy().into_owned();
                let Ok(canonical) = std::fs::canonicalize(&on_disk) else {
                    self.unfollowed
                        .insert(address, format!("refers to {shown}, which does not exist"));
                    continue;
                };
                let id = match known.get(&canonical) {
                    Some(&id) => id,
                    None => {
                        let text = read_as(&on_disk, &shown)?;
                        let parsed = load::parse_value(&shown, &text)?;
                        self.parts.push(Part {
                            file: shown,
                            root: parsed.root,
                            positions: parsed.positions,
                        });
                        disk.push(on_disk);
                        within.push(inside);
                        known.insert(canonical, self.parts.len());
                        self.parts.len()
                    }
                };
                let target = if id == 0 {
                    String::new()
                } else {
                    format!("@{id}")
                };
                rewrites.push((address, format!("#{target}{fragment}")));
            }
            for (address, reference) in rewrites {
                let (p, pointer) = split(&address).unwrap_or((0, ""));
                let root = match p {
                    0 => &mut self.root,
                    n => &mut self.parts[n - 1].root,
                };
                if let Some(Value::Object(map)) = root.pointer_mut(pointer) {
                    map.insert("$ref".to_owned(), Value::String(reference));
                }
            }
        }
        Ok(())
    }
}

/// The file of an address (0 for the root file) and its pointer there.
fn split(address: &str) -> Option<(usize, &str)> {
    match address.strip_prefix('@') {
        None => Some((0, address)),
        Some(rest) => {
            let end = rest.find('/').unwrap_or(rest.len());
            Some((rest[..end].parse().ok()?, &rest[end..]))
        }
    }
}

/// A URI with a scheme (`https:`, `file:`) or a network path (`//host`):
/// never read.
pub(crate) fn is_remote(target: &str) -> bool {
    if target.starts_with("//") {
        return true;
    }
    let Some(colon) = target.find(':') else {
        return false;
    };
    let scheme = &target[..colon];
    scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `a/./b/../c` as `a/c`, by the text alone (the file may not exist).
fn normalize(path: &Path) -> String {
    let mut out: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    let joined: PathBuf = out.iter().collect();
    joined.to_string_lossy().into_owned()
}

fn read(path: &str) -> Result<String, LoadError> {
    read_as(Path::new(path), path)
}

/// Reads `path` as UTF-8 text; errors name it `shown`.
fn read_as(path: &Path, shown: &str) -> Result<String, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::Io {
        file: shown.to_owned(),
        message: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|e| LoadError::Io {
        file: shown.to_owned(),
        message: format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Calls `each(address, reference)` for every `$ref` under `node` (at
/// `path`) that is a reference and not literal data (an example, a
/// default, an enumeration).
pub(crate) fn visit_refs(node: &Value, path: &mut String, each: &mut dyn FnMut(&str, &str)) {
    walk_refs(node, path, "", "", 0, each);
}

fn walk_refs(
    node: &Value,
    path: &mut String,
    key: &str,
    parent: &str,
    depth: usize,
    each: &mut dyn FnMut(&str, &str),
) {
    // The loader refuses deeper documents; this is only a backstop.
    if depth > 256 {
        return;
    }
    match node {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                each(path, reference);
            }
            for (child_key, child) in map {
                if LITERALS.contains(&child_key.as_str()) && !NAME_MAPS.contains(&key) {
                    continue;
                }
                if child_key == "value" && parent == "examples" {
                    continue;
                }
                let len = path.len();
                path.push('/');
                push_escaped(path, child_key);
                walk_refs(child, path, child_key, key, depth + 1, each);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                let _ = write!(path, "/{i}");
                // An array's items take its key: `allOf/0` is a schema
                // like `allOf`'s members.
                walk_refs(item, path, "", key, depth + 1, each);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Escapes one JSON pointer token (RFC 6901).
pub fn escape_token(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    push_escaped(&mut out, token);
    out
}

/// Appends `token` to `out`, escaped as a JSON pointer token.
fn push_escaped(out: &mut String, token: &str) {
    if !token.contains(['~', '/']) {
        out.push_str(token);
        return;
    }
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

/// The node at JSON pointer `pointer` under `root`, as
/// [`Value::pointer`] finds it, without a string per token.
fn lookup<'v>(root: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.is_empty() {
        return Some(root);
    }
    let rest = pointer.strip_prefix('/')?;
    rest.split('/').try_fold(root, |target, token| {
        let token: Cow<'_, str> = if token.contains('~') {
            Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
        } else {
            Cow::Borrowed(token)
        };
        match target {
            Value::Object(map) => map.get(token.as_ref()),
            Value::Array(list) => {
                // As serde_json reads an index: no sign, no leading zero.
                if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
                    return None;
                }
                list.get(token.parse::<usize>().ok()?)
            }
            _ => None,
        }
    })
}

/// `%xx` escapes decoded (a `$ref` fragment is a URI, so is an id in a
/// `Location`); a `%` not followed by two hex digits stays as it is.
pub(crate) fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_followed_locally_only() {
        let doc = Document::parse(
            "t.json",
            r##"{"openapi":"3.1.0","components":{"schemas":{"A":{"$ref":"#/components/schemas/B"},"B":{"type":"string"},"C":{"$ref":"other.yaml#/X"},"D":{"$ref":"#/components/schemas/D"}}}}"##,
        )
        .unwrap();
        let a = doc.root.pointer("/components/schemas/A").unwrap();
        let (b, at) = doc.resolve(a, "/components/schemas/A").unwrap();
        assert_eq!(b["type"], "string");
        assert_eq!(at, "/components/schemas/B");
        let c = doc.root.pointer("/components/schemas/C").unwrap();
        assert!(doc.resolve(c, "").is_none());
        let d = doc.root.pointer("/components/schemas/D").unwrap();
        assert!(doc.resolve(d, "").is_none(), "a cycle ends");
        assert_eq!(doc.minor_version(), Some((3, 1)));
    }

    #[test]
    fn a_relative_server_url_is_relative_to_where_the_document_was_served() {
        let doc = |servers: &str| {
            Document::parse(
                "t.json",
                &format!(r#"{{"openapi":"3.1.0","info":{{"title":"t","version":"1"}},{servers}"paths":{{}}}}"#),
            )
            .unwrap()
        };
        let at = Some("https://api.example/docs/v2/openapi.json");
        let base = |servers: &str, at: Option<&str>| doc(servers).base_url(at);
        let server = |url: &str| format!(r#""servers":[{{"url":"{url}"}}],"#);
        assert_eq!(
            base(&server("http://h:1/v1"), None).as_deref(),
            Some("http://h:1/v1")
        );
        assert_eq!(
            base(&server("http://h:1/v1"), at).as_deref(),
            Some("http://h:1/v1")
        );
        assert_eq!(
            base(&server("/v1"), at).as_deref(),
            Some("https://api.example/v1")
        );
        assert_eq!(
            base(&server("v1"), at).as_deref(),
            Some("https://api.example/docs/v2/v1")
        );
        assert_eq!(
            base(&server("../"), at).as_deref(),
            Some("https://api.example/docs/")
        );
        assert_eq!(
            base(&server(""), at).as_deref(),
            Some("https://api.example/")
        );
        assert_eq!(
            base("", at).as_deref(),
            Some("https://api.example/"),
            "no servers: /"
        );
        // Not without the document's URL, nor with variables or other schemes.
        assert_eq!(base(&server("/v1"), None), None);
        assert_eq!(base("", None), None);
        assert_eq!(base(&server("https://{region}.example"), at), None);
        assert_eq!(base(&server("ftp://h/"), at), None);
        assert_eq!(base(&server("/v1"), Some("file:///tmp/openapi.json")), None);
    }

    /// Every pointer in a document, as the reader used to key positions.
    fn pointers(node: &Value, path: &mut String, out: &mut Vec<String>) {
        out.push(path.clone());
        let len = path.len();
        match node {
            Value::Object(map) => {
                for (key, child) in map {
                    path.push('/');
                    path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    pointers(child, path, out);
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    path.push_str(&format!("/{i}"));
                    pointers(child, path, out);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn nodes_and_positions_by_pointer_in_json_and_yaml() {
        let json = "{\"a/b\": {\"~x\": [1, {\"k\": 2}]},\n \"c\": {\"\": 3, \"0\": [true]},\n \"d\": 1, \"d\": {\"e\": 4}}";
        let yaml = "a/b:\n  ~x: [1, {k: 2}]\nc:\n  '': 3\n  '0': [true]\n";
        for (file, text) in [("t.json", json), ("t.yaml", yaml)] {
            let parsed = load::parse_value(file, text).unwrap();
            let mut all = Vec::new();
            pointers(&parsed.root, &mut String::new(), &mut all);
            let mut seen = std::collections::HashSet::new();
            for pointer in &all {
                assert_eq!(
                    lookup(&parsed.root, pointer),
                    parsed.root.pointer(pointer),
                    "{file} {pointer}"
                );
                let pos = parsed.positions.get(pointer).unwrap();
                // (A YAML mapping starts where its first key does.)
                assert!(
                    pointer.is_empty() || seen.insert(pos.index),
                    "{file} {pointer}: one place per node"
                );
            }
            // A missing node is placed at its nearest ancestor.
            for (missing, at) in [("/a~1b/~0x/9", "/a~1b/~0x"), ("/c/~2", "/c"), ("/zz", "")] {
                assert_eq!(parsed.positions.get(missing), parsed.positions.get(at));
                assert_eq!(lookup(&parsed.root, missing), parsed.root.pointer(missing));
            }
            assert_eq!(parsed.positions.get("c"), None);
            for odd in ["/a~1b/~0x/01", "/a~1b/~0x/+1", "/c/0/0", "/c/", "x"] {
                assert_eq!(lookup(&parsed.root, odd), parsed.root.pointer(odd), "{odd}");
            }
        }
        // A key written twice: the last value, placed at the last key.
        let parsed = load::parse_value("t.json", json).unwrap();
        assert_eq!(parsed.root["d"]["e"], 4);
        assert_eq!(parsed.positions.get("/d").unwrap().line, 3);
        assert_eq!(parsed.positions.get("/d").unwrap().column, 10);
    }

    #[test]
    fn percent_escapes_in_refs_decode() {
        assert_eq!(percent_decode("/paths/~1a%7Bid%7D"), "/paths/~1a{id}");
        assert_eq!(percent_decode("/x%2"), "/x%2");
    }
}
