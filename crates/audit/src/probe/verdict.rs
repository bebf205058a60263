//! What each probe expects, as functions from the response to findings: an
//! empty list means the contract held. Pure, so every branch is tested
//! without a server.
//!
//! A 5xx in answer to a request the probe made faulty on purpose is always
//! an error: a client fault is never a server failure.
//!
//! One fact, one severity: where a probe sees what a passive rule of
//! section 2 also sees (a 201 without Location, a 405 without Allow, ...),
//! its finding takes that rule's severity from the catalog ([`same_fact`]),
//! so the two can never disagree.

use candor_contract::rules::{self, Rule};
use candor_contract::{Challenge, Finding, Severity, parse_challenges, status};

use crate::http::RecordedResponse;

/// `409 Conflict`, `500 Internal Server Error`, `299`.
pub fn status_text(code: u16) -> String {
    match status::reason(code) {
        Some(reason) => format!("{code} {reason}"),
        None => code.to_string(),
    }
}

/// "expected X, got Y" at the rule's severity.
fn unexpected(rule: &'static Rule, res: &RecordedResponse, expected: &str, why: &str) -> Finding {
    // Reports show the expectation and the status beside the message;
    // the message says why the answer is wrong.
    let message = if why.is_empty() {
        format!(
            "answered {} where {expected} was expected",
            status_text(res.status)
        )
    } else {
        why.to_owned()
    };
    Finding::new(rule, message, evidence(res))
}

/// A probe's finding on a fact the passive rule `passive` also sees: at
/// that rule's severity, the catalog being the one source.
fn same_fact(finding: Finding, passive: &'static Rule) -> Finding {
    finding.same_fact_as(passive)
}

/// A 5xx to a request the probe broke on purpose.
fn server_error(rule: &'static Rule, res: &RecordedResponse, expected: &str) -> Finding {
    unexpected(rule, res, expected, &server_fault(res.status))
}

/// Why a 5xx is wrong here.
fn server_fault(code: u16) -> String {
    format!(
        "{} in answer to a client fault: the server failed where it should have refused",
        status_text(code)
    )
}

/// The status line and the headers that matter for recovery, as received.
fn evidence(res: &RecordedResponse) -> String {
    let mut text = status_text(res.status);
    for name in ["www-authenticate", "allow", "location", "retry-after"] {
        if let Some(value) = res.header(name) {
            text.push_str(&format!("; {name}: {value}"));
        }
    }
    text
}

/// The parseable challenges of a response (every WWW-Authenticate field).
fn challenges(res: &RecordedResponse) -> Vec<Challenge> {
    res.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate"))
        .filter_map(|(_, v)| parse_challenges(v).ok())
        .flatten()
        .collect()
}

fn is_5xx(code: u16) -> bool {
    (500..600).contains(&code)
}

/// probe.no_credentials: 401 with a challenge that carries no error code
/// (RFC 6750 §3.1: a request without credentials gets none).
pub fn no_credentials(res: &RecordedResponse) -> Vec<Finding> {
    let rule = &rules::PROBE_NO_CREDENTIALS;
    let expected = "401 + WWW-Authenticate";
    if res.status != 401 {
        let why = match res.status {
            200..=299 => "the operation answered without credentials".to_owned(),
            403 => "403 says the caller is known but not allowed; without credentials it is 401"
                .to_owned(),
            404 => "404 hides a protected operation from a caller who has not authenticated yet"
                .to_owned(),
            c if is_5xx(c) => server_fault(c),
            _ => String::new(),
        };
        return vec![unexpected(rule, res, expected, &why)];
    }
    let found = challenges(res);
    if found.is_empty() {
        return vec![same_fact(
            unexpected(
                rule,
                res,
                expected,
                "the 401 has no parseable challenge, so the client cannot tell how to authenticate",
            ),
            &rules::AUTH_401_WITHOUT_CHALLENGE,
        )];
    }
    if let Some(code) = found.iter().find_map(|c| c.get("error")) {
        return vec![
            Finding::new(
                rule,
                format!(
                    "401 without credentials carries error=\"{code}\"; RFC 6750 §3.1 says a request without credentials gets no error code"
                ),
                evidence(res),
            )
            .with_severity(Severity::Warn),
        ];
    }
    Vec::new()
}

/// probe.invalid_token: 401 + `error="invalid_token"` (the error code is a
/// SHOULD of RFC 6750: its absence is auth.401_without_invalid_token's
/// fact, at that rule's severity; it is only asked of Bearer challenges).
pub fn invalid_token(res: &RecordedResponse, which: &str) -> Vec<Finding> {
    let rule = &rules::PROBE_INVALID_TOKEN;
    let expected = "401 + error=\"invalid_token\"";
    if res.status != 401 {
        let why = match res.status {
            200..=299 => format!("the operation accepted {which}"),
            403 => format!("403 treats {which} as a valid identity without the right; it is 401"),
            c if is_5xx(c) => server_fault(c),
            _ => String::new(),
        };
        return vec![unexpected(rule, res, expected, &why)];
    }
    let found = challenges(res);
    if found.is_empty() {
        return vec![same_fact(
            unexpected(rule, res, expected, "the 401 has no parseable challenge"),
            &rules::AUTH_401_WITHOUT_CHALLENGE,
        )];
    }
    let bearer: Vec<_> = found.iter().filter(|c| c.is_scheme("Bearer")).collect();
    if bearer.is_empty() {
        return Vec::new();
    }
    match bearer.iter().find_map(|c| c.get("error")) {
        Some("invalid_token") => Vec::new(),
        Some(code) => vec![same_fact(
            Finding::new(
                rule,
                format!("401 for {which} says error=\"{code}\"; the precise code is invalid_token"),
                evidence(res),
            ),
            &rules::AUTH_401_WITHOUT_INVALID_TOKEN,
        )],
        None => vec![same_fact(
            Finding::new(
                rule,
                format!(
                    "401 for {which} without error=\"invalid_token\" in its Bearer challenge (RFC 6750 §3.1)"
                ),
                evidence(res),
            ),
            &rules::AUTH_401_WITHOUT_INVALID_TOKEN,
        )],
    }
}

/// probe.insufficient_role: 403, or 404 when the operation is concealed;
/// 401 fails (the caller did authenticate).
pub fn insufficient_role(res: &RecordedResponse, concealed: bool, role: &str) -> Vec<Finding> {
    let rule = &rules::PROBE_INSUFFICIENT_ROLE;
    let (want, expected) = if concealed {
        (404, "404 (the operation is x-concealed)")
    } else {
        (403, "403")
    };
    if res.status == want {
        return Vec::new();
    }
    let why = match res.status {
        200..=299 => format!("role {role} was let through an operation it may not call"),
        401 => format!("role {role} authenticated fine; 401 tells its client to log in again"),
        403 => "403 reveals an operation declared concealed".to_owned(),
        404 => "404 hides an operation that is not declared concealed".to_owned(),
        c if is_5xx(c) => server_fault(c),
        _ => String::new(),
    };
    vec![unexpected(rule, res, expected, &why)]
}

/// probe.malformed_json: 400; 422 and 5xx fail. The answers
/// body.malformed_not_400 and server.500_on_client_fault judge on any
/// exchange (422, 409, 2xx; 500) take those rules' severities.
pub fn malformed_json(res: &RecordedResponse) -> Vec<Finding> {
    let rule = &rules::PROBE_MALFORMED_JSON;
    let passive = &rules::BODY_MALFORMED_NOT_400;
    match res.status {
        400 => Vec::new(),
        422 => vec![same_fact(
            unexpected(
                rule,
                res,
                "400",
                "422 is for well-formed content with the wrong meaning; a body that does not parse is 400",
            ),
            passive,
        )],
        409 => vec![same_fact(
            unexpected(
                rule,
                res,
                "400",
                "409 needs a body that was read; a body that does not parse is 400",
            ),
            passive,
        )],
        500 => vec![same_fact(
            server_error(rule, res, "400"),
            &rules::SERVER_500_ON_CLIENT_FAULT,
        )],
        c if is_5xx(c) => vec![server_error(rule, res, "400")],
        200..=299 => vec![same_fact(
            unexpected(rule, res, "400", "a truncated body was accepted"),
            passive,
        )],
        _ => vec![unexpected(rule, res, "400", "")],
    }
}

/// probe.wrong_media_type: 415; 400 is accepted with a warning.
pub fn wrong_media_type(res: &RecordedResponse, sent: &str) -> Vec<Finding> {
    let rule = &rules::PROBE_WRONG_MEDIA_TYPE;
    match res.status {
        415 => Vec::new(),
        400 => vec![
            unexpected(
                rule,
                res,
                "415",
                "400 is accepted, but 415 Unsupported Media Type says what to fix (RFC 9110 §15.5.16)",
            )
            .with_severity(Severity::Warn),
        ],
        c if is_5xx(c) => vec![server_error(rule, res, "415")],
        200..=299 => vec![unexpected(
            rule,
            res,
            "415",
            &format!("a body sent as {sent} was accepted"),
        )],
        _ => vec![unexpected(rule, res, "415", "")],
    }
}

/// probe.schema_violation: 400; 422 warns; 5xx and success fail.
pub fn schema_violation(res: &RecordedResponse, what: &str) -> Vec<Finding> {
    let rule = &rules::PROBE_SCHEMA_VIOLATION;
    match res.status {
        400 => Vec::new(),
        422 => vec![
            unexpected(
                rule,
                res,
                "400",
                &format!("{what}: the contract answers schema violations with 400"),
            )
            .with_severity(Severity::Warn),
        ],
        c if is_5xx(c) => vec![server_error(rule, res, "400")],
        200..=299 => vec![unexpected(
            rule,
            res,
            "400",
            &format!("{what}, and the body was accepted"),
        )],
        _ => vec![unexpected(rule, res, "400", what)],
    }
}

/// probe.semantic_violation (a repeated create): 409 or 422; 400 warns.
/// A repeat that succeeds fails only when the schema names a member that
/// must be unique; otherwise it is noted.
/// `unique_member` as [`BodyGen::has_unique_member`](super::body::BodyGen::has_unique_member)
/// says: must the repeat conflict (`Some(true)`), may it succeed
/// (`Some(false)`, declared), or does nothing say (`None`)?
pub fn semantic_violation(res: &RecordedResponse, unique_member: Option<bool>) -> Vec<Finding> {
    let rule = &rules::PROBE_SEMANTIC_VIOLATION;
    let expected = "409 or 422";
    match res.status {
        409 | 422 => Vec::new(),
        400 => vec![
            unexpected(
                rule,
                res,
                expected,
                "a conflict is not a syntax error; 409 or 422 says what went wrong",
            )
            .with_severity(Severity::Warn),
        ],
        c if is_5xx(c) => vec![server_error(rule, res, expected)],
        200..=299 if unique_member == Some(true) => vec![unexpected(
            rule,
            res,
            expected,
            "the same create was accepted twice though its schema names a member that must be unique",
        )],
        200..=299 if unique_member == Some(false) => Vec::new(),
        200..=299 => vec![
            unexpected(
                rule,
                res,
                expected,
                "the same create was accepted twice; fine if nothing in it must be unique (mark unique members `x-unique: true`, or none with `x-unique: false`)",
            )
            .with_severity(Severity::Info),
        ],
        _ => vec![unexpected(rule, res, expected, "")],
    }
}

/// probe.unknown_id: 404 or 410 (a PUT may create the resource: 201).
pub fn unknown_id(res: &RecordedResponse, method: &str) -> Vec<Finding> {
    let rule = &rules::PROBE_UNKNOWN_ID;
    match res.status {
        404 | 410 => Vec::new(),
        201 if method.eq_ignore_ascii_case("PUT") => Vec::new(),
        200..=299 => vec![unexpected(
            rule,
            res,
            "404 or 410",
            "success for a resource that does not exist",
        )],
        c if is_5xx(c) => vec![server_error(rule, res, "404 or 410")],
        _ => vec![unexpected(rule, res, "404 or 410", "")],
    }
}

/// probe.unknown_route: 404.
pub fn unknown_route(res: &RecordedResponse) -> Vec<Finding> {
    let rule = &rules::PROBE_UNKNOWN_ROUTE;
    match res.status {
        404 => Vec::new(),
        200..=299 => vec![unexpected(
            rule,
            res,
            "404",
            "a path no operation declares answered with success (a catch-all route?)",
        )],
        401 | 403 => vec![unexpected(
            rule,
            res,
            "404",
            "an unknown path is 404 before any authentication",
        )],
        c if is_5xx(c) => vec![server_error(rule, res, "404")],
        _ => vec![unexpected(rule, res, "404", "")],
    }
}

/// probe.wrong_method: 405 with an `Allow` that lists the declared methods
/// and not the one sent. TRACE may also be refused with 501 (a warning).
pub fn wrong_method(res: &RecordedResponse, method: &str, declared: &[String]) -> Vec<Finding> {
    let rule = &rules::PROBE_WRONG_METHOD;
    let expected = "405 + Allow";
    if res.status != 405 {
        if res.status == 501 && method == "TRACE" {
            return vec![
                unexpected(
                    rule,
                    res,
                    expected,
                    "501 says the server knows no TRACE at all; 405 + Allow tells the client what this path takes",
                )
                .with_severity(Severity::Warn),
            ];
        }
        let why = match res.status {
            200..=299 => format!("{method} is not declared on this path, yet it succeeded"),
            404 => "404 says the path does not exist; it does, with other methods".to_owned(),
            c if is_5xx(c) => server_fault(c),
            _ => String::new(),
        };
        return vec![unexpected(rule, res, expected, &why)];
    }
    let Some(allow) = res.header("allow") else {
        return vec![same_fact(
            unexpected(
                rule,
                res,
                expected,
                "405 without Allow (RFC 9110 §15.5.6: MUST)",
            ),
            &rules::METHOD_405_WITHOUT_ALLOW,
        )];
    };
    let listed: Vec<String> = allow
        .split(',')
        .map(|m| m.trim().to_ascii_uppercase())
        .filter(|m| !m.is_empty())
        .collect();
    let mut out = Vec::new();
    if listed.iter().any(|m| m == method) {
        out.push(Finding::new(
            rule,
            format!("405 for {method}, yet Allow lists {method}"),
            format!("allow: {allow}"),
        ));
    }
    let missing: Vec<&str> = declared
        .iter()
        .filter(|d| !listed.iter().any(|m| m == *d))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        out.push(
            Finding::new(
                rule,
                format!(
                    "Allow does not list {} though the document declares {}",
                    missing.join(", "),
                    if missing.len() == 1 { "it" } else { "them" }
                ),
                format!("allow: {allow}"),
            )
            .with_severity(Severity::Warn),
        );
    }
    out
}

/// probe.oversize_body: 413; 5xx fails.
pub fn oversize(res: &RecordedResponse) -> Vec<Finding> {
    let rule = &rules::PROBE_OVERSIZE_BODY;
    match res.status {
        413 => Vec::new(),
        c if is_5xx(c) => vec![server_error(rule, res, "413")],
        200..=299 => vec![unexpected(rule, res, "413", "the body was accepted")],
        _ => vec![unexpected(rule, res, "413", "")],
    }
}

/// probe.create: 201 + Location, or 202 + Location (a status monitor).
pub fn create(res: &RecordedResponse) -> Vec<Finding> {
    let rule = &rules::PROBE_CREATE;
    let expected = "201 + Location (or 202 + Location)";
    match res.status {
        201 | 202 if res.header("location").is_some() => Vec::new(),
        201 => vec![same_fact(
            unexpected(
                rule,
                res,
                expected,
                "201 without Location: the client cannot tell where the new resource is",
            ),
            &rules::CREATED_201_WITHOUT_LOCATION,
        )],
        202 if res.header("content-location").is_some() || has_link(res) => Vec::new(),
        202 => vec![unexpected(
            rule,
            res,
            expected,
            "202 without Location or a status link: the client cannot follow the work",
        )],
        200 => vec![unexpected(
            rule,
            res,
            expected,
            "a create that made a resource answers 201 Created",
        )],
        c if (400..500).contains(&c) => vec![unexpected(
            rule,
            res,
            expected,
            "a schema-valid create was refused (give the operation an example if the generated body is not what the API needs)",
        )],
        _ => vec![unexpected(rule, res, expected, "")],
    }
}

fn has_link(res: &RecordedResponse) -> bool {
    res.header("link").is_some()
}

/// probe.delete, first half: 204 without a body (202 is accepted: the
/// deletion is queued). A 200 is delete.200_empty's advice, at its
/// severity, with or without a representation: RFC 9110 §9.3.5 allows a
/// 200 that describes the outcome, so it cannot weigh more than an empty one.
pub fn delete(res: &RecordedResponse) -> Vec<Finding> {
    let rule = &rules::PROBE_DELETE;
    let expected = "204 without body";
    match res.status {
        204 => {
            let declared = res
                .header("content-length")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            if res.body.is_empty() && declared == 0 {
                Vec::new()
            } else {
                vec![same_fact(
                    unexpected(rule, res, expected, "204 No Content carries content"),
                    &rules::NO_CONTENT_204_WITH_BODY,
                )]
            }
        }
        202 => Vec::new(),
        200 => vec![same_fact(
            unexpected(
                rule,
                res,
                expected,
                "a delete with nothing more to say answers 204",
            ),
            &rules::DELETE_200_EMPTY,
        )],
        _ => vec![unexpected(rule, res, expected, "")],
    }
}

/// probe.delete, second half: a read of the deleted resource is 404 or 410.
pub fn read_after_delete(res: &RecordedResponse) -> Vec<Finding> {
    let rule = &rules::PROBE_DELETE;
    match res.status {
        404 | 410 => Vec::new(),
        200..=299 => vec![unexpected(
            rule,
            res,
            "404 or 410 on a read after the delete",
            "the deleted resource can still be read",
        )],
        _ => vec![unexpected(
            rule,
            res,
            "404 or 410 on a read after the delete",
            "",
        )],
    }
}

/// probe.rate_burst, one response of the burst: success, or 429 with
/// Retry-After once limited; 503 and 400 are the wrong answers to a
/// client over its quota.
pub fn burst_response(res: &RecordedResponse) -> Vec<Finding> {
    let rule = &rules::PROBE_RATE_BURST;
    let expected = "2xx, then 429 + Retry-After once limited";
    match res.status {
        200..=299 => Vec::new(),
        429 if res.header("retry-after").is_some() => Vec::new(),
        429 => vec![same_fact(
            unexpected(
                rule,
                res,
                expected,
                "429 without Retry-After: the client cannot tell when to come back",
            ),
            &rules::RATE_429_WITHOUT_RETRY_AFTER,
        )],
        503 => vec![unexpected(
            rule,
            res,
            expected,
            "503 blames the server for a client over its quota; that is 429",
        )],
        400 => vec![unexpected(
            rule,
            res,
            expected,
            "400 says the request is malformed; a client over its quota gets 429",
        )],
        _ => vec![unexpected(rule, res, expected, "")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(status: u16, headers: &[(&str, &str)]) -> RecordedResponse {
        RecordedResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            ..RecordedResponse::default()
        }
    }

    fn severities(findings: &[Finding]) -> Vec<Severity> {
        findings.iter().map(|f| f.severity).collect()
    }

    #[test]
    fn no_credentials_wants_a_bare_challenge() {
        let ok = res(401, &[("www-authenticate", "Bearer realm=\"api\"")]);
        assert!(no_credentials(&ok).is_empty());
        let with_error = res(
            401,
            &[(
                "www-authenticate",
                "Bearer realm=\"api\", error=\"invalid_token\"",
            )],
        );
        assert_eq!(severities(&no_credentials(&with_error)), [Severity::Warn]);
        for status in [200, 400, 403, 404, 500] {
            assert_eq!(
                severities(&no_credentials(&res(status, &[]))),
                [Severity::Error],
                "{status}"
            );
        }
        assert_eq!(
            severities(&no_credentials(&res(
                401,
                &[("www-authenticate", "Bearer realm=\"x")]
            ))),
            [Severity::Error]
        );
    }

    #[test]
    fn invalid_token_wants_the_error_code_on_bearer() {
        let ok = res(
            401,
            &[(
                "www-authenticate",
                "Bearer realm=\"api\", error=\"invalid_token\"",
            )],
        );
        assert!(invalid_token(&ok, "a garbage token").is_empty());
        let bare = res(401, &[("www-authenticate", "Bearer realm=\"api\"")]);
        assert_eq!(severities(&invalid_token(&bare, "t")), [Severity::Warn]);
        let key = res(401, &[("www-authenticate", "ApiKey realm=\"api\"")]);
        assert!(invalid_token(&key, "t").is_empty());
        assert_eq!(
            severities(&invalid_token(&res(403, &[]), "t")),
            [Severity::Error]
        );
    }

    #[test]
    fn insufficient_role_depends_on_concealment() {
        assert!(insufficient_role(&res(403, &[]), false, "user").is_empty());
        assert!(insufficient_role(&res(404, &[]), true, "user").is_empty());
        for (status, concealed) in [(404, false), (403, true), (401, false), (200, false)] {
            let f = insufficient_role(&res(status, &[]), concealed, "user");
            assert_eq!(severities(&f), [Severity::Error], "{status}");
        }
    }

    #[test]
    fn body_probes_grade_as_the_contract_says() {
        assert!(malformed_json(&res(400, &[])).is_empty());
        assert_eq!(
            severities(&malformed_json(&res(422, &[]))),
            [Severity::Error]
        );
        assert!(wrong_media_type(&res(415, &[]), "text/plain").is_empty());
        assert_eq!(
            severities(&wrong_media_type(&res(400, &[]), "text/plain")),
            [Severity::Warn]
        );
        assert!(schema_violation(&res(400, &[]), "x").is_empty());
        assert_eq!(
            severities(&schema_violation(&res(422, &[]), "x")),
            [Severity::Warn]
        );
        assert_eq!(
            severities(&schema_violation(&res(502, &[]), "x")),
            [Severity::Error]
        );
        assert!(semantic_violation(&res(409, &[]), Some(true)).is_empty());
        assert!(semantic_violation(&res(422, &[]), Some(true)).is_empty());
        assert_eq!(
            severities(&semantic_violation(&res(400, &[]), Some(true))),
            [Severity::Warn]
        );
        assert_eq!(
            severities(&semantic_violation(&res(201, &[]), Some(true))),
            [Severity::Error]
        );
        assert_eq!(
            severities(&semantic_violation(&res(201, &[]), None)),
            [Severity::Info]
        );
        assert!(
            semantic_violation(&res(201, &[]), Some(false)).is_empty(),
            "declared: nothing in it is unique"
        );
        assert!(oversize(&res(413, &[])).is_empty());
        assert_eq!(severities(&oversize(&res(500, &[]))), [Severity::Error]);
    }

    #[test]
    fn resource_probes() {
        assert!(create(&res(201, &[("location", "/u/1")])).is_empty());
        assert!(create(&res(202, &[("location", "/jobs/1")])).is_empty());
        assert_eq!(severities(&create(&res(201, &[]))), [Severity::Warn]);
        assert_eq!(severities(&create(&res(200, &[]))), [Severity::Error]);
        assert!(delete(&res(204, &[])).is_empty());
        assert_eq!(
            severities(&delete(&res(204, &[("content-length", "5")]))),
            [Severity::Error]
        );
        assert_eq!(severities(&delete(&res(200, &[]))), [Severity::Info]);
        assert!(read_after_delete(&res(410, &[])).is_empty());
        assert_eq!(
            severities(&read_after_delete(&res(200, &[]))),
            [Severity::Error]
        );
        assert!(unknown_id(&res(404, &[]), "GET").is_empty());
        assert!(unknown_id(&res(201, &[]), "PUT").is_empty());
        assert_eq!(
            severities(&unknown_id(&res(200, &[]), "GET")),
            [Severity::Error]
        );
        assert!(unknown_route(&res(404, &[])).is_empty());
        assert_eq!(
            severities(&unknown_route(&res(401, &[]))),
            [Severity::Error]
        );
    }

    #[test]
    fn wrong_method_checks_allow() {
        let declared = vec!["GET".to_owned(), "POST".to_owned()];
        assert!(wrong_method(&res(405, &[("allow", "GET, POST")]), "PATCH", &declared).is_empty());
        assert_eq!(
            severities(&wrong_method(&res(405, &[]), "PATCH", &declared)),
            [Severity::Error]
        );
        assert_eq!(
            severities(&wrong_method(
                &res(405, &[("allow", "GET")]),
                "PATCH",
                &declared
            )),
            [Severity::Warn]
        );
        assert_eq!(
            severities(&wrong_method(
                &res(405, &[("allow", "GET, POST, PATCH")]),
                "PATCH",
                &declared
            )),
            [Severity::Error]
        );
        assert_eq!(
            severities(&wrong_method(&res(501, &[]), "TRACE", &declared)),
            [Severity::Warn]
        );
        assert_eq!(
            severities(&wrong_method(&res(200, &[]), "PATCH", &declared)),
            [Severity::Error]
        );
    }

    /// Every probe verdict that sees a passive rule's fact: on the same
    /// exchange the passive rule fires, and both findings have one severity.
    #[test]
    fn a_probe_and_the_passive_rule_that_see_the_same_fact_agree() {
        use crate::http::RecordedRequest;
        use candor_contract::{CheckOptions, check_exchange};

        let url = "http://127.0.0.1:1/x";
        let get = RecordedRequest::new("GET", url);
        let bearer = RecordedRequest::new("GET", url).header("Authorization", "Bearer junk");
        let broken_json = RecordedRequest::new("POST", url)
            .header("Content-Type", "application/json")
            .body(&b"{\"a\":"[..]);
        let bare = ("www-authenticate", "Bearer realm=\"api\"");
        let invalid_request = (
            "www-authenticate",
            "Bearer realm=\"api\", error=\"invalid_request\"",
        );
        type Verdict = fn(&RecordedResponse) -> Vec<Finding>;
        let cases: Vec<(Verdict, &RecordedRequest, RecordedResponse, &Rule)> = vec![
            (
                create,
                &get,
                res(201, &[]),
                &rules::CREATED_201_WITHOUT_LOCATION,
            ),
            (
                |r| invalid_token(r, "t"),
                &bearer,
                res(401, &[bare]),
                &rules::AUTH_401_WITHOUT_INVALID_TOKEN,
            ),
            (
                |r| invalid_token(r, "t"),
                &bearer,
                res(401, &[invalid_request]),
                &rules::AUTH_401_WITHOUT_INVALID_TOKEN,
            ),
            (
                |r| invalid_token(r, "t"),
                &bearer,
                res(401, &[]),
                &rules::AUTH_401_WITHOUT_CHALLENGE,
            ),
            (
                no_credentials,
                &get,
                res(401, &[]),
                &rules::AUTH_401_WITHOUT_CHALLENGE,
            ),
            (
                malformed_json,
                &broken_json,
                res(422, &[]),
                &rules::BODY_MALFORMED_NOT_400,
            ),
            (
                malformed_json,
                &broken_json,
                res(409, &[]),
                &rules::BODY_MALFORMED_NOT_400,
            ),
            (
                malformed_json,
                &broken_json,
                res(200, &[]),
                &rules::BODY_MALFORMED_NOT_400,
            ),
            (
                malformed_json,
                &broken_json,
                res(500, &[]),
                &rules::SERVER_500_ON_CLIENT_FAULT,
            ),
            (
                |r| wrong_method(r, "PATCH", &[]),
                &get,
                res(405, &[]),
                &rules::METHOD_405_WITHOUT_ALLOW,
            ),
            (
                delete,
                &get,
                res(204, &[("content-length", "5")]),
                &rules::NO_CONTENT_204_WITH_BODY,
            ),
            (delete, &get, res(200, &[]), &rules::DELETE_200_EMPTY),
            (
                burst_response,
                &get,
                res(429, &[]),
                &rules::RATE_429_WITHOUT_RETRY_AFTER,
            ),
        ];
        for (verdict, request, response, passive) in cases {
            let status = response.status;
            let mut request = request.clone();
            if passive.id == "delete.200_empty" {
                request.method = "DELETE".into();
            }
            let probe = verdict(&response);
            assert_eq!(probe.len(), 1, "{} {status}", passive.id);
            let found = check_exchange(&response.exchange(&request), &CheckOptions::default());
            let same = found
                .iter()
                .find(|f| f.rule.id == passive.id)
                .unwrap_or_else(|| panic!("{} does not fire on {status}: {found:?}", passive.id));
            assert_eq!(
                probe[0].severity, same.severity,
                "{} on {status}: the probe says {}, the passive rule {}",
                passive.id, probe[0].severity, same.severity
            );
            // And one finding: the probe's stands for the passive one.
            assert!(probe[0].covers(same), "{} on {status}", passive.id);
        }
    }

    #[test]
    fn burst_answers() {
        assert!(burst_response(&res(200, &[])).is_empty());
        assert!(burst_response(&res(429, &[("retry-after", "3")])).is_empty());
        for status in [429, 503, 400] {
            assert_eq!(
                severities(&burst_response(&res(status, &[]))),
                [Severity::Error]
            );
        }
    }
}
