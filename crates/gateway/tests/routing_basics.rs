//! Routing basics on both data paths, compared: a route's path prefix
//! (`strip_prefix`, `add_prefix`, `X-Forwarded-Prefix`), its field edits
//! on either side, and its CORS policy; hostile inputs included.

mod support;

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use candor_gateway::Gateway;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An upstream that answers every request with what it received: its
/// request-target and its fields (names lowered, sorted by name, values
/// of one name in the order sent), as JSON; and with fields of its own a
/// route may edit (`x-remove-me`, `cache-control`, an
/// `access-control-allow-origin` the gateway's CORS policy replaces).
async fn recorder() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    if !read_head(&mut stream, &mut seen).await {
                        return;
                    }
                    let end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let head = String::from_utf8_lossy(&seen[..end]).into_owned();
                    seen.drain(..end);
                    let mut lines = head.split("\r\n");
                    let target = lines
                        .next()
                        .and_then(|l| l.split(' ').nth(1))
                        .unwrap_or_default()
                        .to_owned();
                    let mut fields: Vec<(String, String)> = lines
                        .filter_map(|l| l.split_once(": "))
                        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
                        .collect();
                    fields.sort_by(|a, b| a.0.cmp(&b.0));
                    let body =
                        serde_json::json!({ "target": target, "fields": fields }).to_string();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-remove-me: 1\r\ncache-control: max-age=60\r\naccess-control-allow-origin: https://upstream.example\r\nx-total: 7\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

fn routes(upstream: SocketAddr) -> String {
    format!(
        r#"
[auth.jwt]
algorithms = ["HS256"]
secret = "{SECRET}"

[upstreams.rec]
targets = ["{upstream}"]

[[routes]]
path = "/api/{{*rest}}"
upstream = "rec"
strip_prefix = "/api"

[[routes]]
path = "/v1/{{*rest}}"
upstream = "rec"
strip_prefix = "/v1"
add_prefix = "/v2"

[[routes]]
path = "/admin/{{*rest}}"
upstream = "rec"
auth = "jwt"

[[routes]]
path = "/edit/{{*rest}}"
upstream = "rec"
request_headers = {{ set = {{ "X-Api-Version" = "2" }}, add = {{ "X-Tag" = "gw" }}, remove = ["X-Debug"] }}
response_headers = {{ set = {{ "Cache-Control" = "no-store" }}, add = {{ "X-Served-By" = "candor" }}, remove = ["X-Remove-Me"] }}

[[routes]]
path = "/cors/{{*rest}}"
upstream = "rec"
[routes.cors]
allow_origins = ["https://app.example", "https://admin.example"]
allow_methods = ["GET", "PUT"]
allow_headers = ["Content-Type", "X-Token"]
expose_headers = ["X-Total"]
allow_credentials = true
max_age = "10m"

[[routes]]
path = "/open/{{*rest}}"
upstream = "rec"
cors = {{ allow_origins = ["*"] }}

[rate_limits.one]
requests = 1
per = "1h"
key = "ip"

[[routes]]
path = "/cors-auth/{{*rest}}"
upstream = "rec"
auth = "jwt"
cors = {{ allow_origins = ["https://app.example"] }}

[[routes]]
path = "/cors-limited/{{*rest}}"
upstream = "rec"
rate_limit = "one"
cors = {{ allow_origins = ["https://app.example"] }}

[[routes]]
path = "/{{*rest}}"
upstream = "rec"
"#
    )
}

struct Pair {
    direct: Gateway,
    hyper: Gateway,
}

async fn pair() -> Pair {
    let upstream = recorder().await;
    let on = |direct: bool| {
        let routes = routes(upstream);
        async move { gateway(&format!("direct_path = {direct}\nworkers = 1"), &routes).await }
    };
    Pair {
        direct: on(true).await,
        hyper: on(false).await,
    }
}

/// What a client sees: status, fields (but `Date`), body.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    fields: Vec<(String, String)>,
    body: Bytes,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has_cors_fields(&self) -> bool {
        self.fields
            .iter()
            .any(|(n, _)| n.starts_with("access-control-"))
    }

    /// What the recorder received.
    fn received(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("not an echo ({e}): {}", String::from_utf8_lossy(&self.body))
        })
    }

    /// The values of a field the recorder received, in order.
    fn upstream_got(&self, name: &str) -> Vec<String> {
        self.received()["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f[0] == name)
            .map(|f| f[1].as_str().unwrap().to_owned())
            .collect()
    }

    fn target(&self) -> String {
        self.received()["target"].as_str().unwrap().to_owned()
    }

    fn rule(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        Some(v["type"].as_str()?.rsplit('/').next()?.to_owned())
    }
}

async fn see(addr: SocketAddr, method: &Method, target: &str, headers: &[(&str, &str)]) -> Seen {
    let mut req = Request::builder()
        .method(method.clone())
        .uri(format!("http://{addr}{target}"))
        .header("host", "api.example")
        .header("x-request-id", "fixed-id");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = client()
        .request(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .expect("the gateway answers");
    let (parts, body) = res.into_parts();
    let mut fields: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(n, _)| *n != http::header::DATE)
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    fields.sort();
    Seen {
        status: parts.status.as_u16(),
        fields,
        body: body.collect().await.expect("a whole body").to_bytes(),
    }
}

/// Sends the request through both gateways: the answers must agree.
async fn both(pair: &Pair, method: Method, target: &str, headers: &[(&str, &str)]) -> Seen {
    let a = see(pair.direct.addr(), &method, target, headers).await;
    let b = see(pair.hyper.addr(), &method, target, headers).await;
    assert_eq!(
        a, b,
        "{method} {target}: direct path (left) vs hyper path (right)"
    );
    a
}

#[tokio::test]
async fn strip_prefix_forwards_the_rest_and_says_what_was_stripped() {
    let pair = pair().await;
    let spoof = [("x-forwarded-prefix", "/evil")];
    let cases = [
        ("/api/users/7?a=1&b=%20", "/users/7?a=1&b=%20"),
        ("/api/", "/"),
        ("/api", "/"),
        ("/api?q=1", "/?q=1"),
        // Normalised first: the rest is the normal path's.
        ("/api//users/./7", "/users/7"),
        ("/api/%7Eme", "/~me"),
        ("/v1/users?x", "/v2/users?x"),
        ("/v1", "/v2"),
        ("/v1/", "/v2/"),
    ];
    for (sent, forwarded) in cases {
        let seen = both(&pair, Method::GET, sent, &spoof).await;
        assert_eq!(seen.status, 200, "{sent}");
        assert_eq!(seen.target(), forwarded, "{sent}");
        let prefix = if sent.starts_with("/api") {
            "/api"
        } else {
            "/v1"
        };
        assert_eq!(seen.upstream_got("x-forwarded-prefix"), [prefix], "{sent}");
    }
    // No prefix where the route strips none, and never the client's.
    for sent in ["/apiary/x", "/other"] {
        let seen = both(&pair, Method::GET, sent, &spoof).await;
        assert_eq!(seen.target(), sent);
        assert!(seen.upstream_got("x-forwarded-prefix").is_empty(), "{sent}");
    }
    // The direct path served these itself (the comparison is between
    // the two codecs, not hyper and hyper).
    let served = metric(
        &pair.direct.metrics_text(),
        "candor_direct_requests_total",
        &[],
    );
    assert!(served.is_some_and(|n| n >= 11.0), "{served:?}");
}

#[tokio::test]
async fn a_stripped_prefix_never_opens_a_way_around_another_route() {
    let pair = pair().await;
    // Dot segments are resolved before routing and stripping: these are
    // the protected route's paths, and it asks for credentials.
    for sent in [
        "/api/../admin/x",
        "/api/%2e%2e/admin/x",
        "/api/.%2E/admin/x",
        "/v1/../admin/x",
    ] {
        let seen = both(&pair, Method::GET, sent, &[]).await;
        assert_eq!(
            (seen.status, seen.rule().as_deref()),
            (401, Some("auth.missing")),
            "{sent}"
        );
    }
    // An encoded slash cannot be stripped into a separator: refused.
    for sent in ["/api/..%2Fadmin/x", "/api%2Fadmin/x", "/api/%2F%2Fx"] {
        let seen = both(&pair, Method::GET, sent, &[]).await;
        assert_eq!(
            (seen.status, seen.rule().as_deref()),
            (400, Some("request.path_unsafe")),
            "{sent}"
        );
    }
    // Climbing above the stripped prefix's root is still climbing above
    // the gateway's.
    let seen = both(&pair, Method::GET, "/api/../../admin/x", &[]).await;
    assert_eq!(seen.status, 400);
}

#[tokio::test]
async fn a_route_sets_adds_and_removes_fields_on_either_side() {
    let pair = pair().await;
    let sent = [
        ("x-api-version", "1"),
        ("x-tag", "client"),
        ("x-debug", "on"),
        ("X-Debug", "again"),
        ("x-kept", "yes"),
    ];
    let seen = both(&pair, Method::GET, "/edit/x", &sent).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.upstream_got("x-api-version"), ["2"], "set replaces");
    assert_eq!(seen.upstream_got("x-tag"), ["client", "gw"], "add appends");
    assert!(seen.upstream_got("x-debug").is_empty(), "remove drops all");
    assert_eq!(seen.upstream_got("x-kept"), ["yes"]);
    assert_eq!(seen.field("cache-control"), Some("no-store"));
    assert_eq!(seen.field("x-served-by"), Some("candor"));
    assert_eq!(seen.field("x-remove-me"), None);
    assert_eq!(seen.field("x-total"), Some("7"));
    let served = metric(
        &pair.direct.metrics_text(),
        "candor_direct_requests_total",
        &[],
    );
    assert_eq!(served, Some(1.0), "the direct path served it");
    // Routes without edits pass the same fields through untouched.
    let seen = both(&pair, Method::GET, "/plain", &sent).await;
    assert_eq!(seen.upstream_got("x-debug"), ["on", "again"]);
    assert_eq!(seen.upstream_got("x-api-version"), ["1"]);
    assert_eq!(seen.field("x-remove-me"), Some("1"));
    assert_eq!(seen.field("cache-control"), Some("max-age=60"));
}

const APP: &str = "https://app.example";

#[tokio::test]
async fn an_admitted_preflight_is_answered_by_the_gateway() {
    let pair = pair().await;
    let preflight = [
        ("origin", APP),
        ("access-control-request-method", "PUT"),
        ("access-control-request-headers", "content-type, X-Token"),
    ];
    let seen = both(&pair, Method::OPTIONS, "/cors/items/1", &preflight).await;
    assert_eq!(seen.status, 204);
    assert!(seen.body.is_empty());
    assert_eq!(seen.field("access-control-allow-origin"), Some(APP));
    assert_eq!(seen.field("access-control-allow-credentials"), Some("true"));
    assert_eq!(seen.field("access-control-allow-methods"), Some("GET, PUT"));
    assert_eq!(
        seen.field("access-control-allow-headers"),
        Some("content-type, x-token")
    );
    assert_eq!(seen.field("access-control-max-age"), Some("600"));
    assert_eq!(seen.field("vary"), Some("origin"));
    assert_eq!(seen.field("x-request-id"), Some("fixed-id"));
    assert_eq!(seen.field("x-total"), None, "the upstream was not called");
    // Any origin: `*`, no credentials, no Vary.
    let seen = both(
        &pair,
        Method::OPTIONS,
        "/open/x",
        &[("origin", APP), ("access-control-request-method", "POST")],
    )
    .await;
    assert_eq!(seen.status, 204);
    assert_eq!(seen.field("access-control-allow-origin"), Some("*"));
    assert_eq!(seen.field("access-control-allow-credentials"), None);
    assert_eq!(seen.field("vary"), None);
    let metrics = pair.direct.metrics_text();
    assert!(
        metric(
            &metrics,
            "candor_gateway_errors_total",
            &[("rule", "cors.preflight")]
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_preflight_not_admitted_is_refused_without_cors_fields() {
    let pair = pair().await;
    let cases: [(&str, &[(&str, &str)]); 5] = [
        (
            "an origin not listed",
            &[
                ("origin", "https://evil.example"),
                ("access-control-request-method", "GET"),
            ],
        ),
        (
            "an origin listed but spelled otherwise",
            &[
                ("origin", "https://APP.example"),
                ("access-control-request-method", "GET"),
            ],
        ),
        (
            "a method not allowed",
            &[("origin", APP), ("access-control-request-method", "DELETE")],
        ),
        (
            "a method in another case",
            &[("origin", APP), ("access-control-request-method", "put")],
        ),
        (
            "a header not allowed",
            &[
                ("origin", APP),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-token, authorization"),
            ],
        ),
    ];
    for (what, headers) in cases {
        let seen = both(&pair, Method::OPTIONS, "/cors/items", headers).await;
        assert_eq!(
            (seen.status, seen.rule().as_deref()),
            (403, Some("cors.denied")),
            "{what}"
        );
        assert!(!seen.has_cors_fields(), "{what}: {:?}", seen.fields);
    }
    // An OPTIONS that is no preflight goes to the upstream as ever.
    let seen = both(&pair, Method::OPTIONS, "/cors/items", &[("origin", APP)]).await;
    assert_eq!((seen.status, seen.target().as_str()), (200, "/cors/items"));
}

#[tokio::test]
async fn an_actual_request_gets_the_cors_fields_on_the_upstreams_answer() {
    let pair = pair().await;
    let seen = both(&pair, Method::GET, "/cors/items", &[("origin", APP)]).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.field("access-control-allow-origin"), Some(APP));
    assert_eq!(seen.field("access-control-allow-credentials"), Some("true"));
    assert_eq!(seen.field("access-control-expose-headers"), Some("x-total"));
    assert_eq!(seen.field("vary"), Some("origin"));
    let upstream_said = seen
        .fields
        .iter()
        .filter(|(n, _)| n == "access-control-allow-origin")
        .count();
    assert_eq!(upstream_said, 1, "the upstream's own is replaced");
    // Not admitted, or no Origin: no CORS fields (the upstream's dropped
    // too), but the answer still varies by origin.
    for headers in [&[("origin", "https://evil.example")][..], &[]] {
        let seen = both(&pair, Method::GET, "/cors/items", headers).await;
        assert_eq!(seen.status, 200);
        assert!(!seen.has_cors_fields(), "{headers:?}: {:?}", seen.fields);
        assert_eq!(seen.field("vary"), Some("origin"));
    }
    let seen = both(&pair, Method::GET, "/open/x", &[("origin", APP)]).await;
    assert_eq!(seen.field("access-control-allow-origin"), Some("*"));
    assert_eq!(seen.field("vary"), None);
    // A route without a policy passes the upstream's fields as they came.
    let seen = both(&pair, Method::GET, "/plain", &[("origin", APP)]).await;
    assert_eq!(
        seen.field("access-control-allow-origin"),
        Some("https://upstream.example")
    );
}

#[tokio::test]
async fn the_gateways_own_answers_on_a_cors_route_carry_its_fields() {
    let pair = pair().await;
    let origin = [("origin", APP)];
    // Refused before the upstream (hyper answers for both paths) ...
    let seen = both(&pair, Method::GET, "/cors-auth/x", &origin).await;
    assert_eq!(seen.status, 401);
    assert_eq!(seen.field("access-control-allow-origin"), Some(APP));
    assert_eq!(seen.field("vary"), Some("origin"));
    // ... and a limit, answered by the direct path itself.
    let first = both(&pair, Method::GET, "/cors-limited/x", &origin).await;
    assert_eq!(first.status, 200);
    let seen = both(&pair, Method::GET, "/cors-limited/x", &origin).await;
    assert_eq!(
        (seen.status, seen.rule().as_deref()),
        (429, Some("rate.limited"))
    );
    assert_eq!(seen.field("access-control-allow-origin"), Some(APP));
    let served = metric(
        &pair.direct.metrics_text(),
        "candor_direct_requests_total",
        &[],
    );
    assert_eq!(served, Some(2.0), "the direct path answered the limit");
    // An origin not admitted gets none.
    let seen = both(
        &pair,
        Method::GET,
        "/cors-auth/x",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(seen.status, 401);
    assert!(!seen.has_cors_fields());
}

/// A configuration refused at load: its message.
fn refused(route: &str) -> String {
    let toml = format!(
        "[upstreams.up]\ntargets = [\"127.0.0.1:1\"]\n\n[[routes]]\npath = \"/api/{{*rest}}\"\nupstream = \"up\"\n{route}"
    );
    match candor_gateway::config::load_str(&toml, Path::new("gw.toml"), &|_| None) {
        Ok(_) => panic!("accepted: {route}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_edits_are_refused_naming_file_line_and_key() {
    let cases = [
        (
            "request_headers = { set = { \"X-A\" = \"1\\r\\nX-Injected: 1\" } }",
            "gw.toml:7: routes[0].request_headers.set.X-A: invalid field value",
        ),
        (
            "response_headers = { add = { \"X-A\" = \"a\\nb\" } }",
            "gw.toml:7: routes[0].response_headers.add.X-A: invalid field value",
        ),
        (
            "request_headers = { set = { \"Content-Length\" = \"5\" } }",
            "gw.toml:7: routes[0].request_headers.set.Content-Length: \"Content-Length\" cannot be edited by a route",
        ),
        (
            "response_headers = { remove = [\"Transfer-Encoding\"] }",
            "gw.toml:7: routes[0].response_headers.remove[0]: \"Transfer-Encoding\" cannot be edited",
        ),
        (
            "request_headers = { remove = [\"Connection\"] }",
            "routes[0].request_headers.remove[0]: \"Connection\" cannot be edited",
        ),
        (
            "request_headers = { set = { \"Host\" = \"other.example\" } }",
            "routes[0].request_headers.set.Host: \"Host\" cannot be edited",
        ),
        (
            "request_headers = { set = { \"X-Forwarded-Prefix\" = \"/x\" } }",
            "routes[0].request_headers.set.X-Forwarded-Prefix: \"X-Forwarded-Prefix\" cannot be edited",
        ),
        (
            "request_headers = { set = { \"X-Auth-Subject\" = \"root\" } }",
            "from the identity it checked",
        ),
        (
            "request_headers = { set = { \"traceparent\" = \"00-x\" } }",
            "routes[0].request_headers.set.traceparent: \"traceparent\" cannot be edited",
        ),
        (
            "response_headers = { set = { \"Retry-After\" = \"5\" } }",
            "routes[0].response_headers.set.Retry-After: \"Retry-After\" cannot be edited",
        ),
        (
            "response_headers = { add = { \"Date\" = \"x\" } }",
            "the gateway keeps or repairs it as the contract says",
        ),
        (
            "response_headers = { remove = [\"WWW-Authenticate\"] }",
            "routes[0].response_headers.remove[0]: \"WWW-Authenticate\" cannot be edited",
        ),
        (
            "request_headers = { set = { \"bad name\" = \"1\" } }",
            "routes[0].request_headers.set.bad name: invalid field name",
        ),
        (
            "request_headers = { set = { \"X-A\" = \"1\" }, remove = [\"x-a\"] }",
            "routes[0].request_headers.remove[0]: \"x-a\" is also in `set`",
        ),
        (
            "request_headers = {}",
            "routes[0].request_headers: edits nothing",
        ),
        (
            "strip_prefix = \"/other\"",
            "gw.toml:7: routes[0].strip_prefix: invalid prefix \"/other\": the route's path",
        ),
        ("strip_prefix = \"/ap\"", "does not start with it"),
        ("strip_prefix = \"/api/\"", "without the trailing slash"),
        (
            "add_prefix = \"/v2/../x\"",
            "routes[0].add_prefix: invalid prefix",
        ),
        ("add_prefix = \"v2\"", "must start with '/'"),
        (
            "cors = { allow_origins = [\"*\"], allow_credentials = true }",
            "gw.toml:7: routes[0].cors.allow_credentials: browsers refuse credentials with any origin",
        ),
        (
            "cors = { allow_origins = [\"https://app.example/\"] }",
            "routes[0].cors.allow_origins[0]: invalid origin",
        ),
        (
            "cors = { allow_origins = [\"null\"] }",
            "admitting it admits them all",
        ),
        (
            "cors = { allow_origins = [\"*\", \"https://a.example\"] }",
            "stands alone",
        ),
        ("cors = { allow_origins = [] }", "lists no origin"),
        (
            "cors = { allow_origins = [\"https://a.example\"], allow_headers = [\"*\"] }",
            "routes[0].cors.allow_headers[0]: \"*\" is not taken here",
        ),
        (
            "cors = { allow_origins = [\"https://a.example\"], allow_methods = [\"GET\", \"*\"] }",
            "routes[0].cors.allow_methods[1]: \"*\" is not taken here",
        ),
        (
            "cors = { allow_origins = [\"https://a.example\"], allow_methods = [\"G T\"] }",
            "routes[0].cors.allow_methods[0]: invalid method",
        ),
        (
            "cors = { allow_origins = [\"https://a.example\"] }\nresponse_headers = { set = { \"Access-Control-Allow-Origin\" = \"*\" } }",
            "the route's `cors` sets the CORS fields",
        ),
    ];
    for (route, expected) in cases {
        let message = refused(route);
        assert!(
            message.contains(expected),
            "{route}\n  expected: {expected}\n  got: {message}"
        );
    }
    let retired = "[upstreams.up]\ntargets = [\"127.0.0.1:1\"]\n[[routes]]\npath = \"/x\"\nretired = {}\nstrip_prefix = \"/x\"\n";
    let message = candor_gateway::config::load_str(retired, Path::new("gw.toml"), &|_| None)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("routes[0].strip_prefix: a retired route"),
        "{message}"
    );
}

#[tokio::test]
async fn a_client_cannot_smuggle_a_field_line_through_a_value() {
    // The CR/LF refusal above is at load; at run time, a route's edits
    // are written as configured, and a client's X-Forwarded-Prefix is
    // never forwarded even on a route without `strip_prefix`.
    let pair = pair().await;
    let seen = both(
        &pair,
        Method::GET,
        "/plain",
        &[("x-forwarded-prefix", "/admin")],
    )
    .await;
    assert!(seen.upstream_got("x-forwarded-prefix").is_empty());
    // A raw request on the direct path's codec too.
    let mut stream = tokio::net::TcpStream::connect(pair.direct.addr())
        .await
        .unwrap();
    stream
        .write_all(b"GET /api/x HTTP/1.1\r\nhost: a\r\nX-Forwarded-Prefix: /evil\r\nx-forwarded-prefix: /evil2\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains(r#"["x-forwarded-prefix","/api"]"#), "{text}");
    assert!(!text.contains("/evil"), "{text}");
}
