//! One finding per cause: a gap that comes from one place (a shared
//! component, a security scheme, a pattern the whole document repeats) is
//! reported once there with the operations it affects; `--expand` gives one
//! per operation; one gap on one operation is one finding; roles follow
//! OpenAPI's security semantics; a 1,000-operation table fits on a screen.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use candor_audit::openapi::lint::{Grouping, lint_grouped};
use candor_audit::openapi::{Document, operations};
use candor_audit::report::{self, Format};
use candor_audit::{Located, Summary};
use serde_json::Value;

fn lint(text: &str, grouping: Grouping) -> Vec<Located> {
    let doc = Document::parse("api.yaml", text).unwrap_or_else(|e| panic!("{e}"));
    lint_grouped(&doc, &operations(&doc), grouping).findings
}

/// `rule@line` for each finding, in order.
fn ids(findings: &[Located]) -> Vec<String> {
    findings
        .iter()
        .map(|l| format!("{}@{}", l.finding.rule.id, l.line.unwrap_or(0)))
        .collect()
}

/// The line (1-based) of the first line of `text` that holds `needle`
/// after line `after`.
fn line_of(text: &str, needle: &str, after: usize) -> usize {
    text.lines()
        .enumerate()
        .skip(after)
        .find(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not found after line {after}"))
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What report `format` prints for `findings` over `exchanges` operations.
fn render(format: Format, findings: &[Located], exchanges: u64) -> String {
    let out = Shared::default();
    let mut sink = report::sink(format, Box::new(out.clone()));
    let mut summary = Summary {
        exchanges,
        ..Summary::default()
    };
    for located in findings {
        summary.count(located.finding.severity);
        sink.finding(located).unwrap();
    }
    sink.finish(&summary).unwrap();
    let bytes = out.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

/// `n` operations secured by one scheme, each answering 401 through one
/// shared component that declares no challenge.
fn shared_unauthorized(n: usize) -> String {
    let mut doc = String::from(
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\nsecurity: [{bearer: []}]\npaths:\n",
    );
    for i in 0..n {
        let _ = write!(
            doc,
            "  /items{i}:\n    get:\n      responses:\n        '200': {{description: ok}}\n        \
             '401': {{$ref: '#/components/responses/Unauthorized'}}\n"
        );
    }
    doc.push_str(
        "components:\n  securitySchemes:\n    bearer: {type: http, scheme: bearer}\n  \
         responses:\n    Unauthorized:\n      description: no challenge\n",
    );
    doc
}

#[test]
fn a_shared_component_is_one_finding_with_every_operation_it_affects() {
    let text = shared_unauthorized(40);
    let grouped = lint(&text, Grouping::ByCause);
    let component = line_of(&text, "    Unauthorized:", 0);
    assert_eq!(
        ids(&grouped),
        [format!("spec.401_without_challenge@{component}")]
    );
    let finding = &grouped[0];
    assert_eq!(
        finding.pointer.as_deref(),
        Some("/components/responses/Unauthorized")
    );
    assert_eq!(finding.occurrences.len(), 40);
    assert!(
        finding.finding.message.contains("(40 operations use it)"),
        "{}",
        finding.finding.message
    );
    // Each occurrence is where its operation refers to the component.
    let mut after = 0;
    for (i, occurrence) in finding.occurrences.iter().enumerate() {
        assert_eq!(occurrence.label(), format!("GET /items{i}"));
        let line = line_of(&text, "'401': {$ref", after);
        assert_eq!(occurrence.line, Some(line), "{occurrence:?}");
        assert_eq!(
            occurrence.pointer,
            format!("/paths/~1items{i}/get/responses/401")
        );
        after = line;
    }

    // --expand: one finding per operation, each where it uses the component.
    let expanded = lint(&text, Grouping::Expand);
    assert_eq!(expanded.len(), 40);
    assert!(
        expanded
            .iter()
            .zip(&finding.occurrences)
            .all(|(l, o)| l.line == o.line && l.url == o.path && l.occurrences.len() == 1),
        "{:?}",
        ids(&expanded)
    );

    // JSON lists the occurrences; SARIF carries them as related locations.
    let json: Value = serde_json::from_str(&render(Format::Json, &grouped, 40)).unwrap();
    let listed = json["findings"][0]["occurrences"].as_array().unwrap();
    assert_eq!(listed.len(), 40);
    assert_eq!(listed[1]["operation"], "GET /items1");
    assert_eq!(listed[1]["file"], "api.yaml");
    assert_eq!(
        listed[1]["line"],
        finding.occurrences[1].line.unwrap() as u64
    );
    let sarif: Value = serde_json::from_str(&render(Format::Sarif, &grouped, 40)).unwrap();
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["properties"]["occurrences"], 40);
    let related = result["relatedLocations"].as_array().unwrap();
    assert_eq!(related.len(), 40);
    assert_eq!(related[2]["message"]["text"], "GET /items2");
    assert_eq!(
        related[2]["physicalLocation"]["region"]["startLine"],
        finding.occurrences[2].line.unwrap() as u64
    );
    // A traffic-style finding keeps its old shape: no occurrences member.
    let plain: Value = serde_json::from_str(&render(Format::Json, &expanded[..0], 0)).unwrap();
    assert_eq!(plain["findings"], Value::Array(Vec::new()));
}

/// `n` operations that declare a success and their errors only under an
/// inline `default` whose JSON content is one shared schema, all secured.
fn errors_under_default(n: usize) -> String {
    let mut doc = String::from("openapi: 3.1.0\nsecurity: [{bearer: []}]\npaths:\n");
    for i in 0..n {
        let _ = write!(
            doc,
            "  /charges{i}/{{id}}:\n    post:\n      parameters: [{{name: id, in: path, required: true}}]\n      \
             responses:\n        '200': {{description: ok}}\n        default:\n          \
             description: error\n          content:\n            application/json:\n              \
             schema: {{$ref: '#/components/schemas/Error'}}\n"
        );
    }
    doc.push_str(
        "components:\n  securitySchemes:\n    bearer: {type: http, scheme: bearer}\n  \
         schemas:\n    Error: {type: object}\n",
    );
    doc
}

#[test]
fn errors_declared_only_under_default_are_one_finding() {
    let text = errors_under_default(30);
    let grouped = lint(&text, Grouping::ByCause);
    let paths = line_of(&text, "paths:", 0);
    let schema = line_of(&text, "    Error:", 0);
    assert_eq!(
        ids(&grouped),
        [
            format!("spec.only_200@{paths}"),
            format!("spec.error_not_problem_json@{schema}"),
        ],
        "no spec.secured_without_401: spec.only_200 says the 401 is missing too"
    );
    assert!(grouped.iter().all(|l| l.occurrences.len() == 30));
    let only = &grouped[0].finding.message;
    assert!(
        only.starts_with("30 operations declare their errors only under `default`"),
        "{only}"
    );
    let shape = &grouped[1].finding.message;
    assert!(
        shape.contains("#/components/schemas/Error, not application/problem+json"),
        "{shape}"
    );
    assert_eq!(
        grouped[0].finding.evidence,
        "POST /charges0/{id}: declared: 200, default"
    );

    let expanded = lint(&text, Grouping::Expand);
    let count = |rule: &str| {
        expanded
            .iter()
            .filter(|l| l.finding.rule.id == rule)
            .count()
    };
    assert_eq!(count("spec.only_200"), 30);
    assert_eq!(count("spec.error_not_problem_json"), 30);
    assert_eq!(count("spec.secured_without_401"), 0);
    assert_eq!(expanded.len(), 60);

    // One operation alone is no pattern: its own finding, where it is.
    let one = lint(&errors_under_default(1), Grouping::ByCause);
    assert_eq!(
        ids(&one),
        ["spec.only_200@7", "spec.error_not_problem_json@12"]
    );
}

#[test]
fn one_gap_on_one_operation_is_one_finding() {
    let doc = r#"openapi: 3.1.0
security: [{oauth: []}]
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {}}
paths:
  /a:
    get:
      responses: {'200': {description: ok}}
  /b:
    delete:
      security: [{oauth: [admin]}]
      responses: {'204': {description: gone}}
  /c:
    get:
      responses: {'200': {description: ok}, '404': {description: x}}
"#;
    let findings = lint(doc, Grouping::ByCause);
    assert_eq!(
        ids(&findings),
        [
            "spec.only_200@9",
            "spec.only_200@13",
            "spec.secured_without_401@16"
        ],
        "an operation that declares no 4xx at all gets spec.only_200 alone"
    );
    let messages: Vec<&str> = findings
        .iter()
        .map(|l| l.finding.message.as_str())
        .collect();
    assert!(
        messages[0].ends_with("(not even its 401)"),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].ends_with("(not even its 401 or 403)"),
        "{}",
        messages[1]
    );
    assert_eq!(lint(doc, Grouping::Expand).len(), 3);
}

#[test]
fn a_scheme_groups_only_its_own_operations() {
    let doc = r#"openapi: 3.1.0
components:
  securitySchemes:
    bearer: {type: http, scheme: bearer}
    key: {type: apiKey, in: header, name: X-Key}
paths:
  /a: {get: {security: [{bearer: []}], responses: {'200': {description: ok}, '404': {description: x}}}}
  /b: {get: {security: [{bearer: []}], responses: {'200': {description: ok}, '404': {description: x}}}}
  /c: {get: {security: [{key: []}], responses: {'200': {description: ok}, '404': {description: x}}}}
  /d: {get: {security: [{key: []}], responses: {'200': {description: ok}, '404': {description: x}}}}
  /e: {get: {security: [{key: []}, {bearer: []}], responses: {'200': {description: ok}, '404': {description: x}}}}
"#;
    let findings = lint(doc, Grouping::ByCause);
    assert_eq!(
        ids(&findings),
        [
            "spec.secured_without_401@4",
            "spec.secured_without_401@5",
            "spec.secured_without_401@11"
        ],
        "bearer, key, and the operation that takes either: three causes"
    );
    let ops = |l: &Located| -> Vec<String> { l.occurrences.iter().map(|o| o.label()).collect() };
    assert_eq!(ops(&findings[0]), ["GET /a", "GET /b"]);
    assert_eq!(ops(&findings[1]), ["GET /c", "GET /d"]);
    assert_eq!(ops(&findings[2]), ["GET /e"]);
    assert!(
        findings[0]
            .finding
            .message
            .starts_with("2 operations secured by `bearer` declare no 401"),
        "{}",
        findings[0].finding.message
    );
    assert!(
        findings[2]
            .finding
            .message
            .starts_with("GET /e requires credentials"),
        "one operation is reported as itself"
    );
}

#[test]
fn roles_follow_openapi_security_semantics() {
    let doc = r#"openapi: 3.1.0
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {}}
    key: {type: apiKey, in: header, name: X-Key}
paths:
  /all: {get: {security: [{oauth: [read, write]}], responses: {'401': {description: x, headers: {WWW-Authenticate: {}}}}}}
  /either: {get: {security: [{oauth: [admin]}, {key: [ops]}], responses: {'401': {description: x, headers: {WWW-Authenticate: {}}}}}}
  /anonymous: {get: {security: [{oauth: [admin]}, {}], responses: {'401': {description: x, headers: {WWW-Authenticate: {}}}}}}
  /keyed: {get: {security: [{oauth: [admin]}, {key: []}], responses: {'401': {description: x, headers: {WWW-Authenticate: {}}}}}}
"#;
    let findings = lint(doc, Grouping::Expand);
    assert_eq!(
        ids(&findings),
        ["spec.roles_without_403@7", "spec.roles_without_403@8"],
        "an alternative without scopes is a way in without a role"
    );
    assert_eq!(
        findings[0].finding.message,
        "GET /all requires all of the scopes [read, write] of oauth but declares no 403 response"
    );
    assert_eq!(
        findings[1].finding.message,
        "GET /either requires the scope admin of oauth, or the scope ops of key \
         but declares no 403 response"
    );
    // The same decision on two operations, one scheme: one finding there.
    let grouped = lint(
        &doc.replace("[{oauth: [admin]}, {key: [ops]}]", "[{oauth: [admin]}]"),
        Grouping::ByCause,
    );
    assert_eq!(ids(&grouped), ["spec.roles_without_403@4"]);
    assert_eq!(
        grouped[0].finding.message,
        "2 operations that require scopes of `oauth` declare no 403 response"
    );
}

/// ~1,000 operations sharing one 401 component and one scheme, half of
/// them restricted to a scope, every error answered with one JSON schema.
fn thousand(n: usize) -> String {
    let mut doc = String::from(
        "openapi: 3.1.0\ninfo: {title: big, version: '1'}\nsecurity: [{oauth: []}]\npaths:\n",
    );
    for i in 0..n {
        let security = if i % 2 == 0 {
            "      security: [{oauth: [admin]}]\n"
        } else {
            ""
        };
        let _ = write!(
            doc,
            "  /r{i}/{{id}}:\n    get:\n{security}      parameters: [{{name: id, in: path, required: true}}]\n      \
             responses:\n        '200': {{description: ok}}\n        \
             '401': {{$ref: '#/components/responses/Unauthorized'}}\n        \
             '404':\n          description: missing\n          content:\n            \
             application/json: {{schema: {{$ref: '#/components/schemas/Error'}}}}\n"
        );
    }
    doc.push_str(
        "components:\n  securitySchemes:\n    oauth: {type: oauth2, flows: {}}\n  responses:\n    \
         Unauthorized: {description: no challenge}\n  schemas:\n    Error: {type: object}\n",
    );
    doc
}

#[test]
fn the_table_of_a_thousand_operations_fits_on_a_screen_or_two() {
    let text = thousand(1000);
    let grouped = lint(&text, Grouping::ByCause);
    let rules: Vec<(&str, usize)> = grouped
        .iter()
        .map(|l| (l.finding.rule.id, l.occurrences.len()))
        .collect();
    assert_eq!(
        rules,
        [
            ("spec.roles_without_403", 500),
            ("spec.401_without_challenge", 1000),
            ("spec.error_not_problem_json", 1000),
        ]
    );
    let table = render(Format::Table, &grouped, 1000);
    let lines = table.lines().count();
    assert!(lines <= 50, "{lines} lines:\n{table}");
    assert!(
        table.contains(
            "affects 1000 operations: GET /r0/{id}, GET /r1/{id}, GET /r2/{id} and 997 more"
        ),
        "{table}"
    );
    assert!(
        table.contains(
            "affects 500 operations: GET /r0/{id}, GET /r2/{id}, GET /r4/{id} and 497 more"
        ),
        "{table}"
    );
    assert!(
        table.contains("1000 exchanges, 1 error, 2 warnings, 0 infos, 0 unreadable"),
        "{table}"
    );
    // Expanded, the table still shows a few examples per rule.
    let expanded = lint(&text, Grouping::Expand);
    assert_eq!(expanded.len(), 2500);
    let table = render(Format::Table, &expanded, 1000);
    let lines = table.lines().count();
    assert!(lines <= 80, "{lines} lines:\n{table}");
    assert!(
        table.contains("1000 exchanges, 1000 errors, 1500 warnings"),
        "{table}"
    );
}
