//! What a service built on the contract answers with: typed errors, typed
//! successes, and the one function ([`ServiceError::render`]) that gives
//! every error its status, headers and RFC 9457 problem.
//!
//! Handlers return these types and never name a status. With the `axum`
//! feature they are axum responses (see `candor_contract::axum`).
//!
//! Problem `type` URIs: an error that means what a contract rule means (a
//! malformed body, a schema violation, missing or invalid credentials, a
//! denied role, an unknown route, a wrong method, an oversize body, a rate
//! limit, an internal failure) carries that rule's stable type URI and title
//! (`tag:candor.dev,2026:rule/<id>`), so clients and the auditor read one
//! vocabulary whether the gateway or the service answered. Outcomes about a
//! resource rather than the request's form (not found, gone, conflict,
//! unprocessable, unavailable) have no rule of their own and use
//! `about:blank` with the status's reason phrase as title (RFC 9457 §4.2.1).
//!
//! | variant | status | `type` | headers | extension members |
//! |---|---|---|---|---|
//! | `Malformed` | 400 | `body.malformed` | | `line`, `column` |
//! | `Invalid` | 400 | `body.schema` | | `errors: [{pointer, message}]` |
//! | `MalformedCredentials` | 400 | `auth.bad_request` | `WWW-Authenticate` | |
//! | `Unauthenticated` | 401 | `auth.missing`, or `auth.invalid` when the challenge has an `error` param | `WWW-Authenticate` | |
//! | `Forbidden` | 403 | `authz.denied` | `WWW-Authenticate` when given | `reason: "insufficient_permissions"` |
//! | `NoRoute` | 404 | `route.unknown` | | |
//! | `NotFound` | 404 | `about:blank` | | |
//! | `MethodNotAllowed` | 405 | `route.method` | `Allow` (see the variant) | |
//! | `Conflict` | 409 | `about:blank` | | |
//! | `Gone` | 410 | `about:blank` | | |
//! | `TooLarge` | 413 | `body.too_large` | | `limit` when known |
//! | `UnsupportedMedia` | 415 | `body.media` | `Accept-Post` / `Accept-Patch` | |
//! | `Unprocessable` | 422 | `about:blank` | | `errors` when any |
//! | `RateLimited` | 429 | `rate.limited` | `Retry-After` | |
//! | `Internal` | 500 | `internal` | | none; the detail is fixed text |
//! | `Unavailable` | 503 | `about:blank` | `Retry-After` | |

use http::header::{ALLOW, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::challenge::Challenge;
use crate::problem::{PROBLEM_JSON, Problem};
use crate::retry_after::RetryAfter;
use crate::rules::{self, Rule};

/// One violation in a request body: where (a JSON Pointer, RFC 6901, `""`
/// for the whole document) and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub pointer: String,
    pub message: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    /// A violation at the top-level member `name` (`/name`, escaped as RFC
    /// 6901 asks).
    pub fn member(name: &str, message: impl Into<String>) -> Self {
        Self::new(format!("/{}", pointer_token(name)), message)
    }

    fn to_json(&self) -> Value {
        json!({"pointer": self.pointer, "message": self.message})
    }
}

/// A name as one JSON Pointer reference token: `~` becomes `~0`, `/` `~1`.
pub fn pointer_token(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Why a service did not do what the request asked. The `Display` text is
/// the problem's `detail`, written for clients; it never carries internals.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    /// The body claims JSON but does not parse (`body.malformed`).
    #[error("the body is not valid JSON: {detail}")]
    Malformed {
        detail: String,
        /// 1-based position of the parse error, when known.
        line: Option<usize>,
        column: Option<usize>,
    },
    /// Valid JSON that breaks the body's schema: a missing member, a wrong
    /// type, a bad format (`body.schema`). Lists every violation found.
    #[error("the body does not match the schema ({} violation{})", errors.len(), plural(errors.len()))]
    Invalid { errors: Vec<FieldError> },
    /// The body's Content-Type is missing or not one the operation takes
    /// (`body.media`). `supported` is sent as Accept-Post on POST and as
    /// Accept-Patch on PATCH (RFC 9110 §15.5.16).
    #[error("this operation takes {}", media_list(supported))]
    UnsupportedMedia {
        supported: Vec<String>,
        method: Option<Method>,
    },
    /// The body is over the limit (`body.too_large`).
    #[error("the body is over the size limit")]
    TooLarge { limit: Option<u64> },
    /// Credentials sent in a malformed way (`auth.bad_request`); the challenge
    /// should carry `error="invalid_request"` (RFC 6750 §3.1).
    #[error("the credentials are malformed: {detail}")]
    MalformedCredentials {
        challenge: Challenge,
        detail: String,
    },
    /// No credentials, or credentials that are not valid (`auth.missing`,
    /// `auth.invalid`). The challenge says how to authenticate; with an
    /// `error` param it reports sent credentials as invalid.
    #[error("{}", detail.as_deref().unwrap_or("authentication is required"))]
    Unauthenticated {
        challenge: Challenge,
        detail: Option<String>,
    },
    /// Authenticated, but not allowed to do this (`authz.denied`).
    #[error("{}", detail.as_deref().unwrap_or("you are not allowed to do this"))]
    Forbidden {
        challenge: Option<Challenge>,
        detail: Option<String>,
    },
    /// No route serves the path (`route.unknown`).
    #[error("no operation is served at this path")]
    NoRoute,
    /// The route exists but not with this method (`route.method`). `Allow`
    /// lists `allow`; when `allow` is empty the header is left to the router
    /// (axum fills `Allow` on its method-not-allowed fallback).
    #[error("this method is not allowed here")]
    MethodNotAllowed { allow: Vec<Method> },
    /// No such resource (it may never have existed).
    #[error("{detail}")]
    NotFound { detail: String },
    /// The resource existed and was removed on purpose.
    #[error("{detail}")]
    Gone { detail: String },
    /// The request conflicts with the resource's current state.
    #[error("{detail}")]
    Conflict { detail: String },
    /// Well-formed and schema-valid, but it breaks a rule of the service
    /// (a duplicate unique field, an impossible transition).
    #[error("{detail}")]
    Unprocessable {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// The client is over its quota (`rate.limited`).
    #[error("too many requests; Retry-After says when to try again")]
    RateLimited { retry_after: RetryAfter },
    /// The service cannot answer now but expects to (maintenance, overload).
    #[error("the service is unavailable for now; Retry-After says when to try again")]
    Unavailable { retry_after: RetryAfter },
    /// The service failed. The cause is the service's to log: it is never
    /// part of the response.
    #[error("the server could not complete this request")]
    Internal,
}

fn plural(n: usize) -> &'static str {
    crate::words::agree(n, "", "s")
}

fn media_list(supported: &[String]) -> String {
    if supported.is_empty() {
        "no request body".to_owned()
    } else {
        supported.join(", ")
    }
}

/// A rendered error: what goes on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorResponse {
    pub status: StatusCode,
    /// Content-Type (`application/problem+json`) and the recovery headers.
    pub headers: HeaderMap,
    pub problem: Problem,
}

impl ErrorResponse {
    /// The serialized problem document.
    pub fn body(&self) -> Vec<u8> {
        self.problem.to_json()
    }

    /// As an `http` response with the problem document as body.
    pub fn into_http(self) -> Response<Vec<u8>> {
        let body = self.body();
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

impl ServiceError {
    /// `Invalid` with one violation.
    pub fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            errors: vec![FieldError::new(pointer, message)],
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ServiceError::NotFound {
            detail: detail.into(),
        }
    }

    pub fn gone(detail: impl Into<String>) -> Self {
        ServiceError::Gone {
            detail: detail.into(),
        }
    }

    /// The contract rule whose problem type this error carries; `None` for
    /// the `about:blank` outcomes.
    pub fn rule(&self) -> Option<&'static Rule> {
        self.shape().1
    }

    /// Status and rule: the single table behind [`ServiceError::render`].
    fn shape(&self) -> (StatusCode, Option<&'static Rule>) {
        match self {
            ServiceError::Malformed { .. } => {
                (StatusCode::BAD_REQUEST, Some(&rules::BODY_MALFORMED))
            }
            ServiceError::Invalid { .. } => (StatusCode::BAD_REQUEST, Some(&rules::BODY_SCHEMA)),
            ServiceError::UnsupportedMedia { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some(&rules::BODY_MEDIA))
            }
            ServiceError::TooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, Some(&rules::BODY_TOO_LARGE))
            }
            ServiceError::MalformedCredentials { .. } => {
                (StatusCode::BAD_REQUEST, Some(&rules::AUTH_BAD_REQUEST))
            }
            ServiceError::Unauthenticated { challenge, .. } => {
                let rule = if challenge.get("error").is_some() {
                    &rules::AUTH_INVALID
                } else {
                    &rules::AUTH_MISSING
                };
                (StatusCode::UNAUTHORIZED, Some(rule))
            }
            ServiceError::Forbidden { .. } => (StatusCode::FORBIDDEN, Some(&rules::AUTHZ_DENIED)),
            ServiceError::NoRoute => (StatusCode::NOT_FOUND, Some(&rules::ROUTE_UNKNOWN)),
            ServiceError::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, Some(&rules::ROUTE_METHOD))
            }
            ServiceError::NotFound { .. } => (StatusCode::NOT_FOUND, None),
            ServiceError::Gone { .. } => (StatusCode::GONE, None),
            ServiceError::Conflict { .. } => (StatusCode::CONFLICT, None),
            ServiceError::Unprocessable { .. } => (StatusCode::UNPROCESSABLE_ENTITY, None),
            ServiceError::RateLimited { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, Some(&rules::RATE_LIMITED))
            }
            ServiceError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, None),
            ServiceError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, Some(&rules::INTERNAL)),
        }
    }

    /// The one place that turns an error into its response: status,
    /// Content-Type, recovery headers (WWW-Authenticate, Allow, Retry-After,
    /// Accept-Post) and the problem document.
    pub fn render(&self) -> ErrorResponse {
        let (status, rule) = self.shape();
        let mut problem = match rule {
            Some(rule) => Problem::for_rule(rule, status.as_u16()),
            None => Problem::blank(status.as_u16()),
        }
        .detail(self.to_string());
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));

        match self {
            ServiceError::Malformed { line, column, .. } => {
                if let Some(line) = line {
                    problem = problem.extension("line", *line as u64);
                }
                if let Some(column) = column {
                    problem = problem.extension("column", *column as u64);
                }
            }
            ServiceError::Invalid { errors } => {
                problem = problem.extension("errors", field_errors(errors));
            }
            ServiceError::Unprocessable { errors, .. } if !errors.is_empty() => {
                problem = problem.extension("errors", field_errors(errors));
            }
            ServiceError::UnsupportedMedia { supported, method } => {
                if let Some(name) = method.as_ref().and_then(crate::fields::accept_for)
                    && !supported.is_empty()
                {
                    insert(&mut headers, name.clone(), &supported.join(", "));
                }
            }
            ServiceError::TooLarge { limit: Some(limit) } => {
                problem = problem.extension("limit", *limit);
            }
            ServiceError::MalformedCredentials { challenge, .. }
            | ServiceError::Unauthenticated { challenge, .. }
            | ServiceError::Forbidden {
                challenge: Some(challenge),
                ..
            } => {
                insert(&mut headers, WWW_AUTHENTICATE, &challenge.to_string());
            }
            ServiceError::MethodNotAllowed { allow } if !allow.is_empty() => {
                let list: Vec<&str> = allow.iter().map(Method::as_str).collect();
                insert(&mut headers, ALLOW, &list.join(", "));
            }
            ServiceError::RateLimited { retry_after }
            | ServiceError::Unavailable { retry_after } => {
                insert(&mut headers, RETRY_AFTER, &retry_after.to_string());
            }
            _ => {}
        }
        if matches!(self, ServiceError::Forbidden { .. }) {
            problem = problem.extension("reason", "insufficient_permissions");
        }

        ErrorResponse {
            status,
            headers,
            problem,
        }
    }
}

fn field_errors(errors: &[FieldError]) -> Value {
    Value::Array(errors.iter().map(FieldError::to_json).collect())
}

/// Inserts a header built from text the service controls. Challenges are
/// rendered with control characters replaced, so every value here is a
/// valid field value; should one not be, the header is left out rather
/// than the response lost.
fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
        headers.insert(name, value);
    }
}

/// 201 Created: where the new resource lives, and its representation.
#[derive(Debug, Clone, PartialEq)]
pub struct Created<T> {
    pub location: String,
    pub body: T,
}

/// 202 Accepted: where to follow the accepted work (a status resource),
/// and a representation of it as accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted<T> {
    pub location: String,
    pub body: T,
}

/// 204 No Content: done, and nothing to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoContent;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge::parse_challenges;
    use crate::rules::TYPE_URI_PREFIX;

    fn every_variant() -> Vec<ServiceError> {
        vec![
            ServiceError::Malformed {
                detail: "EOF while parsing an object".into(),
                line: Some(1),
                column: Some(12),
            },
            ServiceError::invalid("/email", "required"),
            ServiceError::UnsupportedMedia {
                supported: vec!["application/json".into()],
                method: Some(Method::POST),
            },
            ServiceError::TooLarge { limit: Some(1024) },
            ServiceError::MalformedCredentials {
                challenge: Challenge::bearer("api").param("error", "invalid_request"),
                detail: "empty bearer token".into(),
            },
            ServiceError::Unauthenticated {
                challenge: Challenge::bearer("api"),
                detail: None,
            },
            ServiceError::Forbidden {
                challenge: None,
                detail: None,
            },
            ServiceError::NoRoute,
            ServiceError::MethodNotAllowed {
                allow: vec![Method::GET, Method::HEAD],
            },
            ServiceError::not_found("no user 7"),
            ServiceError::gone("user 7 was deleted"),
            ServiceError::Conflict {
                detail: "already running".into(),
            },
            ServiceError::Unprocessable {
                detail: "email is taken".into(),
                errors: vec![],
            },
            ServiceError::RateLimited {
                retry_after: RetryAfter::Delay(3),
            },
            ServiceError::Unavailable {
                retry_after: RetryAfter::Delay(30),
            },
            ServiceError::Internal,
        ]
    }

    #[test]
    fn mapping_table() {
        let got: Vec<(u16, String)> = every_variant()
            .iter()
            .map(|e| {
                let r = e.render();
                (r.status.as_u16(), r.problem.type_uri)
            })
            .collect();
        let rule = |id: &str| format!("{TYPE_URI_PREFIX}{id}");
        let blank = || "about:blank".to_owned();
        assert_eq!(
            got,
            vec![
                (400, rule("body.malformed")),
                (400, rule("body.schema")),
                (415, rule("body.media")),
                (413, rule("body.too_large")),
                (400, rule("auth.bad_request")),
                (401, rule("auth.missing")),
                (403, rule("authz.denied")),
                (404, rule("route.unknown")),
                (405, rule("route.method")),
                (404, blank()),
                (410, blank()),
                (409, blank()),
                (422, blank()),
                (429, rule("rate.limited")),
                (503, blank()),
                (500, rule("internal")),
            ]
        );
    }

    #[test]
    fn statuses_agree_with_the_rule_catalog() {
        for error in every_variant() {
            let r = error.render();
            if let Some(rule) = error.rule() {
                assert_eq!(rule.status, Some(r.status.as_u16()), "{error:?}");
                assert_eq!(r.problem.title.as_deref(), Some(rule.title));
            } else {
                assert_eq!(r.problem.type_uri, "about:blank");
                assert_eq!(
                    r.problem.title.as_deref(),
                    crate::status::reason(r.status.as_u16()),
                    "{error:?}"
                );
            }
        }
    }

    #[test]
    fn every_error_is_a_sound_problem_document() {
        for error in every_variant() {
            let r = error.render();
            assert_eq!(r.headers[CONTENT_TYPE], PROBLEM_JSON, "{error:?}");
            let parsed = Problem::from_slice(&r.body()).unwrap();
            assert!(parsed.validate(r.status.as_u16()).is_empty(), "{error:?}");
            assert_eq!(parsed.status, Some(r.status.as_u16()));
            assert!(parsed.detail.is_some());
        }
    }

    #[test]
    fn malformed_carries_the_parse_position() {
        let r = every_variant().remove(0).render();
        assert_eq!(r.problem.extensions["line"], 1);
        assert_eq!(r.problem.extensions["column"], 12);
    }

    #[test]
    fn invalid_lists_every_violation_as_pointer_and_message() {
        let e = ServiceError::Invalid {
            errors: vec![
                FieldError::member("email", "required"),
                FieldError::member("a/b~c", "must be a string"),
            ],
        };
        let r = e.render();
        assert_eq!(
            r.problem.extensions["errors"],
            json!([
                {"pointer": "/email", "message": "required"},
                {"pointer": "/a~1b~0c", "message": "must be a string"},
            ])
        );
        assert_eq!(
            r.problem.detail.as_deref(),
            Some("the body does not match the schema (2 violations)")
        );
    }

    #[test]
    fn unauthenticated_carries_a_parseable_challenge() {
        let missing = ServiceError::Unauthenticated {
            challenge: Challenge::bearer("accounts"),
            detail: None,
        }
        .render();
        let value = missing.headers[WWW_AUTHENTICATE].to_str().unwrap();
        assert_eq!(value, r#"Bearer realm="accounts""#);
        assert!(parse_challenges(value).is_ok());

        let invalid = ServiceError::Unauthenticated {
            challenge: Challenge::bearer("accounts")
                .param("error", "invalid_token")
                .param("error_description", "the token was revoked"),
            detail: Some("the token was revoked".into()),
        }
        .render();
        assert_eq!(invalid.status, StatusCode::UNAUTHORIZED);
        assert_eq!(invalid.problem.type_uri, rules::AUTH_INVALID.type_uri);
        assert_eq!(
            invalid.problem.detail.as_deref(),
            Some("the token was revoked")
        );
        let parsed = parse_challenges(invalid.headers[WWW_AUTHENTICATE].to_str().unwrap());
        assert_eq!(parsed.unwrap()[0].get("error"), Some("invalid_token"));
    }

    #[test]
    fn forbidden_says_why_and_may_challenge_for_scope() {
        let r = ServiceError::Forbidden {
            challenge: Some(
                Challenge::bearer("api")
                    .param("error", "insufficient_scope")
                    .param("scope", "admin"),
            ),
            detail: None,
        }
        .render();
        assert_eq!(r.problem.extensions["reason"], "insufficient_permissions");
        assert!(
            r.headers[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains(r#"scope="admin""#)
        );
        let bare = ServiceError::Forbidden {
            challenge: None,
            detail: Some("not your session".into()),
        }
        .render();
        assert!(!bare.headers.contains_key(WWW_AUTHENTICATE));
        assert_eq!(bare.problem.detail.as_deref(), Some("not your session"));
    }

    #[test]
    fn method_not_allowed_lists_allow_or_leaves_it_to_the_router() {
        let r = ServiceError::MethodNotAllowed {
            allow: vec![Method::GET, Method::HEAD, Method::DELETE],
        }
        .render();
        assert_eq!(r.headers[ALLOW], "GET, HEAD, DELETE");
        let r = ServiceError::MethodNotAllowed { allow: vec![] }.render();
        assert!(!r.headers.contains_key(ALLOW));
    }

    #[test]
    fn retry_after_on_429_and_503() {
        for e in [
            ServiceError::RateLimited {
                retry_after: RetryAfter::Delay(3),
            },
            ServiceError::Unavailable {
                retry_after: RetryAfter::Delay(3),
            },
        ] {
            assert_eq!(e.render().headers[RETRY_AFTER], "3");
        }
    }

    #[test]
    fn unsupported_media_names_what_the_method_accepts() {
        let post = ServiceError::UnsupportedMedia {
            supported: vec!["application/json".into()],
            method: Some(Method::POST),
        }
        .render();
        assert_eq!(post.headers["accept-post"], "application/json");
        let patch = ServiceError::UnsupportedMedia {
            supported: vec!["application/merge-patch+json".into()],
            method: Some(Method::PATCH),
        }
        .render();
        assert_eq!(
            patch.headers["accept-patch"],
            "application/merge-patch+json"
        );
        let put = ServiceError::UnsupportedMedia {
            supported: vec!["application/json".into()],
            method: Some(Method::PUT),
        }
        .render();
        assert!(!put.headers.contains_key("accept-post"));
        assert_eq!(
            put.problem.detail.as_deref(),
            Some("this operation takes application/json")
        );
    }

    #[test]
    fn internal_never_says_more_than_fixed_text() {
        let r = ServiceError::Internal.render();
        let body = String::from_utf8(r.body()).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({
                "type": rules::INTERNAL.type_uri,
                "title": rules::INTERNAL.title,
                "status": 500,
                "detail": "the server could not complete this request",
            })
        );
    }

    #[test]
    fn into_http_keeps_status_headers_and_body() {
        let response = ServiceError::gone("user 7 was deleted")
            .render()
            .into_http();
        assert_eq!(response.status(), StatusCode::GONE);
        assert_eq!(response.headers()[CONTENT_TYPE], PROBLEM_JSON);
        let problem = Problem::from_slice(response.body()).unwrap();
        assert_eq!(problem.detail.as_deref(), Some("user 7 was deleted"));
        assert_eq!(problem.title.as_deref(), Some("Gone"));
    }
}
