//! Request body validation for routes with a `request_schema`: the body.media,
//! body.malformed, body.schema and body.too_large rows, checked before forwarding.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::body::{ClientBodyError, LimitedIncoming};
use crate::error::GatewayError;

/// The media type schema routes take, sent as Accept-Post / Accept-Patch.
const ACCEPT: &str = "application/json";

/// At most this many violations are listed; beyond, one last entry says
/// that more were found, so a huge invalid array cannot make a huge answer.
const MAX_LISTED_VIOLATIONS: usize = 100;

/// At most this many characters of an unsupported Content-Type are echoed.
const MAX_SHOWN_MEDIA_TYPE: usize = 100;

/// A route's request schema, compiled once when the route table is built.
pub struct Schema {
    validator: jsonschema::Validator,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema")
            .field("draft", &self.validator.draft())
            .finish_non_exhaustive()
    }
}

impl Schema {
    /// Compiles `doc`: draft 2020-12 unless its `$schema` names another
    /// draft, `format` asserted (an unknown format is refused), and no
    /// retriever, so a `$ref` outside the document fails here instead of
    /// being fetched.
    pub fn compile(path: &Path, json: &Value) -> Result<Schema, String> {
        let validator = jsonschema::options()
            .offline()
            .should_validate_formats(true)
            .should_ignore_unknown_formats(false)
            .build(json)
            .map_err(|e| {
                let at = e.instance_path().as_str();
                let at = if at.is_empty() {
                    String::new()
                } else {
                    format!(" (at {at})")
                };
                format!(
                    "{:?} is not a usable JSON Schema: {}{at}",
                    path.display().to_string(),
                    e
                )
            })?;
        Ok(Schema { validator })
    }

    /// Every violation of `instance`, as (JSON Pointer, message), up to
    /// [`MAX_LISTED_VIOLATIONS`] plus one entry saying more were found.
    ///
    /// Pointers follow RFC 6901: `""` is the whole document, `/items/0` the
    /// first element of `items`. A missing required member points at the
    /// object that lacks it; the message names the member.
    fn violations(&self, instance: &Value) -> Vec<(String, String)> {
        let mut errors: Vec<(String, String)> = self
            .validator
            .iter_errors(instance)
            .take(MAX_LISTED_VIOLATIONS + 1)
            .map(|e| {
                (
                    e.instance_path().as_str().to_owned(),
                    e.masked_with("the value").to_string(),
                )
            })
            .collect();
        if errors.len() > MAX_LISTED_VIOLATIONS {
            errors.truncate(MAX_LISTED_VIOLATIONS);
            errors.push((
                String::new(),
                format!(
                    "more violations were found; only the first {MAX_LISTED_VIOLATIONS} are listed"
                ),
            ));
        }
        errors
    }
}

/// Reads and checks the body of a request to a route with a schema, and
/// returns it unchanged for forwarding.
///
/// In precedence order: a body that is not JSON by its Content-Type is
/// refused before any byte is read (415); the body is then read up to
/// `max_body_bytes` (413), each wait for the client at most `body_timeout`
/// (408), parsed (400 body.malformed, with the position; an empty body,
/// duplicate member names, a body cut short or with broken chunked framing
/// are malformed too) and validated (400 body.schema, every violation). A
/// GET, HEAD, DELETE, OPTIONS or TRACE request without a body passes
/// untouched.
pub async fn read_valid_body(
    method: &Method,
    content_type: Option<&HeaderValue>,
    body: Incoming,
    schema: &Schema,
    max_body_bytes: u64,
    body_timeout: Duration,
) -> Result<Bytes, GatewayError> {
    if !to_validate(method, content_type, body.is_end_stream())? {
        return Ok(Bytes::new());
    }

    let body = LimitedIncoming::new(body, max_body_bytes, body_timeout);
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return Err(match e.downcast::<ClientBodyError>() {
                Ok(e) => GatewayError::from(*e),
                Err(e) => GatewayError::Internal {
                    detail: e.to_string(),
                },
            });
        }
    };

    check(&bytes, schema)?;
    Ok(bytes)
}

/// Methods whose requests carry a body by definition; the others are
/// validated only when they do carry one.
/// What is known before a body is read: whether it is validated (not an
/// empty body of a method that takes none), and if so that its media type
/// is JSON (`body.media` otherwise).
pub(crate) fn to_validate(
    method: &Method,
    content_type: Option<&HeaderValue>,
    empty: bool,
) -> Result<bool, GatewayError> {
    if empty && !expects_body(method) {
        return Ok(false);
    }
    match content_type {
        Some(value) if is_json(value) => Ok(true),
        other => Err(GatewayError::UnsupportedMedia {
            found: other.map_or_else(|| "none".to_owned(), shown_media_type),
            accept: ACCEPT,
            method: method.clone(),
        }),
    }
}

/// A whole body against the schema: `body.malformed` or `body.schema`.
pub(crate) fn check(bytes: &[u8], schema: &Schema) -> Result<(), GatewayError> {
    let instance = parse(bytes)?;
    let errors = schema.violations(&instance);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(GatewayError::SchemaViolation { errors })
    }
}

fn expects_body(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// `application/json` or any `+json` type (RFC 6839), any parameters, but
/// a `charset` other than UTF-8 is refused: JSON text is UTF-8 (RFC 8259).
fn is_json(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    if !token(kind) || !token(subtype) {
        return false;
    }
    let subtype = subtype.to_ascii_lowercase();
    let json = (kind.eq_ignore_ascii_case("application") && subtype == "json")
        || (subtype.len() > "+json".len() && subtype.ends_with("+json"));
    json && parts.all(|param| match param.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            let charset = value.trim().trim_matches('"');
            charset.eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    })
}

/// The Content-Type as received, for the problem detail, cut short.
fn shown_media_type(value: &HeaderValue) -> String {
    let text = String::from_utf8_lossy(value.as_bytes());
    match text.char_indices().nth(MAX_SHOWN_MEDIA_TYPE) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.into_owned(),
    }
}

/// Parses JSON text, refusing duplicate member names: parsers disagree on
/// which duplicate wins, so the upstream could read a value other than the
/// one validated.
fn parse(bytes: &[u8]) -> Result<Value, GatewayError> {
    match serde_json::from_slice::<Unique>(bytes) {
        Ok(Unique(value)) => Ok(value),
        Err(e) => {
            let (line, column) = (e.line(), e.column());
            let text = e.to_string();
            let suffix = format!(" at line {line} column {column}");
            let message = match text.strip_suffix(&suffix) {
                Some(message) => message.to_owned(),
                None => text,
            };
            Err(GatewayError::MalformedBody {
                message,
                line,
                column,
            })
        }
    }
}

/// A JSON value whose objects have no duplicate member names.
struct Unique(Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(de::Error::custom(format_args!(
                    "duplicate member name {name:?}"
                )));
            }
            let Unique(value) = map.next_value()?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &'static str) -> bool {
        is_json(&HeaderValue::from_static(text))
    }

    #[test]
    fn json_media_types_are_application_json_and_plus_json() {
        assert!(json("application/json"));
        assert!(json("Application/JSON"));
        assert!(json("application/json; charset=utf-8"));
        assert!(json("application/json;charset=\"UTF-8\""));
        assert!(json("application/merge-patch+json"));
        assert!(json("application/vnd.api+json; version=2"));
        assert!(json("application/json;"));
    }

    #[test]
    fn other_media_types_are_not_json() {
        assert!(!json("text/plain"));
        assert!(!json("application/x-www-form-urlencoded"));
        assert!(!json("application/jsonx"));
        assert!(!json("application/+json"));
        assert!(!json("json"));
        assert!(!json("application/json/x"));
        assert!(!json("application/json; charset=latin1"));
        assert!(!json(""));
    }

    #[test]
    fn duplicate_member_names_are_malformed_with_a_position() {
        let Err(GatewayError::MalformedBody {
            message,
            line,
            column,
        }) = parse(b"{\"a\": 1,\n \"b\": {\"c\": 1, \"c\": 2}}")
        else {
            panic!("duplicate accepted");
        };
        assert_eq!(message, "duplicate member name \"c\"");
        assert_eq!((line, column), (2, 18));
        assert!(parse(br#"{"a": {"c": 1}, "b": {"c": 2}}"#).is_ok());
    }

    #[test]
    fn violations_past_the_cap_are_summed_up_in_one_last_entry() {
        let doc = crate::config::SchemaDoc {
            path: "strings.json".into(),
            json: serde_json::json!({"items": {"type": "string"}}),
        };
        let schema = Schema::compile(&doc.path, &doc.json).unwrap_or_else(|e| panic!("{e}"));
        let few = schema.violations(&Value::from(vec![1; 3]));
        assert_eq!(few.len(), 3);
        assert_eq!(few[2].0, "/2");
        let many = schema.violations(&Value::from(vec![1; 500]));
        assert_eq!(many.len(), MAX_LISTED_VIOLATIONS + 1);
        assert_eq!(many[MAX_LISTED_VIOLATIONS - 1].0, "/99");
        assert_eq!(many[MAX_LISTED_VIOLATIONS].0, "");
        assert!(many[MAX_LISTED_VIOLATIONS].1.contains("first 100"));
    }

    #[test]
    fn an_empty_body_is_malformed_at_its_start() {
        let Err(GatewayError::MalformedBody {
            message,
            line,
            column,
        }) = parse(b"")
        else {
            panic!("empty body accepted");
        };
        assert_eq!(message, "EOF while parsing a value");
        assert_eq!((line, column), (1, 0));
    }

    #[test]
    fn values_parse_as_serde_json_does() {
        let text = br#"{"n": -1, "u": 18446744073709551615, "f": 1.5, "s": "\u00e9", "z": null, "a": [true, []]}"#;
        let strict = parse(text).unwrap_or_else(|e| panic!("{e}"));
        let plain: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(strict, plain);
    }
}
