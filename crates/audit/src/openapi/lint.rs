//! The static rules (catalog section 5) over an OpenAPI document: what each
//! operation declares, held against what the contract will demand of it.
//!
//! One cause is one finding. Each rule first finds its gaps operation by
//! operation; gaps with one cause are then reported once, at that cause,
//! with every operation they affect as its occurrences: a response shared
//! through `#/components/responses/...` at the component, a decision
//! repeated across operations (a security scheme whose operations declare
//! no 401, errors declared only under `default`, a shared error schema) at
//! the place it is made. [`Grouping::Expand`] gives one finding per
//! operation instead. What a `$ref` that cannot be followed hides is not
//! judged: the rules that need it are skipped for that operation, and the
//! skip is a check of its own.

use std::collections::HashMap;

use candor_contract::rules::{
    SPEC_201_WITHOUT_LOCATION, SPEC_204_WITH_CONTENT, SPEC_401_WITHOUT_CHALLENGE,
    SPEC_405_WITHOUT_ALLOW, SPEC_410_WITHOUT_LINK, SPEC_422_WITHOUT_400,
    SPEC_429_WITHOUT_RETRY_AFTER, SPEC_ERROR_NOT_PROBLEM_JSON, SPEC_ONLY_200, SPEC_ROLES_IN_SCOPES,
    SPEC_ROLES_WITHOUT_403, SPEC_SECURED_WITHOUT_401, SPEC_UNRESOLVED_REF,
};
use candor_contract::words::count;
use candor_contract::{Finding, Rule, Section, is_json_media_type};
use serde_json::Value;

use super::{
    Declared, Document, MAX_REF_HOPS, Operation, ResponseDecl, escape_token, is_remote, operations,
    percent_decode, visit_refs,
};
use crate::{Case, CaseOutcome, Located, Occurrence};

/// Media types that carry RFC 9457 problem details.
const PROBLEM_TYPES: [&str; 2] = ["application/problem+json", "application/problem+xml"];

/// How findings with one cause are reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Grouping {
    /// Once, at the cause, with the operations it affects as occurrences.
    #[default]
    ByCause,
    /// Once per operation, where the operation meets the cause.
    Expand,
}

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

/// Every static rule over `doc`, in document order, one finding per cause.
pub fn lint(doc: &Document) -> Vec<Located> {
    lint_operations(doc, &operations(doc))
}

/// As [`lint`], for operations already read with [`operations`].
pub fn lint_operations(doc: &Document, ops: &[Operation]) -> Vec<Located> {
    lint_document(doc, ops).findings
}

/// The findings (one per cause) and the skipped checks of `doc`, whose
/// operations are `ops` (from [`operations`]).
pub fn lint_document(doc: &Document, ops: &[Operation]) -> Linted {
    lint_grouped(doc, ops, Grouping::ByCause)
}

/// As [`lint_document`], with findings grouped as `grouping` says.
pub fn lint_grouped(doc: &Document, ops: &[Operation], grouping: Grouping) -> Linted {
    let mut linter = Linter {
        doc,
        ops,
        gaps: Vec::new(),
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
    let findings = linter.findings(grouping);
    Linted {
        findings,
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
    /// Every gap found, one per rule and place, in the order found.
    gaps: Vec<Gap>,
    skipped: Vec<Case>,
}

/// One gap, as found on one operation (or at one place outside any).
struct Gap {
    rule: &'static Rule,
    entry: Option<usize>,
    status: u16,
    /// Where the finding is when reported on its own: the operation's
    /// node, or a shared component.
    address: String,
    /// Where the operation meets the cause: its own node, or the `$ref`
    /// to a shared component.
    site: String,
    message: String,
    evidence: String,
    /// The decision behind the gap, when it is one that other operations
    /// share; `None`: the cause is `address` itself.
    decision: Option<Decision>,
}

/// A cause that is not the gap's own node: one decision that many
/// operations repeat.
struct Decision {
    /// Tells decisions apart (with the rule): two gaps group only when it
    /// is equal.
    key: String,
    /// Where the decision is made: the finding's place.
    address: String,
    /// What the finding says, given how many operations it affects.
    message: Box<dyn Fn(usize) -> String>,
}

/// What a secured operation's callers need beyond valid credentials.
struct RoleNeed {
    /// In words: `the scope admin of oauth`, `one of the roles [a, b] (x-roles)`.
    words: String,
    /// The schemes whose scopes are needed, in order: the decision behind
    /// a missing 403 when no `x-roles` are involved.
    schemes: Vec<String>,
    x_roles: bool,
}

impl Linter<'_> {
    #[allow(clippy::too_many_arguments)]
    fn gap(
        &mut self,
        rule: &'static Rule,
        entry: Option<usize>,
        status: u16,
        address: String,
        site: Option<String>,
        message: String,
        evidence: &str,
        decision: Option<Decision>,
    ) {
        self.gaps.push(Gap {
            rule,
            entry,
            status,
            site: site.unwrap_or_else(|| address.clone()),
            address,
            message,
            evidence: evidence.to_owned(),
            decision,
        });
    }

    /// The gaps as findings: one per cause (or per operation, expanded),
    /// in document order.
    fn findings(&mut self, grouping: Grouping) -> Vec<Located> {
        // Gaps with one cause, in the order their first gap was found.
        let mut groups: Vec<Vec<Gap>> = Vec::new();
        let mut index: HashMap<(&'static str, bool, String), usize> = HashMap::new();
        for gap in std::mem::take(&mut self.gaps) {
            let key = match &gap.decision {
                Some(decision) => (gap.rule.id, true, decision.key.clone()),
                None => (gap.rule.id, false, gap.address.clone()),
            };
            let at = *index.entry(key).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            let group = &mut groups[at];
            // One operation is one occurrence, however many of its
            // responses use the cause.
            let seen = group.iter().any(|g| match (g.entry, gap.entry) {
                (Some(a), Some(b)) => a == b,
                _ => g.site == gap.site,
            });
            if !seen {
                group.push(gap);
            }
        }
        let mut out: Vec<((usize, usize), Located)> = Vec::new();
        for group in groups {
            if grouping == Grouping::Expand {
                for gap in &group {
                    let mut located =
                        self.located(gap, &gap.site, gap.message.clone(), &gap.evidence);
                    located.occurrences = self.occurrence(gap).into_iter().collect();
                    out.push((self.doc.order(&gap.site), located));
                }
                continue;
            }
            let first = &group[0];
            let occurrences: Vec<Occurrence> =
                group.iter().filter_map(|g| self.occurrence(g)).collect();
            let (address, message, evidence, status) = match &first.decision {
                Some(decision) if group.len() > 1 => (
                    decision.address.clone(),
                    (decision.message)(group.len()),
                    self.named(&group),
                    0,
                ),
                _ if occurrences.len() > 1 => (
                    first.address.clone(),
                    format!(
                        "{} ({} use it)",
                        first.message,
                        count(occurrences.len(), "operation", "operations")
                    ),
                    first.evidence.clone(),
                    first.status,
                ),
                _ => (
                    first.address.clone(),
                    first.message.clone(),
                    first.evidence.clone(),
                    first.status,
                ),
            };
            let mut located = self.located(first, &address, message, &evidence);
            located.status = status;
            located.occurrences = occurrences;
            out.push((self.doc.order(&address), located));
        }
        // Stable: findings at one place keep the order they were made in.
        out.sort_by_key(|(order, _)| *order);
        out.into_iter().map(|(_, l)| l).collect()
    }

    /// `GET /a: declared: 200, default`: the first operation of a group
    /// and its own evidence (the occurrences name the others).
    fn named(&self, group: &[Gap]) -> String {
        let first = &group[0];
        let label = self.label(first);
        if first.evidence.is_empty() {
            label
        } else {
            format!("{label}: {}", first.evidence)
        }
    }

    /// `GET /a`, or the place of a gap outside any operation.
    fn label(&self, gap: &Gap) -> String {
        match gap.entry.and_then(|i| self.ops.get(i)) {
            Some(op) => op.label(),
            None => self.doc.describe(&gap.site),
        }
    }

    /// The finding for `gap` at `address`, named after its operation.
    fn located(&self, gap: &Gap, address: &str, message: String, evidence: &str) -> Located {
        let op = gap.entry.and_then(|i| self.ops.get(i));
        let position = self.doc.position(address);
        Located {
            file: self.doc.file_of(address).to_owned(),
            entry: gap.entry.unwrap_or(0),
            line: position.map(|p| p.line),
            column: position.map(|p| p.column),
            method: op.map(|op| op.method.clone()).unwrap_or_default(),
            url: op.map(|op| op.path.clone()).unwrap_or_default(),
            status: gap.status,
            finding: Finding::new(gap.rule, message, evidence),
            pointer: Some(self.doc.local_pointer(address).to_owned()),
            probe: None,
            occurrences: Vec::new(),
        }
    }

    /// Where `gap`'s operation meets its cause; `None` for a gap outside
    /// any operation that is its own cause (nothing else is affected).
    fn occurrence(&self, gap: &Gap) -> Option<Occurrence> {
        let op = gap.entry.and_then(|i| self.ops.get(i));
        if op.is_none() && gap.decision.is_none() {
            return None;
        }
        let position = self.doc.position(&gap.site);
        Some(Occurrence {
            method: op.map(|op| op.method.clone()).unwrap_or_default(),
            path: op.map(|op| op.path.clone()).unwrap_or_default(),
            file: self.doc.file_of(&gap.site).to_owned(),
            line: position.map(|p| p.line),
            column: position.map(|p| p.column),
            pointer: self.doc.local_pointer(&gap.site).to_owned(),
        })
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
        let roles = self.roles_needed(op);
        // The responses map (or the whole operation) unknown: the rules
        // about what it lacks cannot be judged.
        if let Some(unknown) = op.unknown(&Declared::Responses) {
            let reference = unknown.reference.clone();
            let secured = op.is_secured();
            let applies = [
                secured,
                roles.is_some(),
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

        let needs_401 = op.is_secured() && self.needs_401(op);
        let want = if op.concealed { "404" } else { "403" };
        // Only successes: any 2xx (200, 201, 204...), `2XX`, or `default`.
        let only_success = !op.responses.is_empty()
            && op.responses.iter().all(|r| {
                r.code().is_some_and(|c| (200..300).contains(&c))
                    || ["2XX", "default"]
                        .iter()
                        .any(|k| r.status.eq_ignore_ascii_case(k))
            });
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
        // One gap, one finding: an operation that declares no 4xx at all
        // lacks its 401 and 403 too, and spec.only_200 says so; the two
        // narrower rules speak only when some error is declared.
        if only_success && let Some(why) = why {
            let status = op
                .responses
                .iter()
                .find_map(ResponseDecl::code)
                .unwrap_or(0);
            let missing: Vec<&str> = [needs_401.then_some("401"), roles.as_ref().map(|_| want)]
                .into_iter()
                .flatten()
                .collect();
            let also = match missing[..] {
                [] => String::new(),
                [one] => format!(" (not even its {one})"),
                [a, b] => format!(" (not even its {a} or {b})"),
                _ => String::new(),
            };
            let under_default = op.response("default").is_some()
                && op.responses.iter().any(|r| {
                    r.code().is_some_and(|c| (200..300).contains(&c))
                        || r.status.eq_ignore_ascii_case("2XX")
                });
            let decision = under_default.then(|| Decision {
                key: "errors only under default".to_owned(),
                address: "/paths".to_owned(),
                message: Box::new(|n| {
                    format!(
                        "{} declare their errors only under `default`, beside their \
                         successes: a client cannot tell which 4xx or 5xx to expect \
                         (a secured operation's 401, a restricted one's 403)",
                        count(n, "operation", "operations")
                    )
                }),
            });
            self.gap(
                &SPEC_ONLY_200,
                Some(entry),
                status,
                responses.clone(),
                None,
                format!("{label} {why}, so it can fail, but declares no 4xx or 5xx response{also}"),
                &declared,
                decision,
            );
        } else {
            if needs_401 && op.response("401").is_none() {
                let schemes = self.schemes(op);
                let decision = (!schemes.is_empty()).then(|| {
                    let shown = quoted(&schemes, "or");
                    Decision {
                        key: schemes.join(" "),
                        address: self.scheme_place(&schemes[0]),
                        message: Box::new(move |n| {
                            format!(
                                "{} secured by {shown} declare no 401 response",
                                count(n, "operation", "operations")
                            )
                        }),
                    }
                });
                self.gap(
                    &SPEC_SECURED_WITHOUT_401,
                    Some(entry),
                    0,
                    responses.clone(),
                    None,
                    format!("{label} requires credentials but declares no 401 response"),
                    &declared,
                    decision,
                );
            }
            if let Some(need) = &roles
                && op.response(want).is_none()
            {
                let why = if op.concealed {
                    " and is x-concealed"
                } else {
                    ""
                };
                // Scopes of one scheme are one decision; x-roles are the
                // operation's own.
                let decision = (!need.x_roles && !need.schemes.is_empty()).then(|| {
                    let shown = quoted(&need.schemes, "or");
                    let concealed = if op.concealed { "x-concealed " } else { "" };
                    Decision {
                        key: format!("{want} {}", need.schemes.join(" ")),
                        address: self.scheme_place(&need.schemes[0]),
                        message: Box::new(move |n| {
                            format!(
                                "{} {concealed}operations that require scopes of {shown} \
                                 declare no {want} response",
                                n
                            )
                        }),
                    }
                });
                self.gap(
                    &SPEC_ROLES_WITHOUT_403,
                    Some(entry),
                    0,
                    responses.clone(),
                    None,
                    format!(
                        "{label} requires {}{why} but declares no {want} response",
                        need.words
                    ),
                    &declared,
                    decision,
                );
            }
        }

        if let Some(declared_422) = op.response("422")
            && op.response("400").is_none()
        {
            if let Some(unknown) = op.unknown(&Declared::RequestBody) {
                let reference = unknown.reference.clone();
                self.skip(&SPEC_422_WITHOUT_400, op.label(), &reference);
            } else if let Some(json) = op.request_body.as_ref().and_then(|b| b.json()) {
                // A framework's one 422 (a shared response, or one shared
                // schema) is one decision.
                let decision = self.shared(op, declared_422).map(|(key, address)| {
                    let shown = self.doc.describe(&address);
                    Decision {
                        key,
                        address,
                        message: Box::new(move |n| {
                            format!(
                                "{} take a JSON body and declare 422 ({shown}) but no 400: \
                                 a body that is not valid JSON gets 400 (body.malformed); \
                                 422 is for well-formed input the server cannot process",
                                count(n, "operation", "operations")
                            )
                        }),
                    }
                });
                self.gap(
                    &SPEC_422_WITHOUT_400,
                    Some(entry),
                    0,
                    responses.clone(),
                    None,
                    format!(
                        "{label} takes a JSON body ({}) and declares 422 but no 400: \
                         a body that is not valid JSON gets 400 (body.malformed); \
                         422 is for well-formed input the server cannot process",
                        json.name
                    ),
                    &declared,
                    decision,
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

    /// What a secured operation's callers need beyond valid credentials,
    /// following OpenAPI: every scope of one requirement is needed, and a
    /// requirement with no scopes is a way in without any; `x-roles` (one
    /// of them) applies whatever the requirement. `None` when there is a
    /// way in without a role.
    fn roles_needed(&self, op: &Operation) -> Option<RoleNeed> {
        if !op.is_secured() {
            return None;
        }
        let node = self.doc.node(&op.pointer);
        let x_roles: Vec<&str> = node
            .and_then(|n| n.get("x-roles"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let requirements = node
            .and_then(|n| n.get("security"))
            .or_else(|| self.doc.root.get("security"))
            .and_then(Value::as_array);
        // Each alternative: the scopes each of its schemes needs.
        let alternatives: Vec<Vec<(&str, Vec<&str>)>> = requirements
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .map(|alternative| {
                alternative
                    .iter()
                    .map(|(scheme, scopes)| {
                        let scopes = scopes
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .collect();
                        (scheme.as_str(), scopes)
                    })
                    .collect()
            })
            .collect();
        let scoped = |alt: &Vec<(&str, Vec<&str>)>| alt.iter().any(|(_, s)| !s.is_empty());
        let every_scoped = !alternatives.is_empty() && alternatives.iter().all(scoped);
        if !every_scoped && x_roles.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        let mut schemes: Vec<String> = Vec::new();
        if every_scoped {
            let ways: Vec<String> = alternatives
                .iter()
                .map(|alt| {
                    let needs: Vec<String> = alt
                        .iter()
                        .filter(|(_, scopes)| !scopes.is_empty())
                        .map(|(scheme, scopes)| {
                            if !schemes.iter().any(|s| s == scheme) {
                                schemes.push((*scheme).to_owned());
                            }
                            match scopes[..] {
                                [one] => format!("the scope {one} of {scheme}"),
                                _ => {
                                    format!("all of the scopes [{}] of {scheme}", scopes.join(", "))
                                }
                            }
                        })
                        .collect();
                    needs.join(" and ")
                })
                .collect();
            parts.push(ways.join(", or "));
        }
        if !x_roles.is_empty() {
            parts.push(match x_roles[..] {
                [one] => format!("the role {one} (x-roles)"),
                _ => format!("one of the roles [{}] (x-roles)", x_roles.join(", ")),
            });
        }
        Some(RoleNeed {
            words: parts.join(", and "),
            schemes,
            x_roles: !x_roles.is_empty(),
        })
    }

    /// The schemes an operation's requirements name, sorted: the decision
    /// behind a missing 401.
    fn schemes(&self, op: &Operation) -> Vec<String> {
        let super::Security::Required { schemes, .. } = &op.security else {
            return Vec::new();
        };
        let mut schemes = schemes.clone();
        schemes.sort();
        schemes
    }

    /// Where scheme `name` is declared; the root `security` (or `paths`)
    /// when it is not.
    fn scheme_place(&self, name: &str) -> String {
        let at = format!("/components/securitySchemes/{}", escape_token(name));
        if let Some(node) = self.doc.node(&at) {
            return self
                .doc
                .resolve(node, &at)
                .map_or(at, |(_, address)| address);
        }
        if self.doc.root.get("security").is_some() {
            "/security".to_owned()
        } else {
            "/paths".to_owned()
        }
    }

    /// A response other operations may share: the component it is (a
    /// node outside the operation), or the schema its JSON content refers
    /// to. The key tells such causes apart; the address is where it is.
    fn shared(&self, op: &Operation, response: &ResponseDecl) -> Option<(String, String)> {
        if !self.within(op, &response.pointer) {
            return Some((
                format!("response {}", response.pointer),
                response.pointer.clone(),
            ));
        }
        let media = response.content.iter().find(|m| m.is_json())?;
        self.schema_ref(&media.pointer)
            .map(|target| (format!("schema {} {target}", essence(&media.name)), target))
    }

    /// Where the `schema` of the media type at `media` refers to, when it
    /// is a `$ref` that can be followed.
    fn schema_ref(&self, media: &str) -> Option<String> {
        let at = format!("{media}/schema");
        let schema = self.doc.node(&at)?;
        schema.get("$ref")?;
        self.doc.resolve(schema, &at).map(|(_, address)| address)
    }

    /// True when `address` lies inside the operation's own object.
    fn within(&self, op: &Operation, address: &str) -> bool {
        address == op.pointer
            || address
                .strip_prefix(op.pointer.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
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
        // Where the operation uses the response: the response itself, or
        // its `$ref` to a shared one.
        let inline = self.within(op, &response.pointer);
        let site = (!inline).then(|| format!("{}/responses/{}", op.pointer, escape_token(key)));
        let headers = if response.headers.is_empty() {
            "headers: none".to_owned()
        } else {
            format!("headers: {}", response.headers.join(", "))
        };
        if let Some((rule, header)) = header_rule
            && !response.has_header(header)
        {
            self.gap(
                rule,
                Some(entry),
                status,
                response.pointer.clone(),
                site.clone(),
                format!("the {key} response declares no {header} header"),
                &headers,
                None,
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
            self.gap(
                &SPEC_204_WITH_CONTENT,
                Some(entry),
                status,
                format!("{}/content", response.pointer),
                site.clone(),
                format!(
                    "the 204 response declares content ({}); a 204 never has any",
                    names.join(", ")
                ),
                &names.join(", "),
                None,
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
            // Inline responses whose JSON content is one shared schema
            // (an API's one error shape) are one decision.
            let decision = if inline {
                self.schema_ref(&json.pointer).map(|target| {
                    let shown = self.doc.describe(&target);
                    let media = json.name.clone();
                    Decision {
                        key: format!("schema {} {target}", essence(&json.name)),
                        address: target,
                        message: Box::new(move |n| {
                            format!(
                                "{} declare error responses as {media} with the schema \
                                 {shown}, not application/problem+json",
                                count(n, "operation", "operations")
                            )
                        }),
                    }
                })
            } else {
                None
            };
            self.gap(
                &SPEC_ERROR_NOT_PROBLEM_JSON,
                Some(entry),
                status,
                json.pointer.clone(),
                site,
                format!(
                    "{what} declares {}, not application/problem+json",
                    json.name
                ),
                &names.join(", "),
                decision,
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
                // One scheme used with roles is one decision, however
                // many requirements repeat it.
                let shown = scheme.clone();
                let kind_shown = kind.clone();
                let decision = Decision {
                    key: scheme.clone(),
                    address: self.scheme_place(scheme),
                    message: Box::new(move |n| {
                        format!(
                            "OpenAPI 3.0 allows scopes only for oauth2 and openIdConnect \
                             schemes, and `{shown}` is {kind_shown}: {} list roles as its \
                             scopes; list them in x-roles",
                            count(n, "security requirement", "security requirements")
                        )
                    }),
                };
                self.gap(
                    &SPEC_ROLES_IN_SCOPES,
                    entry,
                    0,
                    format!("{at}/{i}/{}", escape_token(scheme)),
                    None,
                    format!(
                        "OpenAPI 3.0 allows scopes only for oauth2 and openIdConnect schemes, \
                         and `{scheme}` is {kind}: list the roles in x-roles"
                    ),
                    &listed.join(", "),
                    Some(decision),
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
        self.gap(
            &SPEC_UNRESOLVED_REF,
            entry,
            0,
            format!("{address}/$ref"),
            None,
            format!("$ref {problem}"),
            &shown,
            None,
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

/// `` `a` or `b` ``: names for a message.
fn quoted(names: &[String], joiner: &str) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(&format!(" {joiner} "))
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

    fn expanded(text: &str) -> Vec<Located> {
        let doc = Document::parse("api.yaml", text).unwrap_or_else(|e| panic!("{e}"));
        lint_grouped(&doc, &operations(&doc), Grouping::Expand).findings
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
        let findings = expanded(doc);
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
        // One scheme used with roles is one decision: one finding at the
        // scheme, naming both requirements.
        let grouped = run(doc);
        assert_eq!(ids(&grouped), ["spec.roles_in_scopes@4"]);
        assert_eq!(
            grouped[0].pointer.as_deref(),
            Some("/components/securitySchemes/bearer")
        );
        let sites: Vec<_> = grouped[0]
            .occurrences
            .iter()
            .map(|o| (o.label(), o.line))
            .collect();
        assert_eq!(
            sites,
            [
                ("/security/0/bearer".to_owned(), Some(7)),
                ("GET /r".to_owned(), Some(13))
            ]
        );
        assert!(
            grouped[0]
                .finding
                .message
                .contains("2 security requirements list roles"),
            "{}",
            grouped[0].finding.message
        );
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
