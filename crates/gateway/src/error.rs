//! Every error the gateway can answer with, and the one function that turns
//! each into its contract rule, status, headers and problem body.
//!
//! Layers return a typed [`GatewayError`]; nothing else in the gateway
//! chooses a status. The rule catalog in candor-contract says which status
//! each rule carries, so no status literal appears here either.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use candor_contract::fields::{ACCEPT_POST, accept_for};
pub use candor_contract::fields::{X_FAILURE_TYPE, X_REQUEST_ID, X_UPSTREAM_SERVICE};
use candor_contract::rules::{self, Rule};
use candor_contract::{FailureType, PROBLEM_JSON, Problem, RetryAfter};
use http::header::{
    ALLOW, CONNECTION, CONTENT_TYPE, HeaderName, HeaderValue, LINK, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{Response, StatusCode};
use http_body_util::Full;

/// The fields of an admitted CORS preflight's answer (`pipeline::cors`).
pub(crate) type PreflightFields = Vec<(http::HeaderName, HeaderValue)>;

/// Why the gateway answers a request itself.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    #[error("request target is {len} bytes, over the {limit}-byte limit")]
    UriTooLong { len: usize, limit: usize },
    #[error("header section is {len} bytes, over the {limit}-byte limit")]
    HeadersTooLarge { len: usize, limit: usize },
    /// request.path_unsafe: the target's path cannot be normalised safely.
    #[error("the request path {why}")]
    PathUnsafe { why: &'static str },
    /// request.host: Host missing, repeated, or not a valid authority.
    #[error("the Host field {why}")]
    BadHost { why: &'static str },
    /// request.method_unsupported: CONNECT and the like, never forwarded.
    #[error("{method} is not implemented by this gateway")]
    MethodUnsupported { method: String },
    /// request.coding_unsupported: a transfer coding other than chunked.
    #[error("the transfer coding {coding:?} is not implemented")]
    CodingUnsupported { coding: String },
    /// request.body_timeout: the client's body stalled.
    #[error("the request body stalled for more than {} ms", .after.as_millis())]
    BodyTimeout { after: Duration },
    #[error("the gateway is at its limit of {limit} concurrent requests")]
    Overloaded { limit: usize },
    #[error("no route serves {path}")]
    RouteUnknown { path: String },
    #[error("this route was retired")]
    Retired { successor: Option<String> },
    #[error("{method} is not allowed here; allowed: {allow}")]
    MethodNotAllowed { method: String, allow: String },
    /// cors.preflight: an admitted preflight; `fields` are its CORS fields.
    #[error("the preflight is admitted")]
    Preflight { fields: PreflightFields },
    /// cors.denied: a preflight the route's policy does not admit.
    #[error("the preflight is refused: {why}")]
    PreflightDenied { why: &'static str },
    #[error("under maintenance")]
    Maintenance { retry_after: Duration },
    #[error("credentials are required")]
    Unauthenticated { challenges: String },
    #[error("the credentials are not valid: {why}")]
    InvalidCredentials { challenges: String, why: String },
    #[error("the credentials are malformed: {why}")]
    MalformedCredentials { challenges: String, why: String },
    #[error("this needs one of the roles: {needed}")]
    Forbidden {
        challenges: Option<String>,
        needed: String,
    },
    /// A denial on a concealed route: answered exactly as an unknown route.
    #[error("no route serves {path}")]
    Concealed { path: String },
    #[error("request body is over the {limit}-byte limit")]
    BodyTooLarge { limit: u64 },
    /// rate.limited: `headers` carries RateLimit-Policy and RateLimit.
    #[error(
        "over the rate limit; retry in {} s",
        .retry_after.as_secs() + u64::from(.retry_after.subsec_nanos() > 0)
    )]
    RateLimited {
        retry_after: Duration,
        headers: Vec<(HeaderName, HeaderValue)>,
    },
    /// The rate-limit store failed and `on_store_error = "deny"`.
    #[error("the rate-limit store is unavailable")]
    RateStoreUnavailable,
    /// body.media: `accept` lists the media types the route takes, sent as
    /// Accept-Post or Accept-Patch.
    #[error("the body's media type is {found}; this route takes {accept}")]
    UnsupportedMedia {
        found: String,
        accept: &'static str,
        method: http::Method,
    },
    /// body.malformed, with the parse position (line 0 when the body never
    /// reached the parser: cut short, or its framing broken).
    #[error("{}", malformed(.message, *.line, *.column))]
    MalformedBody {
        message: String,
        line: usize,
        column: usize,
    },
    /// body.schema: every violation, as JSON Pointer and message.
    #[error("the body does not match the route's schema ({} violations)", errors.len())]
    SchemaViolation { errors: Vec<(String, String)> },
    #[error("upstream {upstream} failed: {detail}")]
    Upstream {
        upstream: Arc<str>,
        failure: FailureType,
        detail: String,
    },
    #[error("every target of upstream {upstream} is ejected")]
    NoHealthyUpstream {
        upstream: Arc<str>,
        retry_after: Duration,
    },
    /// auth_service.denied: the auth service's 401 or 403, relayed with
    /// its challenge (repaired on a 401 without one) and problem body.
    #[error("the auth service refused the request")]
    AuthServiceDenied {
        status: StatusCode,
        challenges: Option<String>,
        problem: Option<Bytes>,
    },
    /// auth_service.unreachable or auth_service.timeout: no decision came
    /// back from the auth service.
    #[error("auth service {service} failed: {}", failure.describe())]
    AuthService {
        service: Arc<str>,
        failure: FailureType,
    },
    /// auth_service.unavailable: its 503 (or every target ejected), with
    /// the Retry-After to pass on.
    #[error("auth service {service} is unavailable")]
    AuthServiceUnavailable {
        service: Arc<str>,
        retry_after: HeaderValue,
    },
    #[error("internal error")]
    Internal { detail: String },
}

/// What `body.malformed` tells the client: the parse position when there
/// is one.
fn malformed(message: &str, line: usize, column: usize) -> String {
    if line == 0 {
        message.to_owned()
    } else {
        format!("the body is not valid JSON: {message} at line {line}, column {column}")
    }
}

impl GatewayError {
    /// The contract rule this error answers with: the single mapping.
    pub fn rule(&self) -> &'static Rule {
        match self {
            GatewayError::UriTooLong { .. } => &rules::REQUEST_URI_TOO_LONG,
            GatewayError::HeadersTooLarge { .. } => &rules::REQUEST_HEADERS_TOO_LARGE,
            GatewayError::PathUnsafe { .. } => &rules::REQUEST_PATH_UNSAFE,
            GatewayError::BadHost { .. } => &rules::REQUEST_HOST,
            GatewayError::MethodUnsupported { .. } => &rules::REQUEST_METHOD_UNSUPPORTED,
            GatewayError::CodingUnsupported { .. } => &rules::REQUEST_CODING_UNSUPPORTED,
            GatewayError::BodyTimeout { .. } => &rules::REQUEST_BODY_TIMEOUT,
            GatewayError::Overloaded { .. } => &rules::GATEWAY_OVERLOADED,
            GatewayError::RouteUnknown { .. } => &rules::ROUTE_UNKNOWN,
            GatewayError::Retired { .. } => &rules::ROUTE_RETIRED,
            GatewayError::MethodNotAllowed { .. } => &rules::ROUTE_METHOD,
            GatewayError::Preflight { .. } => &rules::CORS_PREFLIGHT,
            GatewayError::PreflightDenied { .. } => &rules::CORS_DENIED,
            GatewayError::Maintenance { .. } => &rules::GATEWAY_MAINTENANCE,
            GatewayError::Unauthenticated { .. } => &rules::AUTH_MISSING,
            GatewayError::InvalidCredentials { .. } => &rules::AUTH_INVALID,
            GatewayError::MalformedCredentials { .. } => &rules::AUTH_BAD_REQUEST,
            GatewayError::Forbidden { .. } => &rules::AUTHZ_DENIED,
            GatewayError::Concealed { .. } => &rules::AUTHZ_CONCEALED,
            GatewayError::BodyTooLarge { .. } => &rules::BODY_TOO_LARGE,
            GatewayError::RateLimited { .. } => &rules::RATE_LIMITED,
            GatewayError::RateStoreUnavailable => &rules::GATEWAY_OVERLOADED,
            GatewayError::UnsupportedMedia { .. } => &rules::BODY_MEDIA,
            GatewayError::MalformedBody { .. } => &rules::BODY_MALFORMED,
            GatewayError::SchemaViolation { .. } => &rules::BODY_SCHEMA,
            GatewayError::Upstream { failure, .. } => failure.rule(),
            GatewayError::NoHealthyUpstream { .. } => FailureType::NoHealthyUpstream.rule(),
            GatewayError::AuthServiceDenied { .. } => &rules::AUTH_SERVICE_DENIED,
            GatewayError::AuthService { failure, .. } => match failure {
                FailureType::Timeout | FailureType::ConnectTimeout => &rules::AUTH_SERVICE_TIMEOUT,
                FailureType::NoHealthyUpstream => &rules::AUTH_SERVICE_UNAVAILABLE,
                _ => &rules::AUTH_SERVICE_UNREACHABLE,
            },
            GatewayError::AuthServiceUnavailable { .. } => &rules::AUTH_SERVICE_UNAVAILABLE,
            GatewayError::Internal { .. } => &rules::INTERNAL,
        }
    }

    /// The status: the rule's, or the auth service's own on a relayed
    /// denial (auth_service.denied carries 401 or 403).
    fn status(&self) -> StatusCode {
        match self {
            GatewayError::AuthServiceDenied { status, .. } => *status,
            other => rule_status(other.rule()),
        }
    }

    /// The `X-Failure-Type` value, on upstream rows.
    pub(crate) fn failure_type(&self) -> Option<FailureType> {
        match self {
            GatewayError::Upstream { failure, .. } | GatewayError::AuthService { failure, .. } => {
                Some(*failure)
            }
            GatewayError::NoHealthyUpstream { .. } => Some(FailureType::NoHealthyUpstream),
            _ => None,
        }
    }

    fn upstream(&self) -> Option<&Arc<str>> {
        match self {
            GatewayError::Upstream { upstream, .. }
            | GatewayError::NoHealthyUpstream { upstream, .. }
            | GatewayError::AuthService {
                service: upstream, ..
            }
            | GatewayError::AuthServiceUnavailable {
                service: upstream, ..
            } => Some(upstream),
            _ => None,
        }
    }

    /// What the client is told; never internals of the gateway.
    fn detail(&self) -> String {
        match self {
            GatewayError::Internal { .. } => "the gateway failed to handle this request".into(),
            GatewayError::Upstream {
                upstream, failure, ..
            } => {
                format!("upstream {upstream} failed: {}", failure.describe())
            }
            other => other.to_string(),
        }
    }
}

/// What `rescue` needs to know about the request.
#[derive(Debug, Clone, Copy)]
pub struct ErrorContext<'a> {
    pub request_id: &'a str,
    /// The request's trace id, when it is traced: the problem's `trace_id`.
    pub trace_id: Option<&'a str>,
    /// Send X-Upstream-Service / X-Failure-Type.
    pub debug_headers: bool,
    /// The client accepts JSON (else the body is plain text).
    pub accepts_json: bool,
}

/// Turns an error into the response the contract prescribes for its rule.
pub fn rescue(error: &GatewayError, cx: ErrorContext<'_>) -> Response<Full<Bytes>> {
    // authz.concealed must be indistinguishable from route.unknown.
    if let GatewayError::Concealed { path } = error {
        return rescue(&GatewayError::RouteUnknown { path: path.clone() }, cx);
    }
    let rule = error.rule();
    let status = error.status();
    // An admitted preflight is no error: its rule's status, its fields,
    // no body (RFC 9110 section 15.3.5).
    if let GatewayError::Preflight { fields } = error {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        for (name, value) in fields {
            headers.append(name.clone(), value.clone());
        }
        if let Ok(id) = HeaderValue::from_str(cx.request_id) {
            headers.insert(&X_REQUEST_ID, id);
        }
        return response;
    }
    let mut problem = Problem::for_rule(rule, status.as_u16())
        .detail(error.detail())
        .instance(cx.request_id);
    match error {
        GatewayError::Forbidden { .. } => {
            problem = problem.extension("reason", "insufficient_permissions");
        }
        GatewayError::MalformedBody { line, column, .. } => {
            problem = problem
                .extension("line", *line as u64)
                .extension("column", *column as u64);
        }
        GatewayError::SchemaViolation { errors } => {
            let list: Vec<serde_json::Value> = errors
                .iter()
                .map(|(pointer, message)| serde_json::json!({"pointer": pointer, "message": message}))
                .collect();
            problem = problem.extension("errors", list);
        }
        _ => {}
    }
    if let Some(trace_id) = cx.trace_id {
        problem = problem.extension("trace_id", trace_id);
    }
    if let (Some(upstream), Some(failure)) = (error.upstream(), error.failure_type()) {
        problem = problem
            .extension("upstream", upstream.as_ref())
            .extension("failure", failure.as_str());
    }

    let (content_type, body) = if let GatewayError::AuthServiceDenied {
        problem: Some(relayed),
        ..
    } = error
        && cx.accepts_json
    {
        // The auth service's own problem body says why: relayed as sent.
        (PROBLEM_JSON, relayed.clone())
    } else if cx.accepts_json {
        (PROBLEM_JSON, Bytes::from(problem.to_json()))
    } else {
        let title = problem.title.as_deref().unwrap_or_default();
        let text = format!("{} {title}: {}\n", status.as_u16(), error.detail());
        ("text/plain; charset=utf-8", Bytes::from(text))
    };

    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(id) = HeaderValue::from_str(cx.request_id) {
        headers.insert(&X_REQUEST_ID, id);
    }
    match error {
        GatewayError::MethodNotAllowed { allow, .. } => {
            if let Ok(v) = HeaderValue::from_str(allow) {
                headers.insert(ALLOW, v);
            }
        }
        GatewayError::Retired {
            successor: Some(successor),
        } => {
            if let Ok(v) =
                HeaderValue::from_str(&format!("<{successor}>; rel=\"successor-version\""))
            {
                headers.insert(LINK, v);
            }
        }
        GatewayError::Unauthenticated { challenges }
        | GatewayError::InvalidCredentials { challenges, .. }
        | GatewayError::MalformedCredentials { challenges, .. }
        | GatewayError::Forbidden {
            challenges: Some(challenges),
            ..
        }
        | GatewayError::AuthServiceDenied {
            challenges: Some(challenges),
            ..
        } => {
            if let Ok(v) = HeaderValue::from_str(challenges) {
                headers.insert(WWW_AUTHENTICATE, v);
            }
        }
        GatewayError::Overloaded { .. } | GatewayError::RateStoreUnavailable => {
            insert_retry_after(headers, Duration::from_secs(1))
        }
        GatewayError::RateLimited {
            retry_after,
            headers: fields,
        } => {
            insert_retry_after(headers, *retry_after);
            for (name, value) in fields {
                headers.insert(name.clone(), value.clone());
            }
        }
        GatewayError::UnsupportedMedia { accept, method, .. } => {
            // PUT takes what POST takes.
            let name = accept_for(method).unwrap_or(&ACCEPT_POST);
            headers.insert(name, HeaderValue::from_static(accept));
        }
        GatewayError::AuthServiceUnavailable { retry_after, .. } => {
            headers.insert(RETRY_AFTER, retry_after.clone());
        }
        GatewayError::Maintenance { retry_after }
        | GatewayError::NoHealthyUpstream { retry_after, .. } => {
            insert_retry_after(headers, *retry_after)
        }
        // The rest of the body may still come, or not: the connection
        // cannot go on (RFC 9110 section 15.5.9: the server closes).
        GatewayError::BodyTimeout { .. } => {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        _ => {}
    }
    if cx.debug_headers {
        if let Some(upstream) = error.upstream()
            && let Ok(v) = HeaderValue::from_str(upstream)
        {
            headers.insert(&X_UPSTREAM_SERVICE, v);
        }
        if let Some(failure) = error.failure_type() {
            headers.insert(&X_FAILURE_TYPE, HeaderValue::from_static(failure.as_str()));
        }
    }
    response
}

/// The status a gateway-made rule answers with. Every rule a `GatewayError`
/// maps to carries one; `internal` is the fallback should one not.
fn rule_status(rule: &Rule) -> StatusCode {
    rule.status
        .or(rules::INTERNAL.status)
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn insert_retry_after(headers: &mut http::HeaderMap, after: Duration) {
    let value = RetryAfter::after(after).to_string();
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(RETRY_AFTER, v);
    }
}

/// Whether the client's (first) Accept admits a JSON body. No Accept, or
/// one that is not visible text, means yes.
pub(crate) fn accepts_json(accept: Option<&[u8]>) -> bool {
    let Some(accept) =
        accept.filter(|v| v.iter().all(|&b| b == b'\t' || (b' '..=b'~').contains(&b)))
    else {
        return true;
    };
    // Case-insensitive, without lowercasing copies: this runs for every
    // request that carries an Accept field.
    accept.split(|&b| b == b',').any(|range| {
        let media = range
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        media == b"*/*"
            || media.eq_ignore_ascii_case(b"application/*")
            || media.len() >= 4 && media[media.len() - 4..].eq_ignore_ascii_case(b"json")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> ErrorContext<'static> {
        ErrorContext {
            request_id: "req-1",
            trace_id: None,
            debug_headers: true,
            accepts_json: true,
        }
    }

    #[test]
    fn every_gateway_error_maps_to_a_section_one_rule_with_a_status() {
        let errors = [
            GatewayError::UriTooLong { len: 9, limit: 8 },
            GatewayError::HeadersTooLarge { len: 9, limit: 8 },
            GatewayError::Overloaded { limit: 1 },
            GatewayError::PathUnsafe {
                why: "climbs above the root",
            },
            GatewayError::BadHost { why: "is missing" },
            GatewayError::MethodUnsupported {
                method: "CONNECT".into(),
            },
            GatewayError::CodingUnsupported {
                coding: "gzip".into(),
            },
            GatewayError::BodyTimeout {
                after: Duration::from_secs(1),
            },
            GatewayError::RouteUnknown { path: "/x".into() },
            GatewayError::Retired { successor: None },
            GatewayError::MethodNotAllowed {
                method: "PUT".into(),
                allow: "GET".into(),
            },
            GatewayError::Maintenance {
                retry_after: Duration::from_secs(3),
            },
            GatewayError::BodyTooLarge { limit: 1 },
            GatewayError::NoHealthyUpstream {
                upstream: "a".into(),
                retry_after: Duration::ZERO,
            },
            GatewayError::AuthService {
                service: "auth".into(),
                failure: FailureType::Reset,
            },
            GatewayError::AuthService {
                service: "auth".into(),
                failure: FailureType::Timeout,
            },
            GatewayError::AuthServiceUnavailable {
                service: "auth".into(),
                retry_after: HeaderValue::from_static("7"),
            },
            GatewayError::Internal { detail: "x".into() },
            GatewayError::PreflightDenied { why: "no" },
        ];
        for e in errors {
            let rule = e.rule();
            assert_eq!(rule.section, candor_contract::Section::Gateway);
            let res = rescue(&e, cx());
            assert_eq!(Some(res.status().as_u16()), rule.status, "{}", rule.id);
            assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
        }
    }

    #[test]
    fn an_admitted_preflight_is_its_rules_status_without_a_body() {
        let e = GatewayError::Preflight {
            fields: vec![(
                http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            )],
        };
        assert_eq!(e.rule().section, candor_contract::Section::Gateway);
        let res = rescue(&e, cx());
        assert_eq!(Some(res.status().as_u16()), e.rule().status);
        assert_eq!(res.headers()["access-control-allow-origin"], "*");
        assert!(!res.headers().contains_key(CONTENT_TYPE));
        assert_eq!(http_body::Body::size_hint(res.body()).exact(), Some(0));
    }

    #[test]
    fn accept_negotiation() {
        assert!(accepts_json(None));
        assert!(accepts_json(Some("application/json".as_bytes())));
        assert!(accepts_json(Some("text/html, */*;q=0.1".as_bytes())));
        assert!(accepts_json(Some("application/problem+json".as_bytes())));
        assert!(!accepts_json(Some("text/html".as_bytes())));
        // Media types are case-insensitive.
        assert!(accepts_json(Some(
            "Application/JSON; charset=utf-8".as_bytes()
        )));
        assert!(accepts_json(Some("APPLICATION/*".as_bytes())));
        assert!(!accepts_json(Some("text/plain, image/*".as_bytes())));
        assert!(!accepts_json(Some("son".as_bytes())));
    }

    #[test]
    fn internal_errors_leak_nothing() {
        let res = rescue(
            &GatewayError::Internal {
                detail: "secret stack".into(),
            },
            cx(),
        );
        let body = format!("{:?}", res.body());
        assert!(!body.contains("secret"));
    }
}
