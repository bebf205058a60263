//! Which probe runs on which operation, with which credentials, in which
//! order, and why a probe that applies cannot run.
//!
//! The plan is computed before any request is sent, so it can be shown
//! and tested on its own. Phases give the order: creates first (their ids
//! feed every later path), then everything that reads or is refused, then
//! deletes, then the opt-in burst.

use std::collections::HashMap;

use candor_contract::rules::{self, Rule};

use super::credentials::Credentials;
use super::target::{erase_names, is_param, item_key, param_names};
use crate::openapi::{Document, Operation, operations};

/// One active probe of contract section 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Probe {
    NoCredentials,
    InvalidToken,
    InsufficientRole,
    MalformedJson,
    WrongMediaType,
    SchemaViolation,
    SemanticViolation,
    UnknownId,
    UnknownRoute,
    WrongMethod,
    OversizeBody,
    Create,
    Delete,
    RateBurst,
}

impl Probe {
    pub const ALL: [Probe; 14] = [
        Probe::NoCredentials,
        Probe::InvalidToken,
        Probe::InsufficientRole,
        Probe::MalformedJson,
        Probe::WrongMediaType,
        Probe::SchemaViolation,
        Probe::SemanticViolation,
        Probe::UnknownId,
        Probe::UnknownRoute,
        Probe::WrongMethod,
        Probe::OversizeBody,
        Probe::Create,
        Probe::Delete,
        Probe::RateBurst,
    ];

    /// The rule the probe checks.
    pub fn rule(self) -> &'static Rule {
        match self {
            Probe::NoCredentials => &rules::PROBE_NO_CREDENTIALS,
            Probe::InvalidToken => &rules::PROBE_INVALID_TOKEN,
            Probe::InsufficientRole => &rules::PROBE_INSUFFICIENT_ROLE,
            Probe::MalformedJson => &rules::PROBE_MALFORMED_JSON,
            Probe::WrongMediaType => &rules::PROBE_WRONG_MEDIA_TYPE,
            Probe::SchemaViolation => &rules::PROBE_SCHEMA_VIOLATION,
            Probe::SemanticViolation => &rules::PROBE_SEMANTIC_VIOLATION,
            Probe::UnknownId => &rules::PROBE_UNKNOWN_ID,
            Probe::UnknownRoute => &rules::PROBE_UNKNOWN_ROUTE,
            Probe::WrongMethod => &rules::PROBE_WRONG_METHOD,
            Probe::OversizeBody => &rules::PROBE_OVERSIZE_BODY,
            Probe::Create => &rules::PROBE_CREATE,
            Probe::Delete => &rules::PROBE_DELETE,
            Probe::RateBurst => &rules::PROBE_RATE_BURST,
        }
    }

    /// The rule ID, e.g. `probe.create`.
    pub fn id(self) -> &'static str {
        self.rule().id
    }

    /// Whether the probe sends a valid request as a caller who may make it
    /// (and so needs the operation's high credential).
    fn needs_high(self) -> bool {
        !matches!(
            self,
            Probe::NoCredentials
                | Probe::InvalidToken
                | Probe::InsufficientRole
                | Probe::UnknownRoute
                | Probe::WrongMethod
        )
    }
}

/// When a step runs. Phases run one after the other, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Valid creates and their repeats, one at a time, parents first.
    Create,
    /// Reads, refusals, unknown ids and routes, concurrently.
    Main,
    /// Everything that sends DELETE, one at a time, the valid delete last.
    Delete,
    /// The opt-in rate burst.
    Burst,
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Probe(Probe),
    /// A valid read of a GET operation: not a probe, but its response goes
    /// through the passive checks and shows whether created ids resolve.
    Read,
}

/// One planned step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub kind: StepKind,
    /// Index into [`Plan::operations`] (none for unknown_route).
    pub op: Option<usize>,
    /// The method sent.
    pub method: String,
    /// The path template (a random path for unknown_route).
    pub path: String,
    /// What the case is about, e.g. `POST /users`.
    pub subject: String,
    pub phase: Phase,
    /// Why the step cannot run, known before any request.
    pub skip: Option<String>,
    /// Why the plan chose this operation, when it chose one of several
    /// (the burst goes to one): shown with the step's result.
    pub chosen: Option<String>,
}

impl Step {
    pub fn probe(&self) -> Option<Probe> {
        match self.kind {
            StepKind::Probe(p) => Some(p),
            StepKind::Read => None,
        }
    }
}

/// What the plan depends on.
#[derive(Debug, Clone)]
pub struct PlanOptions<'a> {
    pub credentials: &'a Credentials,
    pub allow_destructive: bool,
    /// Requests of the rate burst, when opted in.
    pub burst: Option<u32>,
    /// The run's tag (in the unknown route's path).
    pub tag: &'a str,
}

/// The steps of a run, in the order their results are reported.
#[derive(Debug, Clone)]
pub struct Plan {
    pub operations: Vec<Operation>,
    pub steps: Vec<Step>,
    /// For each item key (`/users/{}`), the name of its last parameter
    /// (`id`): the member of a create response that holds the new id.
    pub item_params: HashMap<String, String>,
    /// Whether the API speaks JSON (any JSON media type declared).
    pub json_api: bool,
}

/// Methods tried, in order, by the wrong-method probe: GET is safe; PATCH
/// is sent without a body, so even an API that serves it has nothing to
/// apply; TRACE changes nothing. DELETE, PUT and POST are never tried.
pub const WRONG_METHOD_CANDIDATES: [&str; 3] = ["GET", "PATCH", "TRACE"];

/// Why a DELETE is not sent.
pub const NEEDS_DESTRUCTIVE: &str = "sends DELETE; pass --allow-destructive";

pub fn plan(doc: &Document, options: &PlanOptions<'_>) -> Plan {
    let ops = operations(doc);
    let creds = options.credentials;
    let mut steps = Vec::new();

    let mut item_params = HashMap::new();
    for op in &ops {
        if let Some(last) = op.path.split('/').next_back()
            && is_param(last)
            && let Some(name) = param_names(&op.path).last()
        {
            item_params
                .entry(erase_names(&op.path))
                .or_insert_with(|| (*name).to_owned());
        }
    }

    // Creates, parents before children.
    let mut creates: Vec<usize> = (0..ops.len())
        .filter(|&i| is_create(&ops[i], &item_params))
        .collect();
    creates.sort_by_key(|&i| ops[i].path.matches('/').count());
    for &i in &creates {
        for probe in [Probe::Create, Probe::SemanticViolation] {
            steps.push(op_step(&ops[i], i, probe, Phase::Create, options));
        }
    }

    for (i, op) in ops.iter().enumerate() {
        let phase = if op.method == "DELETE" {
            Phase::Delete
        } else {
            Phase::Main
        };
        if !matches!(
            op.method.as_str(),
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE"
        ) {
            continue;
        }
        if op.method == "GET" && (!op.is_secured() || creds.high(op).is_some()) {
            steps.push(Step {
                kind: StepKind::Read,
                op: Some(i),
                method: op.method.clone(),
                path: op.path.clone(),
                subject: op.label(),
                phase,
                skip: None,
                chosen: None,
            });
        }
        let mut probes = Vec::new();
        if op.is_secured() {
            probes.extend([Probe::NoCredentials, Probe::InvalidToken]);
            if !op.roles().is_empty() {
                probes.push(Probe::InsufficientRole);
            }
        }
        if has_json_body(op) {
            probes.extend([
                Probe::MalformedJson,
                Probe::WrongMediaType,
                Probe::SchemaViolation,
                Probe::OversizeBody,
            ]);
        }
        if !param_names(&op.path).is_empty()
            && matches!(op.method.as_str(), "GET" | "PUT" | "PATCH" | "DELETE")
        {
            probes.push(Probe::UnknownId);
        }
        if op.method == "DELETE" && !param_names(&op.path).is_empty() {
            probes.push(Probe::Delete);
        }
        for probe in probes {
            steps.push(op_step(op, i, probe, phase, options));
        }
    }

    // Wrong method, once per path.
    let mut paths: Vec<&str> = Vec::new();
    for op in &ops {
        if !paths.contains(&op.path.as_str()) {
            paths.push(&op.path);
        }
    }
    for path in paths {
        let declared: Vec<&Operation> = ops.iter().filter(|o| o.path == path).collect();
        let Some(method) = WRONG_METHOD_CANDIDATES
            .iter()
            .find(|m| !declared.iter().any(|o| o.method == **m))
        else {
            continue;
        };
        let first = ops.iter().position(|o| o.path == path);
        steps.push(Step {
            kind: StepKind::Probe(Probe::WrongMethod),
            op: first,
            method: (*method).to_owned(),
            path: path.to_owned(),
            subject: format!("{method} {path}"),
            phase: Phase::Main,
            skip: None,
            chosen: None,
        });
    }

    let unknown = format!("/candor-probe-{}", options.tag);
    steps.push(Step {
        kind: StepKind::Probe(Probe::UnknownRoute),
        op: None,
        method: "GET".to_owned(),
        subject: format!("GET {unknown}"),
        path: unknown,
        phase: Phase::Main,
        skip: None,
        chosen: None,
    });

    steps.push(burst_step(&ops, options));

    // Phases in order; within a phase, plan order (stable sort). Within
    // the delete phase, each operation's valid delete comes last.
    steps.sort_by_key(|s| {
        (
            s.phase,
            if s.phase == Phase::Delete { s.op } else { None },
            s.phase == Phase::Delete && s.probe() == Some(Probe::Delete),
        )
    });

    let json_api = ops.iter().any(|op| {
        op.request_body.as_ref().is_some_and(|b| b.json().is_some())
            || op
                .responses
                .iter()
                .any(|r| r.content.iter().any(|m| m.is_json()))
    });
    Plan {
        operations: ops,
        steps,
        item_params,
        json_api,
    }
}

fn op_step(
    op: &Operation,
    index: usize,
    probe: Probe,
    phase: Phase,
    options: &PlanOptions<'_>,
) -> Step {
    let creds = options.credentials;
    let skip = if op.method == "DELETE" && !options.allow_destructive {
        Some(NEEDS_DESTRUCTIVE.to_owned())
    } else if probe.needs_high() && op.is_secured() && creds.high(op).is_none() {
        Some(creds.missing_high(op))
    } else if probe == Probe::InsufficientRole && creds.low(op).is_none() {
        Some(creds.missing_low(op))
    } else {
        None
    };
    Step {
        kind: StepKind::Probe(probe),
        op: Some(index),
        method: op.method.clone(),
        path: op.path.clone(),
        subject: op.label(),
        phase,
        skip,
        chosen: None,
    }
}

/// The burst goes to one GET the run may call (public, or with the high
/// role's credential): first one that declares 429 (without path
/// parameters before with them), else the first public GET without path
/// parameters, else the first such GET the high role may call. Only GETs:
/// a burst of writes would make hundreds of resources.
fn burst_step(ops: &[Operation], options: &PlanOptions<'_>) -> Step {
    let callable = |o: &Operation| !o.is_secured() || options.credentials.high(o).is_some();
    let gets = || {
        ops.iter()
            .enumerate()
            .filter(|(_, o)| o.method == "GET" && callable(o))
    };
    let plain = |o: &Operation| param_names(&o.path).is_empty();
    let limited = |o: &Operation| o.response("429").is_some();
    let target = gets()
        .find(|(_, o)| limited(o) && plain(o))
        .or_else(|| gets().find(|(_, o)| limited(o)))
        .or_else(|| gets().find(|(_, o)| plain(o) && !o.is_secured()))
        .or_else(|| gets().find(|(_, o)| plain(o)));
    let chosen = target.map(|(_, o)| {
        if limited(o) {
            "it declares 429".to_owned()
        } else {
            let how = if o.is_secured() {
                "a GET the high role may call"
            } else {
                "a public GET"
            };
            let none = if ops.iter().any(limited) {
                "no GET the run may call declares 429"
            } else {
                "no operation declares 429"
            };
            format!("{how}; {none}")
        }
    });
    let skip = match (options.burst, options.allow_destructive, target) {
        (None, _, _) => Some("opt-in: pass --burst N with --allow-destructive".to_owned()),
        (Some(_), false, _) => Some("--burst needs --allow-destructive".to_owned()),
        (Some(0), true, _) => Some("--burst 0 sends nothing".to_owned()),
        (Some(_), true, None) => Some(
            "no GET operation that declares 429 or has no path parameters to send a burst to"
                .to_owned(),
        ),
        (Some(_), true, Some(_)) => None,
    };
    let (op, method, path, subject) = match target {
        Some((i, o)) => (Some(i), o.method.clone(), o.path.clone(), o.label()),
        None => (None, "GET".to_owned(), "/".to_owned(), "GET /".to_owned()),
    };
    Step {
        kind: StepKind::Probe(Probe::RateBurst),
        op,
        method,
        path,
        subject,
        phase: Phase::Burst,
        skip,
        chosen,
    }
}

/// A POST that makes a resource: it declares 201 or 202, or an item path
/// below it exists.
pub fn is_create(op: &Operation, item_params: &HashMap<String, String>) -> bool {
    op.method == "POST"
        && !op.path.split('/').next_back().is_some_and(is_param)
        && (op.response("201").is_some()
            || op.response("202").is_some()
            || item_params.contains_key(&item_key(&op.path)))
}

/// An operation whose request body can be JSON.
pub fn has_json_body(op: &Operation) -> bool {
    matches!(op.method.as_str(), "POST" | "PUT" | "PATCH")
        && op.request_body.as_ref().is_some_and(|b| b.json().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"
openapi: 3.1.0
info: {title: t, version: '1'}
paths:
  /health:
    get:
      responses: {'200': {description: ok}}
  /users:
    post:
      security: [{bearer: [admin]}]
      requestBody:
        content:
          application/json:
            schema: {type: object, required: [email], properties: {email: {type: string}}}
      responses: {'201': {description: created}}
  /users/{id}:
    get:
      security: [{bearer: []}]
      parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
      responses: {'200': {description: ok, content: {application/json: {}}}}
    delete:
      security: [{bearer: [admin]}]
      parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
      responses: {'204': {description: gone}}
"#;

    fn run(creds: &[&str], destructive: bool, burst: Option<u32>) -> Plan {
        let doc = Document::parse("t.yaml", DOC).unwrap();
        let credentials = Credentials::parse(creds.iter().copied()).unwrap();
        plan(
            &doc,
            &PlanOptions {
                credentials: &credentials,
                allow_destructive: destructive,
                burst,
                tag: "t",
            },
        )
    }

    fn find<'p>(plan: &'p Plan, probe: Probe, subject: &str) -> &'p Step {
        plan.steps
            .iter()
            .find(|s| s.probe() == Some(probe) && s.subject == subject)
            .unwrap_or_else(|| panic!("no {probe:?} on {subject}: {:#?}", plan.steps))
    }

    #[test]
    fn probes_apply_by_security_body_and_path() {
        let plan = run(&["admin=Bearer a", "user=Bearer u"], true, None);
        assert!(plan.json_api);
        assert_eq!(plan.item_params["/users/{}"], "id");
        assert_eq!(plan.steps[0].probe(), Some(Probe::Create));
        assert_eq!(plan.steps[1].probe(), Some(Probe::SemanticViolation));
        assert!(
            find(&plan, Probe::InsufficientRole, "POST /users")
                .skip
                .is_none()
        );
        assert!(
            find(&plan, Probe::OversizeBody, "POST /users")
                .skip
                .is_none()
        );
        assert!(
            find(&plan, Probe::UnknownId, "GET /users/{id}")
                .skip
                .is_none()
        );
        // GET /users/{id} names no role: nothing to be insufficient for.
        assert!(
            !plan
                .steps
                .iter()
                .any(|s| s.probe() == Some(Probe::InsufficientRole)
                    && s.subject == "GET /users/{id}")
        );
        // Wrong method: GET where it is missing, PATCH where GET exists.
        find(&plan, Probe::WrongMethod, "GET /users");
        find(&plan, Probe::WrongMethod, "PATCH /users/{id}");
        find(&plan, Probe::UnknownRoute, "GET /candor-probe-t");
        // Deletes last; the valid delete after the other DELETE probes.
        let last_delete = plan
            .steps
            .iter()
            .rposition(|s| s.phase == Phase::Delete)
            .unwrap();
        assert_eq!(plan.steps[last_delete].probe(), Some(Probe::Delete));
        let burst = plan.steps.last().unwrap();
        assert_eq!(burst.probe(), Some(Probe::RateBurst));
        assert!(burst.skip.as_deref().unwrap().contains("opt-in"));
    }

    #[test]
    fn skipped_steps_say_why() {
        let plan = run(&["admin=Bearer a"], false, Some(10));
        let role = find(&plan, Probe::InsufficientRole, "POST /users");
        assert!(
            role.skip.as_deref().unwrap().contains("below admin"),
            "{role:?}"
        );
        let delete = find(&plan, Probe::Delete, "DELETE /users/{id}");
        assert_eq!(delete.skip.as_deref(), Some(NEEDS_DESTRUCTIVE));
        let burst = plan.steps.last().unwrap();
        assert!(
            burst
                .skip
                .as_deref()
                .unwrap()
                .contains("--allow-destructive")
        );

        let plan = run(&[], true, Some(10));
        let create = find(&plan, Probe::Create, "POST /users");
        assert_eq!(create.skip.as_deref(), Some("no --auth for role admin"));
        assert!(
            find(&plan, Probe::NoCredentials, "POST /users")
                .skip
                .is_none()
        );
        assert!(
            plan.steps.last().unwrap().skip.is_none(),
            "burst on /health"
        );
        assert!(
            !plan
                .steps
                .iter()
                .any(|s| s.kind == StepKind::Read && s.subject == "GET /users/{id}"),
            "no read without credentials"
        );
    }
}
