//! Request bodies from JSON Schema: a valid one (the document's examples
//! first, then generated), and the invalid variants the body probes send.
//!
//! Generated values are unique per run and per body where uniqueness is
//! likely to matter (emails, user names, slugs, UUIDs, `x-unique`
//! properties), so a create does not collide with an earlier run; the
//! semantic-violation probe then repeats one body byte for byte.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};

use super::random::Random;
use crate::openapi::{Document, MAX_REF_HOPS};

/// How deep generation follows nested schemas before giving up (a
/// recursive schema, or one no real API has).
const MAX_DEPTH: usize = 8;
/// Most properties generated for one object.
const MAX_PROPERTIES: usize = 32;
/// Most items generated for one array.
const MAX_ITEMS: usize = 4;

/// Property names that usually have to be unique in a collection.
const UNIQUE_NAMES: [&str; 9] = [
    "email", "username", "login", "handle", "slug", "sku", "code", "key", "name",
];

/// Names that are a stronger hint of uniqueness than `name`: a repeated
/// create with them must conflict.
const STRONG_UNIQUE_NAMES: [&str; 8] = [
    "email", "username", "login", "handle", "slug", "sku", "code", "key",
];

/// Bodies for one run.
#[derive(Debug)]
pub struct BodyGen {
    doc: Arc<Document>,
    /// Short tag naming the run, in every generated unique value.
    tag: String,
    counter: AtomicU64,
    random: Arc<Random>,
}

impl BodyGen {
    pub fn new(doc: Arc<Document>, tag: impl Into<String>, random: Arc<Random>) -> Self {
        BodyGen {
            doc,
            tag: tag.into(),
            counter: AtomicU64::new(0),
            random,
        }
    }

    /// A schema-valid value: `example` (of the media type or of the schema)
    /// first, with likely-unique members made unique; otherwise generated.
    pub fn valid(&self, example: Option<&Value>, schema: Option<&Value>) -> Value {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let mut ctx = Ctx { n, depth: 0 };
        match example {
            Some(example) => {
                let mut value = example.clone();
                if let Some(schema) = schema {
                    self.uniquify(&mut value, schema, &mut ctx);
                }
                value
            }
            None => match schema {
                Some(schema) => self.generate(schema, None, &mut ctx),
                None => json!({}),
            },
        }
    }

    /// A value for one parameter: its example, else generated.
    pub fn parameter(&self, example: Option<&Value>, schema: Option<&Value>) -> Value {
        if let Some(example) = example {
            return example.clone();
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        match schema {
            Some(schema) => self.generate(schema, None, &mut Ctx { n, depth: 0 }),
            None => Value::String(format!("candor-{}", self.tag)),
        }
    }

    /// Whether a repeated create of this body must conflict. `Some(true)`:
    /// a property is marked `x-unique: true`, or, when no property says
    /// `x-unique` either way, one is unique by convention (`format: email`,
    /// or a name such as `email`, `username`, `slug`). `Some(false)`: the
    /// schema marks properties `x-unique: false` and none `true` (the email
    /// of a login, say), so a repeat may succeed. `None`: nothing says.
    pub fn has_unique_member(&self, schema: Option<&Value>) -> Option<bool> {
        let schema = schema.and_then(|s| self.object_view(s))?;
        let marks: Vec<Option<bool>> = schema
            .properties
            .iter()
            .map(|(_, prop)| self.resolve(prop).get("x-unique").and_then(Value::as_bool))
            .collect();
        if marks.iter().any(Option::is_some) {
            return Some(marks.contains(&Some(true)));
        }
        schema
            .properties
            .iter()
            .any(|(name, prop)| {
                let prop = self.resolve(prop);
                prop.get("format").and_then(Value::as_str) == Some("email")
                    || STRONG_UNIQUE_NAMES
                        .iter()
                        .any(|u| name.eq_ignore_ascii_case(u))
            })
            .then_some(true)
    }

    /// The valid body without one required member, and which.
    pub fn missing_required(
        &self,
        valid: &Value,
        schema: Option<&Value>,
    ) -> Option<(Value, String)> {
        let view = self.object_view(schema?)?;
        let object = valid.as_object()?;
        let name = view.required.iter().find(|r| object.contains_key(*r))?;
        let mut broken = object.clone();
        broken.remove(name);
        Some((
            Value::Object(broken),
            format!("required member `{name}` left out"),
        ))
    }

    /// The valid body with one member of the wrong JSON type (a required
    /// one first), or the whole body of the wrong type.
    pub fn wrong_type(&self, valid: &Value, schema: Option<&Value>) -> Option<(Value, String)> {
        let schema = schema?;
        if let (Some(view), Some(object)) = (self.object_view(schema), valid.as_object()) {
            let lookup = |r: &String| {
                view.properties
                    .iter()
                    .find(|(n, _)| n == r)
                    .map(|(n, p)| (n, *p))
            };
            let candidates = view
                .required
                .iter()
                .filter_map(lookup)
                .chain(view.properties.iter().map(|(n, p)| (n, *p)));
            for (name, prop) in candidates {
                if !object.contains_key(name) && !view.required.contains(name) {
                    continue;
                }
                if let Some(ty) = self.declared_type(prop) {
                    let mut broken = object.clone();
                    broken.insert(name.clone(), wrong_value(&ty));
                    return Some((
                        Value::Object(broken),
                        format!("member `{name}` is not of type {ty}"),
                    ));
                }
            }
            return None;
        }
        let ty = self.declared_type(schema)?;
        Some((wrong_value(&ty), format!("the body is not of type {ty}")))
    }

    /// `valid` cut in half, so that it is no longer JSON.
    pub fn truncated(valid: &[u8]) -> Vec<u8> {
        let mut cut = valid[..valid.len() / 2].to_vec();
        if cut.is_empty() || serde_json::from_slice::<serde::de::IgnoredAny>(&cut).is_ok() {
            cut = b"{\"candor\":".to_vec();
        }
        cut
    }

    fn resolve<'v>(&'v self, schema: &'v Value) -> &'v Value {
        static EMPTY: Value = Value::Null;
        match self.doc.resolve(schema, "") {
            Some((target, _)) => target,
            None => &EMPTY,
        }
    }

    /// The first JSON type a schema declares (3.0 `type: x`, 3.1 `type:
    /// [x, "null"]`), following `allOf`/`oneOf`/`anyOf` to their first arm.
    fn declared_type(&self, schema: &Value) -> Option<String> {
        let mut current = self.resolve(schema);
        for _ in 0..MAX_REF_HOPS {
            match current.get("type") {
                Some(Value::String(t)) if t != "null" => return Some(t.clone()),
                Some(Value::Array(list)) => {
                    return list
                        .iter()
                        .filter_map(Value::as_str)
                        .find(|t| *t != "null")
                        .map(str::to_owned);
                }
                _ => {}
            }
            if current.get("properties").is_some() {
                return Some("object".to_owned());
            }
            let arm = ["allOf", "oneOf", "anyOf"]
                .iter()
                .find_map(|k| current.get(*k).and_then(Value::as_array)?.first())?;
            current = self.resolve(arm);
        }
        None
    }

    /// The properties and required names of an object schema, with
    /// `allOf` arms merged and the first `oneOf`/`anyOf` arm taken.
    fn object_view<'s>(&'s self, schema: &'s Value) -> Option<ObjectView<'s>> {
        let mut view = ObjectView::default();
        self.collect_object(schema, &mut view, 0);
        (!view.properties.is_empty() || !view.required.is_empty()).then_some(view)
    }

    fn collect_object<'s>(&'s self, schema: &'s Value, view: &mut ObjectView<'s>, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let Some((schema, _)) = self.doc.resolve(schema, "") else {
            return;
        };
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                if !view.properties.iter().any(|(n, _)| n == name) {
                    view.properties.push((name.clone(), prop));
                }
            }
        }
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !view.required.iter().any(|q| q == r) {
                view.required.push(r.to_owned());
            }
        }
        for arm in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.collect_object(arm, view, depth + 1);
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(first) = schema
                .get(key)
                .and_then(Value::as_array)
                .and_then(|a| a.first())
            {
                self.collect_object(first, view, depth + 1);
            }
        }
    }

    fn generate(&self, schema: &Value, name: Option<&str>, ctx: &mut Ctx) -> Value {
        if ctx.depth > MAX_DEPTH {
            return Value::Null;
        }
        let schema = self.resolve(schema);
        if let Some(value) = schema.get("const") {
            return value.clone();
        }
        if let Some(first) = schema
            .get("enum")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return first.clone();
        }
        let example = schema
            .get("example")
            .or_else(|| {
                schema
                    .get("examples")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
            })
            .or_else(|| schema.get("default"));
        if let Some(example) = example {
            let mut value = example.clone();
            self.uniquify(&mut value, schema, ctx);
            if let (Some(name), Value::String(s)) = (name, &mut value)
                && is_unique_name(name)
                && plain_string(schema)
            {
                *s = self.unique_text(s, schema, ctx);
            }
            return value;
        }
        let Some(ty) = self.declared_type(schema) else {
            return Value::String(self.text_for(name, schema, ctx));
        };
        ctx.depth += 1;
        let value = match ty.as_str() {
            "object" => self.generate_object(schema, ctx),
            "array" => {
                let count = schema
                    .get("minItems")
                    .and_then(Value::as_u64)
                    .unwrap_or(1)
                    .clamp(1, MAX_ITEMS as u64);
                let items = schema.get("items").cloned().unwrap_or(json!({}));
                Value::Array(
                    (0..count)
                        .map(|_| self.generate(&items, None, ctx))
                        .collect(),
                )
            }
            "integer" => json!(integer_in(schema)),
            "number" => json!(integer_in(schema) as f64),
            "boolean" => Value::Bool(true),
            "null" => Value::Null,
            _ => Value::String(self.text_for(name, schema, ctx)),
        };
        ctx.depth -= 1;
        value
    }

    fn generate_object(&self, schema: &Value, ctx: &mut Ctx) -> Value {
        let view = self.object_view(schema).unwrap_or_default();
        let mut out = Map::new();
        let take_all = view.required.is_empty();
        for (name, prop) in view.properties.iter().take(MAX_PROPERTIES) {
            if take_all || view.required.contains(name) {
                let prop = self.resolve(prop);
                if prop.get("readOnly").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                out.insert(name.clone(), self.generate(prop, Some(name), ctx));
            }
        }
        // Required names with no declared schema still get a value.
        for name in &view.required {
            if !out.contains_key(name) {
                out.insert(name.clone(), Value::String(format!("candor-{}", self.tag)));
            }
        }
        Value::Object(out)
    }

    /// A string for `schema`: by format, else a unique tag, within the
    /// declared length bounds.
    fn text_for(&self, name: Option<&str>, schema: &Value, ctx: &Ctx) -> String {
        let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
        let n = ctx.n;
        let tag = &self.tag;
        let name_says_email = name.is_some_and(|n| n.eq_ignore_ascii_case("email"));
        let text = match format {
            "email" | "idn-email" => format!("candor-{tag}-{n}@example.com"),
            _ if name_says_email => format!("candor-{tag}-{n}@example.com"),
            "uuid" => self.random.uuid(),
            "date-time" => "2026-01-01T00:00:00Z".to_owned(),
            "date" => "2026-01-01".to_owned(),
            "time" => "12:00:00Z".to_owned(),
            "uri" | "url" | "iri" | "uri-reference" => {
                format!("https://example.com/candor-{tag}-{n}")
            }
            "hostname" | "idn-hostname" => format!("candor-{tag}-{n}.example.com"),
            "ipv4" => "192.0.2.1".to_owned(),
            "ipv6" => "2001:db8::1".to_owned(),
            "byte" => "Y2FuZG9y".to_owned(),
            "password" => format!("Candor-{tag}-{n}!"),
            _ => format!("candor-{tag}-{n}"),
        };
        fit_length(text, schema)
    }

    /// Makes the likely-unique members of an example unique to this body.
    fn uniquify(&self, value: &mut Value, schema: &Value, ctx: &mut Ctx) {
        if ctx.depth > MAX_DEPTH {
            return;
        }
        let Some(object) = value.as_object_mut() else {
            return;
        };
        let Some(view) = self.object_view(schema) else {
            return;
        };
        ctx.depth += 1;
        for (name, prop) in &view.properties {
            let prop = self.resolve(prop);
            let Some(member) = object.get_mut(name) else {
                continue;
            };
            let marked = prop.get("x-unique").and_then(Value::as_bool);
            match member {
                // `x-unique: false`: the example's value is meant as it is
                // (the account a login example names).
                Value::String(_) if marked == Some(false) => {}
                Value::String(s) => {
                    let format = prop.get("format").and_then(Value::as_str);
                    if format == Some("uuid") {
                        *s = self.random.uuid();
                    } else if (is_unique_name(name)
                        || format == Some("email")
                        || marked == Some(true))
                        && plain_string(prop)
                    {
                        *s = self.unique_text(s, prop, ctx);
                    }
                }
                Value::Object(_) => self.uniquify(member, prop, ctx),
                _ => {}
            }
        }
        ctx.depth -= 1;
    }

    /// `text` made unique to this body: `local+candor-TAG-N@domain` for an
    /// email, `text-TAG-N` otherwise; unchanged if that breaks `maxLength`.
    fn unique_text(&self, text: &str, schema: &Value, ctx: &Ctx) -> String {
        let suffix = format!("candor-{}-{}", self.tag, ctx.n);
        let candidate = match text.split_once('@') {
            Some((local, domain)) if !domain.is_empty() => {
                format!("{local}+{suffix}@{domain}")
            }
            _ => format!("{text}-{suffix}"),
        };
        let max = schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX);
        if candidate.chars().count() as u64 <= max {
            candidate
        } else {
            text.to_owned()
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Ctx {
    /// Number of the body being generated (unique within the run).
    n: u64,
    depth: usize,
}

#[derive(Debug, Default)]
struct ObjectView<'a> {
    properties: Vec<(String, &'a Value)>,
    required: Vec<String>,
}

fn is_unique_name(name: &str) -> bool {
    UNIQUE_NAMES.iter().any(|u| name.eq_ignore_ascii_case(u))
}

/// A string schema a suffix cannot break: no enum, pattern or format other
/// than email.
fn plain_string(schema: &Value) -> bool {
    schema.get("enum").is_none()
        && schema.get("const").is_none()
        && schema.get("pattern").is_none()
        && matches!(
            schema.get("format").and_then(Value::as_str),
            None | Some("email") | Some("idn-email")
        )
}

/// `text` padded or cut to the schema's `minLength`/`maxLength`; a cut
/// keeps the end, where the unique part is.
fn fit_length(mut text: String, schema: &Value) -> String {
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |m| m as usize);
    let len = text.chars().count();
    if len < min {
        text.extend(std::iter::repeat_n('x', (min - len).min(4096)));
    } else if len > max {
        text = text.chars().skip(len - max).collect();
    }
    text
}

/// An integer within `minimum`/`maximum` (exclusive bounds honoured),
/// preferring 1.
fn integer_in(schema: &Value) -> i64 {
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    let mut low = bound("minimum").map(|m| m.ceil() as i64);
    let mut high = bound("maximum").map(|m| m.floor() as i64);
    // 3.1: numbers; 3.0: booleans beside minimum/maximum.
    if let Some(m) = bound("exclusiveMinimum") {
        low = Some(m.floor() as i64 + 1);
    } else if schema.get("exclusiveMinimum") == Some(&Value::Bool(true)) {
        low = low.map(|l| l.saturating_add(1));
    }
    if let Some(m) = bound("exclusiveMaximum") {
        high = Some(m.ceil() as i64 - 1);
    } else if schema.get("exclusiveMaximum") == Some(&Value::Bool(true)) {
        high = high.map(|h| h.saturating_sub(1));
    }
    let mut value = 1;
    if let Some(low) = low {
        value = value.max(low);
    }
    if let Some(high) = high {
        value = value.min(high);
    }
    value
}

/// A value that is not of JSON type `ty`.
fn wrong_value(ty: &str) -> Value {
    match ty {
        "string" => json!(12345),
        "integer" | "number" => json!("candor-not-a-number"),
        "boolean" => json!("candor-not-a-boolean"),
        "array" => json!("candor-not-an-array"),
        "object" => json!("candor-not-an-object"),
        _ => json!({"candor": "wrong type"}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r##"
openapi: 3.1.0
info: {title: t, version: '1'}
paths: {}
components:
  schemas:
    User:
      type: object
      required: [email, name, role]
      properties:
        id: {type: integer, readOnly: true}
        email: {type: string, format: email}
        name: {type: string, minLength: 2, maxLength: 40}
        role: {type: string, enum: [member, admin]}
        age: {type: integer, minimum: 18}
        tags: {type: array, items: {type: string}}
    Wrapped:
      allOf:
        - $ref: '#/components/schemas/User'
        - type: object
          required: [team]
          properties:
            team: {type: string, format: uuid}
    Tree:
      type: object
      required: [child]
      properties:
        child: {$ref: '#/components/schemas/Tree'}
"##;

    fn doc() -> Document {
        Document::parse("t.yaml", DOC).unwrap()
    }

    fn schema(name: &str) -> Value {
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    #[test]
    fn generated_bodies_hold_required_members_and_are_unique() {
        let doc = doc();
        let bodies = BodyGen::new(Arc::new(doc), "t1", Arc::new(Random::seeded(1)));
        let a = bodies.valid(None, Some(&schema("User")));
        let b = bodies.valid(None, Some(&schema("User")));
        assert_eq!(a["role"], "member");
        assert!(a.get("id").is_none() && a.get("age").is_none());
        let email = a["email"].as_str().unwrap();
        assert!(
            email.ends_with("@example.com") && email.contains("t1"),
            "{email}"
        );
        assert_ne!(a["email"], b["email"]);
        assert_eq!(bodies.has_unique_member(Some(&schema("User"))), Some(true));

        let wrapped = bodies.valid(None, Some(&schema("Wrapped")));
        assert_eq!(wrapped["team"].as_str().unwrap().len(), 36);
        assert!(wrapped.get("email").is_some());

        // A recursive schema ends.
        let tree = bodies.valid(None, Some(&schema("Tree")));
        assert!(tree["child"]["child"].is_object());
    }

    #[test]
    fn x_unique_false_keeps_an_example_as_written_and_turns_the_guess_off() {
        let doc = Document::parse(
            "t.yaml",
            "openapi: 3.1.0
paths: {}
components:
  schemas:
    Login:
      type: object
      required: [email, password]
      properties:
        email: {type: string, format: email, x-unique: false}
        password: {type: string}
",
        )
        .unwrap();
        let bodies = BodyGen::new(Arc::new(doc), "t1", Arc::new(Random::seeded(1)));
        let login = schema("Login");
        let example = json!({"email": "demo@example.com", "password": "pw"});
        assert_eq!(bodies.valid(Some(&example), Some(&login)), example);
        assert_eq!(bodies.has_unique_member(Some(&login)), Some(false));
    }

    #[test]
    fn examples_come_first_with_unique_members_made_unique() {
        let doc = doc();
        let bodies = BodyGen::new(Arc::new(doc), "t1", Arc::new(Random::seeded(1)));
        let example = json!({"email": "ada@example.com", "name": "Ada", "role": "admin"});
        let body = bodies.valid(Some(&example), Some(&schema("User")));
        assert_eq!(body["role"], "admin");
        assert_eq!(body["email"], "ada+candor-t1-1@example.com");
        assert_eq!(body["name"], "Ada-candor-t1-1");
    }

    #[test]
    fn invalid_variants_break_one_thing() {
        let doc = doc();
        let bodies = BodyGen::new(Arc::new(doc), "t1", Arc::new(Random::seeded(1)));
        let user = schema("User");
        let valid = bodies.valid(None, Some(&user));
        let (missing, why) = bodies.missing_required(&valid, Some(&user)).unwrap();
        assert!(missing.get("email").is_none(), "{why}");
        let (wrong, why) = bodies.wrong_type(&valid, Some(&user)).unwrap();
        assert_eq!(wrong["email"], 12345, "{why}");
        let bytes = serde_json::to_vec(&valid).unwrap();
        let cut = BodyGen::truncated(&bytes);
        assert!(serde_json::from_slice::<Value>(&cut).is_err());
        assert!(serde_json::from_slice::<Value>(&BodyGen::truncated(b"12")).is_err());
        assert!(bodies.missing_required(&json!([1]), Some(&user)).is_none());
    }

    #[test]
    fn numbers_respect_bounds() {
        assert_eq!(integer_in(&json!({"minimum": 18})), 18);
        assert_eq!(integer_in(&json!({"maximum": 0})), 0);
        assert_eq!(integer_in(&json!({"exclusiveMinimum": 5})), 6);
        assert_eq!(
            integer_in(&json!({"minimum": 5, "exclusiveMinimum": true})),
            6
        );
        assert_eq!(fit_length("abcdef".into(), &json!({"maxLength": 3})), "def");
        assert_eq!(fit_length("a".into(), &json!({"minLength": 3})), "axx");
    }
}
