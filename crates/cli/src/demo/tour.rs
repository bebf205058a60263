//! The guided tour: one step per row of the guide's mapping table, printed
//! as curl lines and, with `--tour`, run and checked.
//!
//! Steps are data so that what the demo prints and what its tests run can
//! never drift apart.

use std::fmt::Write as _;

use candor_audit::http::{Client, ClientOptions, RecordedRequest, RecordedResponse};
use candor_contract::fields::{X_FAILURE_TYPE, X_UPSTREAM_SERVICE};

/// Who a request is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    Anonymous,
    User,
    Admin,
    Expired,
}

impl As {
    /// The shell variable the printed tour uses for the token.
    fn variable(self) -> Option<&'static str> {
        match self {
            As::Anonymous => None,
            As::User => Some("USER_TOKEN"),
            As::Admin => Some("ADMIN_TOKEN"),
            As::Expired => Some("EXPIRED_TOKEN"),
        }
    }
}

/// One request of a step.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: &'static str,
    pub path: &'static str,
    pub who: As,
    /// `(Content-Type, body)`.
    pub body: Option<(&'static str, &'static str)>,
}

/// One row of the tour: requests sent in order; the status of the last
/// one is the row's answer, the others must succeed (2xx).
#[derive(Debug, Clone)]
pub struct Step {
    pub status: u16,
    pub what: &'static str,
    pub calls: Vec<Call>,
    /// How many times the last call is sent (a quota needs several).
    pub repeat: u32,
    /// A header the answer must carry (how the client recovers).
    pub header: Option<&'static str>,
    /// Copies of a call sent all at once before the last call and held
    /// while it is sent (a crowd that fills the gateway).
    pub crowd: Option<(Call, u32)>,
    /// Fields the answer must carry with these values (what failed, where).
    pub fields: &'static [(&'static str, &'static str)],
}

const JSON: &str = "application/json";

fn call(method: &'static str, path: &'static str, who: As) -> Call {
    Call {
        method,
        path,
        who,
        body: None,
    }
}

fn with_body(mut c: Call, media: &'static str, body: &'static str) -> Call {
    c.body = Some((media, body));
    c
}

fn step(status: u16, what: &'static str, calls: Vec<Call>) -> Step {
    Step {
        status,
        what,
        calls,
        repeat: 1,
        header: None,
        crowd: None,
        fields: &[],
    }
}

impl Step {
    fn with_header(mut self, name: &'static str) -> Self {
        self.header = Some(name);
        self
    }

    fn with_fields(mut self, fields: &'static [(&'static str, &'static str)]) -> Self {
        self.fields = fields;
        self
    }
}

/// Ada's sign-up: the account the reference service's OpenAPI document
/// logs in with in its example, made when the demo starts (user 1), so
/// that an audit of a fresh demo can log in.
const ADA: &str = r#"{"email":"ada@example.com","password":"correct horse battery","name":"Ada"}"#;

/// Grace's sign-up: the tour's own user (user 2), whom it reads and deletes.
const GRACE: &str =
    r#"{"email":"grace@example.com","password":"analytical engine","name":"Grace"}"#;

/// Signs Ada up (at start, on `base`: the service itself).
pub async fn sign_up_ada(base: &str, client: &Client) -> Result<(), String> {
    let status = send(
        &with_body(call("POST", "/users", As::Anonymous), JSON, ADA),
        base,
        &Tokens::default(),
        client,
    )
    .await?;
    if status == 201 {
        Ok(())
    } else {
        Err(format!("signing up the example user answered {status}"))
    }
}

/// The tour, in the order it must run: it signs up user 2 (user 1 is Ada,
/// made at start), reads, deletes and reads it again, on a fresh demo.
pub fn steps() -> Vec<Step> {
    let grace = GRACE;
    let mut all = vec![
        step(
            201,
            "created: sign up (Location names the user)",
            vec![with_body(
                call("POST", "/users", As::Anonymous),
                JSON,
                grace,
            )],
        )
        .with_header("location"),
        step(
            400,
            "malformed JSON",
            vec![with_body(
                call("POST", "/users", As::Anonymous),
                JSON,
                r#"{"email":"#,
            )],
        ),
        step(
            400,
            "missing field (errors lists each one)",
            vec![with_body(
                call("POST", "/users", As::Anonymous),
                JSON,
                r#"{"email":"bob@example.com"}"#,
            )],
        ),
        step(
            415,
            "JSON sent as text/plain",
            vec![with_body(
                call("POST", "/users", As::Anonymous),
                "text/plain",
                grace,
            )],
        ),
        step(
            422,
            "valid input breaking a rule: the email is taken",
            vec![with_body(
                call("POST", "/users", As::Anonymous),
                JSON,
                grace,
            )],
        ),
        step(
            401,
            "no token (WWW-Authenticate: Bearer realm=\"accounts\")",
            vec![call("GET", "/users/2", As::Anonymous)],
        )
        .with_header("www-authenticate"),
        step(
            401,
            "expired token (error=\"invalid_token\")",
            vec![call("GET", "/users/2", As::Expired)],
        )
        .with_header("www-authenticate"),
        step(
            200,
            "a valid token reads the user",
            vec![call("GET", "/users/2", As::User)],
        ),
        step(
            403,
            "authenticated, but not an admin",
            vec![call("GET", "/admin/reports", As::User)],
        ),
        step(
            404,
            "a user that never existed",
            vec![call("GET", "/users/999", As::User)],
        ),
        step(
            202,
            "accepted: an export starts (Location: its status)",
            vec![call("POST", "/exports", As::User)],
        )
        .with_header("location"),
        step(
            204,
            "deleted, no content",
            vec![call("DELETE", "/users/2", As::User)],
        ),
        step(
            410,
            "the deleted user is gone for good",
            vec![call("GET", "/users/2", As::User)],
        ),
        step(
            410,
            "a retired route (Link: the successor)",
            vec![call("GET", "/docs/v1/guide", As::Anonymous)],
        )
        .with_header("link"),
        step(
            500,
            "the database fails (admin turns the switch on, then reads)",
            vec![
                with_body(
                    call("POST", "/-/fail-db", As::Admin),
                    JSON,
                    r#"{"on":true}"#,
                ),
                call("GET", "/admin/reports", As::Admin),
            ],
        ),
        step(
            200,
            "the database is back (switch off)",
            vec![
                with_body(
                    call("POST", "/-/fail-db", As::Admin),
                    JSON,
                    r#"{"on":false}"#,
                ),
                call("GET", "/admin/reports", As::Admin),
            ],
        ),
        step(
            502,
            "a dependency refuses connections (X-Failure-Type)",
            vec![call("GET", "/payments/charge", As::Anonymous)],
        )
        .with_header(X_FAILURE_TYPE.as_str()),
        step(
            503,
            "under maintenance (Retry-After)",
            vec![call("GET", "/legacy/report", As::Anonymous)],
        )
        .with_header("retry-after"),
        step(
            504,
            "a dependency slower than its timeout",
            vec![call("GET", "/dependencies/slow?ms=3000", As::Anonymous)],
        )
        .with_header(X_FAILURE_TYPE.as_str()),
        Step {
            repeat: 6,
            ..step(
                429,
                "over the quota of 5 a minute (Retry-After, RateLimit)",
                vec![call("GET", "/search/ok", As::Anonymous)],
            )
            .with_header("retry-after")
        },
    ];
    all.extend(auth_service_steps());
    all
}

/// The guide's four 5xx on its flow, Client -> Gateway -> Auth Service ->
/// Database: the auth service's database crashes (its 500, the gateway's
/// 502 naming it), it answers something invalid (502), its database hangs
/// (504), and the requests it holds fill the gateway (503); then it is back.
/// User 1 (Ada) is read throughout; the admin flips the switches.
fn auth_service_steps() -> Vec<Step> {
    let switch = |name: &'static str, on: bool| {
        let (path, body) = match (name, on) {
            ("fail-db", true) => ("/-/auth/fail-db", r#"{"on":true}"#),
            ("fail-db", false) => ("/-/auth/fail-db", r#"{"on":false}"#),
            ("invalid-answers", true) => ("/-/auth/invalid-answers", r#"{"on":true}"#),
            ("invalid-answers", false) => ("/-/auth/invalid-answers", r#"{"on":false}"#),
            (_, true) => ("/-/auth/hang-db", r#"{"on":true}"#),
            (_, false) => ("/-/auth/hang-db", r#"{"on":false}"#),
        };
        with_body(call("POST", path, As::Admin), JSON, body)
    };
    let read = || call("GET", "/users/1", As::User);
    vec![
        step(
            502,
            "the auth service's database crashes: its 500 is the gateway's 502 naming it",
            vec![switch("fail-db", true), read()],
        )
        .with_header(X_UPSTREAM_SERVICE.as_str())
        .with_fields(&[
            ("x-upstream-service", "auth"),
            ("x-failure-type", "error_status"),
        ]),
        step(
            502,
            "the auth service answers something invalid (X-Failure-Type: invalid_response)",
            vec![
                switch("fail-db", false),
                switch("invalid-answers", true),
                read(),
            ],
        )
        .with_header(X_FAILURE_TYPE.as_str())
        .with_fields(&[
            ("x-upstream-service", "auth"),
            ("x-failure-type", "invalid_response"),
        ]),
        step(
            504,
            "the auth service's database hangs: no answer in time (X-Failure-Type: timeout)",
            vec![
                switch("invalid-answers", false),
                switch("hang-db", true),
                read(),
            ],
        )
        .with_header(X_FAILURE_TYPE.as_str())
        .with_fields(&[
            ("x-upstream-service", "auth"),
            ("x-failure-type", "timeout"),
        ]),
        Step {
            crowd: Some((read(), 8)),
            ..step(
                503,
                "the gateway is overloaded: 8 requests held by the hung database fill it",
                vec![call("GET", "/users/1", As::Anonymous)],
            )
            .with_header("retry-after")
            .with_fields(&[("retry-after", "1")])
        },
        step(
            200,
            "the auth service's database is back (switch off)",
            vec![switch("hang-db", false), read()],
        ),
    ]
}

/// Single-quotes `s` for a POSIX shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The curl line of one call, with `$GW` and the token variables.
pub fn curl(c: &Call, quiet: bool) -> String {
    let mut line = String::from(if quiet {
        "curl -s -o /dev/null -w '%{http_code}\\n'"
    } else {
        "curl -si"
    });
    if c.method != "GET" {
        let _ = write!(line, " -X {}", c.method);
    }
    if let Some(var) = c.who.variable() {
        let _ = write!(line, " -H \"Authorization: Bearer ${var}\"");
    }
    if let Some((media, body)) = c.body {
        let _ = write!(
            line,
            " -H {} -d {}",
            quote(&format!("Content-Type: {media}")),
            quote(body)
        );
    }
    let _ = write!(line, " \"$GW{}\"", c.path);
    line
}

/// The tour as text: one block per step.
pub fn render(steps: &[Step]) -> String {
    let mut out = String::new();
    for s in steps {
        let _ = writeln!(out, "  {}  {}", s.status, s.what);
        let (last, setup) = s.calls.split_last().expect("a step has calls");
        for c in setup {
            let _ = writeln!(out, "       {}", curl(c, true));
        }
        if let Some((crowd, n)) = &s.crowd {
            let _ = writeln!(
                out,
                "       for i in $(seq {n}); do {} & done",
                curl(crowd, true)
            );
        }
        if s.repeat > 1 {
            let _ = writeln!(
                out,
                "       for i in $(seq {}); do {}; done",
                s.repeat,
                curl(last, true)
            );
        } else {
            let _ = writeln!(out, "       {}", curl(last, false));
        }
    }
    out
}

/// The roles the demo's tokens stand for, bound to the gateway's `bearer`
/// scheme: the role and the shell variable that holds its token.
pub const AUDIT_ROLES: [(&str, &str); 3] = [
    ("user", "USER_TOKEN"),
    ("admin", "ADMIN_TOKEN"),
    ("expired", "EXPIRED_TOKEN"),
];

/// The path the reference service serves its OpenAPI document at.
pub const SPEC_PATH: &str = "/openapi.yaml";

/// The `candor audit` command that audits the demo, as a shell runs it
/// (with `$GW` and the token variables): the document the service serves,
/// a token per role, and deletes of what the run creates.
pub fn audit_command() -> String {
    let mut line =
        format!("candor audit --spec \"$GW{SPEC_PATH}\" --base-url \"$GW\" --allow-destructive");
    for (role, var) in AUDIT_ROLES {
        let _ = write!(line, " \\\n      --auth {role}@bearer=\"Bearer ${var}\"");
    }
    line
}

/// The fault suite's command against the demo's gateway.
pub fn suite_command() -> &'static str {
    "candor audit gateway --url \"$GW\" --faults-prefix /dependencies --dead-prefix /payments"
}

/// The tokens a tour runs with.
#[derive(Default)]
pub struct Tokens {
    pub user: String,
    pub admin: String,
    pub expired: String,
}

impl Tokens {
    /// The token the shell variable `var` holds (see [`AUDIT_ROLES`]).
    pub fn get(&self, var: &str) -> &str {
        match var {
            "USER_TOKEN" => &self.user,
            "ADMIN_TOKEN" => &self.admin,
            "EXPIRED_TOKEN" => &self.expired,
            _ => "",
        }
    }
}

/// One step's outcome.
pub struct Outcome {
    pub step: Step,
    /// The status of the last call, or why it got none.
    pub got: Result<u16, String>,
    /// The step's header was missing from the answer.
    pub missing_header: bool,
    /// The step's fields as the answer carried them, those that differ
    /// from what the step expects first flagged: `(name, value, as expected)`.
    pub fields: Vec<(&'static str, Option<String>, bool)>,
    /// What the contract's passive rules found in the answer.
    pub findings: Vec<candor_contract::Finding>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.got == Ok(self.step.status)
            && !self.missing_header
            && self.findings.is_empty()
            && self.fields.iter().all(|(_, _, ok)| *ok)
    }
}

/// Runs the tour against `base` (the gateway's URL).
pub async fn run(base: &str, tokens: &Tokens, client: &Client) -> Vec<Outcome> {
    let mut out = Vec::new();
    for s in steps() {
        let outcome = match run_step(&s, base, tokens, client).await {
            Ok((request, response)) => {
                let exchange = response.exchange(&request);
                Outcome {
                    got: Ok(response.status),
                    missing_header: s.header.is_some_and(|h| response.header(h).is_none()),
                    fields: s
                        .fields
                        .iter()
                        .map(|&(name, want)| {
                            let got = response.header(name).map(str::to_owned);
                            let ok = got.as_deref() == Some(want);
                            (name, got, ok)
                        })
                        .collect(),
                    findings: candor_contract::check_exchange(
                        &exchange,
                        &candor_contract::CheckOptions::default(),
                    ),
                    step: s,
                }
            }
            Err(e) => Outcome {
                got: Err(e),
                missing_header: false,
                fields: Vec::new(),
                findings: Vec::new(),
                step: s,
            },
        };
        out.push(outcome);
    }
    out
}

/// Sends a step's calls; returns the last request and its answer.
async fn run_step(
    s: &Step,
    base: &str,
    tokens: &Tokens,
    client: &Client,
) -> Result<(RecordedRequest, RecordedResponse), String> {
    let (last, setup) = s.calls.split_last().ok_or("a step without calls")?;
    for c in setup {
        let status = send(c, base, tokens, client).await?;
        if !(200..300).contains(&status) {
            return Err(format!("{} {} answered {status}", c.method, c.path));
        }
    }
    if let Some((crowd, n)) = &s.crowd {
        return run_crowded(s, last, crowd, *n, base, tokens).await;
    }
    let mut answer = None;
    for _ in 0..s.repeat.max(1) {
        let request = request(last, base, tokens);
        let response = client
            .send(&request)
            .await
            .map_err(|e| format!("{} {}: {e}", last.method, last.path))?;
        answer = Some((request, response));
    }
    answer.ok_or_else(|| "nothing sent".to_owned())
}

/// Sends `n` copies of `crowd` at once, then `last` until it answers the
/// step's status or the crowd has been answered (the crowd may take a
/// moment to arrive); returns the last answer.
async fn run_crowded(
    s: &Step,
    last: &Call,
    crowd: &Call,
    n: u32,
    base: &str,
    tokens: &Tokens,
) -> Result<(RecordedRequest, RecordedResponse), String> {
    // A client of its own: the tour's sends at most a few at once.
    let client = Client::new(ClientOptions {
        concurrency: n as usize + 1,
        ..ClientOptions::default()
    })
    .map_err(|e| e.to_string())?;
    let held: Vec<_> = (0..n)
        .map(|_| {
            let (client, request) = (client.clone(), request(crowd, base, tokens));
            tokio::spawn(async move { client.send(&request).await })
        })
        .collect();
    let answer = loop {
        let request = request(last, base, tokens);
        let response = client
            .send(&request)
            .await
            .map_err(|e| format!("{} {}: {e}", last.method, last.path))?;
        if response.status == s.status || held.iter().all(|h| h.is_finished()) {
            break (request, response);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    for h in held {
        let _ = h.await;
    }
    Ok(answer)
}

fn request(c: &Call, base: &str, tokens: &Tokens) -> RecordedRequest {
    let mut request = RecordedRequest::new(c.method, format!("{base}{}", c.path))
        .header("Accept", "application/json");
    let token = match c.who {
        As::Anonymous => None,
        As::User => Some(&tokens.user),
        As::Admin => Some(&tokens.admin),
        As::Expired => Some(&tokens.expired),
    };
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    if let Some((media, body)) = c.body {
        request = request.header("Content-Type", media).body(body);
    }
    request
}

async fn send(c: &Call, base: &str, tokens: &Tokens, client: &Client) -> Result<u16, String> {
    client
        .send(&request(c, base, tokens))
        .await
        .map(|r| r.status)
        .map_err(|e| format!("{} {}: {e}", c.method, c.path))
}

/// The tour's client steps, run through candor-client after the table's
/// rows: a retry that honours Retry-After, and a refreshed token.
pub async fn run_client_steps(base: &str, tokens: &Tokens) -> Vec<Outcome> {
    vec![
        client_retry_step(base).await,
        client_refresh_step(base, tokens).await,
    ]
}

fn client_outcome(step: Step, got: Result<u16, String>) -> Outcome {
    Outcome {
        step,
        got,
        missing_header: false,
        fields: Vec::new(),
        findings: Vec::new(),
    }
}

fn client_error(e: reqwest_middleware::Error) -> String {
    match candor_client::Error::from_middleware(&e) {
        Some(gave_up) => gave_up.to_string(),
        None => e.to_string(),
    }
}

/// Two calls in a row on a quota of one a second: the second gets 429 with
/// Retry-After: 1; candor-client waits that second and retries (200).
async fn client_retry_step(base: &str) -> Outcome {
    let step = step(
        200,
        "candor-client: 429, waits Retry-After (1 s), retries",
        vec![call("GET", "/paced/ok", As::Anonymous)],
    );
    let waited = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = waited.clone();
    let policy = candor_client::Policy::builder()
        .deadline(std::time::Duration::from_secs(10))
        .sleeper(move |d: std::time::Duration| {
            seen.lock().unwrap_or_else(|p| p.into_inner()).push(d);
            tokio::time::sleep(d)
        })
        .build();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(candor_client::RetryMiddleware::new(policy))
        .build();
    let url = format!("{base}/paced/ok");
    let mut got = Ok(0);
    for _ in 0..2 {
        got = client
            .get(&url)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(client_error);
    }
    let waits = waited.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let got = match got {
        Ok(status) if waits.is_empty() => Err(format!("{status} without a retry")),
        other => other,
    };
    client_outcome(step, got)
}

/// An expired token: 401 invalid_token; candor-client asks its token source
/// once for a fresh one and retries (200).
async fn client_refresh_step(base: &str, tokens: &Tokens) -> Outcome {
    let step = step(
        200,
        "candor-client: 401 expired token, one refresh, retries",
        vec![call("GET", "/admin/reports", As::Expired)],
    );
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let count = asked.clone();
    let fresh = tokens.admin.clone();
    let policy = candor_client::Policy::builder()
        .token_source(move || {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let token = fresh.clone();
            async move { Ok::<_, candor_client::BoxError>(token) }
        })
        .build();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(candor_client::RetryMiddleware::new(policy))
        .build();
    let got = client
        .get(format!("{base}/admin/reports"))
        .bearer_auth(&tokens.expired)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(client_error);
    let refreshes = asked.load(std::sync::atomic::Ordering::SeqCst);
    let got = match got {
        Ok(status) if refreshes != 1 => Err(format!("{status} after {refreshes} refreshes")),
        other => other,
    };
    client_outcome(step, got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_of_the_guides_table_is_in_the_tour() {
        let statuses: Vec<u16> = steps().iter().map(|s| s.status).collect();
        for wanted in [
            401, 403, 400, 415, 422, 404, 410, 500, 502, 503, 504, 429, 201, 204, 202,
        ] {
            assert!(statuses.contains(&wanted), "{wanted} missing");
        }
    }

    #[test]
    fn the_guides_four_5xx_run_on_the_auth_service_flow() {
        let steps = auth_service_steps();
        let statuses: Vec<u16> = steps.iter().map(|s| s.status).collect();
        assert_eq!(statuses, [502, 502, 504, 503, 200]);
        // Each failure names the auth service and how it failed.
        for (s, failure) in steps
            .iter()
            .zip(["error_status", "invalid_response", "timeout"])
        {
            assert!(
                s.fields.contains(&("x-upstream-service", "auth")),
                "{}",
                s.what
            );
            assert!(
                s.fields.contains(&("x-failure-type", failure)),
                "{}",
                s.what
            );
        }
        assert!(steps[3].crowd.is_some() && steps[3].header == Some("retry-after"));
        let text = render(&steps);
        assert!(
            text.contains("for i in $(seq 8); do curl -s -o /dev/null"),
            "{text}"
        );
        assert!(
            text.contains(r#"-d '{"on":true}' "$GW/-/auth/hang-db""#),
            "{text}"
        );
    }

    #[test]
    fn the_readme_shows_the_tours_curl_lines() {
        let readme = include_str!("../../../../README.md");
        for s in steps() {
            let last = s.calls.last().unwrap();
            let line = if s.repeat > 1 {
                format!(
                    "for i in $(seq {}); do {}; done",
                    s.repeat,
                    curl(last, true)
                )
            } else {
                curl(last, false)
            };
            assert!(readme.contains(&line), "README.md lacks {line}");
        }
        for command in [audit_command(), suite_command().to_owned()] {
            assert!(readme.contains(&command), "README.md lacks {command}");
        }
    }

    #[test]
    fn the_audit_command_uses_the_shell_variables() {
        assert_eq!(
            audit_command(),
            "candor audit --spec \"$GW/openapi.yaml\" --base-url \"$GW\" --allow-destructive \\\n      \
             --auth user@bearer=\"Bearer $USER_TOKEN\" \\\n      \
             --auth admin@bearer=\"Bearer $ADMIN_TOKEN\" \\\n      \
             --auth expired@bearer=\"Bearer $EXPIRED_TOKEN\""
        );
    }

    #[test]
    fn curl_lines_use_the_shell_variables() {
        let text = render(&steps());
        assert!(text.contains(r#"-H "Authorization: Bearer $EXPIRED_TOKEN" "$GW/users/2""#));
        assert!(text.contains(r#"-X POST -H 'Content-Type: application/json' -d '{"email":'"#));
        assert!(text.contains("for i in $(seq 6); do curl -s -o /dev/null"));
    }
}
