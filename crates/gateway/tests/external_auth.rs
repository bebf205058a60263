//! External authorization (`auth = "external"`): every answer of a real
//! auth service on 127.0.0.1:0 put in the contract's terms, its cache, the
//! identity it forwards, on both data paths (CI runs this file twice).

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::{assert_rule, closed_port, faults, gateway, metric, read_head, send};

/// What the auth service saw: calls per token, and the last request head.
#[derive(Default)]
struct Seen {
    calls: HashMap<String, usize>,
    last_head: String,
}

/// An auth service whose answer the token chooses (`token=<what>`); it
/// keeps connections open between answers, as a pooled upstream does.
async fn auth_service() -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, log.clone()));
        }
    });
    (addr, seen)
}

async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Seen>>) {
    let mut buf = Vec::new();
    loop {
        if !read_head(&mut stream, &mut buf).await {
            return;
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        while buf.len() < end + len {
            let mut more = [0u8; 1024];
            match stream.read(&mut more).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&more[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[end..end + len]).into_owned();
        buf.drain(..end + len);
        let token = body.strip_prefix("token=").unwrap_or("").to_owned();
        {
            let mut s = seen.lock().unwrap();
            *s.calls.entry(token.clone()).or_default() += 1;
            s.last_head = head;
        }
        let json = |status: &str, body: &str| {
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let reply = match token.as_str() {
            "alice" => json(
                "200 OK",
                r#"{"active":true,"sub":"alice","roles":["reader","admin"]}"#,
            ),
            "bob" => json("200 OK", r#"{"active":true,"sub":"bob","roles":"reader"}"#),
            "inactive" => json("200 OK", r#"{"active":false}"#),
            "no-active" => json("200 OK", r#"{"sub":"x"}"#),
            "deny401" => "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer realm=\"auth\", error=\"invalid_token\"\r\ncontent-length: 0\r\n\r\n".to_owned(),
            "deny401bare" => "HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n".to_owned(),
            "deny403" => {
                let problem = r#"{"type":"about:blank","title":"Forbidden","status":403,"detail":"account locked"}"#;
                format!(
                    "HTTP/1.1 403 Forbidden\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n\r\n{problem}",
                    problem.len()
                )
            }
            "unavailable" => "HTTP/1.1 503 Service Unavailable\r\nretry-after: 17\r\ncontent-length: 0\r\n\r\n".to_owned(),
            "error500" => json("500 Internal Server Error", r#"{"error":"database down"}"#),
            "garbage" => {
                let _ = stream.write_all(b"NOT HTTP AT ALL\r\n\r\n").await;
                return;
            }
            // Closed without an answer.
            "reset" => return,
            // Never answers (the test ends first).
            "hang" => {
                std::future::pending::<()>().await;
                return;
            }
            _ => json("200 OK", r#"{"active":false}"#),
        };
        if stream.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn config(auth: SocketAddr, upstream: SocketAddr, external_extra: &str) -> String {
    format!(
        r#"
[auth.external]
upstream = "auth"
send = ["Authorization", "Cookie"]
timeout = "10s"
{external_extra}

[upstreams.auth]
targets = ["{auth}"]
response_timeout = "300ms"

[upstreams.app]
targets = ["{upstream}"]

[[routes]]
path = "/echo"
upstream = "app"
auth = "external"

[[routes]]
path = "/status/{{code}}"
upstream = "app"
auth = "external"
roles = ["admin"]
"#
    )
}

async fn ask(gw: SocketAddr, path: &str, token: &str) -> support::Reply {
    let bearer = format!("Bearer {token}");
    send(gw, Method::GET, path, &[("authorization", &bearer)], "").await
}

#[tokio::test]
async fn an_active_answer_forwards_the_services_subject_and_roles_not_the_clients() {
    let (auth, seen) = auth_service().await;
    let (app, _faults) = faults().await;
    let gw = gateway("", &config(auth, app, "")).await;
    let reply = send(
        gw.addr(),
        Method::GET,
        "/echo",
        &[
            ("authorization", "Bearer alice"),
            ("cookie", "session=s1"),
            ("x-auth-subject", "mallory"),
            ("x-auth-roles", "root"),
            ("x-not-sent", "1"),
        ],
        "",
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let echoed = reply.json();
    assert_eq!(echoed["headers"]["x-auth-subject"], "alice");
    assert_eq!(echoed["headers"]["x-auth-roles"], "reader,admin");
    // The service got the token (RFC 7662 form) and the fields it is sent.
    let head = seen.lock().unwrap().last_head.clone();
    assert!(head.starts_with("post /introspect http/1.1\r\n"), "{head}");
    assert!(head.contains("authorization: bearer alice\r\n"), "{head}");
    assert!(head.contains("cookie: session=s1\r\n"), "{head}");
    assert!(head.contains("content-type: application/x-www-form-urlencoded\r\n"));
    assert!(
        !head.contains("x-not-sent") && !head.contains("mallory"),
        "{head}"
    );
    // A role list given as a space-separated string reads the same.
    let bob = ask(gw.addr(), "/echo", "bob").await;
    assert_eq!(bob.json()["headers"]["x-auth-roles"], "reader");
}

#[tokio::test]
async fn roles_are_checked_on_the_services_answer() {
    let (auth, _seen) = auth_service().await;
    let (app, _faults) = faults().await;
    let gw = gateway("", &config(auth, app, "")).await;
    assert_eq!(ask(gw.addr(), "/status/204", "alice").await.status, 204);
    let denied = ask(gw.addr(), "/status/204", "bob").await;
    assert_rule(&denied, 403, "authz.denied");
}

#[tokio::test]
async fn denials_are_relayed_with_a_challenge_and_the_problem_body() {
    let (auth, _seen) = auth_service().await;
    let (app, _faults) = faults().await;
    let gw = gateway("", &config(auth, app, "")).await;

    let r = ask(gw.addr(), "/echo", "deny401").await;
    assert_rule(&r, 401, "auth_service.denied");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"auth\", error=\"invalid_token\"")
    );
    // A 401 without a challenge gets the gateway's.
    let r = ask(gw.addr(), "/echo", "deny401bare").await;
    assert_rule(&r, 401, "auth_service.denied");
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer realm=")
    );

    let r = ask(gw.addr(), "/echo", "deny403").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["detail"], "account locked");

    // Inactive credentials are the gateway's auth.invalid.
    let r = ask(gw.addr(), "/echo", "inactive").await;
    assert_rule(&r, 401, "auth.invalid");
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );

    // No credentials at all: auth.missing, without asking.
    let r = send(gw.addr(), Method::GET, "/echo", &[], "").await;
    assert_rule(&r, 401, "auth.missing");
}

/// The status and debug fields of a failure to decide.
fn assert_failed(r: &support::Reply, status: u16, rule: &str, failure: &str) {
    assert_rule(r, status, rule);
    assert_eq!(r.header("x-upstream-service"), Some("auth"));
    assert_eq!(r.header("x-failure-type"), Some(failure));
    assert_eq!(r.json()["upstream"], "auth");
    assert_eq!(r.json()["failure"], failure);
}

#[tokio::test]
async fn a_service_that_cannot_decide_is_never_403_or_500() {
    let (auth, _seen) = auth_service().await;
    let (app, _faults) = faults().await;
    let gw = gateway("", &config(auth, app, "")).await;

    let r = ask(gw.addr(), "/echo", "error500").await;
    assert_failed(&r, 502, "auth_service.unreachable", "error_status");
    let r = ask(gw.addr(), "/echo", "garbage").await;
    assert_failed(&r, 502, "auth_service.unreachable", "invalid_response");
    let r = ask(gw.addr(), "/echo", "no-active").await;
    assert_failed(&r, 502, "auth_service.unreachable", "invalid_response");
    let r = ask(gw.addr(), "/echo", "reset").await;
    assert_failed(&r, 502, "auth_service.unreachable", "reset");
    let r = ask(gw.addr(), "/echo", "hang").await;
    assert_failed(&r, 504, "auth_service.timeout", "timeout");

    let r = ask(gw.addr(), "/echo", "unavailable").await;
    assert_rule(&r, 503, "auth_service.unavailable");
    assert_eq!(r.header("retry-after"), Some("17"));
    assert_eq!(r.header("x-upstream-service"), Some("auth"));

    let text = gw.metrics_text();
    let failed = metric(
        &text,
        "candor_auth_service_checks_total",
        &[
            ("upstream", "auth"),
            ("outcome", "failed"),
            ("cache", "miss"),
        ],
    );
    assert_eq!(failed, Some(6.0), "{text}");
}

#[tokio::test]
async fn a_refused_auth_service_is_502_naming_it() {
    let closed = closed_port().await;
    let (app, _faults) = faults().await;
    let gw = gateway("", &config(closed, app, "")).await;
    let r = ask(gw.addr(), "/echo", "alice").await;
    assert_failed(&r, 502, "auth_service.unreachable", "connect_refused");
}

#[tokio::test]
async fn the_check_as_a_whole_has_its_own_timeout() {
    let (auth, _seen) = auth_service().await;
    let (app, _faults) = faults().await;
    // The upstream's response timeout would allow far longer.
    let rest =
        config(auth, app, "").replace("response_timeout = \"300ms\"", "response_timeout = \"60s\"");
    let rest = rest.replace("timeout = \"10s\"", "timeout = \"200ms\"");
    let gw = gateway("", &rest).await;
    let r = ask(gw.addr(), "/echo", "hang").await;
    assert_failed(&r, 504, "auth_service.timeout", "timeout");
}

#[tokio::test]
async fn answers_are_cached_allowed_and_denied_but_failures_are_not() {
    let (auth, seen) = auth_service().await;
    let (app, _faults) = faults().await;
    let cache = r#"cache = { ttl = "1h", negative_ttl = "1h", max_entries = 100 }"#;
    let gw = gateway("", &config(auth, app, cache)).await;
    for _ in 0..3 {
        assert_eq!(ask(gw.addr(), "/echo", "alice").await.status, 200);
        assert_eq!(ask(gw.addr(), "/echo", "deny401").await.status, 401);
        assert_eq!(ask(gw.addr(), "/echo", "inactive").await.status, 401);
        assert_eq!(ask(gw.addr(), "/echo", "error500").await.status, 502);
    }
    let calls = seen.lock().unwrap().calls.clone();
    assert_eq!(calls.get("alice"), Some(&1));
    assert_eq!(calls.get("deny401"), Some(&1));
    assert_eq!(calls.get("inactive"), Some(&1));
    assert_eq!(calls.get("error500"), Some(&3));
    // A cached identity still meets the route's roles.
    assert_eq!(ask(gw.addr(), "/status/204", "alice").await.status, 204);
    assert_eq!(seen.lock().unwrap().calls.get("alice"), Some(&1));
    let text = gw.metrics_text();
    let hits = metric(
        &text,
        "candor_auth_service_checks_total",
        &[("outcome", "allowed"), ("cache", "hit")],
    );
    assert_eq!(hits, Some(3.0), "{text}");
}

#[tokio::test]
async fn without_a_cache_every_request_asks() {
    let (auth, seen) = auth_service().await;
    let (app, _faults) = faults().await;
    let gw = gateway("", &config(auth, app, "")).await;
    for _ in 0..2 {
        assert_eq!(ask(gw.addr(), "/echo", "alice").await.status, 200);
    }
    assert_eq!(seen.lock().unwrap().calls.get("alice"), Some(&2));
}

#[tokio::test]
async fn both_data_paths_answer_alike_and_the_direct_path_takes_external_routes() {
    let (auth, _seen) = auth_service().await;
    let (app, _faults) = faults().await;
    let rest = config(auth, app, "");
    let direct = gateway("direct_path = true", &rest).await;
    let hyper = gateway("direct_path = false", &rest).await;
    for token in ["alice", "deny403", "error500", "unavailable", "inactive"] {
        let a = ask(direct.addr(), "/echo", token).await;
        let b = ask(hyper.addr(), "/echo", token).await;
        assert_eq!(a.status, b.status, "{token}");
        for name in [
            "www-authenticate",
            "retry-after",
            "x-failure-type",
            "x-upstream-service",
        ] {
            assert_eq!(a.header(name), b.header(name), "{token} {name}");
        }
    }
    let served = metric(&direct.metrics_text(), "candor_direct_requests_total", &[]);
    assert_eq!(served, Some(5.0));
    let handed = metric(&direct.metrics_text(), "candor_direct_handovers_total", &[]);
    assert_eq!(handed, Some(0.0));
}

#[tokio::test]
async fn a_quota_counts_per_subject_the_service_names() {
    let (auth, _seen) = auth_service().await;
    let (app, _faults) = faults().await;
    let rest = config(auth, app, "").replace(
        "[[routes]]\npath = \"/echo\"\nupstream = \"app\"\nauth = \"external\"\n",
        "[rate_limits.one]\nrequests = 1\nper = \"1h\"\nkey = \"subject\"\n\n\
         [[routes]]\npath = \"/echo\"\nupstream = \"app\"\nauth = \"external\"\nrate_limit = \"one\"\n",
    );
    let gw = gateway("", &rest).await;
    assert_eq!(ask(gw.addr(), "/echo", "alice").await.status, 200);
    assert_rule(&ask(gw.addr(), "/echo", "alice").await, 429, "rate.limited");
    // Another subject has a quota of its own.
    assert_eq!(ask(gw.addr(), "/echo", "bob").await.status, 200);
}

#[tokio::test]
async fn a_reload_that_keeps_the_auth_service_keeps_its_cache() {
    let (auth, seen) = auth_service().await;
    let (app, _faults) = faults().await;
    let cache = r#"cache = { ttl = "1h" }"#;
    let rest = config(auth, app, cache);
    let gw = gateway("", &rest).await;
    assert_eq!(ask(gw.addr(), "/echo", "alice").await.status, 200);
    let again = support::parse_config(&format!(
        "{}listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\naccess_log = false\n{rest}",
        support::GATEWAY_TABLE
    ));
    gw.reload(again).unwrap();
    assert_eq!(ask(gw.addr(), "/echo", "alice").await.status, 200);
    assert_eq!(seen.lock().unwrap().calls.get("alice"), Some(&1));
}
