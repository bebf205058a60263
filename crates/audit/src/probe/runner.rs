//! Runs a [`Plan`]: sends each step's requests through the recording
//! client, grades the answers, and reports findings and cases in plan
//! order whatever order the answers came in.
//!
//! Steps of the main phase run concurrently (no more at once than the
//! client's concurrency limit, so at most that many oversize bodies exist
//! at a time); the create and delete phases run one step at a time, since
//! their order matters. The passive rules run inside each step, right
//! after its response; [`History`] (the one rule that spans exchanges) is
//! fed in plan order when the results are reported.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candor_contract::{CheckOptions, Exchange, Finding, History, Severity, check_exchange};
use serde_json::Value;
use tokio::task::JoinSet;

use super::body::BodyGen;
use super::credentials::{Credential, Credentials};
use super::plan::{Phase, Plan, PlanOptions, Probe, Step, StepKind, has_json_body};
use super::random::Random;
use super::target::{self, CreatedIds, Filled, erase_names, item_key};
use super::{
    MAX_BURST, OVERSIZE_BYTES, ProbeError, ProbeOptions, ProbeReport, Progress, base_url, verdict,
};
use crate::http::{Client, RecordedRequest, RecordedResponse, SendError};
use crate::openapi::{Document, Operation};
use crate::{Case, CaseOutcome, Located, ProbeEvidence, Sink, Skipped};

/// What every request says it accepts.
const ACCEPT: &str = "application/json, application/problem+json";
/// The media type of the wrong-media-type probe.
const WRONG_MEDIA_TYPE: &str = "text/plain";

/// Probes the API at `options.base_url` as `doc` describes it. Findings
/// and cases go to `sink` (then `finish`); the report says how the run
/// went.
pub async fn run(
    doc: &Document,
    options: &ProbeOptions,
    client: &Client,
    progress: &dyn Progress,
    sink: &mut dyn Sink,
) -> Result<ProbeReport, ProbeError> {
    let base = base_url(&options.base_url)?;
    options.credentials.check_schemes(&security_schemes(doc))?;
    let preflight_answered = preflight(client, &base).await?;
    let random = Arc::new(Random::new());
    let tag = random.hex(8);
    let plan = super::plan::plan(
        doc,
        &PlanOptions {
            credentials: &options.credentials,
            allow_destructive: options.allow_destructive,
            burst: options.burst.map(|n| n.min(MAX_BURST)),
            tag: &tag,
        },
    );
    let doc = Arc::new(doc.clone());
    let ctx = Arc::new(Ctx {
        bodies: BodyGen::new(doc.clone(), tag, random.clone()),
        doc,
        base,
        client: client.clone(),
        credentials: options.credentials.clone(),
        allow_destructive: options.allow_destructive,
        reveal_credentials: options.reveal_credentials,
        burst: options.burst.unwrap_or(0).min(MAX_BURST),
        random,
        ids: CreatedIds::default(),
        creates: Mutex::new(HashMap::new()),
        check: CheckOptions {
            max_body_bytes: client.options().max_body,
            assume_json_api: plan.json_api,
        },
        plan,
    });
    let total = ctx.plan.steps.len();
    progress.start(total as u64);
    let mut report = Report::new(ctx.clone());
    let mut results: Vec<Option<StepResult>> = (0..total).map(|_| None).collect();
    let limit = client.options().concurrency.max(1);
    for phase in [Phase::Create, Phase::Main, Phase::Delete, Phase::Burst] {
        let indices: Vec<usize> = (0..total)
            .filter(|&i| ctx.plan.steps[i].phase == phase)
            .collect();
        if phase == Phase::Main {
            let mut tasks = JoinSet::new();
            let mut next = 0;
            while next < indices.len() || !tasks.is_empty() {
                while next < indices.len() && tasks.len() < limit {
                    let index = indices[next];
                    let ctx = ctx.clone();
                    tasks.spawn(async move { (index, execute(&ctx, index).await) });
                    next += 1;
                }
                match tasks.join_next().await {
                    Some(Ok((index, result))) => results[index] = Some(result),
                    // A step that panicked is reported as not run.
                    Some(Err(e)) => report.note_error(format!("a probe task failed: {e}")),
                    None => break,
                }
                progress.advance(1);
            }
        } else {
            for &index in &indices {
                results[index] = Some(execute(&ctx, index).await);
                progress.advance(1);
            }
        }
        for &index in &indices {
            let result = results[index].take().unwrap_or_else(|| StepResult {
                skip: Some("the step did not complete".to_owned()),
                ..StepResult::default()
            });
            report.emit(index, result, sink)?;
        }
    }
    progress.finish();
    let mut out = report.finish();
    out.requests = client.sent();
    out.responses += u64::from(preflight_answered);
    sink.finish(&out.summary)?;
    Ok(out)
}

/// The security schemes `doc` declares.
fn security_schemes(doc: &Document) -> Vec<String> {
    doc.root
        .pointer("/components/securitySchemes")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// One GET of the base URL before anything else: any HTTP answer will do,
/// but no answer at all (a wrong host or port, TLS trouble) stops the run
/// before a report full of connection errors is written.
async fn preflight(client: &Client, base: &str) -> Result<bool, ProbeError> {
    let request = RecordedRequest::new("GET", format!("{base}/")).header("Accept", ACCEPT);
    match client.send(&request).await {
        Ok(_) => Ok(true),
        Err(SendError::Budget(_)) => Ok(false),
        Err(e) => Err(ProbeError::Unreachable {
            url: base.to_owned(),
            why: e.to_string(),
        }),
    }
}

/// Everything a step needs, shared by the tasks.
struct Ctx {
    doc: Arc<Document>,
    plan: Plan,
    base: String,
    client: Client,
    credentials: Credentials,
    allow_destructive: bool,
    reveal_credentials: bool,
    burst: u32,
    bodies: BodyGen,
    random: Arc<Random>,
    ids: CreatedIds,
    /// The body of each operation's valid create, and whether it
    /// succeeded: the semantic-violation probe repeats it.
    creates: Mutex<HashMap<usize, (Vec<u8>, bool)>>,
    check: CheckOptions,
}

/// One request of a step and what came back.
#[derive(Debug, Clone)]
struct Attempt {
    /// The request as reported (the oversize probe's body left out).
    request: RecordedRequest,
    response: Option<RecordedResponse>,
    error: Option<String>,
    /// Passive findings on this exchange.
    passive: Vec<Finding>,
    /// Probe findings on this exchange.
    findings: Vec<Finding>,
}

#[derive(Debug, Default)]
struct StepResult {
    attempts: Vec<Attempt>,
    /// Why the step did not run (or stopped), when it did not.
    skip: Option<String>,
    budget: bool,
    /// Responses received but not reported (repeats within a burst).
    unreported: u64,
}

/// A step being run.
struct Exec<'c> {
    ctx: &'c Ctx,
    step: &'c Step,
    result: StepResult,
}

async fn execute(ctx: &Ctx, index: usize) -> StepResult {
    let step = &ctx.plan.steps[index];
    let mut exec = Exec {
        ctx,
        step,
        result: StepResult::default(),
    };
    if let Some(reason) = &step.skip {
        exec.result.skip = Some(reason.clone());
        return exec.result;
    }
    if ctx.client.remaining() == 0 {
        exec.budget_spent();
        return exec.result;
    }
    let op = step.op.map(|i| &ctx.plan.operations[i]);
    match (step.kind, op) {
        (StepKind::Read, Some(op)) => exec.read(op).await,
        (StepKind::Probe(Probe::UnknownRoute), _) => exec.unknown_route().await,
        (StepKind::Probe(Probe::WrongMethod), Some(op)) => exec.wrong_method(op).await,
        (StepKind::Probe(Probe::RateBurst), Some(op)) => exec.burst(op).await,
        (StepKind::Probe(probe), Some(op)) => exec.on_operation(probe, op).await,
        (StepKind::Probe(_) | StepKind::Read, None) => {
            exec.result.skip = Some("no operation to probe".to_owned());
        }
    }
    exec.result
}

/// The parts of a request to an operation.
struct Prepared {
    request: RecordedRequest,
    filled: Filled,
}

impl Exec<'_> {
    fn budget_spent(&mut self) {
        self.result.budget = true;
        self.result.skip = Some(format!(
            "request budget of {} spent (raise --budget)",
            self.ctx.client.options().budget
        ));
    }

    fn skip(&mut self, reason: impl Into<String>) {
        self.result.skip = Some(reason.into());
    }

    /// Sends `request` and records it; `shown` replaces the request in the
    /// report. Returns the attempt's index, or `None` when the budget is
    /// spent (nothing was sent).
    async fn send(
        &mut self,
        request: RecordedRequest,
        shown: Option<RecordedRequest>,
    ) -> Option<usize> {
        let answer = self.ctx.client.send(&request).await;
        let attempt = match answer {
            Err(SendError::Budget(_)) => {
                self.budget_spent();
                return None;
            }
            Ok(response) => {
                let passive =
                    check_exchange(&response.exchange(&request), &self.check_options(&response));
                Attempt {
                    request: shown.unwrap_or(request),
                    response: Some(response),
                    error: None,
                    passive,
                    findings: Vec::new(),
                }
            }
            Err(e) => Attempt {
                request: shown.unwrap_or(request),
                response: None,
                error: Some(e.to_string()),
                passive: Vec::new(),
                findings: Vec::new(),
            },
        };
        self.result.attempts.push(attempt);
        Some(self.result.attempts.len() - 1)
    }

    /// Sends `request` and grades its response with `grade`; no response
    /// at all is an error of `probe` (at `no_response` severity).
    async fn probe(
        &mut self,
        probe: Probe,
        request: RecordedRequest,
        shown: Option<RecordedRequest>,
        no_response: Severity,
        grade: impl FnOnce(&RecordedResponse) -> Vec<Finding>,
    ) -> Option<&RecordedResponse> {
        let index = self.send(request, shown).await?;
        let attempt = &mut self.result.attempts[index];
        match &attempt.response {
            Some(response) => {
                attempt.findings = grade(response);
                // One fact, one finding: the probe's, which says what was
                // expected, rather than the passive rule's beside it.
                let findings = &attempt.findings;
                attempt
                    .passive
                    .retain(|p| !findings.iter().any(|f| f.covers(p)));
            }
            None => {
                let why = attempt.error.clone().unwrap_or_default();
                attempt.findings = vec![
                    Finding::new(probe.rule(), format!("no response: {why}"), &why)
                        .with_severity(no_response),
                ];
            }
        }
        self.result.attempts[index].response.as_ref()
    }

    fn check_options(&self, response: &RecordedResponse) -> CheckOptions {
        let mut check = self.ctx.check.clone();
        if response.body_cut || response.body_error.is_some() {
            // A body read only in part is not judged as if it were whole.
            check.max_body_bytes = response.body.len().saturating_sub(1);
        }
        check
    }

    /// A request to `op` with its path filled (`last` overrides the last
    /// parameter), the required query and header parameters, and `cred`.
    fn prepare(
        &self,
        op: &Operation,
        method: &str,
        last: Option<&str>,
        cred: Option<&Credential>,
    ) -> Prepared {
        let ctx = self.ctx;
        let filled = target::fill_path(op, &ctx.ids, &ctx.bodies, last);
        let slash = if filled.path.starts_with('/') {
            ""
        } else {
            "/"
        };
        let url = format!(
            "{}{slash}{}{}",
            ctx.base,
            filled.path,
            target::query(op, &ctx.bodies)
        );
        let mut request = RecordedRequest::new(method, url).header("Accept", ACCEPT);
        for (name, value) in target::headers(op, &ctx.bodies) {
            request = request.header(name, value);
        }
        if let Some(cred) = cred {
            request = request.header(cred.header.clone(), cred.value.clone());
        }
        Prepared { request, filled }
    }

    /// Why sending `method` to `filled` would be destructive without
    /// `--allow-destructive`, if it would.
    fn destructive(&self, method: &str, filled: &Filled, own_id: bool) -> Option<String> {
        if self.ctx.allow_destructive {
            return None;
        }
        match method {
            "DELETE" => Some(super::plan::NEEDS_DESTRUCTIVE.to_owned()),
            "POST" | "PUT" | "PATCH" if !own_id && !filled.all_created => Some(format!(
                "would send {method} to {}, which this run did not create; pass --allow-destructive",
                filled.path
            )),
            _ => None,
        }
    }

    /// The JSON media type and schema of `op`'s request body, and a valid
    /// body for it.
    fn valid_body(&self, op: &Operation) -> Option<(String, Option<Value>, Value)> {
        let media = op.request_body.as_ref()?.json()?;
        let value = self
            .ctx
            .bodies
            .valid(media.example.as_ref(), media.schema.as_ref());
        Some((media.name.clone(), media.schema.clone(), value))
    }

    fn high(&self, op: &Operation) -> Option<Credential> {
        if op.is_secured() {
            self.ctx.credentials.high(op).cloned()
        } else {
            None
        }
    }

    async fn read(&mut self, op: &Operation) {
        let cred = self.high(op);
        let prepared = self.prepare(op, "GET", None, cred.as_ref());
        self.send(prepared.request, None).await;
    }

    async fn on_operation(&mut self, probe: Probe, op: &Operation) {
        let ctx = self.ctx;
        let creds = &ctx.credentials;
        let method = op.method.as_str();
        // The credential the request carries.
        let cred = match probe {
            Probe::NoCredentials => None,
            Probe::InvalidToken => Some(creds.invalid()),
            Probe::InsufficientRole => creds.low(op).cloned(),
            _ => self.high(op),
        };
        if probe == Probe::Delete {
            return self.delete(op, cred.as_ref()).await;
        }
        let body_not_json = op
            .request_body
            .as_ref()
            .is_some_and(|b| b.required && b.json().is_none());
        if body_not_json && matches!(probe, Probe::Create | Probe::UnknownId) {
            return self.skip("the request body is not JSON (candor generates JSON bodies only)");
        }
        if probe == Probe::SemanticViolation {
            return self.repeat_create(op, cred.as_ref()).await;
        }
        let unknown = match probe {
            Probe::UnknownId => Some(target::unknown_id(target::last_path_param(op), &ctx.random)),
            // The credential probes of a DELETE go to an id that does not
            // exist: an API that lets them through must not destroy the
            // resource the delete probe needs (a 404 still fails them).
            Probe::NoCredentials | Probe::InvalidToken | Probe::InsufficientRole
                if method == "DELETE" =>
            {
                target::last_path_param(op).map(|p| target::unknown_id(Some(p), &ctx.random))
            }
            _ => None,
        };
        let prepared = self.prepare(op, method, unknown.as_deref(), cred.as_ref());
        if let Some(why) = self.destructive(method, &prepared.filled, unknown.is_some()) {
            return self.skip(why);
        }
        let request = prepared.request;
        let body = if has_json_body(op) {
            self.valid_body(op)
        } else {
            None
        };
        let with_body = |request: RecordedRequest, media: &str, bytes: Vec<u8>| {
            request.header("Content-Type", media).body(bytes)
        };
        let valid = body.as_ref().map(|(media, _, value)| {
            (media.clone(), serde_json::to_vec(value).unwrap_or_default())
        });
        let valid_request = match &valid {
            Some((media, bytes)) => with_body(request.clone(), media, bytes.clone()),
            None => request.clone(),
        };
        match probe {
            Probe::NoCredentials => {
                self.probe(
                    probe,
                    valid_request,
                    None,
                    Severity::Error,
                    verdict::no_credentials,
                )
                .await;
            }
            Probe::InvalidToken => {
                let which = if creds.invalid_is_generated() {
                    "a garbage token"
                } else {
                    "the invalid token"
                };
                self.probe(probe, valid_request.clone(), None, Severity::Error, |r| {
                    verdict::invalid_token(r, which)
                })
                .await;
                if let Some(expired) = creds.expired(op) {
                    let mut request = valid_request;
                    request
                        .headers
                        .retain(|(n, _)| !n.eq_ignore_ascii_case(&creds.invalid().header));
                    let request = request.header(expired.header.clone(), expired.value.clone());
                    self.probe(probe, request, None, Severity::Error, |r| {
                        verdict::invalid_token(r, "an expired token")
                    })
                    .await;
                }
            }
            Probe::InsufficientRole => {
                let role = cred.as_ref().map_or("", |c| c.role.as_str()).to_owned();
                let concealed = op.concealed;
                self.probe(probe, valid_request, None, Severity::Error, |r| {
                    verdict::insufficient_role(r, concealed, &role)
                })
                .await;
            }
            Probe::MalformedJson => {
                let Some((media, bytes)) = valid else {
                    return self.skip("no JSON request body");
                };
                let request = with_body(request, &media, BodyGen::truncated(&bytes));
                self.probe(
                    probe,
                    request,
                    None,
                    Severity::Error,
                    verdict::malformed_json,
                )
                .await;
            }
            Probe::WrongMediaType => {
                let Some((_, bytes)) = valid else {
                    return self.skip("no JSON request body");
                };
                let request = with_body(request, WRONG_MEDIA_TYPE, bytes);
                self.probe(probe, request, None, Severity::Error, |r| {
                    verdict::wrong_media_type(r, WRONG_MEDIA_TYPE)
                })
                .await;
            }
            Probe::SchemaViolation => {
                let Some((media, schema, value)) = body else {
                    return self.skip("no JSON request body");
                };
                let variants: Vec<(Value, String)> = [
                    ctx.bodies.missing_required(&value, schema.as_ref()),
                    ctx.bodies.wrong_type(&value, schema.as_ref()),
                ]
                .into_iter()
                .flatten()
                .collect();
                if variants.is_empty() {
                    return self
                        .skip("the body schema has no required member or typed property to break");
                }
                for (broken, what) in variants {
                    let bytes = serde_json::to_vec(&broken).unwrap_or_default();
                    let request = with_body(request.clone(), &media, bytes);
                    self.probe(probe, request, None, Severity::Error, |r| {
                        verdict::schema_violation(r, &what)
                    })
                    .await;
                }
            }
            Probe::OversizeBody => {
                let Some((media, _)) = valid else {
                    return self.skip("no JSON request body");
                };
                let shown = request
                    .clone()
                    .header("Content-Type", media.clone())
                    .body_command(oversize_body_command(OVERSIZE_BYTES));
                let request = with_body(request, &media, oversize_body(OVERSIZE_BYTES));
                let answered = self
                    .probe(
                        probe,
                        request,
                        Some(shown),
                        Severity::Warn,
                        verdict::oversize,
                    )
                    .await
                    .is_some();
                if let Some(attempt) = self.result.attempts.last_mut() {
                    let note = format!(
                        " (the {OVERSIZE_BYTES}-byte body, {{\"candor_padding\":\"xxx…\"}}, is left out of this report)"
                    );
                    for finding in &mut attempt.findings {
                        finding.message.push_str(&note);
                        if !answered {
                            finding.message.push_str(
                                "; a server that refuses a body should answer 413 and read the rest of the body before it closes (the lingering close of RFC 9112 section 9.6): closing on an unread body resets the connection under the answer",
                            );
                        }
                    }
                }
            }
            Probe::Create => {
                let bytes = valid.as_ref().map(|(_, b)| b.clone()).unwrap_or_default();
                let response = self
                    .probe(probe, valid_request, None, Severity::Error, verdict::create)
                    .await
                    .cloned();
                let index = ctx.plan.operations.iter().position(|o| o == op);
                let succeeded = response
                    .as_ref()
                    .is_some_and(|r| (200..300).contains(&r.status));
                if let Some(index) = index
                    && let Ok(mut creates) = ctx.creates.lock()
                {
                    creates.insert(index, (bytes, succeeded));
                }
                if let Some(response) = response.filter(|_| succeeded) {
                    self.record_id(op, &response);
                }
            }
            Probe::UnknownId => {
                let method = method.to_owned();
                self.probe(probe, valid_request, None, Severity::Error, |r| {
                    verdict::unknown_id(r, &method)
                })
                .await;
            }
            Probe::Delete
            | Probe::SemanticViolation
            | Probe::UnknownRoute
            | Probe::WrongMethod
            | Probe::RateBurst => {}
        }
    }

    /// Remembers the id a create returned, for the paths below it.
    fn record_id(&self, op: &Operation, response: &RecordedResponse) {
        let Some(attempt) = self.result.attempts.last() else {
            return;
        };
        let key = item_key(&op.path);
        let param = self.ctx.plan.item_params.get(&key).map(String::as_str);
        if let Some(id) = target::created_id(
            &attempt.request.url,
            response.header("location"),
            &response.body,
            param,
        ) {
            self.ctx.ids.record(&key, id);
        }
    }

    /// probe.semantic_violation: the valid create, byte for byte, again.
    async fn repeat_create(&mut self, op: &Operation, cred: Option<&Credential>) {
        let ctx = self.ctx;
        let index = ctx.plan.operations.iter().position(|o| o == op);
        let first = index.and_then(|i| ctx.creates.lock().ok()?.get(&i).cloned());
        let Some((bytes, true)) = first else {
            return self.skip("the valid create did not succeed, so there is nothing to repeat");
        };
        let Some(media) = op.request_body.as_ref().and_then(|b| b.json()) else {
            return self.skip("no JSON request body");
        };
        let unique = ctx.bodies.has_unique_member(media.schema.as_ref());
        let prepared = self.prepare(op, &op.method, None, cred);
        if let Some(why) = self.destructive(&op.method, &prepared.filled, false) {
            return self.skip(why);
        }
        let request = prepared
            .request
            .header("Content-Type", media.name.clone())
            .body(bytes);
        let response = self
            .probe(
                Probe::SemanticViolation,
                request,
                None,
                Severity::Error,
                |r| verdict::semantic_violation(r, unique),
            )
            .await
            .cloned();
        if let Some(response) = response.filter(|r| (200..300).contains(&r.status)) {
            self.record_id(op, &response);
        }
    }

    /// probe.delete: DELETE a resource this run created, then read it
    /// back.
    async fn delete(&mut self, op: &Operation, cred: Option<&Credential>) {
        let ctx = self.ctx;
        let key = erase_names(&op.path);
        let Some(id) = ctx.ids.take_last(&key) else {
            return self.skip(
                "no resource created by this run to delete (candor deletes only what it created)",
            );
        };
        let prepared = self.prepare(op, "DELETE", Some(&id), cred);
        let url = prepared.request.url.clone();
        let Some(response) = self
            .probe(
                Probe::Delete,
                prepared.request,
                None,
                Severity::Error,
                verdict::delete,
            )
            .await
            .cloned()
        else {
            return;
        };
        if !matches!(response.status, 200 | 204) {
            // Refused, or queued (202): nothing to read back yet.
            return;
        }
        let Some(get) = ctx
            .plan
            .operations
            .iter()
            .find(|o| o.path == op.path && o.method == "GET")
        else {
            return;
        };
        let cred = self.high(get);
        if get.is_secured() && cred.is_none() {
            return;
        }
        let mut request = RecordedRequest::new("GET", url).header("Accept", ACCEPT);
        if let Some(cred) = &cred {
            request = request.header(cred.header.clone(), cred.value.clone());
        }
        self.probe(
            Probe::Delete,
            request,
            None,
            Severity::Error,
            verdict::read_after_delete,
        )
        .await;
    }

    async fn unknown_route(&mut self) {
        let url = format!("{}{}", self.ctx.base, self.step.path);
        let mut request = RecordedRequest::new("GET", url).header("Accept", ACCEPT);
        if let Some(cred) = self.ctx.credentials.named().next() {
            request = request.header(cred.header.clone(), cred.value.clone());
        }
        self.probe(
            Probe::UnknownRoute,
            request,
            None,
            Severity::Error,
            verdict::unknown_route,
        )
        .await;
    }

    /// probe.wrong_method: a method the path does not declare, without a
    /// body, as a caller who may call the path's operations.
    async fn wrong_method(&mut self, op: &Operation) {
        let ctx = self.ctx;
        let same_path = || ctx.plan.operations.iter().filter(|o| o.path == op.path);
        let declared: Vec<String> = same_path().map(|o| o.method.clone()).collect();
        let cred = same_path()
            .filter(|o| o.is_secured())
            .find_map(|o| ctx.credentials.high(o))
            .cloned();
        let method = self.step.method.clone();
        let prepared = self.prepare(op, &method, None, cred.as_ref());
        self.probe(
            Probe::WrongMethod,
            prepared.request,
            None,
            Severity::Error,
            |r| verdict::wrong_method(r, &method, &declared),
        )
        .await;
    }

    /// probe.rate_burst: up to `--burst` requests, as many at a time as
    /// the client allows, until the first 429.
    async fn burst(&mut self, op: &Operation) {
        let ctx = self.ctx;
        let cred = self.high(op);
        let request = self.prepare(op, "GET", None, cred.as_ref()).request;
        let total = ctx.burst as usize;
        let wave = ctx.client.options().concurrency.max(1);
        let mut sent = 0;
        let mut limited = false;
        // A burst repeats itself: only the first response of each kind
        // (status and the rules it breaks) is reported.
        let mut seen: Vec<(u16, Vec<&'static str>)> = Vec::new();
        while sent < total && !limited {
            let mut tasks = JoinSet::new();
            for _ in 0..wave.min(total - sent) {
                let client = ctx.client.clone();
                let request = request.clone();
                tasks.spawn(async move {
                    let answer = client.send(&request).await;
                    (request, answer)
                });
                sent += 1;
            }
            while let Some(joined) = tasks.join_next().await {
                let Ok((request, answer)) = joined else {
                    continue;
                };
                match answer {
                    Err(SendError::Budget(_)) => self.budget_spent(),
                    Ok(response) => {
                        limited |= response.status == 429;
                        let mut passive = check_exchange(
                            &response.exchange(&request),
                            &self.check_options(&response),
                        );
                        let findings = verdict::burst_response(&response);
                        passive.retain(|p| !findings.iter().any(|f| f.covers(p)));
                        let mut kind: Vec<&'static str> =
                            passive.iter().chain(&findings).map(|f| f.rule.id).collect();
                        kind.sort_unstable();
                        let kind = (response.status, kind);
                        if seen.contains(&kind) {
                            self.result.unreported += 1;
                            continue;
                        }
                        seen.push(kind);
                        self.result.attempts.push(Attempt {
                            request,
                            response: Some(response),
                            error: None,
                            passive,
                            findings,
                        });
                    }
                    Err(e) => {
                        let why = e.to_string();
                        if self.result.attempts.iter().any(|a| a.error.is_some()) {
                            continue;
                        }
                        self.result.attempts.push(Attempt {
                            request,
                            response: None,
                            error: Some(why.clone()),
                            passive: Vec::new(),
                            findings: vec![Finding::new(
                                Probe::RateBurst.rule(),
                                format!("no response during the burst: {why}"),
                                &why,
                            )],
                        });
                    }
                }
            }
            if self.result.budget {
                break;
            }
        }
        let failed = self.result.attempts.iter().any(|a| !a.findings.is_empty());
        if !limited && !failed && !self.result.budget {
            let chosen = match &self.step.chosen {
                Some(why) => format!(" (chosen: {why})"),
                None => String::new(),
            };
            self.skip(format!(
                "no 429 within {sent} requests to {}{chosen}: no limit was reached, so none could be checked",
                self.step.subject
            ));
        }
    }
}

/// `{"candor_padding":"xxx…"}`, exactly `size` bytes (at least the frame).
fn oversize_body(size: usize) -> Vec<u8> {
    const HEAD: &[u8] = b"{\"candor_padding\":\"";
    const TAIL: &[u8] = b"\"}";
    let fill = size.saturating_sub(HEAD.len() + TAIL.len());
    let mut body = Vec::with_capacity(HEAD.len() + fill + TAIL.len());
    body.extend_from_slice(HEAD);
    body.resize(HEAD.len() + fill, b'x');
    body.extend_from_slice(TAIL);
    body
}

/// A POSIX shell command that writes [`oversize_body`]`(size)` to
/// standard output, for the probe's `curl` line.
fn oversize_body_command(size: usize) -> String {
    let fill = size.saturating_sub(r#"{"candor_padding":""}"#.len());
    format!(
        r#"{{ printf '{{"candor_padding":"'; head -c {fill} /dev/zero | tr '\0' x; printf '"}}'; }}"#
    )
}

/// Turns step results into findings, cases and counts, in plan order.
struct Report {
    ctx: Arc<Ctx>,
    history: History,
    entry: usize,
    out: ProbeReport,
}

impl Report {
    fn new(ctx: Arc<Ctx>) -> Self {
        Report {
            ctx,
            history: History::default(),
            entry: 0,
            out: ProbeReport::default(),
        }
    }

    fn note_error(&mut self, error: String) {
        self.out.first_error.get_or_insert(error);
    }

    fn emit(
        &mut self,
        index: usize,
        result: StepResult,
        sink: &mut dyn Sink,
    ) -> Result<(), ProbeError> {
        let ctx = self.ctx.clone();
        let step = &ctx.plan.steps[index];
        let op = step.op.map(|i| &ctx.plan.operations[i]);
        let expected = expected(step, op);
        let mut worst: Option<Severity> = None;
        self.out.budget_exhausted |= result.budget;
        self.out.responses += result.unreported;
        self.out.summary.exchanges += result.unreported;
        for attempt in result.attempts {
            let entry = self.entry;
            self.entry += 1;
            let mut passive = attempt.passive.clone();
            match &attempt.response {
                Some(response) => {
                    self.out.responses += 1;
                    self.out.summary.exchanges += 1;
                    let light = Exchange {
                        request: candor_contract::Request {
                            method: attempt.request.method.clone(),
                            url: attempt.request.url.clone(),
                            ..Default::default()
                        },
                        response: candor_contract::Response {
                            status: response.status,
                            ..Default::default()
                        },
                    };
                    passive.extend(self.history.observe(&light));
                }
                None => {
                    let error = attempt.error.clone().unwrap_or_default();
                    self.note_error(format!(
                        "{} {}: {error}",
                        attempt.request.method, attempt.request.url
                    ));
                    if step.kind == StepKind::Read {
                        let skipped = Skipped {
                            file: op
                                .map_or(&ctx.doc.file[..], |o| ctx.doc.file_of(&o.pointer))
                                .to_owned(),
                            line: op.and_then(|o| ctx.doc.line(&o.pointer)),
                            entry: Some(entry),
                            message: format!(
                                "{} {}: no response: {error}",
                                attempt.request.method, attempt.request.url
                            ),
                        };
                        self.out.summary.skipped += 1;
                        sink.skipped(&skipped)?;
                    }
                }
            }
            for finding in &attempt.findings {
                worst = worst.max(Some(finding.severity));
                let located = self.located(step, op, &attempt, entry, finding.clone(), &expected);
                self.out.summary.count(finding.severity);
                sink.finding(&located)?;
            }
            for finding in passive {
                let expects = finding.rule.expects.to_owned();
                let located = self.located(step, op, &attempt, entry, finding, &expects);
                self.out.summary.count(located.finding.severity);
                sink.finding(&located)?;
            }
        }
        let Some(probe) = step.probe() else {
            return Ok(());
        };
        let outcome = match (worst, result.skip) {
            (Some(severity), _) => CaseOutcome::Failed(severity),
            (None, Some(reason)) => CaseOutcome::Skipped(reason),
            (None, None) => CaseOutcome::Passed,
        };
        match outcome {
            CaseOutcome::Passed => self.out.passed += 1,
            CaseOutcome::Failed(_) => self.out.failed += 1,
            CaseOutcome::Skipped(_) => self.out.skipped += 1,
        }
        sink.case(&Case {
            rule: probe.rule(),
            subject: step.subject.clone(),
            outcome,
        })?;
        Ok(())
    }

    fn located(
        &self,
        step: &Step,
        op: Option<&Operation>,
        attempt: &Attempt,
        entry: usize,
        finding: Finding,
        expected: &str,
    ) -> Located {
        let doc = &self.ctx.doc;
        let mut request = attempt.request.clone();
        if !self.ctx.reveal_credentials {
            request.headers = self.ctx.credentials.redact(&request.headers);
        }
        let position = op.and_then(|o| doc.position(&o.pointer));
        Located {
            file: op
                .map_or(&doc.file[..], |o| doc.file_of(&o.pointer))
                .to_owned(),
            entry,
            line: position.map(|p| p.line),
            column: position.map(|p| p.column),
            method: attempt.request.method.clone(),
            url: attempt.request.url.clone(),
            status: attempt.response.as_ref().map_or(0, |r| r.status),
            finding,
            pointer: op.map(|o| doc.local_pointer(&o.pointer).to_owned()),
            probe: Some(Box::new(ProbeEvidence {
                operation: step.subject.clone(),
                expected: expected.to_owned(),
                request,
                response: attempt.response.clone(),
            })),
            occurrences: Vec::new(),
        }
    }

    fn finish(self) -> ProbeReport {
        self.out
    }
}

/// What a step's probe expects, for the evidence.
fn expected(step: &Step, op: Option<&Operation>) -> String {
    match step.probe() {
        Some(Probe::InsufficientRole) if op.is_some_and(|o| o.concealed) => {
            "404 (the operation is x-concealed)".to_owned()
        }
        Some(probe) => match &step.chosen {
            Some(why) => format!("{}; sent to {} ({why})", probe.rule().expects, step.subject),
            None => probe.rule().expects.to_owned(),
        },
        None => "a valid read".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::is_create;
    use super::*;

    #[test]
    fn oversize_bodies_are_exact_json() {
        let body = oversize_body(1024);
        assert_eq!(body.len(), 1024);
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert!(value["candor_padding"].as_str().unwrap().len() > 1000);
        assert_eq!(oversize_body(OVERSIZE_BYTES).len(), OVERSIZE_BYTES);
        // The curl line's command makes the same bytes.
        let command = oversize_body_command(1024);
        let made = std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .output()
            .expect("sh runs");
        assert_eq!(made.stdout, oversize_body(1024), "{command}");
    }

    #[test]
    fn creates_are_recognised() {
        let doc = Document::parse(
            "t.yaml",
            r#"
openapi: 3.0.3
info: {title: t, version: '1'}
paths:
  /login:
    post: {responses: {'200': {description: ok}}}
  /jobs:
    post: {responses: {'202': {description: queued}}}
  /users:
    post: {responses: {'200': {description: ok}}}
  /users/{id}:
    get: {responses: {'200': {description: ok}}}
"#,
        )
        .unwrap();
        let ops = crate::openapi::operations(&doc);
        let mut items = HashMap::new();
        items.insert("/users/{}".to_owned(), "id".to_owned());
        let creates: Vec<bool> = ops.iter().map(|o| is_create(o, &items)).collect();
        assert_eq!(creates, [false, true, true, false]);
    }
}
