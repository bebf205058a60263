//! Where a probe's request goes: the base URL joined with a path template
//! whose parameters come from ids this run created, else from the
//! document's examples, else from the parameter's schema.
//!
//! Created ids are keyed by the item path with parameter names erased
//! (`/users/{}`), so `/users/{id}` and `/users/{userId}/posts` share the id
//! a `POST /users` returned.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use super::body::BodyGen;
use super::random::Random;
use crate::openapi::{Location, Operation, Parameter};

/// Most ids remembered per collection.
const MAX_IDS_PER_KEY: usize = 8;

/// `/users/{id}/posts/{postId}` as `/users/{}/posts/{}`.
pub fn erase_names(template: &str) -> String {
    template
        .split('/')
        .map(|seg| if is_param(seg) { "{}" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// True for a whole-segment template parameter, `{id}`.
pub fn is_param(segment: &str) -> bool {
    segment.len() > 2 && segment.starts_with('{') && segment.ends_with('}')
}

/// The parameter names of a template, in order.
pub fn param_names(template: &str) -> Vec<&str> {
    template
        .split('/')
        .filter(|s| is_param(s))
        .map(|s| &s[1..s.len() - 1])
        .collect()
}

/// The item key a create on `collection` fills: `/users` -> `/users/{}`.
pub fn item_key(collection: &str) -> String {
    format!("{}/{{}}", erase_names(collection.trim_end_matches('/')))
}

/// Ids the API returned on create, per item key.
#[derive(Debug, Default)]
pub struct CreatedIds {
    ids: Mutex<HashMap<String, Vec<String>>>,
}

impl CreatedIds {
    pub fn record(&self, key: &str, id: String) {
        if let Ok(mut ids) = self.ids.lock() {
            let list = ids.entry(key.to_owned()).or_default();
            if list.len() < MAX_IDS_PER_KEY && !list.contains(&id) {
                list.push(id);
            }
        }
    }

    /// The first id created under `key`.
    pub fn first(&self, key: &str) -> Option<String> {
        self.ids.lock().ok()?.get(key)?.first().cloned()
    }

    /// Takes the last id created under `key` (so that it is deleted only
    /// once).
    pub fn take_last(&self, key: &str) -> Option<String> {
        self.ids.lock().ok()?.get_mut(key)?.pop()
    }
}

/// A path with its parameters filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filled {
    /// The path, percent-encoded, starting with `/`.
    pub path: String,
    /// True when every parameter came from a resource this run created.
    pub all_created: bool,
    /// Parameters that had neither a created id nor an example (their
    /// value was generated from the schema, so the resource may not exist).
    pub guessed: Vec<String>,
}

/// Fills the path parameters of `op`. `last` replaces the value of the
/// last parameter (the unknown-id probe).
pub fn fill_path(op: &Operation, ids: &CreatedIds, bodies: &BodyGen, last: Option<&str>) -> Filled {
    let segments: Vec<&str> = op.path.split('/').collect();
    let params = segments.iter().filter(|s| is_param(s)).count();
    let mut seen = 0;
    let mut out = Vec::with_capacity(segments.len());
    let mut all_created = true;
    let mut guessed = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        if !is_param(seg) {
            out.push(fill_inline(seg, op, bodies));
            continue;
        }
        seen += 1;
        let name = &seg[1..seg.len() - 1];
        if seen == params
            && let Some(value) = last
        {
            out.push(encode_segment(value));
            continue;
        }
        let key = erase_names(&segments[..=i].join("/"));
        let value = match ids.first(&key) {
            Some(id) => id,
            None => {
                all_created = false;
                let param = path_param(op, name);
                let example = param.and_then(|p| p.example.as_ref());
                if example.is_none() {
                    guessed.push(name.to_owned());
                }
                scalar(&bodies.parameter(example, param.and_then(|p| p.schema.as_ref())))
            }
        };
        out.push(encode_segment(&value));
    }
    Filled {
        path: out.join("/"),
        all_created,
        guessed,
    }
}

/// A segment with parameters inside it (`{name}.json`): each filled from
/// its example or schema. Such parameters never hold created ids.
fn fill_inline(segment: &str, op: &Operation, bodies: &BodyGen) -> String {
    let mut out = String::new();
    let mut rest = segment;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        out.push_str(&encode_segment(&rest[..open]));
        let name = &rest[open + 1..close];
        let param = path_param(op, name);
        let value = bodies.parameter(
            param.and_then(|p| p.example.as_ref()),
            param.and_then(|p| p.schema.as_ref()),
        );
        out.push_str(&encode_segment(&scalar(&value)));
        rest = &rest[close + 1..];
    }
    out.push_str(&encode_segment(rest));
    out
}

fn path_param<'o>(op: &'o Operation, name: &str) -> Option<&'o Parameter> {
    op.parameters
        .iter()
        .find(|p| p.location == Location::Path && p.name == name)
}

/// The last path parameter of `op`, if any.
pub fn last_path_param(op: &Operation) -> Option<&Parameter> {
    let name = *param_names(&op.path).last()?;
    path_param(op, name)
}

/// The required query string (`?a=1&b=x`), empty when none.
pub fn query(op: &Operation, bodies: &BodyGen) -> String {
    let mut pairs = Vec::new();
    for p in op
        .parameters
        .iter()
        .filter(|p| p.location == Location::Query && p.required)
    {
        let value = bodies.parameter(p.example.as_ref(), p.schema.as_ref());
        match value {
            Value::Array(items) => {
                for item in items.iter().take(4) {
                    pairs.push(format!(
                        "{}={}",
                        encode_component(&p.name),
                        encode_component(&scalar(item))
                    ));
                }
            }
            other => pairs.push(format!(
                "{}={}",
                encode_component(&p.name),
                encode_component(&scalar(&other))
            )),
        }
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

/// Required header parameters other than the ones the probes set.
pub fn headers(op: &Operation, bodies: &BodyGen) -> Vec<(String, String)> {
    const OWN: [&str; 3] = ["authorization", "content-type", "accept"];
    op.parameters
        .iter()
        .filter(|p| p.location == Location::Header && p.required)
        .filter(|p| !OWN.iter().any(|o| p.name.eq_ignore_ascii_case(o)))
        .filter_map(|p| {
            let value = scalar(&bodies.parameter(p.example.as_ref(), p.schema.as_ref()));
            http::HeaderValue::from_str(&value)
                .is_ok()
                .then(|| (p.name.clone(), value))
        })
        .collect()
}

/// A JSON value as a path or query value.
pub fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A well-formed id that no resource has: the same shape as the
/// parameter's example or schema (a large integer, a fresh UUID, a numeric
/// string, or a tagged string).
pub fn unknown_id(param: Option<&Parameter>, random: &Random) -> String {
    let schema = param.and_then(|p| p.schema.as_ref());
    let example = param.and_then(|p| p.example.as_ref());
    let ty = schema
        .and_then(|s| s.get("type"))
        .and_then(|t| match t {
            Value::String(s) => Some(s.as_str()),
            Value::Array(list) => list.iter().filter_map(Value::as_str).find(|t| *t != "null"),
            _ => None,
        })
        .or(match example {
            Some(Value::Number(_)) => Some("integer"),
            _ => None,
        });
    let format = schema
        .and_then(|s| s.get("format"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let large = 900_000_000 + random.next_u64() % 99_000_000;
    if matches!(ty, Some("integer") | Some("number")) {
        let max = schema
            .and_then(|s| s.get("maximum"))
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX);
        return large.min(max).to_string();
    }
    let example_text = example.and_then(Value::as_str).unwrap_or("");
    if format == "uuid" || looks_like_uuid(example_text) {
        return random.uuid();
    }
    if !example_text.is_empty() && example_text.bytes().all(|b| b.is_ascii_digit()) {
        return large.to_string();
    }
    let text = format!("candor-missing-{}", random.hex(12));
    match schema
        .and_then(|s| s.get("maxLength"))
        .and_then(Value::as_u64)
    {
        Some(max) if (max as usize) < text.len() && max >= 8 => {
            text[text.len() - max as usize..].to_owned()
        }
        _ => text,
    }
}

fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Percent-encodes a path segment (everything but RFC 3986 unreserved and
/// a few sub-delims).
pub fn encode_segment(s: &str) -> String {
    encode(s, b"-._~!$&'()*+,;=:@")
}

fn encode_component(s: &str) -> String {
    encode(s, b"-._~")
}

fn encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The id a create response names: the segment of `Location` after the
/// collection's path, else the body member named like the item parameter,
/// else `id` (also one level down, under `data`).
pub fn created_id(
    request_url: &str,
    location: Option<&str>,
    body: &[u8],
    param: Option<&str>,
) -> Option<String> {
    if let Some(location) = location
        && let Some(id) = id_from_location(request_url, location)
    {
        return Some(id);
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    let names: Vec<&str> = param.into_iter().chain(["id", "uuid"]).collect();
    for object in [Some(&value), value.get("data")].into_iter().flatten() {
        for name in &names {
            match object.get(*name) {
                Some(Value::String(s)) if !s.is_empty() => return Some(s.clone()),
                Some(Value::Number(n)) => return Some(n.to_string()),
                _ => {}
            }
        }
    }
    None
}

fn id_from_location(request_url: &str, location: &str) -> Option<String> {
    let base = url::Url::parse(request_url).ok()?;
    let target = base.join(location).ok()?;
    let collection = base.path().trim_end_matches('/');
    let path = target.path();
    let rest = path.strip_prefix(collection)?.strip_prefix('/')?;
    let id = rest.split('/').next().filter(|s| !s.is_empty())?;
    Some(crate::openapi::percent_decode(id))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::openapi::{Document, operations};

    #[test]
    fn templates_erase_and_key() {
        assert_eq!(
            erase_names("/users/{id}/posts/{postId}"),
            "/users/{}/posts/{}"
        );
        assert_eq!(item_key("/users/{userId}/posts"), "/users/{}/posts/{}");
        assert_eq!(item_key("/users/"), "/users/{}");
        assert_eq!(param_names("/a/{x}/b/{y}"), ["x", "y"]);
    }

    #[test]
    fn paths_fill_from_created_ids_then_examples() {
        let doc = Document::parse(
            "t.yaml",
            r#"
openapi: 3.0.3
info: {title: t, version: '1'}
paths:
  /users/{id}/posts/{postId}:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer}, example: 7}
        - {name: postId, in: path, required: true, schema: {type: string}}
        - {name: q, in: query, required: true, schema: {type: string}, example: "a b"}
      responses: {'200': {description: ok}}
"#,
        )
        .unwrap();
        let op = &operations(&doc)[0];
        let bodies = BodyGen::new(
            std::sync::Arc::new(doc),
            "t",
            std::sync::Arc::new(Random::seeded(3)),
        );
        let ids = CreatedIds::default();
        let filled = fill_path(op, &ids, &bodies, None);
        assert!(
            filled.path.starts_with("/users/7/posts/candor-"),
            "{}",
            filled.path
        );
        assert!(!filled.all_created);
        assert_eq!(filled.guessed, ["postId"]);
        ids.record("/users/{}", "u 1".into());
        ids.record("/users/{}/posts/{}", "p1".into());
        let filled = fill_path(op, &ids, &bodies, None);
        assert_eq!(filled.path, "/users/u%201/posts/p1");
        assert!(filled.all_created);
        let filled = fill_path(op, &ids, &bodies, Some("x"));
        assert_eq!(filled.path, "/users/u%201/posts/x");
        assert_eq!(query(op, &bodies), "?q=a%20b");
        let mut inline = op.clone();
        inline.path = "/files/{id}.json".into();
        assert_eq!(
            fill_path(&inline, &ids, &bodies, None).path,
            "/files/7.json"
        );
        assert_eq!(ids.take_last("/users/{}"), Some("u 1".into()));
        assert_eq!(ids.first("/users/{}"), None);
    }

    #[test]
    fn unknown_ids_keep_the_shape() {
        let random = Random::seeded(5);
        let param = |schema: Value, example: Option<Value>| Parameter {
            name: "id".into(),
            location: Location::Path,
            required: true,
            schema: Some(schema),
            example,
            pointer: String::new(),
        };
        let n = unknown_id(Some(&param(json!({"type": "integer"}), None)), &random);
        assert!(n.parse::<u64>().unwrap() >= 900_000_000);
        let u = unknown_id(
            Some(&param(json!({"type": "string", "format": "uuid"}), None)),
            &random,
        );
        assert!(looks_like_uuid(&u), "{u}");
        let d = unknown_id(
            Some(&param(json!({"type": "string"}), Some(json!("42")))),
            &random,
        );
        assert!(d.bytes().all(|b| b.is_ascii_digit()));
        let s = unknown_id(None, &random);
        assert!(s.starts_with("candor-missing-"));
    }

    #[test]
    fn created_ids_come_from_location_or_body() {
        let url = "http://h/v1/users";
        assert_eq!(
            created_id(url, Some("/v1/users/42"), b"", None),
            Some("42".into())
        );
        assert_eq!(
            created_id(url, Some("http://h/v1/users/a%20b/"), b"", None),
            Some("a b".into())
        );
        assert_eq!(
            created_id(
                url,
                Some("/elsewhere/9"),
                br#"{"userId":"u9"}"#,
                Some("userId")
            ),
            Some("u9".into())
        );
        assert_eq!(
            created_id(url, None, br#"{"data":{"id":3}}"#, None),
            Some("3".into())
        );
        assert_eq!(created_id(url, None, b"not json", None), None);
    }
}
