//! Reading OpenAPI documents as published: several files joined by
//! relative `$ref`s (with cycles), remote references left alone and what
//! they hide skipped, not judged as empty.

use std::path::{Path, PathBuf};

use candor_audit::CaseOutcome;
use candor_audit::openapi::lint::lint_document;
use candor_audit::openapi::{Declared, Document, LoadError, operations};
use serde_json::Value;
use tempfile::TempDir;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/read")
        .join(rel)
}

fn load(path: &Path) -> Document {
    Document::load(path.to_str().unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

fn write(dir: &TempDir, rel: &str, text: &str) -> PathBuf {
    let path = dir.path().join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn files_are_followed_from_the_folder_of_the_file_that_refers() {
    let doc = load(&fixture("multi/openapi.yaml"));
    assert_eq!(doc.file_count(), 6, "the root and five files, each once");
    let ops = operations(&doc);
    let labels: Vec<String> = ops.iter().map(|op| op.label()).collect();
    assert_eq!(
        labels,
        [
            "GET /users",
            "POST /users",
            "GET /users/{id}",
            "DELETE /users/{id}"
        ]
    );
    let post = &ops[1];
    assert!(
        doc.file_of(&post.pointer)
            .ends_with("multi/paths/users.yaml")
    );
    assert_eq!(doc.local_pointer(&post.pointer), "/post");
    // A response in the root file, reached from a file two folders down.
    let get_one = &ops[2];
    let unauthorized = get_one.response("401").unwrap();
    assert!(unauthorized.followed && unauthorized.has_header("www-authenticate"));
    assert_eq!(unauthorized.pointer, "/components/responses/Unauthorized");
    assert_eq!(get_one.parameters[0].name, "id");

    // User.json and Group.yaml refer to each other: resolving goes round
    // without end, one hop at a time.
    let schema = post.request_body.as_ref().unwrap().json().unwrap();
    let (user, at) = doc.resolve(schema.schema.as_ref().unwrap(), "").unwrap();
    assert!(doc.file_of(&at).ends_with("multi/schemas/User.json"));
    let group_ref = &user["properties"]["groups"]["items"];
    let (group, _) = doc.resolve(group_ref, &at).unwrap();
    assert_eq!(group["properties"]["name"]["type"], "string");
    let (again, _) = doc
        .resolve(&group["properties"]["members"]["items"], "")
        .unwrap();
    assert_eq!(again, user);
    assert_eq!(doc.line(&at), Some(1));
}

#[test]
fn what_a_remote_ref_hides_is_skipped_not_judged_as_empty() {
    let doc = load(&fixture("multi/openapi.yaml"));
    let ops = operations(&doc);
    let delete = &ops[3];
    let hidden = delete.unknown(&Declared::Response("401".into())).unwrap();
    assert_eq!(
        hidden.reference,
        "https://example.com/common.yaml#/responses/Unauthorized"
    );
    let linted = lint_document(&doc, &ops);
    let rules: Vec<&str> = linted.findings.iter().map(|l| l.finding.rule.id).collect();
    assert!(!rules.contains(&"spec.secured_without_401"), "{rules:?}");
    assert!(!rules.contains(&"spec.401_without_challenge"), "{rules:?}");
    let skipped: Vec<(&str, &str)> = linted
        .skipped
        .iter()
        .map(|c| (c.rule.id, c.subject.as_str()))
        .collect();
    assert!(skipped.contains(&(
        "spec.401_without_challenge",
        "DELETE /users/{id} 401 response"
    )));
    assert!(skipped.contains(&("spec.secured_without_401", "/remote (every operation)")));
    for case in &linted.skipped {
        let CaseOutcome::Skipped(why) = &case.outcome else {
            panic!("{case:?}")
        };
        assert!(why.contains("$ref"), "{why}");
    }
}

#[test]
fn an_operation_or_responses_behind_a_remote_ref_is_not_judged() {
    let dir = TempDir::new().unwrap();
    let root = write(
        &dir,
        "api.yaml",
        "openapi: 3.1.0
security: [{bearer: []}]
paths:
  /a:
    get: {$ref: 'https://example.com/ops.yaml#/getA'}
  /b:
    post:
      requestBody: {$ref: 'https://example.com/bodies.yaml#/B'}
      responses: {'201': {description: x, headers: {Location: {}}}, '401': {description: x, headers: {WWW-Authenticate: {}}}, '422': {description: x}}
  /c:
    get:
      responses: {$ref: './responses.yaml'}
",
    );
    write(
        &dir,
        "responses.yaml",
        "'200': {description: ok}\n'401': {description: x}\n",
    );
    let doc = load(&root);
    let ops = operations(&doc);
    assert_eq!(ops.len(), 3);
    let linted = lint_document(&doc, &ops);
    let found: Vec<(&str, String)> = linted
        .findings
        .iter()
        .map(|l| (l.finding.rule.id, format!("{}:{}", l.file, l.line.unwrap())))
        .collect();
    let responses = dir.path().join("responses.yaml").display().to_string();
    assert_eq!(
        found,
        [
            ("spec.unresolved_ref", format!("{}:5", root.display())),
            ("spec.unresolved_ref", format!("{}:8", root.display())),
            ("spec.401_without_challenge", format!("{responses}:2")),
        ],
        "no secured_without_401 for GET /a, no 422_without_400 for POST /b"
    );
    let skipped: Vec<(&str, &str)> = linted
        .skipped
        .iter()
        .map(|c| (c.rule.id, c.subject.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("spec.secured_without_401", "GET /a"),
            ("spec.only_200", "GET /a"),
            ("spec.422_without_400", "POST /b"),
        ]
    );
}

#[test]
fn a_missing_file_is_a_finding_and_a_broken_one_stops_the_load() {
    let dir = TempDir::new().unwrap();
    let root = write(
        &dir,
        "specs/api.json",
        r#"{"openapi": "3.0.3",
 "paths": {"/a": {"get": {"responses": {
   "200": {"$ref": "../shared/missing.yaml#/Ok"},
   "404": {"$ref": "/etc/absolute.yaml"}}}}}}"#,
    );
    let doc = load(&root);
    let findings = candor_audit::openapi::lint::lint(&doc);
    let messages: Vec<&str> = findings
        .iter()
        .map(|l| l.finding.message.as_str())
        .collect();
    assert_eq!(findings.len(), 2, "{messages:?}");
    assert!(
        messages[0].contains("shared/missing.yaml, which does not exist"),
        "{}",
        messages[0]
    );
    assert!(messages[1].contains("absolute path"), "{}", messages[1]);
    assert_eq!(findings[0].line, Some(3));

    write(&dir, "shared/missing.yaml", "Ok: {description: [\n");
    let err = Document::load(root.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, LoadError::Syntax { .. }), "{err}");
    assert!(
        err.to_string().contains("shared/missing.yaml:"),
        "the broken file is named: {err}"
    );
}

#[test]
fn key_order_and_minified_json_do_not_matter() {
    let sorted = load(&fixture("sorted.json"));
    assert_eq!(sorted.version, "3.1.0");
    assert_eq!(operations(&sorted).len(), 2);

    let minified = load(&fixture("minified.json"));
    let ops = operations(&minified);
    let labels: Vec<String> = ops.iter().map(|op| op.label()).collect();
    assert_eq!(labels, ["POST /zeta", "GET /alpha/{id}"], "document order");
    let ok = ops[1].response("200").unwrap();
    let description = minified
        .node(&format!("{}/description", ok.pointer))
        .and_then(Value::as_str);
    assert_eq!(description, Some("ok 😀"), "a surrogate pair escape reads");
    let zeta = minified.position(&ops[0].pointer).unwrap();
    let alpha = minified.position(&ops[1].pointer).unwrap();
    assert_eq!((zeta.line, alpha.line), (1, 1));
    assert!(zeta.column < alpha.column);
}

#[test]
fn empty_and_swagger_documents_are_refused() {
    let err = Document::load(fixture("empty.json").to_str().unwrap()).unwrap_err();
    assert!(matches!(err, LoadError::Empty { .. }), "{err}");
    let err = Document::load(fixture("swagger.json").to_str().unwrap()).unwrap_err();
    assert!(err.to_string().contains("swagger2openapi"), "{err}");
    assert!(err.to_string().contains("swagger.json:2:"), "{err}");
}
