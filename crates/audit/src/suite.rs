//! The gateway fault suite (contract.md section 4), against any gateway.
//!
//! The gateway under test routes one prefix to `candor faults` and another
//! to a closed port. The suite sends one request per [`Scenario`], judges
//! what came back against the contract, and reports a [`Case`] per scenario
//! (plus one for upstream identity) and a [`Located`] finding, with the
//! request and response as [`ProbeEvidence`], for every check that failed.
//! Every complete response also goes through the passive rules of section 2
//! ([`check_exchange`]); on the pass-through scenarios only the findings the
//! gateway added count, not those the upstream's own answer earns.
//!
//! | scenario | request | contract |
//! |---|---|---|
//! | `refused` | `{dead}/refused` | 502 (`fault.refused`; 503 is a finding, §5) |
//! | `reset` | `{faults}/reset` | 502 (`fault.reset`) |
//! | `garbage` | `{faults}/garbage` | 502 (`fault.garbage`) |
//! | `bad-length` | `{faults}/bad-length` | 502, or a body aborted short of its Content-Length (`fault.truncated`) |
//! | `slow` | `{faults}/slow?ms=N` | 504 (`fault.slow`) |
//! | `status-500` | `{faults}/status/500` | the upstream's 500, status, Content-Type and body unchanged (`fault.status_passthrough`) |
//! | `status-503` | `{faults}/status/503` | likewise for 503 |
//! | `truncate` | `{faults}/truncate` | never a complete-looking success (`fault.truncated`) |
//!
//! `upstream-identity` (`fault.upstream_identity`, warn) then looks at every
//! 5xx: all carry `X-Upstream-Service`, and those the gateway made itself
//! carry the `X-Failure-Type` the contract names for the failure.

use std::fmt::Write as _;
use std::time::Duration;

use candor_contract::fields::{X_FAILURE_TYPE, X_UPSTREAM_SERVICE};
use candor_contract::rules::{self, Rule};
use candor_contract::words::count;
use candor_contract::{CheckOptions, Exchange, FailureType, Finding, Response, check_exchange};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};

use crate::http::{Client, RecordedRequest, RecordedResponse, SendError};
use crate::{Case, CaseOutcome, Located, ProbeEvidence, Sink, Summary};

/// `--slow-ms` when not given: longer than a short test timeout, far
/// shorter than the defaults of real gateways (15 s to 60 s), which must be
/// lowered for the audit.
pub const DEFAULT_SLOW_MS: u64 = 5_000;
/// The longest delay `candor faults` honours on `/slow`.
pub const MAX_SLOW_MS: u64 = 60_000;

/// Subject (and probe operation) of the upstream identity check.
pub const IDENTITY_SUBJECT: &str = "upstream-identity";

/// Longest error text kept in a one-line description.
const DESCRIBED: usize = 160;

/// Where the gateway is and how it is wired to `candor faults`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteOptions {
    /// The gateway's base URL: scheme, host, port, and an optional path
    /// that every request starts with.
    pub base_url: String,
    /// The path prefix the gateway routes to `candor faults` (`/f`).
    pub faults_prefix: String,
    /// The path prefix the gateway routes to a closed port (`/dead`).
    pub dead_prefix: String,
    /// How long `/slow` waits before answering; the gateway's upstream
    /// timeout must be shorter, and the client's longer.
    pub slow_ms: u64,
}

impl SuiteOptions {
    /// The options with the default prefixes and delay.
    pub fn new(base_url: impl Into<String>) -> Self {
        SuiteOptions {
            base_url: base_url.into(),
            faults_prefix: "/f".to_owned(),
            dead_prefix: "/dead".to_owned(),
            slow_ms: DEFAULT_SLOW_MS,
        }
    }
}

/// Why the suite could not run (as opposed to a gateway that failed it).
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// Options that cannot describe a run.
    #[error("{0}")]
    Options(String),
    /// The gateway did not answer the preflight request at all.
    #[error("cannot reach the gateway: GET {url}: {error}")]
    Unreachable { url: String, error: SendError },
    /// The gateway answered, but not with `candor faults`' `/ok`.
    #[error(
        "GET {url} answered {answered}, not the 200 {{\"ok\":true}} of candor faults: \
         does the gateway route {prefix} to `candor faults`?"
    )]
    NotRouted {
        url: String,
        answered: String,
        prefix: String,
    },
    /// The report could not be written.
    #[error("cannot write the report: {0}")]
    Report(#[from] std::io::Error),
}

/// One fault the suite puts behind the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    Refused,
    Reset,
    Garbage,
    BadLength,
    Slow,
    Status500,
    Status503,
    Truncate,
}

/// Where a scenario's request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The prefix routed to a closed port.
    Dead,
    /// The prefix routed to `candor faults`.
    Faults,
}

impl Scenario {
    /// Every scenario, in the order the suite reports them.
    pub const ALL: [Scenario; 8] = [
        Scenario::Refused,
        Scenario::Reset,
        Scenario::Garbage,
        Scenario::BadLength,
        Scenario::Slow,
        Scenario::Status500,
        Scenario::Status503,
        Scenario::Truncate,
    ];

    /// The scenario's name in reports (the probe operation).
    pub const fn name(self) -> &'static str {
        match self {
            Scenario::Refused => "refused",
            Scenario::Reset => "reset",
            Scenario::Garbage => "garbage",
            Scenario::BadLength => "bad-length",
            Scenario::Slow => "slow",
            Scenario::Status500 => "status-500",
            Scenario::Status503 => "status-503",
            Scenario::Truncate => "truncate",
        }
    }

    /// The contract rule the scenario checks.
    pub const fn rule(self) -> &'static Rule {
        match self {
            Scenario::Refused => &rules::FAULT_REFUSED,
            Scenario::Reset => &rules::FAULT_RESET,
            Scenario::Garbage => &rules::FAULT_GARBAGE,
            Scenario::BadLength | Scenario::Truncate => &rules::FAULT_TRUNCATED,
            Scenario::Slow => &rules::FAULT_SLOW,
            Scenario::Status500 | Scenario::Status503 => &rules::FAULT_STATUS_PASSTHROUGH,
        }
    }

    /// What the contract expects, in a few words.
    pub fn expected(self, slow_ms: u64) -> String {
        match self {
            Scenario::Refused => {
                "502 (not 503: a refused connect is no known unavailability)".into()
            }
            Scenario::Reset | Scenario::Garbage => "502".into(),
            Scenario::BadLength => "502, or the body aborted short of its Content-Length".into(),
            Scenario::Slow => format!("504 before the upstream's {slow_ms} ms delay ends"),
            Scenario::Status500 => "the upstream's 500 and body, unchanged".into(),
            Scenario::Status503 => "the upstream's 503 and body, unchanged".into(),
            Scenario::Truncate => {
                "no complete-looking success: the body aborted (no last chunk), or 502".into()
            }
        }
    }

    /// The `X-Failure-Type` the contract gives a gateway-made 5xx for this
    /// fault, when it names one.
    pub const fn failure_type(self) -> Option<FailureType> {
        match self {
            Scenario::Refused => Some(FailureType::ConnectRefused),
            Scenario::Reset => Some(FailureType::Reset),
            Scenario::Garbage => Some(FailureType::InvalidResponse),
            Scenario::Slow => Some(FailureType::Timeout),
            Scenario::BadLength
            | Scenario::Status500
            | Scenario::Status503
            | Scenario::Truncate => None,
        }
    }

    /// The status the upstream itself sends, for the pass-through scenarios.
    const fn upstream_status(self) -> Option<u16> {
        match self {
            Scenario::Status500 => Some(500),
            Scenario::Status503 => Some(503),
            _ => None,
        }
    }

    fn target(self) -> Target {
        match self {
            Scenario::Refused => Target::Dead,
            _ => Target::Faults,
        }
    }

    /// The `candor faults` endpoint (or, for `refused`, any path).
    fn endpoint(self, slow_ms: u64) -> String {
        match self {
            Scenario::Refused => "refused".into(),
            Scenario::Reset => "reset".into(),
            Scenario::Garbage => "garbage".into(),
            Scenario::BadLength => "bad-length".into(),
            Scenario::Slow => format!("slow?ms={slow_ms}"),
            Scenario::Status500 => "status/500".into(),
            Scenario::Status503 => "status/503".into(),
            Scenario::Truncate => "truncate".into(),
        }
    }
}

/// The upstream's own answer on a pass-through scenario, exactly as
/// `candor faults` sends it (see its `/status/{code}`).
fn upstream_answer(status: u16) -> Response {
    let body = format!(r#"{{"type":"about:blank","status":{status}}}"#).into_bytes();
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(candor_contract::PROBLEM_JSON),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    Response {
        status,
        headers,
        body,
    }
}

/// What one scenario sent and got back, and whether the contract held.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    pub scenario: Scenario,
    /// What the contract expects.
    pub expected: String,
    pub request: RecordedRequest,
    pub answer: Result<RecordedResponse, SendError>,
    /// Whether the scenario's own rule held (identity and passive findings
    /// aside).
    pub passed: bool,
}

impl ScenarioReport {
    /// What the gateway answered, in one line.
    pub fn answered(&self) -> String {
        describe(&self.answer)
    }

    /// What the gateway answered, in a word or two: `502`, `200 aborted`,
    /// `no reply`, `timeout`.
    pub fn short(&self) -> String {
        match &self.answer {
            Ok(res) if incomplete(res).is_some() => format!("{} aborted", res.status),
            Ok(res) => res.status.to_string(),
            Err(SendError::Timeout(_)) => "timeout".into(),
            Err(_) => "no reply".into(),
        }
    }
}

/// The outcome of a whole run.
#[derive(Debug, Clone)]
pub struct SuiteReport {
    /// One per scenario, in [`Scenario::ALL`] order.
    pub scenarios: Vec<ScenarioReport>,
    /// Every check that ran, as sent to the sink: the scenarios, then
    /// upstream identity.
    pub cases: Vec<Case>,
    /// Counts for the report's summary (the caller finishes the sink).
    pub summary: Summary,
}

impl SuiteReport {
    /// Checks that passed, and checks that ran (skipped ones aside).
    pub fn score(&self) -> (usize, usize) {
        let ran = self
            .cases
            .iter()
            .filter(|case| !matches!(case.outcome, CaseOutcome::Skipped(_)))
            .count();
        let passed = self
            .cases
            .iter()
            .filter(|case| case.outcome == CaseOutcome::Passed)
            .count();
        (passed, ran)
    }
}

/// Joins the base URL, a prefix and an endpoint with single slashes.
fn join(base: &str, prefix: &str, endpoint: &str) -> String {
    let base = base.trim_end_matches('/');
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{base}/{endpoint}")
    } else {
        format!("{base}/{prefix}/{endpoint}")
    }
}

/// Checks the options before anything is sent.
fn validate(client: &Client, options: &SuiteOptions) -> Result<(), SuiteError> {
    let url = url::Url::parse(&options.base_url)
        .map_err(|e| SuiteError::Options(format!("--url {:?}: {e}", options.base_url)))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(SuiteError::Options(format!(
            "--url {:?}: expected an http:// or https:// URL with a host",
            options.base_url
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(SuiteError::Options(format!(
            "--url {:?}: a base URL takes no query or fragment",
            options.base_url
        )));
    }
    for (flag, prefix) in [
        ("--faults-prefix", &options.faults_prefix),
        ("--dead-prefix", &options.dead_prefix),
    ] {
        if !prefix.starts_with('/') || prefix.contains(['?', '#']) || prefix.contains("//") {
            return Err(SuiteError::Options(format!(
                "{flag} {prefix:?}: expected a path starting with / (no query, no //)"
            )));
        }
    }
    if options.slow_ms == 0 || options.slow_ms > MAX_SLOW_MS {
        return Err(SuiteError::Options(format!(
            "--slow-ms {}: expected 1 to {MAX_SLOW_MS} (the longest delay candor faults honours)",
            options.slow_ms
        )));
    }
    let timeout = client.options().timeout;
    if timeout <= Duration::from_millis(options.slow_ms) {
        return Err(SuiteError::Options(format!(
            "--timeout {timeout:?} must be longer than --slow-ms ({} ms): otherwise a gateway \
             that waits the delay out cannot be told from one that never answers",
            options.slow_ms
        )));
    }
    Ok(())
}

/// The request a scenario sends.
pub fn request(scenario: Scenario, options: &SuiteOptions) -> RecordedRequest {
    let prefix = match scenario.target() {
        Target::Dead => &options.dead_prefix,
        Target::Faults => &options.faults_prefix,
    };
    let url = join(
        &options.base_url,
        prefix,
        &scenario.endpoint(options.slow_ms),
    );
    fresh_request(url)
}

/// A GET as an API client sends it (so the gateway's own errors should be
/// JSON), on a connection of its own: gateways may treat a failure on a
/// kept-alive connection differently (HAProxy closes it without an answer
/// so that the client retries), and one connection per request keeps the
/// result the same from run to run.
fn fresh_request(url: String) -> RecordedRequest {
    RecordedRequest::new("GET", url)
        .header("Accept", "application/json")
        .header("Connection", "close")
}

/// Runs the suite: a preflight request that proves the faults prefix is
/// routed, then every scenario at once (the client's concurrency limit and
/// budget apply), then the judgements, in scenario order, into `sink`.
///
/// The sink gets findings and cases but is not finished: the caller does
/// that with [`SuiteReport::summary`], after anything it prints first.
pub async fn run(
    client: &Client,
    options: &SuiteOptions,
    sink: &mut dyn Sink,
) -> Result<SuiteReport, SuiteError> {
    validate(client, options)?;
    preflight(client, options).await?;

    let requests: Vec<RecordedRequest> = Scenario::ALL
        .iter()
        .map(|&scenario| request(scenario, options))
        .collect();
    let handles: Vec<_> = requests
        .iter()
        .map(|request| {
            let client = client.clone();
            let request = request.clone();
            tokio::spawn(async move { client.send(&request).await })
        })
        .collect();
    let mut scenarios = Vec::with_capacity(handles.len());
    for ((scenario, request), handle) in Scenario::ALL.into_iter().zip(requests).zip(handles) {
        let answer = handle
            .await
            .unwrap_or_else(|e| Err(SendError::Other(format!("the request task failed: {e}"))));
        scenarios.push(ScenarioReport {
            scenario,
            expected: scenario.expected(options.slow_ms),
            request,
            answer,
            passed: false,
        });
    }

    let mut summary = Summary::default();
    let mut cases = Vec::with_capacity(scenarios.len() + 1);
    let mut identity_failed = false;
    let mut identity_checked = false;
    for (entry, report) in scenarios.iter_mut().enumerate() {
        let scenario = report.scenario;
        let verdict = judge(scenario, options.slow_ms, &report.answer);
        report.passed = verdict.is_none();
        let mut emit = |finding: Finding, expected: String| -> std::io::Result<()> {
            summary.count(finding.severity);
            sink.finding(&locate(options, entry, report, finding, expected))
        };
        if let Some(finding) = verdict.clone() {
            emit(finding, report.expected.clone())?;
        }
        if let Some(identity) = identity(scenario, &report.answer) {
            identity_checked = true;
            if let Some(finding) = identity {
                identity_failed = true;
                emit(finding, identity_expected(scenario))?;
            }
        }
        for finding in passive(scenario, &report.request, &report.answer) {
            let expected = finding.rule.expects.to_owned();
            emit(finding, expected)?;
        }
        let case = Case {
            rule: scenario.rule(),
            subject: scenario.name().to_owned(),
            outcome: match verdict {
                None => CaseOutcome::Passed,
                Some(finding) => CaseOutcome::Failed(finding.severity),
            },
        };
        sink.case(&case)?;
        cases.push(case);
    }
    let identity_case = Case {
        rule: &rules::FAULT_UPSTREAM_IDENTITY,
        subject: IDENTITY_SUBJECT.to_owned(),
        outcome: if !identity_checked {
            CaseOutcome::Skipped("the gateway answered no scenario with a 5xx".into())
        } else if identity_failed {
            CaseOutcome::Failed(rules::FAULT_UPSTREAM_IDENTITY.severity)
        } else {
            CaseOutcome::Passed
        },
    };
    sink.case(&identity_case)?;
    cases.push(identity_case);
    summary.exchanges = scenarios.len() as u64;
    Ok(SuiteReport {
        scenarios,
        cases,
        summary,
    })
}

/// `GET {faults}/ok` must reach `candor faults` through the gateway; a
/// gateway that does not route the prefix would fail every scenario for a
/// reason that has nothing to do with faults.
async fn preflight(client: &Client, options: &SuiteOptions) -> Result<(), SuiteError> {
    let url = join(&options.base_url, &options.faults_prefix, "ok");
    let request = fresh_request(url.clone());
    let answer = client.send(&request).await;
    if let Err(error @ (SendError::Connect(_) | SendError::Timeout(_))) = &answer {
        return Err(SuiteError::Unreachable {
            url,
            error: error.clone(),
        });
    }
    match &answer {
        Ok(res)
            if res.status == 200
                && res.body_error.is_none()
                && serde_json::from_slice::<serde_json::Value>(&res.body).ok()
                    == Some(serde_json::json!({"ok": true})) =>
        {
            Ok(())
        }
        _ => Err(SuiteError::NotRouted {
            url,
            answered: describe(&answer),
            prefix: options.faults_prefix.clone(),
        }),
    }
}

/// A finding of scenario number `entry`, with its evidence.
fn locate(
    options: &SuiteOptions,
    entry: usize,
    report: &ScenarioReport,
    finding: Finding,
    expected: String,
) -> Located {
    let response = report.answer.as_ref().ok().cloned();
    Located {
        file: options.base_url.clone(),
        entry,
        line: None,
        column: None,
        method: report.request.method.clone(),
        url: report.request.url.clone(),
        status: response.as_ref().map_or(0, |res| res.status),
        finding,
        pointer: None,
        probe: Some(Box::new(ProbeEvidence {
            operation: report.scenario.name().to_owned(),
            expected,
            request: report.request.clone(),
            response,
        })),
        occurrences: Vec::new(),
    }
}

/// Why a body cannot be taken for the whole response, if it cannot.
fn incomplete(res: &RecordedResponse) -> Option<String> {
    if let Some(error) = &res.body_error {
        return Some(format!(
            "body aborted after {} ({})",
            count(res.body.len(), "byte", "bytes"),
            cause(error)
        ));
    }
    let declared = res
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())?;
    let got = res.body.len() as u64;
    (!res.body_cut && got < declared).then(|| {
        format!(
            "body of {}, short of its Content-Length {declared}",
            count(got, "byte", "bytes")
        )
    })
}

/// What came back, in one line.
fn describe(answer: &Result<RecordedResponse, SendError>) -> String {
    match answer {
        Ok(res) => {
            let mut text = res.status.to_string();
            match res.header("content-type") {
                Some(ct) => {
                    let media = ct.split(';').next().unwrap_or_default().trim();
                    let _ = write!(text, " {media}");
                }
                None if res.body.is_empty() && res.body_error.is_none() => {
                    text.push_str(" (no body)");
                }
                None => text.push_str(" (no Content-Type)"),
            }
            if let Some(why) = incomplete(res) {
                let _ = write!(text, ", {why}");
            }
            text
        }
        Err(SendError::Timeout(limit)) => format!("no answer within {limit:?}"),
        Err(error) => format!("no response: {}", cause(&error.to_string())),
    }
}

/// The innermost cause of an error chain joined with `: `, which says what
/// happened ("Connection reset by peer"); the outer ones only say where.
fn cause(error: &str) -> String {
    shorten(error.rsplit(": ").next().unwrap_or(error))
}

/// Cuts `text` to [`DESCRIBED`] bytes on a character boundary.
fn shorten(text: &str) -> String {
    if text.len() <= DESCRIBED {
        return text.to_owned();
    }
    let mut end = DESCRIBED;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The first bytes of a body, as evidence.
fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned()
}

/// Judges a scenario's answer against its rule: `None` when the contract
/// held, or the finding that says how it did not.
pub fn judge(
    scenario: Scenario,
    slow_ms: u64,
    answer: &Result<RecordedResponse, SendError>,
) -> Option<Finding> {
    let rule = scenario.rule();
    let fail = |message: String, evidence: String| Some(Finding::new(rule, message, evidence));
    match scenario {
        Scenario::Refused | Scenario::Reset | Scenario::Garbage => {
            let fault = match scenario {
                Scenario::Refused => "an upstream whose port is closed",
                Scenario::Reset => "an upstream that reset the connection before answering",
                _ => "an upstream that answered bytes that are not HTTP",
            };
            let res = match answer {
                Ok(res) => res,
                Err(SendError::Timeout(limit)) => {
                    return fail(
                        format!("no answer within {limit:?} for {fault}; expected 502"),
                        String::new(),
                    );
                }
                Err(error) => {
                    return fail(
                        format!(
                            "no valid HTTP response for {fault}: the client got the broken \
                             upstream instead of a 502 ({})",
                            cause(&error.to_string())
                        ),
                        error.to_string(),
                    );
                }
            };
            match res.status {
                502 => None,
                503 if scenario == Scenario::Refused => fail(
                    "503 for a refused upstream connection: 503 means known unavailability \
                     (overload, maintenance, circuit open); a refused connect is 502 \
                     (contract §5)"
                        .into(),
                    describe(answer),
                ),
                404 if scenario == Scenario::Refused => fail(
                    "404 where a refused upstream should give 502: does the gateway route the \
                     dead prefix to a closed port?"
                        .into(),
                    describe(answer),
                ),
                500 => fail(
                    format!(
                        "500 for {fault}: 500 says the gateway itself failed; the upstream did, \
                         which is 502"
                    ),
                    describe(answer),
                ),
                status => fail(
                    format!("{status} for {fault}; expected 502"),
                    describe(answer),
                ),
            }
        }
        Scenario::Slow => {
            let res = match answer {
                Ok(res) => res,
                Err(SendError::Timeout(limit)) => {
                    return fail(
                        format!(
                            "no answer within the client's {limit:?}: the gateway neither timed \
                             out the {slow_ms} ms upstream with a 504 nor relayed its answer"
                        ),
                        String::new(),
                    );
                }
                Err(error) => {
                    return fail(
                        format!(
                            "no response for a slow upstream; expected 504 ({})",
                            cause(&error.to_string())
                        ),
                        error.to_string(),
                    );
                }
            };
            match res.status {
                504 => None,
                200 => fail(
                    format!(
                        "the gateway waited out the upstream's {slow_ms} ms delay and relayed its \
                         200: its upstream timeout is longer than --slow-ms, or it has none"
                    ),
                    describe(answer),
                ),
                502 => fail(
                    "502 for an upstream that did not answer in time; a timeout is 504 \
                     (RFC 9110 §15.6.5)"
                        .into(),
                    describe(answer),
                ),
                status => fail(
                    format!("{status} for an upstream that did not answer in time; expected 504"),
                    describe(answer),
                ),
            }
        }
        Scenario::Status500 | Scenario::Status503 => {
            let expected = upstream_answer(scenario.upstream_status().unwrap_or(500));
            let res = match answer {
                Ok(res) => res,
                Err(error) => {
                    return fail(
                        format!(
                            "no response where the upstream answered {}: {}",
                            expected.status,
                            cause(&error.to_string())
                        ),
                        error.to_string(),
                    );
                }
            };
            if res.status != expected.status {
                return fail(
                    format!(
                        "the upstream's {} was answered as {}: upstream statuses pass through \
                         unchanged",
                        expected.status, res.status
                    ),
                    describe(answer),
                );
            }
            if let Some(why) = incomplete(res) {
                return fail(
                    format!("the upstream's {} arrived broken: {why}", expected.status),
                    snippet(&res.body),
                );
            }
            if res.body != expected.body {
                return fail(
                    format!(
                        "the status passed through, but the gateway replaced the upstream's body \
                         ({} bytes of problem+json)",
                        expected.body.len()
                    ),
                    snippet(&res.body),
                );
            }
            let media = res
                .header("content-type")
                .map(|ct| ct.split(';').next().unwrap_or_default().trim().to_owned());
            if !media
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(candor_contract::PROBLEM_JSON))
            {
                return fail(
                    format!(
                        "the body passed through, but its Content-Type was changed from {}",
                        candor_contract::PROBLEM_JSON
                    ),
                    media.unwrap_or_else(|| "no Content-Type".into()),
                );
            }
            None
        }
        Scenario::BadLength | Scenario::Truncate => {
            let fault = match scenario {
                Scenario::BadLength => "declared Content-Length: 100 and sent 10 bytes",
                _ => "sent one chunk and closed without the last chunk",
            };
            let res = match answer {
                Ok(res) => res,
                // The connection ended before a head: no one can take that
                // for a success, which is what this rule is about.
                Err(SendError::Connect(_) | SendError::Other(_)) => return None,
                Err(SendError::Timeout(limit)) => {
                    return fail(
                        format!(
                            "no answer within {limit:?}: the upstream {fault}, and the gateway \
                             neither aborted the response nor answered 502"
                        ),
                        String::new(),
                    );
                }
                Err(error) => {
                    return fail(
                        format!("the request failed: {}", cause(&error.to_string())),
                        error.to_string(),
                    );
                }
            };
            if !(200..300).contains(&res.status) || incomplete(res).is_some() {
                return None;
            }
            fail(
                format!(
                    "a complete-looking {}: the upstream {fault}, yet the client got a response \
                     it cannot tell from a success (expected an aborted body or 502)",
                    res.status
                ),
                describe(answer),
            )
        }
    }
}

/// What the identity check expects of a scenario's 5xx.
fn identity_expected(scenario: Scenario) -> String {
    match scenario.failure_type() {
        Some(kind) => format!("X-Upstream-Service and X-Failure-Type: {kind}"),
        None => "X-Upstream-Service".into(),
    }
}

/// The upstream identity check on one answer: `None` when it does not apply
/// (no 5xx), `Some(None)` when it holds, `Some(Some(finding))` otherwise.
fn identity(
    scenario: Scenario,
    answer: &Result<RecordedResponse, SendError>,
) -> Option<Option<Finding>> {
    let res = answer.as_ref().ok().filter(|res| res.status >= 500)?;
    let rule = &rules::FAULT_UPSTREAM_IDENTITY;
    let service = res
        .header(X_UPSTREAM_SERVICE.as_str())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let kind = res
        .header(X_FAILURE_TYPE.as_str())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    // Pass-through answers come from the upstream: only the name is added.
    let passthrough = scenario.upstream_status() == Some(res.status);
    let mut missing = Vec::new();
    if service.is_none() {
        missing.push("X-Upstream-Service");
    }
    if !passthrough && kind.is_none() {
        missing.push("X-Failure-Type");
    }
    if !missing.is_empty() {
        let what = if passthrough {
            "an upstream 5xx"
        } else {
            "a gateway-made 5xx"
        };
        return Some(Some(Finding::new(
            rule,
            format!("{} for {what} without {}", res.status, missing.join(" or ")),
            describe(answer),
        )));
    }
    if !passthrough
        && let (Some(expected), Some(kind)) = (scenario.failure_type(), kind)
        && FailureType::parse(kind) != Some(expected)
    {
        return Some(Some(Finding::new(
            rule,
            format!(
                "X-Failure-Type says {kind:?} for the {} scenario; the contract names it {expected}",
                scenario.name()
            ),
            kind,
        )));
    }
    Some(None)
}

/// The passive rules over a complete answer. On the pass-through scenarios
/// a rule the upstream's own answer already breaks is not the gateway's
/// doing and is left out.
fn passive(
    scenario: Scenario,
    request: &RecordedRequest,
    answer: &Result<RecordedResponse, SendError>,
) -> Vec<Finding> {
    let Some(res) = answer.as_ref().ok().filter(|res| incomplete(res).is_none()) else {
        return Vec::new();
    };
    let options = CheckOptions::default();
    let exchange = res.exchange(request);
    let mut findings = check_exchange(&exchange, &options);
    if let Some(status) = scenario.upstream_status() {
        let upstream = Exchange {
            request: exchange.request.clone(),
            response: upstream_answer(status),
        };
        let inherited: Vec<&'static str> = check_exchange(&upstream, &options)
            .into_iter()
            .map(|f| f.rule.id)
            .collect();
        findings.retain(|f| !inherited.contains(&f.rule.id));
    }
    findings
}

#[cfg(test)]
mod tests {
    use candor_contract::Severity;

    use super::*;

    fn answer(
        status: u16,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<RecordedResponse, SendError> {
        Ok(RecordedResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
            ..RecordedResponse::default()
        })
    }

    fn rule_of(finding: Option<Finding>) -> Option<&'static str> {
        finding.map(|f| f.rule.id)
    }

    #[test]
    fn urls_join_with_single_slashes() {
        assert_eq!(join("http://h:1", "/f", "reset"), "http://h:1/f/reset");
        assert_eq!(join("http://h:1/", "/f/", "reset"), "http://h:1/f/reset");
        assert_eq!(join("http://h/api", "/", "ok"), "http://h/api/ok");
        let mut options = SuiteOptions::new("http://127.0.0.1:8080");
        options.slow_ms = 1500;
        assert_eq!(
            request(Scenario::Slow, &options).url,
            "http://127.0.0.1:8080/f/slow?ms=1500"
        );
        assert_eq!(
            request(Scenario::Refused, &options).url,
            "http://127.0.0.1:8080/dead/refused"
        );
    }

    #[test]
    fn refused_wants_502_and_names_503_as_a_finding() {
        assert_eq!(judge(Scenario::Refused, 10, &answer(502, &[], "")), None);
        let finding = judge(Scenario::Refused, 10, &answer(503, &[], "")).unwrap();
        assert_eq!(finding.rule.id, "fault.refused");
        assert_eq!(finding.severity, Severity::Error);
        assert!(finding.message.contains("§5"), "{}", finding.message);
        let finding = judge(Scenario::Refused, 10, &answer(404, &[], "")).unwrap();
        assert!(
            finding.message.contains("dead prefix"),
            "{}",
            finding.message
        );
    }

    #[test]
    fn reset_and_garbage_reaching_the_client_fail() {
        let broken = Err(SendError::Other("connection reset by peer".into()));
        assert_eq!(
            rule_of(judge(Scenario::Reset, 10, &broken)),
            Some("fault.reset")
        );
        assert_eq!(
            rule_of(judge(Scenario::Garbage, 10, &broken)),
            Some("fault.garbage")
        );
        assert_eq!(
            rule_of(judge(Scenario::Garbage, 10, &answer(500, &[], ""))),
            Some("fault.garbage")
        );
        assert_eq!(judge(Scenario::Garbage, 10, &answer(502, &[], "")), None);
    }

    #[test]
    fn slow_wants_504() {
        assert_eq!(judge(Scenario::Slow, 10, &answer(504, &[], "")), None);
        let waited = judge(Scenario::Slow, 10, &answer(200, &[], r#"{"ok":true}"#)).unwrap();
        assert!(waited.message.contains("--slow-ms"), "{}", waited.message);
        assert!(judge(Scenario::Slow, 10, &answer(502, &[], "")).is_some());
        assert!(
            judge(
                Scenario::Slow,
                10,
                &Err(SendError::Timeout(Duration::from_secs(1)))
            )
            .is_some()
        );
    }

    #[test]
    fn passthrough_compares_status_body_and_type() {
        let ct = [("content-type", "application/problem+json")];
        let body = r#"{"type":"about:blank","status":503}"#;
        assert_eq!(
            judge(Scenario::Status503, 10, &answer(503, &ct, body)),
            None
        );
        assert!(judge(Scenario::Status503, 10, &answer(500, &ct, body)).is_some());
        assert!(judge(Scenario::Status503, 10, &answer(503, &ct, "<html>")).is_some());
        let html = [("content-type", "text/html")];
        assert!(judge(Scenario::Status503, 10, &answer(503, &html, body)).is_some());
        assert!(judge(Scenario::Status500, 10, &answer(503, &ct, body)).is_some());
    }

    #[test]
    fn truncation_passes_when_aborted_and_fails_when_complete_looking() {
        let mut aborted = RecordedResponse {
            status: 200,
            body: br#"{"ok":true"#.to_vec(),
            body_error: Some("connection closed".into()),
            ..RecordedResponse::default()
        };
        assert_eq!(judge(Scenario::BadLength, 10, &Ok(aborted.clone())), None);
        aborted.body_error = None;
        // Shorter than declared: visibly broken.
        aborted.headers = vec![("content-length".into(), "100".into())];
        assert_eq!(judge(Scenario::BadLength, 10, &Ok(aborted.clone())), None);
        // The gateway re-framed the partial body as a whole one.
        aborted.headers = vec![("content-length".into(), "10".into())];
        assert_eq!(
            rule_of(judge(Scenario::BadLength, 10, &Ok(aborted))),
            Some("fault.truncated")
        );
        assert_eq!(
            rule_of(judge(
                Scenario::Truncate,
                10,
                &answer(200, &[], r#"{"ok":true}"#)
            )),
            Some("fault.truncated")
        );
        assert_eq!(judge(Scenario::Truncate, 10, &answer(502, &[], "")), None);
        assert_eq!(
            judge(
                Scenario::Truncate,
                10,
                &Err(SendError::Other("empty reply".into()))
            ),
            None
        );
    }

    #[test]
    fn identity_wants_the_service_and_the_right_failure_type() {
        let full = answer(
            502,
            &[
                ("x-upstream-service", "faults"),
                ("x-failure-type", "reset"),
            ],
            "",
        );
        assert_eq!(identity(Scenario::Reset, &full), Some(None));
        let wrong = identity(Scenario::Refused, &full).flatten().unwrap();
        assert!(
            wrong.message.contains("connect_refused"),
            "{}",
            wrong.message
        );
        let bare = identity(Scenario::Reset, &answer(502, &[], ""))
            .flatten()
            .unwrap();
        assert_eq!(bare.severity, Severity::Warn);
        assert!(bare.message.contains("X-Failure-Type"));
        // A passed-through 5xx only needs the name.
        let named = answer(503, &[("x-upstream-service", "faults")], "");
        assert_eq!(identity(Scenario::Status503, &named), Some(None));
        assert_eq!(identity(Scenario::Truncate, &answer(200, &[], "")), None);
    }

    #[test]
    fn passive_checks_leave_out_what_the_upstream_sent() {
        let req = RecordedRequest::new("GET", "http://h/f/status/503")
            .header("Accept", "application/json");
        let body = r#"{"type":"about:blank","status":503}"#;
        let ct = [("content-type", "application/problem+json")];
        // The upstream's 503 has no Retry-After: not the gateway's finding.
        assert!(passive(Scenario::Status503, &req, &answer(503, &ct, body)).is_empty());
        // A gateway-made HTML 502 to a JSON client is.
        let req =
            RecordedRequest::new("GET", "http://h/f/reset").header("Accept", "application/json");
        let html = [("content-type", "text/html")];
        let found = passive(Scenario::Reset, &req, &answer(502, &html, "<html></html>"));
        assert_eq!(
            found.iter().map(|f| f.rule.id).collect::<Vec<_>>(),
            ["error.not_machine_readable"]
        );
    }

    /// Keeps what the suite sends to a report.
    #[derive(Default)]
    struct Collect {
        findings: Vec<Located>,
        cases: Vec<Case>,
    }

    impl Sink for Collect {
        fn finding(&mut self, finding: &Located) -> std::io::Result<()> {
            self.findings.push(finding.clone());
            Ok(())
        }
        fn skipped(&mut self, _: &crate::Skipped) -> std::io::Result<()> {
            Ok(())
        }
        fn case(&mut self, case: &Case) -> std::io::Result<()> {
            self.cases.push(case.clone());
            Ok(())
        }
        fn finish(&mut self, _: &Summary) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn faults_without_a_gateway_fail_where_a_gateway_is_needed() {
        let (addr, faults) = candor_faults::spawn_local().await.unwrap();
        let client = Client::new(crate::http::ClientOptions {
            timeout: Duration::from_secs(10),
            ..Default::default()
        })
        .unwrap();
        let mut options = SuiteOptions::new(format!("http://{addr}"));
        options.slow_ms = 50;
        let mut sink = Collect::default();
        let report = run(&client, &options, &mut sink).await.unwrap();
        faults.shutdown().await.unwrap();

        let passed: Vec<_> = report
            .scenarios
            .iter()
            .filter(|s| s.passed)
            .map(|s| s.scenario.name())
            .collect();
        assert_eq!(
            passed,
            ["bad-length", "status-500", "status-503", "truncate"]
        );
        assert_eq!(report.score(), (4, 9));
        assert_eq!(sink.cases.len(), 9);
        assert_eq!(report.summary.exchanges, 8);
        assert_eq!(report.summary.errors, 4);
        // Every finding carries its evidence, named by scenario.
        let reset = sink
            .findings
            .iter()
            .find(|f| f.finding.rule.id == "fault.reset")
            .unwrap();
        let probe = reset.probe.as_deref().unwrap();
        assert_eq!(probe.operation, "reset");
        assert!(probe.response.is_none());
        assert!(probe.request.url.ends_with("/f/reset"));
        assert_eq!(reset.status, 0);
        assert_eq!(client.sent(), 9);
    }

    #[test]
    fn options_that_cannot_describe_a_run_are_refused() {
        let client = Client::new(crate::http::ClientOptions::default()).unwrap();
        let ok = SuiteOptions::new("http://127.0.0.1:8080");
        assert!(validate(&client, &ok).is_ok());
        for bad in [
            SuiteOptions::new("127.0.0.1:8080"),
            SuiteOptions::new("ftp://h/"),
            SuiteOptions::new("http://h/?q=1"),
            SuiteOptions {
                faults_prefix: "f".into(),
                ..ok.clone()
            },
            SuiteOptions {
                slow_ms: 0,
                ..ok.clone()
            },
            SuiteOptions {
                slow_ms: 60_001,
                ..ok.clone()
            },
            // The client's 10 s limit must outlast the delay.
            SuiteOptions {
                slow_ms: 10_000,
                ..ok.clone()
            },
        ] {
            assert!(
                matches!(validate(&client, &bad), Err(SuiteError::Options(_))),
                "{bad:?}"
            );
        }
    }
}
