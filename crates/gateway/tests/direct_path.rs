//! The direct HTTP/1.1 path (`direct_path = true`, the default) against the
//! hyper path (`direct_path = false`): the same requests through both must
//! get the same answers, and a connection moves to hyper at the first
//! request the direct path does not take.

mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Routes to `upstream` (a faults server, or a canned one), one deprecated,
/// one to a closed port, one with a short response timeout.
fn routes(upstream: SocketAddr, closed: SocketAddr) -> String {
    format!(
        r#"
[upstreams.svc]
targets = ["{upstream}"]

[upstreams.gone]
targets = ["{closed}"]

[upstreams.slow]
targets = ["{upstream}"]
response_timeout = "100ms"

[[routes]]
path = "/old/{{*rest}}"
upstream = "svc"
deprecated = {{ since = "2026-01-01T00:00:00Z", sunset = "2027-06-30T00:00:00Z", link = "https://example.com/migrate" }}

[[routes]]
path = "/gone/{{*rest}}"
upstream = "gone"

[[routes]]
path = "/slow/{{*rest}}"
upstream = "slow"

[[routes]]
path = "/{{*rest}}"
upstream = "svc"
"#
    )
}

/// The gateway in front of `upstream`, on the direct path or not.
async fn gateway_on(
    direct: bool,
    upstream: SocketAddr,
    closed: SocketAddr,
) -> candor_gateway::Gateway {
    gateway(
        &format!("direct_path = {direct}\nworkers = 1"),
        &routes(upstream, closed),
    )
    .await
}

/// A gateway on each path in front of `upstream`: (direct, hyper).
async fn both_paths(upstream: SocketAddr) -> (candor_gateway::Gateway, candor_gateway::Gateway) {
    let closed = closed_port().await;
    (
        gateway_on(true, upstream, closed).await,
        gateway_on(false, upstream, closed).await,
    )
}

/// What a client sees of a response: status, fields (but `Date`, which
/// moves with the clock) and the body, or the error that ended it.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    fields: Vec<(String, String)>,
    body: Result<Bytes, String>,
}

async fn see(addr: SocketAddr, method: Method, path: &str, headers: &[(&str, &str)]) -> Seen {
    see_with_body(addr, method, path, headers, Bytes::new()).await
}

impl Seen {
    fn aborted(&self) -> bool {
        self.body.is_err()
    }
}

fn fields(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| *name != http::header::DATE)
        .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect();
    out.sort();
    out
}

/// Request fields, as `see` takes them.
type Fields = [(&'static str, &'static str)];

#[tokio::test]
async fn both_paths_answer_every_kind_of_request_alike() {
    let (upstream, _faults) = faults().await;
    let (direct, hyper) = both_paths(upstream).await;
    let forwarded = [
        ("host", "api.example"),
        ("x-request-id", "fixed-id-1"),
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
        ("x-forwarded-proto", "spoofed"),
        ("x-forwarded-host", "spoofed.example"),
        ("x-subject", "mallory"),
        ("connection", "keep-alive"),
        ("accept", "application/json"),
    ];
    let id = [("host", "api.example"), ("x-request-id", "fixed-id-2")];
    let text = [
        ("host", "api.example"),
        ("x-request-id", "fixed-id-3"),
        ("accept", "text/plain"),
    ];
    let cases: Vec<(Method, &str, &Fields)> = vec![
        (Method::GET, "/echo?a=1&b=%20", &forwarded),
        (Method::DELETE, "/echo", &id),
        (Method::OPTIONS, "/echo", &id),
        (Method::HEAD, "/ok", &id),
        (Method::GET, "/ok", &id),
        (Method::GET, "/status/503", &id),
        (Method::GET, "/status/204", &id),
        (Method::GET, "/status/304", &id),
        (Method::GET, "/401-bare", &id),
        (Method::GET, "/200-error", &id),
        (Method::GET, "/garbage", &id),
        (Method::GET, "/reset", &id),
        (Method::GET, "/bad-length", &id),
        (Method::GET, "/truncate", &id),
        (Method::GET, "/old/echo", &id),
        (Method::GET, "/gone/x", &id),
        (Method::GET, "/gone/x", &text),
        (Method::GET, "/slow/slow?ms=2000", &id),
    ];
    for (method, path, headers) in cases {
        let a = see(direct.addr(), method.clone(), path, headers).await;
        let b = see(hyper.addr(), method.clone(), path, headers).await;
        assert_eq!(
            a, b,
            "{method} {path}: direct path (left) vs hyper path (right)"
        );
    }
    let served = metric(&direct.metrics_text(), "candor_direct_requests_total", &[]);
    assert!(served.is_some_and(|n| n >= 15.0), "{served:?}");
    assert_eq!(
        metric(&hyper.metrics_text(), "candor_direct_requests_total", &[]),
        Some(0.0)
    );
}

/// An upstream that answers every request on a connection with the next
/// of `replies` (raw bytes), closing after the last.
async fn canned(replies: Vec<&'static [u8]>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let replies = replies.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for reply in replies {
                    if !read_head(&mut stream, &mut seen).await {
                        return;
                    }
                    let end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    seen.drain(..end);
                    if stream.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn both_paths_relay_every_framing_alike() {
    let replies: Vec<(&str, &'static [u8])> = vec![
        (
            "chunked",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/plain\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n",
        ),
        (
            "chunked with trailers",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-sum: 1\r\n\r\n",
        ),
        (
            "until close",
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nread to the end",
        ),
        (
            "informational first",
            b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        ),
        (
            "chunked wins over a length",
            b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        ),
        (
            "hop-by-hop fields and what Connection names",
            b"HTTP/1.1 200 OK\r\nconnection: x-secret, keep-alive\r\nx-secret: 1\r\nkeep-alive: timeout=5\r\nx-request-id: upstream-id\r\ncontent-length: 2\r\n\r\nok",
        ),
        (
            "a server error with its own service name",
            b"HTTP/1.1 502 Bad Gateway\r\nx-upstream-service: deeper\r\ncontent-length: 0\r\n\r\n",
        ),
        (
            "differing lengths",
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
        ),
        ("a signed length", b"HTTP/1.1 200 OK\r\ncontent-length: +2\r\n\r\nok"),
        (
            "switching protocols unasked",
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
        ),
        ("no status", b"HTTP/1.1 abc OK\r\n\r\n"),
        (
            "a chunk cut short",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\nshort",
        ),
        (
            "a broken chunk size",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
        ),
        (
            "a length cut short",
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
        ),
        ("HTTP/1.0", b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"),
        (
            "HTTP/1.0 until close",
            b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nread to the end",
        ),
        (
            "HTTP/1.0 keep-alive",
            b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok",
        ),
        (
            "HTTP/1.0 keep-alive until close",
            b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\n\r\nread to the end",
        ),
        (
            "HTTP/1.0 chunked (invalid: no transfer coding in HTTP/1.0)",
            b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        ),
        ("HTTP/1.0 no content", b"HTTP/1.0 204 No Content\r\n\r\n"),
    ];
    for (what, reply) in replies {
        let upstream = canned(vec![reply]).await;
        let (direct, hyper) = both_paths(upstream).await;
        let id = [("host", "api.example"), ("x-request-id", "canned")];
        for method in [Method::GET, Method::HEAD] {
            let a = see(direct.addr(), method.clone(), "/x", &id).await;
            let b = see(hyper.addr(), method.clone(), "/x", &id).await;
            // Where the body breaks, hyper may abort before the head or
            // after it: the client gets no complete message either way.
            if !(a.aborted() && b.aborted()) {
                assert_eq!(
                    a, b,
                    "{what}, {method}: direct path (left) vs hyper path (right)"
                );
            }
        }
    }
}

#[tokio::test]
async fn both_paths_answer_an_http_1_0_upstream_in_http_1_1_and_keep_the_client() {
    // The gateway sends its own version (RFC 9110 section 6.2): a body the
    // upstream ends by closing is chunked for the client, whose connection
    // goes on to its next request.
    for reply in [
        &b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"[..],
        b"HTTP/1.0 200 OK\r\n\r\nread to the end",
    ] {
        let upstream = canned(vec![reply]).await;
        let (direct, hyper) = both_paths(upstream).await;
        for gw in [&direct, &hyper] {
            let text = raw_exchange(
                gw.addr(),
                b"GET /a HTTP/1.1\r\nhost: a\r\n\r\nGET /b HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
            )
            .await;
            let status_lines: Vec<&str> = text
                .match_indices("HTTP/1.")
                .map(|(at, _)| &text[at..at + 12])
                .collect();
            assert_eq!(
                status_lines,
                ["HTTP/1.1 200", "HTTP/1.1 200"],
                "{:?}: {text}",
                String::from_utf8_lossy(reply)
            );
        }
    }
}

#[tokio::test]
async fn a_body_that_fails_is_counted_and_aborts_the_client_on_the_direct_path() {
    let upstream = canned(vec![
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\nshort",
    ])
    .await;
    let gw = gateway_on(true, upstream, closed_port().await).await;
    let seen = see(gw.addr(), Method::GET, "/x", &[]).await;
    assert_eq!(seen.status, 200);
    assert!(seen.body.is_err(), "a cut body never looks complete");
    let text = gw.metrics_text();
    assert_eq!(
        metric(
            &text,
            "candor_upstream_truncated_total",
            &[("upstream", "svc")]
        ),
        Some(1.0),
        "{text}"
    );
}

/// One HTTP/1.1 connection to `addr`, driven by hyper's client.
async fn connection(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

async fn on(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> (u16, Bytes) {
    sender.ready().await.unwrap();
    let res = sender.send_request(req).await.expect("answered");
    let status = res.status().as_u16();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

#[tokio::test]
async fn a_connection_moves_to_hyper_at_the_first_request_the_direct_path_does_not_take() {
    let (upstream, _faults) = faults().await;
    let gw = gateway_on(true, upstream, closed_port().await).await;
    let mut conn = connection(gw.addr()).await;
    let get = || {
        Request::get("/echo")
            .header("host", "api.example")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let (status, _) = on(&mut conn, get()).await;
    assert_eq!(status, 200);
    let text = gw.metrics_text();
    assert_eq!(
        metric(&text, "candor_direct_requests_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "candor_direct_handovers_total", &[]),
        Some(0.0)
    );

    // A method it does not take: hyper's, from here on, on the same
    // connection.
    let post = Request::builder()
        .method(Method::from_bytes(b"REPORT").unwrap())
        .uri("/echo")
        .header("host", "api.example")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{\"a\":1}")))
        .unwrap();
    let (status, body) = on(&mut conn, post).await;
    assert_eq!(status, 200);
    let echoed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echoed["body"], "{\"a\":1}");
    let (status, _) = on(&mut conn, get()).await;
    assert_eq!(status, 200);
    let text = gw.metrics_text();
    assert_eq!(
        metric(&text, "candor_direct_requests_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "candor_direct_handovers_total", &[]),
        Some(1.0)
    );
    let answered = |method| {
        metric(
            &text,
            "candor_requests_total",
            &[("method", method), ("status", "200")],
        )
    };
    assert_eq!(answered("GET"), Some(2.0), "{text}");
    assert_eq!(answered("other"), Some(1.0), "{text}");
}

/// Writes `bytes` on a new connection and reads until the gateway closes it.
async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_and_close_is_honoured() {
    let (upstream, _faults) = faults().await;
    let gw = gateway_on(true, upstream, closed_port().await).await;
    let text = raw_exchange(
        gw.addr(),
        b"GET /status/201 HTTP/1.1\r\nhost: a\r\n\r\nGET /status/202 HTTP/1.1\r\nhost: a\r\n\r\nGET /status/203 HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    )
    .await;
    // Bodies end without a line break: find each status line by its start.
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &text[at + 9..at + 12])
        .collect();
    assert_eq!(statuses, ["201", "202", "203"], "{text}");
    // The last says it closes; read_to_end returned, so it did.
    let last = &text[text.rfind("HTTP/1.1 203").unwrap()..];
    assert!(
        last.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    let direct = metric(&gw.metrics_text(), "candor_direct_requests_total", &[]);
    assert_eq!(direct, Some(3.0));
}

#[tokio::test]
async fn what_the_direct_path_does_not_take_gets_hyper_s_answer() {
    let (upstream, _faults) = faults().await;
    let (direct, hyper) = both_paths(upstream).await;
    let status_line = |text: &str| text.lines().next().unwrap_or_default().to_owned();
    for request in [
        // Not HTTP.
        &b"hello\r\n\r\n"[..],
        // HTTP/1.0, then a request without Host.
        b"GET /ok HTTP/1.0\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nconnection: close\r\n\r\n",
        // Two Hosts, a target hyper refuses, and an unknown route.
        b"GET /ok HTTP/1.1\r\nhost: a\r\nhost: b\r\nconnection: close\r\n\r\n",
        b"GET /o|k HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
        b"GET *ok HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
        b"BREW /ok HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
        // Smuggling shapes: a length with chunked, two lengths.
        b"POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
        b"GET /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
    ] {
        let a = raw_exchange(direct.addr(), request).await;
        let b = raw_exchange(hyper.addr(), request).await;
        assert_eq!(
            status_line(&a),
            status_line(&b),
            "{:?}\ndirect:\n{a}\nhyper:\n{b}",
            String::from_utf8_lossy(request)
        );
    }
}

const SECRET: &str = "direct-path-test-secret-0123456789abcdef";

fn token(roles: &[&str]) -> String {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": "ada", "roles": roles, "aud": "api", "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// Routes with every policy the direct path now runs: JWT, roles (plain
/// and concealed), rate limits by address and by header, and a monitored,
/// repaired upstream.
async fn policy_gateway(direct: bool, upstream: SocketAddr) -> candor_gateway::Gateway {
    gateway(
        &format!("direct_path = {direct}\nworkers = 1"),
        &format!(
            r#"
[auth.jwt]
algorithms = ["HS256"]
secret = "{SECRET}"
audience = "api"

[rate_limits.two]
requests = 2
per = "1h"
key = "ip"

[rate_limits.tenant]
requests = 1
per = "1h"
key = "header:x-tenant"

[upstreams.svc]
targets = ["{upstream}"]

[upstreams.watched]
targets = ["{upstream}"]
monitor = true
repair = ["challenge", "retry_after"]

[[routes]]
path = "/jwt/{{*rest}}"
upstream = "svc"
auth = "jwt"

[[routes]]
path = "/admin/{{*rest}}"
upstream = "svc"
auth = "jwt"
roles = ["admin"]

[[routes]]
path = "/secret/{{*rest}}"
upstream = "svc"
auth = "jwt"
roles = ["admin"]
conceal = true

[[routes]]
path = "/limited/{{*rest}}"
upstream = "svc"
rate_limit = "two"

[[routes]]
path = "/tenant/{{*rest}}"
upstream = "svc"
rate_limit = "tenant"

[[routes]]
path = "/watched/{{*rest}}"
upstream = "watched"
"#
        ),
    )
    .await
}

/// `Seen` with the rate-limit reset times (which move with the clock)
/// blanked, in the fields and in a 429's detail.
fn timeless(mut seen: Seen) -> Seen {
    for (name, value) in &mut seen.fields {
        if name == "ratelimit" || name == "retry-after" {
            value.clear();
        }
    }
    if seen.status == 429
        && let Ok(body) = &seen.body
    {
        let blanked: Vec<u8> = body
            .iter()
            .map(|b| if b.is_ascii_digit() { b'#' } else { *b })
            .collect();
        seen.body = Ok(Bytes::from(blanked));
    }
    seen
}

/// The series of `names` in a metrics text, sorted.
fn series(text: &str, names: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| names.iter().any(|n| l.starts_with(n)))
        .map(str::to_owned)
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn both_paths_run_every_policy_alike() {
    let (upstream, _faults) = faults().await;
    let direct = policy_gateway(true, upstream).await;
    let hyper = policy_gateway(false, upstream).await;
    let user = format!("Bearer {}", token(&["reader"]));
    let admin = format!("Bearer {}", token(&["admin"]));
    let host = ("host", "api.example");
    let id = ("x-request-id", "policy");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/jwt/echo", vec![host, id, ("authorization", &user)]),
        (
            "/jwt/echo",
            vec![host, id, ("authorization", &user), ("x-subject", "mallory")],
        ),
        ("/jwt/echo", vec![host, id]),
        (
            "/jwt/echo",
            vec![host, id, ("authorization", "Bearer nope")],
        ),
        ("/jwt/echo", vec![host, id, ("authorization", "Bearer ")]),
        ("/admin/echo", vec![host, id, ("authorization", &user)]),
        ("/admin/echo", vec![host, id, ("authorization", &admin)]),
        ("/secret/echo", vec![host, id, ("authorization", &user)]),
        ("/limited/ok", vec![host, id]),
        ("/limited/status/503", vec![host, id]),
        ("/limited/ok", vec![host, id]),
        ("/tenant/ok", vec![host, id, ("x-tenant", "a")]),
        ("/tenant/ok", vec![host, id, ("x-tenant", "a")]),
        ("/tenant/ok", vec![host, id, ("x-tenant", "b")]),
        ("/watched/200-error", vec![host, id]),
        ("/watched/401-bare", vec![host, id]),
        ("/watched/status/503", vec![host, id]),
        ("/watched/status/429", vec![host, id]),
        ("/watched/echo", vec![host, id, ("accept", "text/html")]),
    ];
    for (path, headers) in &cases {
        let a = timeless(see(direct.addr(), Method::GET, path, headers).await);
        let b = timeless(see(hyper.addr(), Method::GET, path, headers).await);
        assert_eq!(
            a, b,
            "GET {path} {headers:?}: direct path (left) vs hyper path (right)"
        );
    }
    let watched = [
        "candor_contract_violations_total",
        "candor_contract_repairs_total",
        "candor_gateway_errors_total",
        "candor_requests_total",
    ];
    assert_eq!(
        series(&direct.metrics_text(), &watched),
        series(&hyper.metrics_text(), &watched)
    );
    let text = direct.metrics_text();
    assert!(
        metric(&text, "candor_direct_requests_total", &[]).is_some_and(|n| n >= 12.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            "candor_contract_violations_total",
            &[("upstream", "watched")]
        )
        .is_some(),
        "{text}"
    );
}

async fn see_with_body(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Seen {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body)).unwrap();
    let res = match client().request(req).await {
        Ok(res) => res,
        Err(e) => {
            return Seen {
                status: 0,
                fields: Vec::new(),
                body: Err(format!("no response: {e}")),
            };
        }
    };
    let (parts, body) = res.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|_| "the body failed".to_owned());
    Seen {
        status: parts.status.as_u16(),
        fields: fields(&parts.headers),
        body,
    }
}

#[tokio::test]
async fn both_paths_pass_request_bodies_alike() {
    let (upstream, _faults) = faults().await;
    let (direct, hyper) = both_paths(upstream).await;
    let json = [
        ("host", "api.example"),
        ("x-request-id", "bodies"),
        ("content-type", "application/json"),
    ];
    let small = Bytes::from_static(b"{\"name\":\"ada\"}");
    // Within what the direct path sends, and over it (hyper's then).
    let large = Bytes::from(vec![b'x'; 60 * 1024]);
    let larger = Bytes::from(vec![b'w'; 512 * 1024]);
    let over = Bytes::from(vec![b'y'; 1024 * 1024 + 1]);
    let cases = [
        (Method::POST, "/echo", small.clone()),
        (Method::PUT, "/echo", small.clone()),
        (Method::PATCH, "/echo", small.clone()),
        (Method::DELETE, "/echo", small.clone()),
        (Method::POST, "/echo", Bytes::new()),
        (Method::POST, "/echo", large.clone()),
        (Method::POST, "/echo", larger),
        (Method::POST, "/status/201", small.clone()),
        (Method::POST, "/echo", over),
        (Method::POST, "/gone/x", large),
        (Method::POST, "/gone/x", small),
    ];
    for (method, path, body) in cases {
        let len = body.len();
        let a = see_with_body(direct.addr(), method.clone(), path, &json, body.clone()).await;
        let b = see_with_body(hyper.addr(), method.clone(), path, &json, body).await;
        assert_eq!(
            a, b,
            "{method} {path} with {len} bytes: direct path (left) vs hyper path (right)"
        );
    }
    let text = direct.metrics_text();
    assert!(
        metric(&text, "candor_direct_requests_total", &[]).is_some_and(|n| n >= 9.0),
        "{text}"
    );
}

#[tokio::test]
async fn a_body_split_from_its_head_and_the_next_request_after_it_are_read_right() {
    let (upstream, _faults) = faults().await;
    let gw = gateway_on(true, upstream, closed_port().await).await;
    let mut stream = TcpStream::connect(gw.addr()).await.unwrap();
    // The head and half the body, then the rest with the next request.
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\n\r\n01234")
        .await
        .unwrap();
    let mut first = vec![0u8; 4096];
    stream
        .write_all(b"56789GET /status/202 HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    first.clear();
    let text = String::from_utf8_lossy(&out);
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &text[at + 9..at + 12])
        .collect();
    assert_eq!(statuses, ["200", "202"], "{text}");
    assert!(text.contains(r#""body":"0123456789""#), "{text}");
    assert_eq!(
        metric(&gw.metrics_text(), "candor_direct_requests_total", &[]),
        Some(2.0)
    );
}

#[tokio::test]
async fn a_body_left_unread_by_a_failure_is_read_away_and_the_connection_goes_on() {
    let (upstream, _faults) = faults().await;
    let gw = gateway_on(true, upstream, closed_port().await).await;
    let mut conn = connection(gw.addr()).await;
    // Refused upstream: answered before the body was read (60 KiB: more
    // than one read takes, within what the direct path sends).
    let post = Request::post("/gone/x")
        .header("host", "api.example")
        .body(Full::new(Bytes::from(vec![b'z'; 60 * 1024])))
        .unwrap();
    let (status, _) = on(&mut conn, post).await;
    assert_eq!(status, 502);
    let get = Request::get("/status/202")
        .header("host", "api.example")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _) = on(&mut conn, get).await;
    assert_eq!(status, 202, "the same connection serves the next request");
    let text = gw.metrics_text();
    assert_eq!(
        metric(&text, "candor_direct_requests_total", &[]),
        Some(2.0)
    );
    assert_eq!(
        metric(&text, "candor_direct_handovers_total", &[]),
        Some(0.0)
    );
}

/// Sends a head announcing a `body_len`-byte body to `path`, reads the
/// answer's status, then sends the body until the gateway ends the
/// connection: the status and how much of the body went.
async fn linger(addr: SocketAddr, path: &str, body_len: u64) -> (String, u64) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head =
        format!("POST {path} HTTP/1.1\r\nhost: api.example\r\ncontent-length: {body_len}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let status = String::from_utf8_lossy(&answer[9..12]).into_owned();
    let (mut reader, mut writer) = stream.into_split();
    let chunk = vec![b'z'; 256 * 1024];
    let mut sent = 0u64;
    let writing = async {
        while sent < body_len && writer.write_all(&chunk).await.is_ok() {
            sent += chunk.len() as u64;
        }
    };
    let ended = async { while matches!(reader.read(&mut buf).await, Ok(n) if n > 0) {} };
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        tokio::join!(writing, ended)
    })
    .await
    .unwrap_or_else(|_| panic!("{path}: the connection stayed open"));
    (status, sent)
}

#[tokio::test]
async fn an_unread_body_is_read_away_up_to_the_one_linger_bound() {
    let closed = closed_port().await;
    let routes = format!(
        "[upstreams.gone]\ntargets = [\"{closed}\"]\n\n[[routes]]\npath = \"/gone/{{*rest}}\"\nupstream = \"gone\"\n"
    );
    let bound = candor_contract::LINGER_BYTES;
    let body_len = 3 * bound;
    for direct in [true, false] {
        let global = format!("direct_path = {direct}\nworkers = 1\nmax_body_bytes = {body_len}");
        let gw = gateway(&global, &routes).await;
        // Unknown route: answered by the hyper path on both (the direct
        // path hands it over). Refused upstream: by each path itself.
        let mut cases = vec![("/nowhere", "404")];
        if direct {
            cases.push(("/gone/x", "502"));
        }
        for (path, expected) in cases {
            // The body is read past the bound, then the connection ends:
            // the client sends more than the bound, never all of it.
            let (status, sent) = linger(gw.addr(), path, body_len).await;
            assert_eq!(status, expected, "direct = {direct}, {path}");
            assert!(
                sent > bound / 2 && sent < body_len,
                "direct = {direct}, {path}: {sent} of {body_len} bytes sent"
            );
        }
    }
}

/// A request: method, fields and body.
type Case = (Method, Vec<(&'static str, &'static str)>, &'static [u8]);

#[tokio::test]
async fn both_paths_validate_bodies_alike() {
    let (upstream, _faults) = faults().await;
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("user.json");
    std::fs::write(
        &schema,
        r#"{"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}, "additionalProperties": false}"#,
    )
    .unwrap();
    let routes = format!(
        r#"
[upstreams.svc]
targets = ["{upstream}"]

[[routes]]
path = "/users/{{*rest}}"
upstream = "svc"
request_schema = "{}"
"#,
        schema.display()
    );
    let direct = gateway("direct_path = true\nworkers = 1", &routes).await;
    let hyper = gateway("direct_path = false\nworkers = 1", &routes).await;
    let host = ("host", "api.example");
    let id = ("x-request-id", "schema");
    let json = ("content-type", "application/json");
    let cases: Vec<Case> = vec![
        (Method::POST, vec![host, id, json], br#"{"name":"ada"}"#),
        (Method::POST, vec![host, id, json], br#"{"name":"ada","#),
        (Method::POST, vec![host, id, json], br#"{"name":7,"x":1}"#),
        (Method::POST, vec![host, id, json], b""),
        (Method::POST, vec![host, id], br#"{"name":"ada"}"#),
        (
            Method::PUT,
            vec![host, id, ("content-type", "text/plain")],
            b"ada",
        ),
        (
            Method::PATCH,
            vec![host, id, ("content-type", "application/merge-patch+json")],
            br#"{"name":"b"}"#,
        ),
        (Method::GET, vec![host, id], b""),
    ];
    for (method, headers, body) in &cases {
        let body = Bytes::from_static(body);
        let a = see_with_body(
            direct.addr(),
            method.clone(),
            "/users/echo",
            headers,
            body.clone(),
        )
        .await;
        let b = see_with_body(hyper.addr(), method.clone(), "/users/echo", headers, body).await;
        assert_eq!(
            a, b,
            "{method} {headers:?}: direct path (left) vs hyper path (right)"
        );
    }
    let text = direct.metrics_text();
    assert!(
        metric(&text, "candor_direct_requests_total", &[]).is_some_and(|n| n >= 5.0),
        "{text}"
    );
}

/// An upstream that reads a request head, answers 401 at once (saying it
/// will close) and then holds the connection open without reading the body
/// (closing with the body unread would reset the connection, which loses
/// the answer on any path, by a race).
async fn answers_early() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if !read_head(&mut stream, &mut Vec::new()).await {
                    return;
                }
                let reply = b"HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                if stream.write_all(reply).await.is_ok() {
                    std::future::pending::<()>().await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_upstream_that_answers_before_reading_the_body_is_heard_on_both_paths() {
    let upstream = answers_early().await;
    let (direct, hyper) = both_paths(upstream).await;
    let headers = [("host", "api.example"), ("x-request-id", "early")];
    for size in [1024, 60 * 1024, 512 * 1024] {
        let body = Bytes::from(vec![b'e'; size]);
        let a = see_with_body(direct.addr(), Method::POST, "/x", &headers, body.clone()).await;
        let b = see_with_body(hyper.addr(), Method::POST, "/x", &headers, body).await;
        assert_eq!(a.status, 401, "{size} bytes, direct: {a:?}");
        assert_eq!(
            a, b,
            "{size} bytes: direct path (left) vs hyper path (right)"
        );
    }
}

/// The echo's view of the fields the upstream received for a raw request
/// (sent with `connection: close`), the gateway's own per-request fields
/// (request id) left out.
async fn echoed_fields(addr: SocketAddr, head: &[u8]) -> serde_json::Value {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = head.to_vec();
    request.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
    stream.write_all(&request).await.unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{head:?}: {text}");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    let mut headers = json["headers"].clone();
    headers.as_object_mut().unwrap().remove("x-request-id");
    headers
}

#[tokio::test]
async fn both_paths_forward_the_same_fields_for_hostile_forwarding_fields() {
    let (upstream, _faults) = faults().await;
    let (direct, hyper) = both_paths(upstream).await;
    let cases: Vec<(&[u8], serde_json::Value)> = vec![
        // A prior X-Forwarded-For that is not text and a Forwarded with an
        // open quote are earlier hops' noise: this hop starts each list.
        (
            b"GET /echo HTTP/1.1\r\nhost: api.example\r\nx-forwarded-for: \xff\xfe, 10.9.9.9\r\nforwarded: for=\"10.6.6.6",
            serde_json::json!({
                "host": "api.example",
                "x-forwarded-for": "127.0.0.1",
                "x-forwarded-proto": "http",
                "forwarded": "for=127.0.0.1;proto=http;host=\"api.example\"",
                "x-forwarded-host": "api.example",
            }),
        ),
        // Names in any case (an identity field the gateway sets never comes
        // from a client); only the first of each list field counts.
        (
            b"GET /echo HTTP/1.1\r\nHOST: api.example\r\nX-Forwarded-For: 192.0.2.1\r\nx-forwarded-for: 192.0.2.2\r\nX-AUTH-SUBJECT: mallory\r\nX-Forwarded-Host: spoofed\r\nx-other: 1",
            serde_json::json!({
                "host": "api.example",
                "x-forwarded-for": "192.0.2.1, 127.0.0.1",
                "x-other": "1",
                "x-forwarded-proto": "http",
                "forwarded": "for=127.0.0.1;proto=http;host=\"api.example\"",
                "x-forwarded-host": "api.example",
            }),
        ),
        // A field `Connection` names goes no further (RFC 9110 7.6.1).
        (
            b"GET /echo HTTP/1.1\r\nhost: api.example\r\nconnection: x-secret\r\nx-secret: 1\r\nx-kept: 2",
            serde_json::json!({
                "host": "api.example",
                "x-kept": "2",
                "x-forwarded-for": "127.0.0.1",
                "x-forwarded-proto": "http",
                "forwarded": "for=127.0.0.1;proto=http;host=\"api.example\"",
                "x-forwarded-host": "api.example",
            }),
        ),
    ];
    for (head, expected) in cases {
        let a = echoed_fields(direct.addr(), head).await;
        let b = echoed_fields(hyper.addr(), head).await;
        assert_eq!(a, b, "{head:?}: direct path (left) vs hyper path (right)");
        assert_eq!(a, expected, "{head:?}");
    }
    // The first two went the direct path's own way.
    let served = metric(&direct.metrics_text(), "candor_direct_requests_total", &[]);
    assert_eq!(served, Some(2.0));
}
