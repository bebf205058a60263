//! The static rules (catalog section 5) over an OpenAPI document: what each
//! operation declares, held against what the contract will demand of it.
//!
//! Findings point at the node to fix (its file, line, column and JSON
//! pointer), so a response shared through `#/components/responses/...` is
//! reported once, at the component, not once per operation that uses it.
//! What a `$ref` that cannot be followed hides is not judged: the rules
//! that need it are skipped for that operation, and the skip is a check
//! of its own.

use std::collections::HashSet;

use candor_contract::rules::{
    SPEC_201_WITHOUT_LOCATION, SPEC_204_WITH_CONTENT, SPEC_401_WITHOUT_CHALLENGE,
    SPEC_405_WITHOUT_ALLOW, SPEC_410_WITHOUT_LINK, SPEC_422_WITHOUT_400,
    SPEC_429_WITHOUT_RETRY_AFTER, SPEC_ERROR_NOT_PROBLEM_JSON, SPEC_ONLY_200, SPEC_ROLES_IN_SCOPES,
    SPEC_ROLES_WITHOUT_403, SPEC_SECURED_WITHOUT_401, SPEC_UNRESOLVED_REF,
};
use candor_contract::{Finding, Rule, Section, is_json_media_type};
use serde_json::Value;

use super::{
    Declared, Document, MAX_REF_HOPS, Operation, ResponseDecl, escape_token, is_remote, operations,
    percent_decode, visit_refs,
};
use crate::{Case, CaseOutcome, Located};

/// Media types that carry RFC 9457 problem details.
const PROBLEM_TYPES: [&str; 2] = ["application/problem+json", "application/problem+xml"];

/// What the static rules made of one document.
#[derive(Debug, Default)]
pub struct Linted {
    /// In document order.
    pub findings: Vec<Located>,
    /// One skipped check per rule and operation (or response) that could
    /// not be judged, because what it needs is behind a `$ref` that could
    /// not be followed.
    pub skipped: Vec<Case>,
}

/// Every static rule over `doc`, in document order.
pub fn lint(doc: &Document) -> Vec<Located> {
    lint_operations(doc, &operations(doc))
}

/// As [`lint`], for operations already read with [`operations`].
pub fn lint_operations(doc: &Document, ops: &[Operation]) -> Vec<Located> {
    lint_document(doc, ops).findings
}

/// The findings and the skipped checks of `doc`, whose operations are
/// `ops` (from [`operations`]).
pub fn lint_document(doc: &Document, ops: &[Operation]) -> Linted {
    let mut linter = Linter {
        doc,
        ops,
        seen: HashSet::new(),
        out: Vec::new(),
        skipped: Vec::new(),
    };
    linter.path_items();
    for (entry, op) in ops.iter().enumerate() {
        linter.operation(entry, op);
    }
    if doc.minor_version() == Some((3, 0)) {
        linter.scopes("/security");
        for op in ops {
            linter.scopes(&format!("{}/security", op.pointer));
        }
    }
    for (prefix, root) in doc.files() {
        let mut refs = Vec::new();
        visit_refs(root, &mut prefix.clone(), &mut |address, reference| {
            refs.push((address.to_owned(), reference.to_owned()));
        });
        for (address, reference) in refs {
            linter.reference(&address, &reference);
        }
    }
    let mut out = linter.out;
    // Stable: findings at one place keep the order they were made in.
    out.sort_by_key(|(order, _)| *order);
    Linted {
        findings: out.into_iter().map(|(_, l)| l).collect(),
        skipped: linter.skipped,
    }
}

/// One check per static rule for `file`: failed at the worst severity it
/// was found at, or passed. `findings` are those of one document (which
/// may span several files). For reports that count passes.
pub fn cases(file: &str, findings: &[Located]) -> Vec<Case> {
    candor_contract::rules::section(Section::Spec)
        .map(|rule| {
            let worst = findings
                .iter()
                .filter(|l| l.finding.rule.id == rule.id)
                .map(|l| l.finding.severity)
                .max();
            Case {
                rule,
                subject: file.to_owned(),
                outcome: worst.map_or(CaseOutcome::Passed, CaseOutcome::Failed),
            }
        })
        .collect()
}

/// The rules judged on an operation as a whole (not on one response).
const OPERATION_RULES: [&Rule; 4] = [
    &SPEC_SECURED_WITHOUT_401,
    &SPEC_ROLES_WITHOUT_403,
    &SPEC_ONLY_200,
    &SPEC_422_WITHOUT_400,
];

struct Linter<'a> {
    doc: &'a Document,
    ops: &'a [Operation],
    /// `(rule, address)` already reported: a shared component once.
    seen: HashSet<(&'static str, String)>,
    /// Each finding with its place in document order.
    out: Vec<((usize, usize), Located)>,
    skipped: Vec<Case>,
}

impl Linter<'_> {
    fn report(
        &mut self,
        rule: &'static Rule,
        entry: Option<usize>,
        status: u16,
        address: String,
        message: String,
        evidence: &str,
    ) {
        if !self.seen.insert((rule.id, address.clone())) {
            return;
        }
        let op = entry.and_then(|i| self.ops.get(i));
        let position = self.doc.position(&address);
        let located = Located {
            file: self.doc.file_of(&address).to_owned(),
            entry: entry.unwrap_or(0),
            line: position.map(|p| p.line),
            column: position.map(|p| p.column),
            method: op.map(|op| op.method.clone()).unwrap_or_default(),
            url: op.map(|op| op.path.clone()).unwrap_or_default(),
            status,
            finding: Finding::new(rule, message, evidence),
            pointer: Some(self.doc.local_pointer(&address).to_owned()),
            probe: None,
        };
        self.out.push((self.doc.order(&address), located));
    }

    /// Records that `rule` could not judge `subject`, and why.
    fn skip(&mut self, rule: &'static Rule, subject: String, reference: &str) {
        let why = format!(
            "not judged: it depends on $ref {}, which could not be followed",
            self.show_ref(reference)
        );
        self.skipped.push(Case {
            rule,
            subject,
            outcome: CaseOutcome::Skipped(why),
        });
    }

    /// A path item that is a `$ref` which cannot be followed: none of its
    /// operations can be judged.
    fn path_items(&mut self) {
        let Some(paths) = self.doc.root.get("paths").and_then(Value::as_object) else {
            return;
        };
        for (path, item) in paths {
            let at = format!("/paths/{}", escape_token(path));
            if self.doc.resolve(item, &at).is_none() {
                let reference = item.get("$ref").and_then(Value::as_str).unwrap_or_default();
                for rule in OPERATION_RULES {
                    self.skip(rule, format!("{path} (every operation)"), reference);
                }
            }
        }
    }

    fn operation(&mut self, entry: usize, op: &Operation) {
        let label = op.label();
        let declared = declared(op);
        let responses = format!("{}/responses", op.pointer);
        let responses = if self.doc.node(&responses).is_some() {
            responses
        } else {
            op.pointer.clone()
        };
        // The responses map (or the whole operation) unknown: the rules
        // about what it lacks cannot be judged.
        if let Some(unknown) = op.unknown(&Declared::Responses) {
            let reference = unknown.reference.clone();
            let secured = op.is_secured();
            let applies = [
                secured,
                !op.roles().is_empty(),
                secured || op.request_body.is_some() || !op.parameters.is_empty(),
                op.request_body.as_ref().is_some_and(|b| b.json().is_some()),
            ];
            for (rule, applies) in OPERATION_RULES.into_iter().zip(applies) {
                if applies {
                    self.skip(rule, op.label(), &reference);
                }
            }
            return;
        }

        if op.is_secured() && self.needs_401(op) && op.response("401").is_none() {
            self.report(
                &SPEC_SECURED_WITHOUT_401,
                Some(entry),
                0,
                responses.clone(),
                format!("{label} requires credentials but declares no 401 response"),
                &declared,
            );
        }

        if !op.roles().is_empty() {
            let (want, why) = if op.concealed {
                ("404", " and is x-concealed")
            } else {
                ("403", "")
            };
            if op.response(want).is_none() {
                let roles = op.roles().join(", ");
                self.report(
                    &SPEC_ROLES_WITHOUT_403,
                    Some(entry),
                    0,
                    responses.clone(),
                    format!("{label} requires one of the roles [{roles}]{why} but declares no {want} response"),
                    &declared,
                );
            }
        }

        // Only successes: any 2xx (200, 201, 204...), `2XX`, or `default`.
        let only_success = !op.responses.is_empty()
            && op.responses.iter().all(|r| {
                r.code().is_some_and(|c| (200..300).contains(&c))
                    || ["2XX", "default"]
                        .iter()
                        .any(|k| r.status.eq_ignore_ascii_case(k))
            });
        if only_success {
            let takes_input = !op.parameters.is_empty()
                || op.request_body.is_some()
                || self
                    .doc
                    .node(&op.pointer)
                    .is_some_and(|node| node.get("requestBody").is_some());
            let why = match (takes_input, op.is_secured()) {
                (true, true) => Some("takes input and requires credentials"),
                (true, false) => Some("takes input"),
                (false, true) => Some("requires credentials"),
                (false, false) => None,
            };
            if let Some(why) = why {
                let status = op
                    .responses
                    .iter()
                    .find_map(ResponseDecl::code)
                    .unwrap_or(0);
                self.report(
                    &SPEC_ONLY_200,
                    Some(entry),
                    status,
                    responses.clone(),
                    format!("{label} {why}, so it can fail, but declares no 4xx or 5xx response"),
                    &declared,
                );
            }
        }

        if op.response("422").is_some() && op.response("400").is_none() {
            if let Some(unknown) = op.unknown(&Declared::RequestBody) {
                let reference = unknown.reference.clone();
                self.skip(&SPEC_422_WITHOUT_400, op.label(), &reference);
            } else if let Some(json) = op.request_body.as_ref().and_then(|b| b.json()) {
                self.report(
                    &SPEC_422_WITHOUT_400,
                    Some(entry),
                    0,
                    responses.clone(),
                    format!(
                        "{label} takes a JSON body ({}) and declares 422 but no 400: \
                         a body that is not valid JSON gets 400 (body.malformed); \
                         422 is for well-formed input the server cannot process",
                        json.name
                    ),
                    &declared,
                );
            }
        }

        let declares_success = op.responses.iter().any(|r| {
            r.code().is_some_and(|c| (100..400).contains(&c))
                || ["1XX", "2XX", "3XX"]
                    .iter()
                    .any(|k| r.status.eq_ignore_ascii_case(k))
        });
        for response in &op.responses {
            self.response(entry, op, response, declares_success);
        }
    }

    /// False when every scheme of the operation is `mutualTLS`: a missing
    /// client certificate fails the handshake, there is no 401 to declare.
    fn needs_401(&self, op: &Operation) -> bool {
        let super::Security::Required { schemes, .. } = &op.security else {
            return false;
        };
        schemes.is_empty()
            || schemes
                .iter()
                .any(|s| self.scheme_type(s).is_none_or(|t| t != "mutualTLS"))
    }

    /// The `type` of the security scheme `name`, from the components.
    fn scheme_type(&self, name: &str) -> Option<&str> {
        let at = format!("/components/securitySchemes/{}", escape_token(name));
        let node = self.doc.node(&at)?;
        let (scheme, _) = self.doc.resolve(node, &at)?;
        scheme.get("type").and_then(Value::as_str)
    }

    fn response(
        &mut self,
        entry: usize,
        op: &Operation,
        response: &ResponseDecl,
        declares_success: bool,
    ) {
        let status = response.code().unwrap_or(0);
        let key = response.status.as_str();
        let header_rule = match key {
            "401" => Some((&SPEC_401_WITHOUT_CHALLENGE, "WWW-Authenticate")),
            "429" => Some((&SPEC_429_WITHOUT_RETRY_AFTER, "Retry-After")),
            "201" => Some((&SPEC_201_WITHOUT_LOCATION, "Location")),
            "405" => Some((&SPEC_405_WITHOUT_ALLOW, "Allow")),
            "410" => Some((&SPEC_410_WITHOUT_LINK, "Link")),
            _ => None,
        };
        let is_error = status >= 400
            || key.eq_ignore_ascii_case("4XX")
            || key.eq_ignore_ascii_case("5XX")
            || (key == "default" && declares_success);
        if !response.followed {
            // Declared, but what it holds is unknown.
            let reference = self
                .doc
                .node(&response.pointer)
                .and_then(|n| n.get("$ref"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let subject = format!("{} {key} response", op.label());
            let rules = header_rule
                .map(|(rule, _)| rule)
                .into_iter()
                .chain((key == "204").then_some(&SPEC_204_WITH_CONTENT))
                .chain(is_error.then_some(&SPEC_ERROR_NOT_PROBLEM_JSON));
            for rule in rules {
                self.skip(rule, subject.clone(), &reference);
            }
            return;
        }
        let Some(node) = self.doc.node(&response.pointer) else {
            return;
        };
        let headers = if response.headers.is_empty() {
            "headers: none".to_owned()
        } else {
            format!("headers: {}", response.headers.join(", "))
        };
        if let Some((rule, header)) = header_rule
            && !response.has_header(header)
        {
            self.report(
                rule,
                Some(entry),
                status,
                response.pointer.clone(),
                format!("the {key} response declares no {header} header"),
                &headers,
            );
        }

        let content = node
            .get("content")
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty());
        if key == "204"
            && let Some(content) = content
        {
            let names: Vec<&str> = content.keys().map(String::as_str).collect();
            self.report(
                &SPEC_204_WITH_CONTENT,
                Some(entry),
                status,
                format!("{}/content", response.pointer),
                format!(
                    "the 204 response declares content ({}); a 204 never has any",
                    names.join(", ")
                ),
                &names.join(", "),
            );
        }

        if !is_error {
            return;
        }
        let essences: Vec<String> = response.content.iter().map(|m| essence(&m.name)).collect();
        if essences.iter().any(|e| PROBLEM_TYPES.contains(&e.as_str())) {
            return;
        }
        if let Some(json) = response
            .content
            .iter()
            .zip(&essences)
            .find(|(_, e)| is_json_media_type(e))
            .map(|(m, _)| m)
        {
            let what = if key == "default" {
                "the default (error) response".to_owned()
            } else {
                format!("the {key} response")
            };
            let names: Vec<&str> = response.content.iter().map(|m| m.name.as_str()).collect();
            self.report(
                &SPEC_ERROR_NOT_PROBLEM_JSON,
                Some(entry),
                status,
                json.pointer.clone(),
                format!(
                    "{what} declares {}, not application/problem+json",
                    json.name
                ),
                &names.join(", "),
            );
        }
    }

    /// OpenAPI 3.0 only: roles listed for a scheme that is neither oauth2
    /// nor openIdConnect, in the requirement list at `at`.
    fn scopes(&mut self, at: &str) {
        let Some(list) = self.doc.node(at).and_then(Value::as_array) else {
            return;
        };
        for (i, alternative) in list.iter().enumerate() {
            let Some(alternative) = alternative.as_object() else {
                continue;
            };
            for (scheme, scopes) in alternative {
                let Some(scopes) = scopes.as_array().filter(|s| !s.is_empty()) else {
                    continue;
                };
                let kind = self.scheme_type(scheme);
                if matches!(kind, Some("oauth2" | "openIdConnect") | None) {
                    // Scopes are what oauth2 lists; an undeclared scheme
                    // cannot be judged.
                    continue;
                }
                let kind = kind.unwrap_or_default().to_owned();
                let entry = self.operation_at(at);
                let listed: Vec<String> = scopes
                    .iter()
                    .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_owned))
                    .collect();
                self.report(
                    &SPEC_ROLES_IN_SCOPES,
                    entry,
                    0,
                    format!("{at}/{i}/{}", escape_token(scheme)),
                    format!(
                        "OpenAPI 3.0 allows scopes only for oauth2 and openIdConnect schemes, \
                         and `{scheme}` is {kind}: list the roles in x-roles"
                    ),
                    &listed.join(", "),
                );
            }
        }
    }

    /// The `$ref` held by the node at `address`, reported if it cannot be
    /// followed.
    fn reference(&mut self, address: &str, reference: &str) {
        let Some(problem) = self.ref_problem(address, reference) else {
            return;
        };
        let entry = self.operation_at(address);
        let shown = self.show_ref(reference);
        self.report(
            &SPEC_UNRESOLVED_REF,
            entry,
            0,
            format!("{address}/$ref"),
            format!("$ref {problem}"),
            &shown,
        );
    }

    /// A `$ref` as its author would write it: an address the loader
    /// rewrote it to is shown as `file#/pointer`.
    fn show_ref(&self, reference: &str) -> String {
        match reference.strip_prefix('#') {
            Some(target) if target.starts_with('@') => self.doc.describe(target),
            _ => reference.to_owned(),
        }
    }

    /// Why the `$ref` at `address` cannot be followed, or `None` when it
    /// can (or when the chain breaks further on, where that node is
    /// reported).
    fn ref_problem(&self, address: &str, reference: &str) -> Option<String> {
        if let Some(why) = self.doc.unfollowed_file(address) {
            return Some(why.to_owned());
        }
        let Some(fragment) = reference.strip_prefix('#') else {
            let target = reference.split('#').next().unwrap_or_default();
            return Some(if is_remote(target) {
                "is remote: candor never fetches it, so what it refers to is not checked".to_owned()
            } else {
                format!("refers to {target}, which was not read")
            });
        };
        let mut target = percent_decode(fragment);
        let mut visited = vec![target.clone()];
        for _ in 0..MAX_REF_HOPS {
            let Some(node) = self.doc.node(&target) else {
                return if visited.len() == 1 {
                    Some(format!(
                        "is dangling: nothing at {}",
                        self.doc.describe(&target)
                    ))
                } else {
                    None
                };
            };
            // Not a reference: the chain ends here. A remote next hop is
            // reported at its own node.
            let next = node.get("$ref").and_then(Value::as_str)?;
            let next = next.strip_prefix('#')?;
            target = percent_decode(next);
            if visited.contains(&target) {
                return Some(format!(
                    "is cyclic: following it comes back to {}",
                    self.doc.describe(&target)
                ));
            }
            visited.push(target.clone());
        }
        Some(format!("chain is longer than {MAX_REF_HOPS} hops"))
    }

    /// The index of the operation whose subtree holds `address`.
    fn operation_at(&self, address: &str) -> Option<usize> {
        self.ops.iter().position(|op| {
            address == op.pointer
                || address
                    .strip_prefix(op.pointer.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

/// `declared: 200, 404`, the evidence for rules about what is missing.
fn declared(op: &Operation) -> String {
    let keys: Vec<&str> = op.responses.iter().map(|r| r.status.as_str()).collect();
    if keys.is_empty() {
        "declared: none".to_owned()
    } else {
        format!("declared: {}", keys.join(", "))
    }
}

/// A media type's essence: lower case, without parameters.
fn essence(name: &str) -> String {
    name.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Vec<Located> {
        let doc = Document::parse("api.yaml", text).unwrap_or_else(|e| panic!("{e}"));
        lint(&doc)
    }

    /// `rule@line` for each finding, in order.
    fn ids(findings: &[Located]) -> Vec<String> {
        findings
            .iter()
            .map(|l| format!("{}@{}", l.finding.rule.id, l.line.unwrap_or(0)))
            .collect()
    }

    #[test]
    fn ranges_are_errors_and_default_only_beside_a_success() {
        let findings = run(r#"openapi: 3.1.0
paths:
  /a:
    get:
      responses:
        '200': {description: ok}
        4XX:
          description: client
          content: {application/json: {}}
        default:
          description: other
          content: {application/json: {}}
  /b:
    get:
      responses:
        default:
          description: the only answer
          content: {application/json: {}}
"#);
        assert_eq!(
            ids(&findings),
            [
                "spec.error_not_problem_json@9",
                "spec.error_not_problem_json@12"
            ]
        );
        assert_eq!(findings[0].status, 0, "a range has no single status");
        assert!(findings[1].finding.message.contains("default (error)"));
    }

    #[test]
    fn problem_types_plain_text_and_no_content_are_not_flagged() {
        let findings = run(r#"openapi: 3.1.0
paths:
  /a/{id}:
    get:
      parameters: [{name: id, in: path, required: true}]
      responses:
        '200': {description: ok}
        '400': {description: x, content: {'application/problem+json; charset=utf-8': {}, application/json: {}}}
        '404': {description: x, content: {application/problem+xml: {}}}
        '406': {description: x, content: {text/html: {}}}
        '500': {description: x}
        '502': {description: x, content: {application/vnd.error+json: {}}}
"#);
        assert_eq!(ids(&findings), ["spec.error_not_problem_json@12"]);
        assert_eq!(findings[0].status, 502);
        assert_eq!(findings[0].method, "GET");
        assert_eq!(findings[0].url, "/a/{id}");
    }

    #[test]
    fn concealed_operations_declare_404_instead_of_403() {
        let doc = r#"openapi: 3.1.0
security: [{bearer: []}]
components: {securitySchemes: {bearer: {type: http, scheme: bearer}}}
paths:
  /r:
    get:
      x-roles: [admin]
      x-concealed: true
      responses:
        '200': {description: ok}
        '401': {description: x, headers: {WWW-Authenticate: {schema: {type: string}}}}
        '403': {description: x}
"#;
        let findings = run(doc);
        assert_eq!(ids(&findings), ["spec.roles_without_403@9"]);
        assert!(findings[0].finding.message.contains("x-concealed"));
        assert!(findings[0].finding.message.contains("no 404"));
        assert!(run(&doc.replace("'403'", "'404'")).is_empty());
        assert_eq!(
            ids(&run(&doc.replace("      x-concealed: true\n", ""))),
            Vec::<String>::new(),
            "not concealed: the 403 is what is needed"
        );
    }

    #[test]
    fn scopes_of_a_non_oauth_scheme_are_a_finding_in_3_0_only() {
        let doc = r#"openapi: 3.0.3
components:
  securitySchemes:
    bearer: {type: http, scheme: bearer}
    oauth: {type: oauth2, flows: {}}
security:
  - bearer: [admin]
paths:
  /r:
    get:
      security:
        - oauth: [read]
          bearer: [auditor]
        - undeclared: [x]
      responses:
        '200': {description: ok}
        '401': {description: x, headers: {WWW-Authenticate: {}}}
        '403': {description: x}
"#;
        let findings = run(doc);
        assert_eq!(
            ids(&findings),
            ["spec.roles_in_scopes@7", "spec.roles_in_scopes@13"]
        );
        assert_eq!(
            findings[1].pointer.as_deref(),
            Some("/paths/~1r/get/security/0/bearer")
        );
        assert_eq!(findings[1].url, "/r");
        assert_eq!(
            findings[0].url, "",
            "the root requirement is no operation's"
        );
        assert!(findings[0].finding.message.contains("x-roles"));
        assert!(run(&doc.replace("3.0.3", "3.1.0")).is_empty());
    }

    #[test]
    fn mutual_tls_alone_needs_no_401() {
        let doc = r#"openapi: 3.1.0
components:
  securitySchemes:
    mtls: {type: mutualTLS}
    key: {type: apiKey, in: header, name: X-API-Key}
paths:
  /m:
    get:
      security: [{mtls: []}]
      responses: {'200': {description: ok}, '404': {description: x}}
"#;
        assert!(run(doc).is_empty());
        assert_eq!(
            ids(&run(&doc.replace("[{mtls: []}]", "[{mtls: []}, {key: []}]"))),
            ["spec.secured_without_401@10"]
        );
    }

    #[test]
    fn a_shared_component_is_reported_once_at_the_component() {
        let findings = run(r#"openapi: 3.1.0
security: [{bearer: []}]
paths:
  /a:
    get:
      responses:
        '200': {description: ok}
        '401': {$ref: '#/components/responses/Unauthorized'}
  /b:
    get:
      responses:
        '200': {description: ok}
        '401': {$ref: '#/components/responses/Unauthorized'}
components:
  responses:
    Unauthorized:
      description: no challenge
"#);
        assert_eq!(ids(&findings), ["spec.401_without_challenge@16"]);
        assert_eq!(
            findings[0].pointer.as_deref(),
            Some("/components/responses/Unauthorized")
        );
        assert_eq!(findings[0].url, "/a", "named after the first user");
    }

    #[test]
    fn only_200_needs_input_or_credentials() {
        let doc = r#"openapi: 3.1.0
paths:
  /plain:
    get:
      responses: {'200': {description: ok}}
  /search:
    get:
      parameters: [{name: q, in: query}]
      responses: {'200': {description: ok}, default: {description: any}}
  /upload:
    post:
      requestBody: {$ref: 'other.yaml#/body'}
      responses: {2XX: {description: ok}}
  /checked:
    get:
      parameters: [{name: q, in: query}]
      responses: {'200': {description: ok}, '400': {description: x}}
"#;
        let findings = run(doc);
        assert_eq!(
            ids(&findings),
            [
                "spec.only_200@9",
                "spec.unresolved_ref@12",
                "spec.only_200@13"
            ]
        );
        assert_eq!(findings[0].status, 200);
        assert_eq!(findings[2].status, 0);
    }

    #[test]
    fn a_json_body_with_422_needs_its_own_400() {
        let doc = r#"openapi: 3.1.0
paths:
  /a:
    post:
      requestBody: {content: {'application/merge-patch+json; charset=utf-8': {}}}
      responses:
        '200': {description: ok}
        '422': {description: x}
  /ranged:
    post:
      requestBody: {content: {application/json: {}}}
      responses: {'200': {description: ok}, 4XX: {description: x}, '422': {description: x}}
  /both:
    post:
      requestBody: {$ref: '#/components/requestBodies/Json'}
      responses: {'200': {description: ok}, '400': {description: x}, '422': {description: x}}
  /form:
    post:
      requestBody: {content: {multipart/form-data: {}}}
      responses: {'200': {description: ok}, '422': {description: x}}
  /none:
    delete:
      responses: {'204': {description: ok}, '422': {description: x}}
components:
  requestBodies:
    Json: {content: {application/json: {}}}
"#;
        let findings = run(doc);
        assert_eq!(
            ids(&findings),
            ["spec.422_without_400@6", "spec.422_without_400@12"],
            "a 4XX range is no 400; form bodies and no body are not judged"
        );
        assert!(
            findings[0]
                .finding
                .message
                .contains("application/merge-patch+json"),
            "{}",
            findings[0].finding.message
        );
        assert_eq!(findings[0].finding.evidence, "declared: 200, 422");
        assert_eq!(findings[0].finding.rule.status, Some(400));
    }

    #[test]
    fn only_200_means_only_successes_whatever_the_2xx() {
        let findings = run(r#"openapi: 3.1.0
paths:
  /a/{id}:
    parameters: [{name: id, in: path, required: true}]
    delete:
      responses: {'204': {description: gone}}
    put:
      responses: {'201': {description: x, headers: {Location: {}}}, '202': {description: y}}
    get:
      responses: {'200': {description: ok}, '302': {description: moved}}
"#);
        assert_eq!(ids(&findings), ["spec.only_200@6", "spec.only_200@8"]);
        assert_eq!((findings[0].status, findings[1].status), (204, 201));
    }

    #[test]
    fn refs_that_cannot_be_followed_are_reported_where_they_break() {
        let findings = run(r##"openapi: 3.1.0
paths:
  /a:
    get:
      responses:
        '200': {$ref: '#/components/responses/Chain'}
        '201': {$ref: '#/components/responses/Nowhere'}
components:
  responses:
    Chain: {$ref: '#/components/responses/Broken'}
    Broken: {$ref: '#/components/responses/Missing'}
    Loop: {$ref: '#/components/responses/Loop'}
    Escaped: {$ref: '#/components/schemas/a~1b'}
  schemas:
    a/b: {type: object}
    WithExample:
      type: object
      example: {$ref: 'not a reference, just data'}
      properties:
        example: {$ref: 'https://example.com/elsewhere.json'}
        default: {$ref: '#/components/schemas/a~1b'}
"##);
        assert_eq!(
            ids(&findings),
            [
                "spec.unresolved_ref@7",
                "spec.unresolved_ref@11",
                "spec.unresolved_ref@12",
                "spec.unresolved_ref@20"
            ]
        );
        let messages: Vec<_> = findings.iter().map(|l| &l.finding.message).collect();
        assert!(messages[0].contains("dangling"), "{}", messages[0]);
        assert!(messages[2].contains("cyclic"), "{}", messages[2]);
        assert!(messages[3].contains("remote"), "{}", messages[3]);
        assert_eq!(
            findings[3].finding.evidence,
            "https://example.com/elsewhere.json"
        );
        assert_eq!(
            findings[1].pointer.as_deref(),
            Some("/components/responses/Broken/$ref")
        );
    }

    #[test]
    fn odd_shapes_are_skipped_without_panicking() {
        for text in [
            "openapi: 3.0.0\npaths: {}\n",
            "openapi: 3.0.0\nsecurity: yes\npaths: {/a: {get: {security: [1, [2], {x: 3}], responses: [1]}}}\n",
            "openapi: 3.0.0\nsecurity: [{b: [x]}]\ncomponents: {securitySchemes: {b: 7}}\npaths: {/a: {get: {}}}\n",
            "openapi: 3.1.0\npaths: {/a: {get: {responses: {'204': {content: 5}, '401': {headers: [x]}, '4XX': {content: {x: {$ref: 5}}}}}}}\n",
            "openapi: 3.1.0\npaths: {/a: {$ref: 'x.yaml'}, /b: 3, /c: {get: 3}}\ncomponents: {pathItems: []}\n",
            "openapi: 3.1.0\npaths: {/a: {get: {responses: {'200': {$ref: '#'}}}}}\n",
        ] {
            let _ = run(text);
        }
    }

    #[test]
    fn cases_cover_every_static_rule() {
        let findings = run(
            "openapi: 3.1.0\npaths: {/a: {get: {responses: {'204': {description: x, content: {a/b: {}}}}}}}\n",
        );
        let cases = cases("api.yaml", &findings);
        assert_eq!(
            cases.len(),
            candor_contract::rules::section(Section::Spec).count()
        );
        let failed: Vec<_> = cases
            .iter()
            .filter(|c| c.outcome != CaseOutcome::Passed)
            .map(|c| c.rule.id)
            .collect();
        assert_eq!(failed, ["spec.204_with_content"]);
    }
}
