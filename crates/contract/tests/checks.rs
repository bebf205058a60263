//! Each passive rule, proved on a minimal exchange that breaks it and on
//! the closest exchange that does not.

use candor_contract::{CheckOptions, Exchange, History, check_exchange, failure_signal};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

struct Ex(Exchange);

fn ex(method: &str, url: &str, status: u16) -> Ex {
    let mut e = Exchange::default();
    e.request.method = method.into();
    e.request.url = format!("https://api.example.com{url}");
    e.request.headers = headers(&[("accept", "application/json")]);
    e.response.status = status;
    Ex(e)
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

impl Ex {
    fn res(mut self, pairs: &[(&str, &str)], body: &str) -> Self {
        self.0.response.headers = headers(pairs);
        self.0.response.body = body.as_bytes().to_vec();
        self
    }
    fn req(mut self, pairs: &[(&str, &str)], body: &str) -> Self {
        self.0.request.headers = headers(pairs);
        self.0.request.body = body.as_bytes().to_vec();
        self
    }
    fn rules(&self) -> Vec<&'static str> {
        check_exchange(&self.0, &CheckOptions::default())
            .iter()
            .map(|f| f.rule.id)
            .collect()
    }
}

const PROBLEM: (&str, &str) = ("content-type", "application/problem+json");
const JSON: (&str, &str) = ("content-type", "application/json");

fn problem(status: u16) -> String {
    json!({"type": "about:blank", "status": status}).to_string()
}

#[test]
fn success_error_body_flags_failure_shapes_only() {
    for body in [
        r#"{"success":false}"#,
        r#"{"ok":false,"data":1}"#,
        r#"{"status":"Error"}"#,
        r#"{"status":"fail"}"#,
        r#"{"error":"boom"}"#,
        r#"{"error":{"code":1}}"#,
        r#"{"errors":[{"message":"x"}]}"#,
        r#"{"error":true}"#,
    ] {
        assert_eq!(
            ex("GET", "/x", 200).res(&[JSON], body).rules(),
            ["success.error_body"],
            "{body}"
        );
    }
    for body in [
        r#"{"error":null}"#,
        r#"{"error":""}"#,
        r#"{"error":{}}"#,
        r#"{"errors":[]}"#,
        r#"{"error":false}"#,
        r#"{"error":0}"#,
        r#"{"success":true,"status":"ok"}"#,
        r#"{"data":{"a":1},"errors":[{"message":"partial"}]}"#,
        r#"[{"success":false}]"#,
        "not json",
    ] {
        assert!(
            ex("GET", "/x", 200).res(&[JSON], body).rules().is_empty(),
            "{body}"
        );
    }
    assert_eq!(
        failure_signal(&json!({"success": false})).as_deref(),
        Some("\"success\":false")
    );
}

#[test]
fn a_401_needs_a_parseable_challenge() {
    let bare = ex("GET", "/me", 401).res(&[PROBLEM], &problem(401));
    assert_eq!(bare.rules(), ["auth.401_without_challenge"]);
    let good = ex("GET", "/me", 401).res(
        &[PROBLEM, ("www-authenticate", "Bearer realm=\"api\"")],
        &problem(401),
    );
    assert!(good.rules().is_empty());
    let broken = ex("GET", "/me", 401).res(
        &[PROBLEM, ("www-authenticate", "Bearer realm=\"api")],
        &problem(401),
    );
    assert_eq!(
        broken.rules(),
        ["auth.challenge_syntax", "auth.401_without_challenge"]
    );
}

#[test]
fn challenge_syntax_is_checked_on_any_status() {
    let e = ex("GET", "/a", 403).res(
        &[
            PROBLEM,
            ("www-authenticate", "Bearer realm=\"api\" error=\"x\""),
        ],
        &problem(403),
    );
    assert_eq!(e.rules(), ["auth.challenge_syntax"]);
}

#[test]
fn retry_after_rules() {
    assert_eq!(
        ex("GET", "/a", 429).res(&[PROBLEM], &problem(429)).rules(),
        ["rate.429_without_retry_after"]
    );
    assert_eq!(
        ex("GET", "/a", 503).res(&[PROBLEM], &problem(503)).rules(),
        ["unavailable.503_without_retry_after"]
    );
    assert!(
        ex("GET", "/a", 429)
            .res(&[PROBLEM, ("retry-after", "1")], &problem(429))
            .rules()
            .is_empty()
    );
    assert!(
        ex("GET", "/a", 503)
            .res(
                &[PROBLEM, ("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")],
                &problem(503)
            )
            .rules()
            .is_empty()
    );
    for bad in ["soon", "-1", "1.5", ""] {
        let e = ex("GET", "/a", 503).res(&[PROBLEM, ("retry-after", bad)], &problem(503));
        assert_eq!(e.rules(), ["retry_after.syntax"], "{bad:?}");
    }
    let twice = ex("GET", "/a", 429).res(
        &[PROBLEM, ("retry-after", "1"), ("retry-after", "2")],
        &problem(429),
    );
    assert_eq!(twice.rules(), ["retry_after.syntax"]);
}

#[test]
fn created_no_content_method_and_redirect_rules() {
    assert_eq!(
        ex("POST", "/u", 201).res(&[JSON], "{}").rules(),
        ["created.201_without_location"]
    );
    assert!(
        ex("POST", "/u", 201)
            .res(&[JSON, ("location", "/u/1")], "{}")
            .rules()
            .is_empty()
    );
    assert_eq!(
        ex("PUT", "/u", 204).res(&[], "x").rules(),
        ["no_content.204_with_body"]
    );
    assert_eq!(
        ex("PUT", "/u", 204)
            .res(&[("content-length", "5")], "")
            .rules(),
        ["no_content.204_with_body"]
    );
    assert!(
        ex("PUT", "/u", 204)
            .res(&[("content-length", "0")], "")
            .rules()
            .is_empty()
    );
    assert_eq!(
        ex("PUT", "/u", 405).res(&[PROBLEM], &problem(405)).rules(),
        ["method.405_without_allow"]
    );
    assert!(
        ex("PUT", "/u", 405)
            .res(&[PROBLEM, ("allow", "")], &problem(405))
            .rules()
            .is_empty()
    );
    for code in [301, 302, 303, 307, 308] {
        assert_eq!(
            ex("GET", "/r", code).rules(),
            ["redirect.without_location"],
            "{code}"
        );
        assert!(
            ex("GET", "/r", code)
                .res(&[("location", "/n")], "")
                .rules()
                .is_empty()
        );
    }
    assert!(ex("GET", "/r", 304).rules().is_empty());
}

#[test]
fn unregistered_statuses() {
    for code in [0, 99, 299, 418, 600, 999] {
        assert!(
            ex("GET", "/s", code)
                .res(&[JSON], "{}")
                .rules()
                .contains(&"status.unregistered"),
            "{code}"
        );
    }
    assert!(ex("GET", "/s", 200).res(&[JSON], "{}").rules().is_empty());
}

#[test]
fn errors_on_a_json_api_must_be_machine_readable() {
    let html = ex("GET", "/x", 500).res(&[("content-type", "text/html")], "<h1>oops</h1>");
    assert_eq!(html.rules(), ["error.not_machine_readable"]);
    let empty = ex("GET", "/x", 404);
    assert_eq!(empty.rules(), ["error.not_machine_readable"]);
    let mismatch = ex("GET", "/x", 404).res(&[PROBLEM], &problem(500));
    assert_eq!(mismatch.rules(), ["error.not_machine_readable"]);
    let declared_but_broken = ex("GET", "/x", 400).res(&[JSON], "{");
    assert_eq!(declared_but_broken.rules(), ["error.not_machine_readable"]);
    // A browser page is not a JSON API call; a HEAD has no body to judge.
    let mut page = ex("GET", "/x", 404)
        .req(&[("accept", "text/html")], "")
        .res(&[("content-type", "text/html")], "<p>");
    page.0.request.url = "https://www.example.com/x".into();
    assert!(page.rules().is_empty());
    assert!(ex("HEAD", "/x", 404).rules().is_empty());
    // An /api/ URL makes it a JSON API call even without JSON headers.
    let api = ex("GET", "/api/x", 404)
        .req(&[], "")
        .res(&[("content-type", "text/plain")], "nope");
    assert_eq!(api.rules(), ["error.not_machine_readable"]);
}

#[test]
fn delete_answered_200_with_nothing() {
    assert_eq!(
        ex("DELETE", "/t/1", 200).res(&[JSON], " {} ").rules(),
        ["delete.200_empty"]
    );
    assert_eq!(ex("DELETE", "/t/1", 200).rules(), ["delete.200_empty"]);
    assert!(
        ex("DELETE", "/t/1", 200)
            .res(&[JSON], r#"{"id":1}"#)
            .rules()
            .is_empty()
    );
}

#[test]
fn server_500_on_a_known_malformed_request() {
    let e = ex("POST", "/u", 500)
        .req(&[JSON], "{\"a\":")
        .res(&[PROBLEM], &problem(500));
    assert_eq!(e.rules(), ["server.500_on_client_fault"]);
    let fine = ex("POST", "/u", 500)
        .req(&[JSON], "{\"a\":1}")
        .res(&[PROBLEM], &problem(500));
    assert!(fine.rules().is_empty());
    let unknown = ex("POST", "/u", 500)
        .req(&[JSON], "")
        .res(&[PROBLEM], &problem(500));
    assert!(unknown.rules().is_empty());
}

#[test]
fn malformed_json_is_400_and_only_answers_that_read_the_body_are_judged() {
    let broken = |status: u16| {
        ex("POST", "/u", status)
            .req(
                &[("content-type", "application/merge-patch+json")],
                "{\"a\":",
            )
            .res(&[PROBLEM], &problem(status))
    };
    for status in [422, 409, 200, 201, 204] {
        let mut e = broken(status);
        if status == 204 {
            e = e.res(&[], "");
        }
        if status == 201 {
            e = e.res(&[PROBLEM, ("location", "/u/1")], "{}");
        }
        assert_eq!(e.rules(), ["body.malformed_not_400"], "{status}");
    }
    let message = &check_exchange(&broken(422).0, &CheckOptions::default())[0].message;
    assert!(
        message.starts_with("422 in answer to a body that does not parse"),
        "{message}"
    );
    // The right answer, and answers the contract ranks before the body.
    for status in [400, 401, 403, 404, 405, 413, 415, 429] {
        let rules = broken(status).rules();
        assert!(
            !rules.contains(&"body.malformed_not_400"),
            "{status}: {rules:?}"
        );
    }
    assert_eq!(broken(500).rules(), ["server.500_on_client_fault"]);
    // Valid JSON, no body, a body not declared JSON, a coded body.
    let valid = ex("POST", "/u", 422)
        .req(&[JSON], "{\"a\":1}")
        .res(&[PROBLEM], &problem(422));
    assert!(valid.rules().is_empty());
    let empty = ex("POST", "/u", 422)
        .req(&[JSON], "")
        .res(&[PROBLEM], &problem(422));
    assert!(empty.rules().is_empty());
    let text = ex("POST", "/u", 422)
        .req(&[("content-type", "text/plain")], "{\"a\":")
        .res(&[PROBLEM], &problem(422));
    assert!(text.rules().is_empty());
    let gzip = ex("POST", "/u", 422)
        .req(&[JSON, ("content-encoding", "gzip")], "\u{1f}garbage")
        .res(&[PROBLEM], &problem(422));
    assert!(gzip.rules().is_empty());
    let identity = ex("POST", "/u", 422)
        .req(&[JSON, ("content-encoding", "identity")], "{")
        .res(&[PROBLEM], &problem(422));
    assert_eq!(identity.rules(), ["body.malformed_not_400"]);
}

#[test]
fn credentials_refused_with_401_need_invalid_token() {
    let refused = |auth: &[(&str, &str)], challenge: &str| {
        let mut req = vec![("accept", "application/json")];
        req.extend_from_slice(auth);
        ex("GET", "/me", 401)
            .req(&req, "")
            .res(&[PROBLEM, ("www-authenticate", challenge)], &problem(401))
            .rules()
    };
    let bearer = [("authorization", "Bearer abc.def")];
    assert_eq!(
        refused(&bearer, "Bearer realm=\"api\""),
        ["auth.401_without_invalid_token"]
    );
    // Another code than invalid_token, any case of the scheme.
    assert_eq!(
        refused(
            &[("authorization", "bearer x")],
            "BEARER realm=\"api\", error=\"invalid_request\""
        ),
        ["auth.401_without_invalid_token"]
    );
    assert!(refused(&bearer, "Bearer realm=\"api\", error=\"invalid_token\"").is_empty());
    // Several challenges: the one of the scheme sent is the one judged.
    assert!(
        refused(&bearer, "ApiKey realm=\"api\", header=\"X-API-Key\", Bearer realm=\"api\", error=\"invalid_token\"")
            .is_empty()
    );
    // No credentials: a bare challenge is right (auth.missing).
    assert!(refused(&[], "Bearer realm=\"api\"").is_empty());
    // A scheme the server does not challenge was not taken as credentials.
    assert!(refused(&[("authorization", "Basic dTpw")], "Bearer realm=\"api\"").is_empty());
    // Basic has no error codes to give.
    assert!(refused(&[("authorization", "Basic dTpw")], "Basic realm=\"api\"").is_empty());
    // An API key sent in the header its challenge names.
    let key = [("x-api-key", "k-123")];
    let api_key = "ApiKey realm=\"api\", header=\"X-API-Key\"";
    assert_eq!(refused(&key, api_key), ["auth.401_without_invalid_token"]);
    assert!(refused(&[], api_key).is_empty());
    assert!(
        refused(
            &key,
            "ApiKey realm=\"api\", header=\"X-API-Key\", error=\"invalid_token\""
        )
        .is_empty()
    );
    // The evidence is the challenge, never the credential.
    let e = ex("GET", "/me", 401)
        .req(&[("authorization", "Bearer s3cret")], "")
        .res(
            &[PROBLEM, ("www-authenticate", "Bearer realm=\"api\"")],
            &problem(401),
        );
    let finding = &check_exchange(&e.0, &CheckOptions::default())[0];
    assert_eq!(finding.evidence, "Bearer realm=\"api\"");
    assert!(!finding.message.contains("s3cret"));
    // A 401 without a challenge is auth.401_without_challenge alone.
    let bare = ex("GET", "/me", 401)
        .req(&bearer, "")
        .res(&[PROBLEM], &problem(401));
    assert_eq!(bare.rules(), ["auth.401_without_challenge"]);
}

#[test]
fn history_flags_404_after_delete_once() {
    let mut h = History::default();
    assert!(h.observe(&ex("DELETE", "/u/1", 204).0).is_none());
    assert!(h.observe(&ex("GET", "/u/2", 404).0).is_none());
    let f = h.observe(&ex("GET", "/u/1?x=1", 404).0).expect("finding");
    assert_eq!(f.rule.id, "gone.404_after_delete");
    assert!(
        h.observe(&ex("GET", "/u/1", 404).0).is_none(),
        "reported once"
    );

    assert!(h.observe(&ex("DELETE", "/u/3", 204).0).is_none());
    assert!(h.observe(&ex("PUT", "/u/3", 201).0).is_none());
    assert!(
        h.observe(&ex("GET", "/u/3", 404).0).is_none(),
        "recreated by PUT"
    );
    assert!(h.observe(&ex("DELETE", "/u/4", 204).0).is_none());
    assert!(h.observe(&ex("GET", "/u/4", 410).0).is_none());
}

#[test]
fn history_memory_is_bounded() {
    let mut h = History::default();
    for i in 0..History::CAPACITY + 10 {
        h.observe(&ex("DELETE", &format!("/u/{i}"), 204).0);
    }
    assert!(
        h.observe(&ex("GET", "/u/0", 404).0).is_none(),
        "oldest forgotten"
    );
    assert!(
        h.observe(&ex("GET", &format!("/u/{}", History::CAPACITY), 404).0)
            .is_some()
    );
}

#[test]
fn the_declared_fields_are_all_the_rules_read() {
    // Every header of every exchange in a varied set, trimmed to the
    // declared fields plus noise, gives the same findings as the full map.
    let cases = [
        ex("GET", "/me", 401).res(&[PROBLEM, ("x-noise", "1")], &problem(401)),
        ex("GET", "/me", 401)
            .req(&[("authorization", "Bearer t"), ("x-noise", "1")], "")
            .res(
                &[PROBLEM, ("www-authenticate", "Bearer realm=\"a\"")],
                &problem(401),
            ),
        ex("POST", "/u", 422)
            .req(&[JSON, ("content-encoding", "gzip"), ("x-noise", "1")], "{")
            .res(&[PROBLEM], &problem(422)),
        ex("GET", "/a", 429).res(&[PROBLEM, ("retry-after", "soon")], &problem(429)),
        ex("POST", "/u", 201).res(&[JSON, ("etag", "\"1\"")], "{}"),
        ex("PUT", "/u", 204).res(&[("content-length", "5")], ""),
        ex("PUT", "/u", 405).res(&[PROBLEM, ("allow", "GET")], &problem(405)),
        ex("GET", "/x", 500).res(&[("content-type", "text/html")], "<p>"),
        ex("GET", "/r", 302).res(&[("location", "/n")], ""),
    ];
    for case in cases {
        let full = case.rules();
        let mut trimmed = case.0.clone();
        let keep = |h: &HeaderMap, names: &[http::HeaderName]| {
            let mut out = HeaderMap::new();
            for n in names {
                for v in h.get_all(n) {
                    out.append(n.clone(), v.clone());
                }
            }
            out
        };
        trimmed.request.headers = keep(&case.0.request.headers, candor_contract::REQUEST_FIELDS);
        trimmed.response.headers = keep(&case.0.response.headers, candor_contract::RESPONSE_FIELDS);
        let trimmed_rules: Vec<_> = check_exchange(&trimmed, &CheckOptions::default())
            .iter()
            .map(|f| f.rule.id)
            .collect();
        assert_eq!(full, trimmed_rules);
    }
}
