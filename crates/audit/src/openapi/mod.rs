//! OpenAPI 3.0 and 3.1 documents, YAML or JSON, with line numbers.
//!
//! A document is read once into a plain [`serde_json::Value`] (JSON is
//! YAML, so one parser reads both) together with the line of every node,
//! keyed by its JSON pointer. Both versions are read through the same
//! value: the parts the contract cares about (paths, operations,
//! responses, headers, media types, security) have the same shape in 3.0
//! and 3.1, and where they differ (how roles are named) [`operations`]
//! normalises them.
//!
//! Only local references (`#/...`) are followed; a remote reference is
//! left unresolved and reported, never fetched.

pub mod lint;
mod load;
mod model;

use std::collections::HashMap;

use serde_json::Value;

pub use load::LoadError;
pub use model::{
    Location, MediaType, Operation, Parameter, RequestBody, ResponseDecl, Security, operations,
};

/// How many `$ref` hops are followed before giving up (a cycle, or a chain
/// no real document has).
pub const MAX_REF_HOPS: usize = 32;

/// One OpenAPI document.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file as the user named it.
    pub file: String,
    /// The `openapi` field, e.g. `3.0.3` or `3.1.0`.
    pub version: String,
    pub root: Value,
    /// 1-based line of each node, by JSON pointer (`""` is the root).
    lines: HashMap<String, usize>,
}

impl Document {
    /// Reads and parses `path`.
    pub fn load(path: &str) -> Result<Document, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|e| LoadError::Io {
            file: path.to_owned(),
            message: e.to_string(),
        })?;
        Document::parse(path, &text)
    }

    /// Parses `text` (YAML or JSON); `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Document, LoadError> {
        load::parse(file, text)
    }

    /// True when `text` looks like an OpenAPI document (a top-level
    /// `openapi` key near the start), without parsing it all. Used to tell
    /// a spec from recorded traffic.
    pub fn sniff(text: &str) -> bool {
        load::sniff(text)
    }

    /// Major.minor of the document, e.g. `(3, 1)`.
    pub fn minor_version(&self) -> Option<(u32, u32)> {
        let mut parts = self.version.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    }

    /// The line of the node at `pointer`, or of its nearest ancestor that
    /// has one.
    pub fn line(&self, pointer: &str) -> Option<usize> {
        let mut p = pointer;
        loop {
            if let Some(line) = self.lines.get(p) {
                return Some(*line);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }

    /// Follows `value`'s local `$ref` chain. Returns the target and its
    /// pointer (`from` when `value` is not a reference). A reference that
    /// cannot be followed (remote, dangling, cyclic) yields `None`.
    pub fn resolve<'a>(&'a self, value: &'a Value, from: &str) -> Option<(&'a Value, String)> {
        let mut current = value;
        let mut pointer = from.to_owned();
        for _ in 0..MAX_REF_HOPS {
            let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
                return Some((current, pointer));
            };
            let target = reference.strip_prefix('#')?;
            let target = percent_decode(target);
            current = self.root.pointer(&target)?;
            pointer = target;
        }
        None
    }

    /// The first server URL, if the document declares one.
    pub fn server_url(&self) -> Option<&str> {
        self.root.pointer("/servers/0/url").and_then(Value::as_str)
    }
}

/// Escapes one JSON pointer token (RFC 6901).
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
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
    fn percent_escapes_in_refs_decode() {
        assert_eq!(percent_decode("/paths/~1a%7Bid%7D"), "/paths/~1a{id}");
        assert_eq!(percent_decode("/x%2"), "/x%2");
    }
}
