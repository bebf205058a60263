//! YAML (and so JSON) text to a [`Document`]: one value plus the line of
//! every node.

use std::collections::HashMap;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Number, Value};

use super::{Document, escape_token};

/// Deepest nesting accepted; deeper documents are refused rather than
/// risking the stack.
const MAX_DEPTH: usize = 128;

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
}

pub(super) fn sniff(text: &str) -> bool {
    let head = match text.char_indices().nth(4096) {
        Some((i, _)) => &text[..i],
        None => text,
    };
    head.lines().any(|line| {
        let line = line.trim_start_matches('\u{feff}');
        line.starts_with("openapi:")
            || line.starts_with("\"openapi\":")
            || line.trim_start().starts_with("{\"openapi\"")
            || (line.trim_start().starts_with("\"openapi\"") && line.contains(':'))
    })
}

pub(super) fn parse(file: &str, text: &str) -> Result<Document, LoadError> {
    let docs = MarkedYaml::load_from_str(text).map_err(|e| LoadError::Syntax {
        file: file.to_owned(),
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_owned(),
    })?;
    let invalid = |line: usize, message: String| LoadError::Invalid {
        file: file.to_owned(),
        line,
        message,
    };
    let node = match docs.as_slice() {
        [one] => one,
        [] => return Err(invalid(1, "the document is empty".to_owned())),
        [_, second, ..] => {
            return Err(invalid(
                second.span.start.line(),
                "more than one YAML document in the file".to_owned(),
            ));
        }
    };
    let mut lines = HashMap::new();
    let mut pointer = String::new();
    let root = convert(node, &mut pointer, &mut lines, 0).map_err(|(line, m)| invalid(line, m))?;
    let version = match root.get("openapi") {
        Some(Value::String(v)) => v.clone(),
        Some(other) => {
            return Err(invalid(
                lines.get("/openapi").copied().unwrap_or(1),
                format!("openapi: expected a version string such as \"3.1.0\", found {other}"),
            ));
        }
        None if root.get("swagger").is_some() => {
            return Err(invalid(
                lines.get("/swagger").copied().unwrap_or(1),
                "swagger: Swagger 2.0 is not supported; convert to OpenAPI 3".to_owned(),
            ));
        }
        None => {
            return Err(invalid(
                1,
                "openapi: missing; not an OpenAPI 3.0 or 3.1 document".to_owned(),
            ));
        }
    };
    if !(version.starts_with("3.0") || version.starts_with("3.1")) {
        return Err(invalid(
            lines.get("/openapi").copied().unwrap_or(1),
            format!("openapi: version {version:?} is not supported (3.0.x and 3.1.x are)"),
        ));
    }
    if !root.get("paths").is_none_or(Value::is_object) {
        return Err(invalid(
            lines.get("/paths").copied().unwrap_or(1),
            "paths: expected a mapping of path templates to path items".to_owned(),
        ));
    }
    Ok(Document {
        file: file.to_owned(),
        version,
        root,
        lines,
    })
}

/// Converts one node, recording its line under `pointer`.
fn convert(
    node: &MarkedYaml<'_>,
    pointer: &mut String,
    lines: &mut HashMap<String, usize>,
    depth: usize,
) -> Result<Value, (usize, String)> {
    let line = node.span.start.line();
    if depth > MAX_DEPTH {
        return Err((line, format!("nesting deeper than {MAX_DEPTH} levels")));
    }
    lines.insert(pointer.clone(), line);
    Ok(match &node.data {
        YamlData::Value(scalar) => scalar_value(scalar),
        YamlData::Representation(text, _, _) => Value::String(text.to_string()),
        YamlData::Tagged(_, inner) => convert(inner, pointer, lines, depth + 1)?,
        YamlData::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                out.push(convert(item, pointer, lines, depth + 1)?);
                pointer.truncate(len);
            }
            Value::Array(out)
        }
        YamlData::Mapping(entries) => {
            let mut out = Map::with_capacity(entries.len());
            for (key, value) in entries {
                let key_line = key.span.start.line();
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
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&escape_token(&key));
                let converted = convert(value, pointer, lines, depth + 1)?;
                // An entry is reported at its key, where a reader looks.
                lines.insert(pointer.clone(), key_line);
                pointer.truncate(len);
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

    #[test]
    fn sniff_tells_specs_from_traffic() {
        assert!(sniff(YAML));
        assert!(sniff("{\"openapi\":\"3.1.0\"}"));
        assert!(sniff("{\n  \"openapi\": \"3.1.0\"\n}"));
        assert!(!sniff("{\"request\":{\"method\":\"GET\"}}\n"));
        assert!(!sniff("{\"log\":{\"entries\":[]}}"));
    }
}
