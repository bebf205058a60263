//! The passive rules of contract section 2, over one recorded exchange.
//!
//! `check_exchange` is stateless and cheap enough to run on every response
//! a gateway relays; `History` carries the one rule that needs to remember
//! earlier exchanges (`gone.404_after_delete`).

use std::collections::{HashSet, VecDeque};

use http::HeaderMap;
use http::header::{
    ACCEPT, ALLOW, AUTHORIZATION, CONTENT_ENCODING, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE,
};
use serde_json::Value;

use crate::challenge::{Challenge, parse_challenges};
use crate::exchange::{Exchange, Request, is_json_media_type, media_type, url_path};
use crate::finding::Finding;
use crate::problem::{PROBLEM_JSON, Problem};
use crate::retry_after::RetryAfter;
use crate::rules;
use crate::status;

/// Every request field the passive rules read. A caller that keeps only
/// these (the gateway's monitor does) gets the same findings as with the
/// whole header map, but for one: the API-key header an `ApiKey`
/// challenge names (its `header` parameter), which only the caller knows.
pub const REQUEST_FIELDS: &[http::HeaderName] = &[
    ACCEPT,
    http::header::CONTENT_TYPE,
    CONTENT_ENCODING,
    AUTHORIZATION,
];

/// Every response field the passive rules read (see [`REQUEST_FIELDS`]).
pub const RESPONSE_FIELDS: &[http::HeaderName] = &[
    WWW_AUTHENTICATE,
    RETRY_AFTER,
    LOCATION,
    ALLOW,
    http::header::CONTENT_TYPE,
    http::header::CONTENT_LENGTH,
];

/// How much to trust and how far to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// Bodies larger than this are not parsed (their rules are skipped).
    pub max_body_bytes: usize,
    /// Treat every exchange as a JSON API call. When false, an exchange is
    /// a JSON API call if its request asks for or sends JSON, its URL looks
    /// like an API (`/api/` path segment or an `api.` host), or its
    /// response is JSON.
    pub assume_json_api: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            max_body_bytes: 1 << 20,
            assume_json_api: false,
        }
    }
}

/// Runs every stateless passive rule over one exchange.
pub fn check_exchange(ex: &Exchange, opts: &CheckOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    let res = &ex.response;
    let code = res.status;
    let headers = &res.headers;

    if !status::is_registered(code) {
        let why = if (100..=599).contains(&code) {
            "is not in the IANA status code registry"
        } else {
            "is outside 100-599"
        };
        out.push(Finding::new(
            &rules::STATUS_UNREGISTERED,
            format!("status {code} {why}"),
            code.to_string(),
        ));
    }

    let challenges = check_challenges(code, headers, &mut out);
    if code == 401 {
        check_refused_credentials(&ex.request, &challenges, &mut out);
    }
    check_retry_after(code, headers, &mut out);

    match code {
        201 if !headers.contains_key(LOCATION) => out.push(Finding::new(
            &rules::CREATED_201_WITHOUT_LOCATION,
            "201 Created without a Location header",
            "",
        )),
        204 => check_no_content(ex, &mut out),
        405 if !headers.contains_key(ALLOW) => out.push(Finding::new(
            &rules::METHOD_405_WITHOUT_ALLOW,
            "405 Method Not Allowed without an Allow header",
            "",
        )),
        c if status::is_redirect_needing_location(c) && !headers.contains_key(LOCATION) => out
            .push(Finding::new(
                &rules::REDIRECT_WITHOUT_LOCATION,
                format!("{c} redirect without a Location header"),
                "",
            )),
        _ => {}
    }

    let body = inspectable_body(&res.body, opts);
    let res_media = media_type(headers);
    let res_is_json = res_media.as_deref().is_some_and(is_json_media_type);
    // Parse the response body once, and only when a rule needs it.
    let wants_body = (200..300).contains(&code) || code >= 400;
    let parsed: Option<Value> = match body {
        // A success body only for what `failure_signal` reads.
        Some(b) if wants_body && looks_like_json(b, res_is_json) && code < 300 => {
            crate::signals::success_body(b)
        }
        Some(b) if wants_body && looks_like_json(b, res_is_json) => serde_json::from_slice(b).ok(),
        _ => None,
    };

    if (200..300).contains(&code)
        && let Some(value) = &parsed
        && let Some(evidence) = failure_signal(value)
    {
        out.push(Finding::new(
            &rules::SUCCESS_ERROR_BODY,
            format!("{code} response whose body reports a failure"),
            evidence,
        ));
    }

    if code >= 400 && !ex.request.method.eq_ignore_ascii_case("HEAD") {
        check_error_body(ex, opts, res_media.as_deref(), parsed.as_ref(), &mut out);
    }

    if code == 200 && ex.request.method.eq_ignore_ascii_case("DELETE") {
        let trimmed = res.body.trim_ascii();
        if trimmed.is_empty() || is_empty_object(trimmed) {
            out.push(Finding::new(
                &rules::DELETE_200_EMPTY,
                "DELETE answered 200 with nothing to say; 204 No Content says it better",
                String::from_utf8_lossy(trimmed),
            ));
        }
    }

    if judges_request_body(code)
        && let Some(why) = known_client_fault(ex, opts)
    {
        let sent = String::from_utf8_lossy(&ex.request.body[..ex.request.body.len().min(120)]);
        let (rule, message) = match code {
            500 => (
                &rules::SERVER_500_ON_CLIENT_FAULT,
                format!("500 in answer to a malformed request: {why}"),
            ),
            422 => (
                &rules::BODY_MALFORMED_NOT_400,
                format!(
                    "422 in answer to a body that does not parse: {why}; 422 is for well-formed content, malformed JSON is 400"
                ),
            ),
            409 => (
                &rules::BODY_MALFORMED_NOT_400,
                format!(
                    "409 in answer to a body that does not parse: {why}; a conflict needs a body that was read, malformed JSON is 400"
                ),
            ),
            _ => (
                &rules::BODY_MALFORMED_NOT_400,
                format!("{code} accepted a body that does not parse: {why}; malformed JSON is 400"),
            ),
        };
        out.push(Finding::new(rule, message, sent));
    }

    out
}

/// The evidence that a JSON body reports a failure, if it does.
///
/// Recognised shapes, at the top level of an object: `success: false`,
/// `ok: false`, `status` equal to `"error"`, `"fail"`, `"failed"` or
/// `"failure"` (any case), and an `error` or `errors` member that is a
/// non-empty string, object or array, or `true`. A null, empty or `false`
/// `error` is not a failure, and neither is an `errors` list beside
/// non-null `data` (a GraphQL-style partial result).
pub fn failure_signal(body: &Value) -> Option<String> {
    let obj = body.as_object()?;
    for flag in ["success", "ok"] {
        if obj.get(flag) == Some(&Value::Bool(false)) {
            return Some(format!("\"{flag}\":false"));
        }
    }
    if let Some(Value::String(s)) = obj.get("status")
        && ["error", "fail", "failed", "failure"]
            .iter()
            .any(|w| s.eq_ignore_ascii_case(w))
    {
        return Some(format!("\"status\":{}", Value::String(s.clone())));
    }
    let partial_result = obj.get("data").is_some_and(|d| !d.is_null());
    for member in ["error", "errors"] {
        if member == "errors" && partial_result {
            continue;
        }
        if let Some(v) = obj.get(member)
            && is_non_empty(v)
        {
            return Some(format!("\"{member}\":{}", compact(v)));
        }
    }
    None
}

/// Remembers what earlier exchanges did, for the rules that span several.
///
/// Feed it every exchange in order. Memory is bounded: it remembers at most
/// [`History::CAPACITY`] deleted resources, forgetting the oldest first.
#[derive(Debug, Default)]
pub struct History {
    deleted: HashSet<String>,
    order: VecDeque<String>,
}

impl History {
    /// Most deleted resources remembered at once.
    pub const CAPACITY: usize = 100_000;

    /// Observes one exchange; returns the finding it completes, if any.
    pub fn observe(&mut self, ex: &Exchange) -> Option<Finding> {
        let method = &ex.request.method;
        let code = ex.response.status;
        let key = resource_key(&ex.request.url);
        if method.eq_ignore_ascii_case("DELETE") && (200..300).contains(&code) {
            if self.deleted.insert(key.clone()) {
                self.order.push_back(key);
                if self.order.len() > Self::CAPACITY
                    && let Some(old) = self.order.pop_front()
                {
                    self.deleted.remove(&old);
                }
            }
            return None;
        }
        if code == 410 || (200..300).contains(&code) && !method.eq_ignore_ascii_case("DELETE") {
            // Recreated, or already answered precisely: nothing to report later.
            if code != 410 && method.eq_ignore_ascii_case("PUT") {
                self.forget(&key);
            }
            return None;
        }
        if code == 404 && self.deleted.contains(&key) {
            self.forget(&key);
            return Some(Finding::new(
                &rules::GONE_404_AFTER_DELETE,
                format!(
                    "{} was deleted earlier and now answers 404; 410 Gone is more precise",
                    url_path(&ex.request.url)
                ),
                &ex.request.url,
            ));
        }
        None
    }

    fn forget(&mut self, key: &str) {
        if self.deleted.remove(key) {
            self.order.retain(|k| k != key);
        }
    }
}

/// A resource's identity across exchanges: the URL without query or fragment.
fn resource_key(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    url[..end].trim_end_matches('/').to_owned()
}

/// Checks every WWW-Authenticate field; returns the challenges of a 401
/// (other statuses' are not kept).
fn check_challenges(code: u16, headers: &HeaderMap, out: &mut Vec<Finding>) -> Vec<Challenge> {
    let mut parseable = false;
    let mut kept = Vec::new();
    for value in headers.get_all(WWW_AUTHENTICATE) {
        let text = String::from_utf8_lossy(value.as_bytes());
        match parse_challenges(&text) {
            Ok(challenges) if !challenges.is_empty() => {
                parseable = true;
                if code == 401 {
                    kept.extend(challenges);
                }
            }
            Ok(_) => out.push(Finding::new(
                &rules::AUTH_CHALLENGE_SYNTAX,
                "WWW-Authenticate holds no challenge",
                &text,
            )),
            Err(e) => out.push(Finding::new(
                &rules::AUTH_CHALLENGE_SYNTAX,
                format!("WWW-Authenticate does not parse: {e}"),
                &text,
            )),
        }
    }
    if code == 401 && !parseable {
        let message = if headers.contains_key(WWW_AUTHENTICATE) {
            "401 whose WWW-Authenticate holds no valid challenge"
        } else {
            "401 without a WWW-Authenticate challenge"
        };
        out.push(Finding::new(
            &rules::AUTH_401_WITHOUT_CHALLENGE,
            message,
            "",
        ));
    }
    kept
}

/// Schemes whose challenges carry RFC 6750 error codes: Bearer, DPoP
/// (RFC 9449 §7.1 reuses them) and the contract's `ApiKey`. Basic, Digest
/// and the like have no error code to give, so they are not judged.
const SCHEMES_WITH_ERROR_CODES: [&str; 3] = ["Bearer", "DPoP", "ApiKey"];

/// auth.401_without_invalid_token: credentials were sent for a scheme the
/// 401 challenges, and that challenge does not say `invalid_token`. A 401
/// that challenges only other schemes answers a scheme the server does not
/// take: no credentials as far as it is concerned (auth.missing).
fn check_refused_credentials(req: &Request, challenges: &[Challenge], out: &mut Vec<Finding>) {
    let sent_scheme = req
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_ascii_whitespace().next());
    let answered: Vec<&Challenge> = challenges
        .iter()
        .filter(|c| SCHEMES_WITH_ERROR_CODES.iter().any(|s| c.is_scheme(s)))
        .filter(|c| {
            sent_scheme.is_some_and(|s| c.is_scheme(s))
                || c.get("header").is_some_and(|name| sent_header(req, name))
        })
        .collect();
    let Some(first) = answered.first() else {
        return;
    };
    if answered
        .iter()
        .any(|c| c.get("error") == Some("invalid_token"))
    {
        return;
    }
    let scheme = &first.scheme;
    let message = match answered.iter().find_map(|c| c.get("error")) {
        Some(code) => format!(
            "401 to a request that sent {scheme} credentials says error=\"{code}\"; credentials that were sent and refused are error=\"invalid_token\""
        ),
        None => format!(
            "401 to a request that sent {scheme} credentials, without error=\"invalid_token\" in its {scheme} challenge: the client cannot tell refused credentials from missing ones"
        ),
    };
    // The evidence is the challenge, never the credential.
    out.push(Finding::new(
        &rules::AUTH_401_WITHOUT_INVALID_TOKEN,
        message,
        first.to_string(),
    ));
}

/// Whether the request carries a non-empty field `name`.
fn sent_header(req: &Request, name: &str) -> bool {
    http::HeaderName::from_bytes(name.trim().as_bytes())
        .ok()
        .and_then(|n| req.headers.get(n))
        .is_some_and(|v| !v.as_bytes().trim_ascii().is_empty())
}

fn check_retry_after(code: u16, headers: &HeaderMap, out: &mut Vec<Finding>) {
    let values: Vec<_> = headers.get_all(RETRY_AFTER).iter().collect();
    match values.as_slice() {
        [] => {
            if code == 429 {
                out.push(Finding::new(
                    &rules::RATE_429_WITHOUT_RETRY_AFTER,
                    "429 Too Many Requests without Retry-After",
                    "",
                ));
            } else if code == 503 {
                out.push(Finding::new(
                    &rules::UNAVAILABLE_503_WITHOUT_RETRY_AFTER,
                    "503 Service Unavailable without Retry-After",
                    "",
                ));
            }
        }
        [one] => {
            let text = String::from_utf8_lossy(one.as_bytes());
            if let Err(e) = RetryAfter::parse(&text) {
                out.push(Finding::new(
                    &rules::RETRY_AFTER_SYNTAX,
                    e.to_string(),
                    &text,
                ));
            }
        }
        many => {
            let joined: Vec<_> = many
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()))
                .collect();
            out.push(Finding::new(
                &rules::RETRY_AFTER_SYNTAX,
                format!(
                    "Retry-After sent {} times; it is a single value",
                    many.len()
                ),
                joined.join(", "),
            ));
        }
    }
}

fn check_no_content(ex: &Exchange, out: &mut Vec<Finding>) {
    let res = &ex.response;
    if !res.body.is_empty() {
        out.push(Finding::new(
            &rules::NO_CONTENT_204_WITH_BODY,
            format!("204 No Content with a {}-byte body", res.body.len()),
            String::from_utf8_lossy(&res.body[..res.body.len().min(120)]),
        ));
    } else if let Some(len) = res.content_length()
        && len > 0
    {
        out.push(Finding::new(
            &rules::NO_CONTENT_204_WITH_BODY,
            format!("204 No Content with Content-Length: {len}"),
            format!("content-length: {len}"),
        ));
    }
}

fn check_error_body(
    ex: &Exchange,
    opts: &CheckOptions,
    res_media: Option<&str>,
    parsed: Option<&Value>,
    out: &mut Vec<Finding>,
) {
    let res = &ex.response;
    let code = res.status;
    let json_media = res_media.is_some_and(is_json_media_type);
    if !(opts.assume_json_api || json_media || is_json_api_call(ex)) {
        return;
    }
    let problem = |message: String, evidence: String| {
        Finding::new(&rules::ERROR_NOT_MACHINE_READABLE, message, evidence)
    };
    if res.body.trim_ascii().is_empty() {
        out.push(problem(
            format!("{code} on a JSON API with an empty body"),
            String::new(),
        ));
        return;
    }
    if !json_media {
        let shown = res_media.unwrap_or("no Content-Type");
        out.push(problem(
            format!("{code} on a JSON API answered with {shown}, not JSON or problem+json"),
            snippet(&res.body),
        ));
        return;
    }
    if res.body.len() > opts.max_body_bytes {
        return;
    }
    let Some(value) = parsed else {
        out.push(problem(
            format!("{code} declares JSON but the body does not parse"),
            snippet(&res.body),
        ));
        return;
    };
    if res_media == Some(PROBLEM_JSON) {
        match Problem::from_value(value.clone()) {
            Ok(p) => {
                let issues = p.validate(code);
                if !issues.is_empty() {
                    out.push(problem(issues.join("; "), snippet(&res.body)));
                }
            }
            Err(e) => out.push(problem(
                format!("problem+json body is {e}"),
                snippet(&res.body),
            )),
        }
    }
}

/// Whether the request shows that its client speaks JSON to an API.
fn is_json_api_call(ex: &Exchange) -> bool {
    let req = &ex.request;
    let accepts_json = req.headers.get_all(ACCEPT).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.to_ascii_lowercase().contains("json"))
    });
    let sends_json = req.media_type().as_deref().is_some_and(is_json_media_type);
    accepts_json || sends_json || looks_like_api_url(&req.url)
}

fn looks_like_api_url(url: &str) -> bool {
    let path = url_path(url);
    let host_is_api = url
        .split_once("://")
        .is_some_and(|(_, rest)| rest.starts_with("api."));
    host_is_api || path == "/api" || path.starts_with("/api/") || path.contains("/api/")
}

/// Whether a response with this status is judged against the request's
/// body (`body.malformed_not_400`, `server.500_on_client_fault`): only
/// answers that speak about the body are, since the contract ranks auth,
/// routes, limits and media type before it. A caller that keeps request
/// bodies (the gateway's monitor) joins them only for these.
pub fn judges_request_body(status: u16) -> bool {
    matches!(status, 200..=299 | 409 | 422 | 500)
}

/// Whether the passive rules read a request body sent with these fields:
/// a JSON one (`application/json`, `+json`) without a content coding (a
/// coded body is recorded coded, so it cannot be judged). A caller that
/// keeps request bodies keeps these and no others.
pub fn reads_request_body(headers: &HeaderMap) -> bool {
    let json = media_type(headers).is_some_and(|m| is_json_media_type(&m));
    let coded = headers.get_all(CONTENT_ENCODING).iter().any(|v| {
        v.as_bytes().split(|&b| b == b',').any(|c| {
            !c.trim_ascii().is_empty() && !c.trim_ascii().eq_ignore_ascii_case(b"identity")
        })
    });
    json && !coded
}

/// Why the request is known to be malformed, if it is: a body that says it
/// is JSON and is not ([`reads_request_body`]).
fn known_client_fault(ex: &Exchange, opts: &CheckOptions) -> Option<String> {
    let req = &ex.request;
    if !reads_request_body(&req.headers)
        || req.body.is_empty()
        || req.body.len() > opts.max_body_bytes
    {
        return None;
    }
    let media = req.media_type()?;
    serde_json::from_slice::<serde::de::IgnoredAny>(&req.body)
        .err()
        .map(|e| format!("its {media} body is not valid JSON ({e})"))
}

fn inspectable_body<'a>(body: &'a [u8], opts: &CheckOptions) -> Option<&'a [u8]> {
    (!body.is_empty() && body.len() <= opts.max_body_bytes).then_some(body)
}

/// Cheap pre-test before a full parse: declared JSON, or starts like an object.
fn looks_like_json(body: &[u8], declared_json: bool) -> bool {
    declared_json || body.trim_ascii_start().first() == Some(&b'{')
}

fn is_empty_object(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
}

fn is_non_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Number(_) => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn compact(v: &Value) -> String {
    crate::finding::bounded(&v.to_string())
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(160)]).into_owned()
}
