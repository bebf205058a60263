//! Two small APIs for the probe tests, on 127.0.0.1 port 0: one keeps the
//! contract, one breaks it on purpose (each break is named where it is
//! planted), and the OpenAPI documents that describe them
//! (`tests/fixtures/`). Both route by hand in one fallback handler, so that
//! every status, header and body is exactly what the test wants, and both
//! log every request they receive.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use candor_audit::http::{Client, ClientOptions};
use candor_audit::probe::{self, Credentials, NoProgress, ProbeOptions, ProbeReport};
use candor_audit::{Case, CaseOutcome, Located, Sink, Skipped, Summary};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// Bodies are read whole up to this size (so that an oversize body is
/// answered, not cut off mid-upload), and refused above `BODY_LIMIT`.
const READ_LIMIT: usize = 16 << 20;
const BODY_LIMIT: usize = 1 << 20;

/// A running fixture API.
pub struct Fixture {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Fixture {
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received, as `METHOD /path`, in arrival order.
    pub fn hits(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The absolute path of a fixture document.
pub fn spec(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `--auth` for both fixtures: admin, a lower role, an expired token.
pub const AUTH: [&str; 3] = [
    "admin=Bearer admin-token",
    "user=Bearer user-token",
    "expired=Bearer expired-token",
];

async fn start<S: Send + Sync + 'static>(
    state: S,
    handler: fn(Arc<Shared<S>>, Parts) -> Response,
) -> Fixture {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::new(Shared {
        state,
        log: log.clone(),
        handler,
    });
    let app = Router::new().fallback(dispatch::<S>).with_state(shared);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Fixture { addr, log, task }
}

struct Shared<S> {
    state: S,
    log: Arc<Mutex<Vec<String>>>,
    handler: fn(Arc<Shared<S>>, Parts) -> Response,
}

/// A request, read whole.
pub struct Parts {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Result<Bytes, ()>,
}

impl Parts {
    fn segments(&self) -> Vec<&str> {
        self.path.split('/').skip(1).collect()
    }

    fn role(&self) -> Auth {
        match self
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            None => Auth::Missing,
            Some("Bearer admin-token") => Auth::Role("admin"),
            Some("Bearer user-token") => Auth::Role("user"),
            Some(_) => Auth::Invalid,
        }
    }

    fn is_json(&self) -> bool {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Missing,
    Invalid,
    Role(&'static str),
}

async fn dispatch<S: Send + Sync + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    request: Request,
) -> Response {
    let (head, body) = request.into_parts();
    let path = head.uri.path().to_owned();
    shared
        .log
        .lock()
        .unwrap()
        .push(format!("{} {path}", head.method));
    let body = axum::body::to_bytes(body, READ_LIMIT).await.map_err(|_| ());
    let parts = Parts {
        method: head.method,
        path,
        headers: head.headers,
        body,
    };
    (shared.handler)(shared.clone(), parts)
}

fn respond(status: u16, headers: &[(&str, &str)], content_type: &str, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).expect("valid status");
    let map = response.headers_mut();
    if !content_type.is_empty() {
        map.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
    }
    for (name, value) in headers {
        map.append(
            header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

fn json_response(status: u16, headers: &[(&str, &str)], value: Value) -> Response {
    respond(
        status,
        headers,
        "application/json",
        serde_json::to_vec(&value).unwrap(),
    )
}

fn problem(status: u16, headers: &[(&str, &str)], title: &str, detail: &str) -> Response {
    let body = json!({"type": "about:blank", "title": title, "status": status, "detail": detail});
    respond(
        status,
        headers,
        "application/problem+json",
        serde_json::to_vec(&body).unwrap(),
    )
}

const CHALLENGE: &str = "Bearer realm=\"fixture\"";
const INVALID_CHALLENGE: &str = "Bearer realm=\"fixture\", error=\"invalid_token\", error_description=\"unknown or expired token\"";

fn not_found() -> Response {
    problem(404, &[], "Not Found", "no such resource")
}

/// The contract's answer to a caller who is not `needed`, or `None` when
/// the caller is.
fn authorise(parts: &Parts, needed: Option<&str>, concealed: bool) -> Option<Response> {
    match parts.role() {
        Auth::Missing => Some(problem(
            401,
            &[("www-authenticate", CHALLENGE)],
            "Unauthorized",
            "credentials required",
        )),
        Auth::Invalid => Some(problem(
            401,
            &[("www-authenticate", INVALID_CHALLENGE)],
            "Unauthorized",
            "invalid token",
        )),
        Auth::Role(role) => match needed {
            Some(needed) if needed != role && concealed => Some(not_found()),
            Some(needed) if needed != role => Some(problem(
                403,
                &[],
                "Forbidden",
                &format!("role {needed} required"),
            )),
            _ => None,
        },
    }
}

// ---------------------------------------------------------------------------
// The conforming API.

#[derive(Default)]
pub struct Directory {
    inner: Mutex<DirectoryState>,
}

#[derive(Default)]
struct DirectoryState {
    next: u64,
    users: HashMap<u64, Value>,
    deleted: HashSet<u64>,
    health_hits: u32,
}

/// `GET /health` answers 429 (with Retry-After) after this many requests.
pub const HEALTH_LIMIT: u32 = 5;

/// Serves `fixtures/conforming.yaml`, keeping the contract.
pub async fn conforming() -> Fixture {
    start(Directory::default(), conforming_handler).await
}

fn conforming_handler(shared: Arc<Shared<Directory>>, parts: Parts) -> Response {
    let segments = parts.segments();
    let allowed: &[&str] = match segments.as_slice() {
        ["health"] => &["GET"],
        ["users"] => &["GET", "POST"],
        ["users", _] => &["GET", "PATCH", "DELETE"],
        ["admin", "stats"] => &["GET"],
        _ => return not_found(),
    };
    let method = parts.method.as_str();
    if !allowed.contains(&method) {
        let allow = allowed.join(", ");
        return problem(405, &[("allow", &allow)], "Method Not Allowed", "see Allow");
    }
    let mut state = shared.state.inner.lock().unwrap();
    match (method, segments.as_slice()) {
        ("GET", ["health"]) => {
            state.health_hits += 1;
            if state.health_hits > HEALTH_LIMIT {
                return problem(
                    429,
                    &[("retry-after", "30")],
                    "Too Many Requests",
                    "quota spent",
                );
            }
            json_response(200, &[], json!({"status": "up"}))
        }
        ("GET", ["users"]) => {
            if let Some(denied) = authorise(&parts, None, false) {
                return denied;
            }
            let items: Vec<&Value> = state.users.values().collect();
            json_response(200, &[], json!({"items": items}))
        }
        ("POST", ["users"]) => {
            if let Some(denied) = authorise(&parts, Some("admin"), false) {
                return denied;
            }
            let body = match read_json(&parts) {
                Ok(body) => body,
                Err(refusal) => return refusal,
            };
            let mut errors = Vec::new();
            let email = body.get("email").and_then(Value::as_str);
            match email {
                Some(e) if e.contains('@') => {}
                Some(_) => errors.push(json!({"pointer": "/email", "message": "not an email"})),
                None => errors.push(json!({"pointer": "/email", "message": "required string"})),
            }
            if body
                .get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                errors.push(json!({"pointer": "/name", "message": "required string"}));
            }
            if body.get("age").is_some_and(|a| !a.is_u64()) {
                errors.push(json!({"pointer": "/age", "message": "not an integer"}));
            }
            if !errors.is_empty() {
                return schema_problem(errors);
            }
            let email = email.unwrap_or_default().to_owned();
            if state.users.values().any(|u| u["email"] == email) {
                return problem(409, &[], "Conflict", "email already registered");
            }
            state.next += 1;
            let id = state.next;
            let user = json!({"id": id, "email": email, "name": body["name"]});
            state.users.insert(id, user.clone());
            let location = format!("/users/{id}");
            json_response(201, &[("location", &location)], user)
        }
        (_, ["users", id]) => {
            let needed = (method != "GET").then_some("admin");
            if let Some(denied) = authorise(&parts, needed, false) {
                return denied;
            }
            let Ok(id) = id.parse::<u64>() else {
                return not_found();
            };
            if state.deleted.contains(&id) {
                return problem(410, &[], "Gone", "this user was deleted");
            }
            if !state.users.contains_key(&id) {
                return not_found();
            }
            match method {
                "GET" => json_response(200, &[], state.users[&id].clone()),
                "DELETE" => {
                    state.users.remove(&id);
                    state.deleted.insert(id);
                    respond(204, &[], "", Vec::new())
                }
                _ => {
                    let body = match read_json(&parts) {
                        Ok(body) => body,
                        Err(refusal) => return refusal,
                    };
                    let Some(name) = body
                        .get("name")
                        .and_then(Value::as_str)
                        .filter(|n| !n.is_empty())
                    else {
                        return schema_problem(vec![
                            json!({"pointer": "/name", "message": "required string"}),
                        ]);
                    };
                    let user = state.users.get_mut(&id).unwrap();
                    user["name"] = json!(name);
                    json_response(200, &[], user.clone())
                }
            }
        }
        ("GET", ["admin", "stats"]) => {
            if let Some(denied) = authorise(&parts, Some("admin"), true) {
                return denied;
            }
            json_response(200, &[], json!({"users": state.users.len()}))
        }
        _ => not_found(),
    }
}

/// The body as JSON, or the contract's refusal: 413 over the limit, 415
/// when not sent as JSON, 400 when it does not parse.
#[allow(clippy::result_large_err)] // a test server's refusal, built once per request
fn read_json(parts: &Parts) -> Result<Value, Response> {
    let Ok(bytes) = &parts.body else {
        return Err(problem(
            413,
            &[],
            "Content Too Large",
            "body over the limit",
        ));
    };
    if bytes.len() > BODY_LIMIT {
        return Err(problem(413, &[], "Content Too Large", "body over 1 MiB"));
    }
    if !parts.is_json() {
        return Err(problem(
            415,
            &[("accept-post", "application/json")],
            "Unsupported Media Type",
            "send application/json",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| problem(400, &[], "Bad Request", &format!("body is not JSON: {e}")))
}

fn schema_problem(errors: Vec<Value>) -> Response {
    let body = json!({
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "the body does not match the schema",
        "errors": errors,
    });
    respond(
        400,
        &[],
        "application/problem+json",
        serde_json::to_vec(&body).unwrap(),
    )
}

// ---------------------------------------------------------------------------
// The misbehaving API.

#[derive(Default)]
pub struct Broken {
    inner: Mutex<BrokenState>,
}

#[derive(Default)]
struct BrokenState {
    next_note: u64,
    notes: HashMap<u64, Value>,
    next_tag: u64,
    tags: HashMap<u64, Value>,
    ping_hits: u32,
}

/// Serves `fixtures/misbehaving.yaml`, breaking the contract where the
/// comments say `PLANT`.
pub async fn misbehaving() -> Fixture {
    start(Broken::default(), misbehaving_handler).await
}

fn misbehaving_handler(shared: Arc<Shared<Broken>>, parts: Parts) -> Response {
    let segments = parts.segments();
    let allowed: &[&str] = match segments.as_slice() {
        ["ping"] | ["legacy"] | ["moved"] | ["weird"] | ["reports"] | ["audit-log"] | ["trap"] => {
            &["GET"]
        }
        ["notes"] | ["tags"] => &["POST"],
        ["notes", _] | ["tags", _] => &["GET", "DELETE"],
        // PLANT probe.unknown_route: a catch-all page for any path.
        _ => {
            return respond(
                200,
                &[],
                "text/html",
                b"<html><body>app</body></html>".to_vec(),
            );
        }
    };
    let method = parts.method.as_str();
    if !allowed.contains(&method) {
        // PLANT probe.wrong_method, method.405_without_allow: no Allow.
        return problem(405, &[], "Method Not Allowed", "not here");
    }
    let mut state = shared.state.inner.lock().unwrap();
    match (method, segments.as_slice()) {
        ("GET", ["ping"]) => {
            state.ping_hits += 1;
            match state.ping_hits {
                1..=3 => json_response(200, &[], json!({"pong": true})),
                // PLANT probe.rate_burst, unavailable.503_without_retry_after.
                4 => problem(503, &[], "Service Unavailable", "busy"),
                // PLANT retry_after.syntax.
                5 => problem(
                    503,
                    &[("retry-after", "soon")],
                    "Service Unavailable",
                    "busy",
                ),
                // PLANT rate.429_without_retry_after.
                _ => problem(429, &[], "Too Many Requests", "slow down"),
            }
        }
        // PLANT redirect.without_location.
        ("GET", ["legacy"]) => respond(302, &[], "", Vec::new()),
        // A redirect the auditor must not follow.
        ("GET", ["moved"]) => respond(301, &[("location", "/trap")], "", Vec::new()),
        ("GET", ["trap"]) => json_response(200, &[], json!({"trapped": true})),
        // PLANT status.unregistered.
        ("GET", ["weird"]) => json_response(299, &[], json!({})),
        ("GET", ["reports"]) => match parts.role() {
            // PLANT probe.no_credentials, auth.401_without_challenge.
            Auth::Missing => problem(401, &[], "Unauthorized", "log in"),
            // PLANT probe.invalid_token: 403 for a token that is not valid.
            Auth::Invalid => problem(403, &[], "Forbidden", "bad token"),
            Auth::Role(_) => json_response(200, &[], json!({"reports": []})),
        },
        ("GET", ["audit-log"]) => match parts.role() {
            // PLANT auth.challenge_syntax: an unterminated quoted string.
            Auth::Missing => problem(
                401,
                &[("www-authenticate", "Bearer realm=\"audit")],
                "Unauthorized",
                "log in",
            ),
            Auth::Invalid => problem(
                401,
                &[("www-authenticate", INVALID_CHALLENGE)],
                "Unauthorized",
                "bad token",
            ),
            // PLANT probe.insufficient_role: 401 for a valid low role;
            // PLANT auth.401_without_invalid_token: its challenge is bare.
            Auth::Role("user") => problem(
                401,
                &[("www-authenticate", CHALLENGE)],
                "Unauthorized",
                "admins only",
            ),
            Auth::Role(_) => json_response(200, &[], json!({"entries": []})),
        },
        ("POST", ["notes"]) => {
            if let Some(denied) = authorise(&parts, None, false) {
                return denied;
            }
            let Ok(bytes) = &parts.body else {
                return problem(500, &[], "Internal Server Error", "boom");
            };
            if bytes.len() > BODY_LIMIT {
                // PLANT probe.oversize_body: 500 instead of 413.
                return problem(500, &[], "Internal Server Error", "out of memory");
            }
            // PLANT probe.wrong_media_type: the Content-Type is ignored.
            let Ok(body) = serde_json::from_slice::<Value>(bytes) else {
                // PLANT probe.malformed_json, server.500_on_client_fault,
                // error.not_machine_readable: a plain-text 500.
                return respond(500, &[], "text/plain", b"oops".to_vec());
            };
            if ["slug", "text"]
                .iter()
                .any(|k| body.get(*k).is_some_and(|v| !v.is_string()))
            {
                return problem(422, &[], "Unprocessable", "wrong type");
            }
            // PLANT probe.schema_violation: a missing member is accepted.
            // PLANT probe.semantic_violation: a repeated slug is accepted.
            state.next_note += 1;
            let id = state.next_note;
            let note = json!({"id": id, "slug": body.get("slug"), "text": body.get("text")});
            state.notes.insert(id, note.clone());
            // PLANT probe.create, created.201_without_location.
            json_response(201, &[], note)
        }
        ("GET", ["notes", id]) => {
            if let Some(denied) = authorise(&parts, None, false) {
                return denied;
            }
            let note = id.parse::<u64>().ok().and_then(|id| state.notes.get(&id));
            match note {
                Some(note) => json_response(200, &[], note.clone()),
                // PLANT probe.unknown_id, success.error_body.
                None => json_response(200, &[], json!({"error": "note not found"})),
            }
        }
        ("DELETE", ["notes", id]) => {
            if let Some(denied) = authorise(&parts, Some("admin"), false) {
                return denied;
            }
            if !id
                .parse::<u64>()
                .is_ok_and(|id| state.notes.contains_key(&id))
            {
                return not_found();
            }
            // PLANT probe.delete, no_content.204_with_body: a 204 that
            // declares content; and the note is not removed, so the read
            // after the delete still succeeds.
            respond(
                204,
                &[("content-length", "7")],
                "text/plain",
                b"deleted".to_vec(),
            )
        }
        ("POST", ["tags"]) => {
            if let Some(denied) = authorise(&parts, None, false) {
                return denied;
            }
            // PLANT body.malformed_not_400 (and probe.malformed_json): 422
            // for a JSON body that does not parse.
            if parts.is_json()
                && let Ok(bytes) = &parts.body
                && serde_json::from_slice::<Value>(bytes).is_err()
            {
                return problem(422, &[], "Unprocessable Content", "bad body");
            }
            let body = match read_json(&parts) {
                Ok(body) => body,
                Err(refusal) => return refusal,
            };
            let Some(name) = body.get("name").and_then(Value::as_str) else {
                return schema_problem(vec![
                    json!({"pointer": "/name", "message": "required string"}),
                ]);
            };
            if state.tags.values().any(|t| t["name"] == name) {
                return problem(409, &[], "Conflict", "tag exists");
            }
            state.next_tag += 1;
            let id = state.next_tag;
            let tag = json!({"id": id, "name": name});
            state.tags.insert(id, tag.clone());
            let location = format!("/tags/{id}");
            json_response(201, &[("location", &location)], tag)
        }
        (_, ["tags", id]) => {
            if let Some(denied) = authorise(&parts, None, false) {
                return denied;
            }
            let Some(id) = id
                .parse::<u64>()
                .ok()
                .filter(|id| state.tags.contains_key(id))
            else {
                return not_found();
            };
            if method == "GET" {
                return json_response(200, &[], state.tags[&id].clone());
            }
            state.tags.remove(&id);
            // PLANT delete.200_empty; the read after it is 404, which
            // PLANTs gone.404_after_delete.
            json_response(200, &[], json!({}))
        }
        _ => not_found(),
    }
}

// ---------------------------------------------------------------------------
// The limited API: two public reads, only the second limited.

#[derive(Default)]
pub struct Limited {
    second_hits: Mutex<u32>,
}

/// `GET /second` answers 429 (with Retry-After) after this many requests.
pub const SECOND_LIMIT: u32 = 4;

/// Serves `fixtures/limited.yaml`, keeping the contract: `GET /first` is
/// never limited, `GET /second` declares 429 and enforces it.
pub async fn limited() -> Fixture {
    start(Limited::default(), limited_handler).await
}

fn limited_handler(shared: Arc<Shared<Limited>>, parts: Parts) -> Response {
    match (parts.method.as_str(), parts.segments().as_slice()) {
        ("GET", ["first"]) => json_response(200, &[], json!({"first": true})),
        ("GET", ["second"]) => {
            let mut hits = shared.state.second_hits.lock().unwrap();
            *hits += 1;
            if *hits > SECOND_LIMIT {
                return problem(
                    429,
                    &[("retry-after", "10")],
                    "Too Many Requests",
                    "quota spent",
                );
            }
            json_response(200, &[], json!({"second": true}))
        }
        (_, ["first"] | ["second"]) => {
            problem(405, &[("allow", "GET")], "Method Not Allowed", "see Allow")
        }
        _ => not_found(),
    }
}

// ---------------------------------------------------------------------------
// Running an audit and looking at what it reported.

/// Everything a run reported.
#[derive(Default)]
pub struct Collected {
    pub findings: Vec<Located>,
    pub cases: Vec<Case>,
    pub skipped: Vec<Skipped>,
    pub summary: Option<Summary>,
}

impl Sink for Collected {
    fn finding(&mut self, finding: &Located) -> std::io::Result<()> {
        self.findings.push(finding.clone());
        Ok(())
    }

    fn skipped(&mut self, skipped: &Skipped) -> std::io::Result<()> {
        self.skipped.push(skipped.clone());
        Ok(())
    }

    fn case(&mut self, case: &Case) -> std::io::Result<()> {
        self.cases.push(case.clone());
        Ok(())
    }

    fn finish(&mut self, summary: &Summary) -> std::io::Result<()> {
        self.summary = Some(*summary);
        Ok(())
    }
}

impl Collected {
    /// Findings of `rule` whose operation starts with `subject`.
    pub fn of(&self, rule: &str, subject: &str) -> Vec<&Located> {
        self.findings
            .iter()
            .filter(|f| f.finding.rule.id == rule)
            .filter(|f| {
                f.probe
                    .as_ref()
                    .is_some_and(|p| p.operation.starts_with(subject))
            })
            .collect()
    }

    /// Findings that report `rule`'s fact on `subject`: its own, or a
    /// probe's that stands for it.
    pub fn reported(&self, rule: &str, subject: &str) -> Vec<&Located> {
        self.findings
            .iter()
            .filter(|f| {
                f.finding.rule.id == rule || f.finding.same_as.is_some_and(|r| r.id == rule)
            })
            .filter(|f| {
                f.probe
                    .as_ref()
                    .is_some_and(|p| p.operation.starts_with(subject))
            })
            .collect()
    }

    pub fn errors(&self) -> Vec<&Located> {
        self.findings
            .iter()
            .filter(|f| f.finding.severity == candor_contract::Severity::Error)
            .collect()
    }

    pub fn case(&self, rule: &str, subject: &str) -> Option<&Case> {
        self.cases
            .iter()
            .find(|c| c.rule.id == rule && c.subject.starts_with(subject))
    }

    pub fn not_passed(&self) -> Vec<&Case> {
        self.cases
            .iter()
            .filter(|c| c.outcome != CaseOutcome::Passed)
            .collect()
    }
}

/// How to run an audit in a test.
pub struct Audit {
    pub spec: String,
    pub base: String,
    pub auth: Vec<&'static str>,
    pub allow_destructive: bool,
    pub burst: Option<u32>,
    pub budget: u64,
    pub reveal_credentials: bool,
}

impl Audit {
    pub fn new(spec_name: &str, fixture: &Fixture) -> Self {
        Audit {
            spec: spec(spec_name),
            base: fixture.base(),
            auth: AUTH.to_vec(),
            allow_destructive: false,
            burst: None,
            budget: 500,
            reveal_credentials: false,
        }
    }

    pub fn destructive(mut self, burst: Option<u32>) -> Self {
        self.allow_destructive = true;
        self.burst = burst;
        self
    }

    pub async fn run(self) -> (Collected, ProbeReport) {
        let (sink, report) = self.try_run().await;
        (sink, report.expect("audit runs"))
    }

    /// Runs the audit; the error when it could not run.
    pub async fn try_run(self) -> (Collected, Result<ProbeReport, probe::ProbeError>) {
        let doc = candor_audit::openapi::Document::load(&self.spec).expect("fixture spec loads");
        let client = Client::new(ClientOptions {
            budget: self.budget,
            ..ClientOptions::default()
        })
        .expect("client");
        let options = ProbeOptions {
            base_url: self.base,
            credentials: Credentials::parse(self.auth.iter().copied()).expect("credentials"),
            allow_destructive: self.allow_destructive,
            burst: self.burst,
            reveal_credentials: self.reveal_credentials,
        };
        let mut sink = Collected::default();
        let report = probe::run(&doc, &options, &client, &NoProgress, &mut sink).await;
        (sink, report)
    }
}
