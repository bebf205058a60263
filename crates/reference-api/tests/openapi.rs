//! `openapi.yaml` against the service: the document declares what the
//! contract asks of every response, every operation it declares is served,
//! and every operation served is declared.

use std::collections::BTreeSet;

use candor_contract::{PROBLEM_JSON, Problem};
use candor_reference_api::{Config, serve_with_shutdown};
use http::StatusCode;
use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

const SPEC: &str = include_str!("../openapi.yaml");

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The operations the router serves, outside the operator controls (`/-/`).
const SERVED: &[&str] = &[
    "POST /users",
    "GET /users/{id}",
    "DELETE /users/{id}",
    "POST /sessions",
    "GET /sessions/{id}",
    "DELETE /sessions/{id}",
    "GET /admin/reports",
    "POST /exports",
    "GET /exports/{id}",
];

fn scalar(s: &Scalar<'_>) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => json!(i),
        Scalar::FloatingPoint(f) => json!(f.into_inner()),
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

fn to_json(node: &Yaml<'_>) -> Value {
    match node {
        Yaml::Value(s) => scalar(s),
        Yaml::Representation(text, _, _) => Value::String(text.to_string()),
        Yaml::Tagged(_, inner) => to_json(inner),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Mapping(entries) => {
            let mut out = Map::new();
            for (key, value) in entries {
                let key = match to_json(key) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, to_json(value));
            }
            Value::Object(out)
        }
        Yaml::Alias(_) | Yaml::BadValue => panic!("openapi.yaml uses an alias or bad YAML"),
    }
}

/// The document as JSON, with local references followed on demand.
struct Spec {
    root: Value,
}

/// One operation, references in its responses followed.
struct Op<'a> {
    method: String,
    path: String,
    node: &'a Value,
    /// Status key -> (header names lower-cased, media types).
    responses: Vec<(String, Vec<String>, Vec<String>)>,
}

impl Op<'_> {
    fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn declares(&self, status: &str) -> bool {
        self.responses.iter().any(|(s, _, _)| s == status)
    }
}

impl Spec {
    fn load() -> Spec {
        let docs = Yaml::load_from_str(SPEC).unwrap();
        assert_eq!(docs.len(), 1);
        Spec {
            root: to_json(&docs[0]),
        }
    }

    fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        for _ in 0..8 {
            let Some(reference) = node.get("$ref").and_then(Value::as_str) else {
                return node;
            };
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("non-local $ref {reference}"));
            node = self
                .root
                .pointer(pointer)
                .unwrap_or_else(|| panic!("$ref {reference} does not resolve"));
        }
        panic!("$ref chain too long");
    }

    fn operations(&self) -> Vec<Op<'_>> {
        let mut out = Vec::new();
        let paths = self.root["paths"].as_object().unwrap();
        for (path, item) in paths {
            for method in METHODS {
                let Some(node) = item.get(method) else {
                    continue;
                };
                let mut responses = Vec::new();
                for (status, response) in node["responses"].as_object().unwrap() {
                    let response = self.resolve(response);
                    let headers = response
                        .get("headers")
                        .and_then(Value::as_object)
                        .map(|h| h.keys().map(|k| k.to_ascii_lowercase()).collect())
                        .unwrap_or_default();
                    let content = response
                        .get("content")
                        .and_then(Value::as_object)
                        .map(|c| c.keys().cloned().collect())
                        .unwrap_or_default();
                    responses.push((status.clone(), headers, content));
                }
                out.push(Op {
                    method: method.to_ascii_uppercase(),
                    path: path.clone(),
                    node,
                    responses,
                });
            }
        }
        out
    }
}

#[test]
fn the_document_declares_exactly_the_served_operations() {
    let spec = Spec::load();
    assert_eq!(spec.root["openapi"], "3.1.0");
    let declared: BTreeSet<String> = spec.operations().iter().map(Op::label).collect();
    let served: BTreeSet<String> = SERVED.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(declared, served);
}

#[test]
fn every_response_declares_what_the_contract_requires() {
    let spec = Spec::load();
    let mut problems = Vec::new();
    for op in spec.operations() {
        let label = op.label();
        let mut require = |ok: bool, what: String| {
            if !ok {
                problems.push(format!("{label}: {what}"));
            }
        };
        let secured = op
            .node
            .get("security")
            .and_then(Value::as_array)
            .is_some_and(|alternatives| !alternatives.is_empty());
        let has_roles = op.node.get("x-roles").is_some();
        require(
            op.responses.iter().any(|(s, _, _)| s.starts_with('2')),
            "no success response".into(),
        );
        require(op.declares("429"), "no 429".into());
        if secured {
            require(op.declares("401"), "secured without 401".into());
        }
        if has_roles {
            require(op.declares("403"), "roles without 403".into());
        }
        if op.node.get("requestBody").is_some() {
            for code in ["400", "415"] {
                require(op.declares(code), format!("a body without {code}"));
            }
        }
        for (status, headers, content) in &op.responses {
            let needs = match status.as_str() {
                "201" | "202" => Some("location"),
                "401" => Some("www-authenticate"),
                "405" => Some("allow"),
                "415" => Some("accept-post"),
                "429" => Some("retry-after"),
                _ => None,
            };
            if let Some(header) = needs {
                require(
                    headers.iter().any(|h| h == header),
                    format!("{status} without {header}"),
                );
            }
            if status == "204" {
                require(content.is_empty(), "204 with content".into());
            }
            if status.starts_with('4') || status.starts_with('5') {
                require(
                    !content.is_empty() && content.iter().all(|m| m == PROBLEM_JSON),
                    format!("{status} not only application/problem+json"),
                );
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn roles_are_declared_for_both_3_0_and_3_1_tools() {
    let spec = Spec::load();
    let get = &spec.root["paths"]["/admin/reports"]["get"];
    assert_eq!(get["security"], json!([{"bearer": ["admin"]}]));
    assert_eq!(get["x-roles"], json!(["admin"]));
    assert_eq!(
        spec.root["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

/// Every declared operation reaches its handler (neither a route.unknown
/// 404 nor a 405), and what it answers to a bare request is declared.
#[tokio::test]
async fn every_declared_operation_is_served() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_with_shutdown(
        listener,
        Config::in_memory(),
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let spec = Spec::load();
    for op in spec.operations() {
        let path = op.path.replace("{id}", "1");
        let method = http::Method::from_bytes(op.method.as_bytes()).unwrap();
        let reply = client
            .request(method, format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        let status = reply.status();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{}", op.label());
        assert!(
            op.declares(status.as_str()),
            "{} answered {status}, which it does not declare",
            op.label()
        );
        if status == StatusCode::NOT_FOUND {
            let problem = Problem::from_slice(&reply.bytes().await.unwrap()).unwrap();
            assert_eq!(problem.type_uri, "about:blank", "{}", op.label());
        }
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
