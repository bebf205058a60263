//! The request target and Host, read once before routing on both data
//! paths: dot segments, escapes, parameters and repeated slashes cannot
//! walk a request around a route's policy; Host is one valid authority;
//! CONNECT and unknown transfer codings are refused, never forwarded.

mod support;

use std::net::SocketAddr;

use candor_gateway::Gateway;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

/// An open prefix and a JWT prefix on one upstream (the faults server,
/// whose `.../echo` answers with the request it got), beside an open
/// catch-all: the layout the walk-arounds were found on.
async fn gateway_on(direct: bool, upstream: SocketAddr, extra: &str) -> Gateway {
    gateway(
        &format!("direct_path = {direct}\nworkers = 1\n{extra}"),
        &format!(
            r#"
[auth.jwt]
algorithms = ["HS256"]
secret = "{SECRET}"

[upstreams.svc]
targets = ["{upstream}"]

[[routes]]
path = "/public/{{*rest}}"
upstream = "svc"

[[routes]]
path = "/admin/{{*rest}}"
upstream = "svc"
auth = "jwt"

[[routes]]
path = "/{{*rest}}"
upstream = "svc"
"#
        ),
    )
    .await
}

struct Pair {
    direct: Gateway,
    hyper: Gateway,
    _faults: candor_faults::FaultsHandle,
}

async fn pair() -> Pair {
    pair_with("").await
}

/// The pair with more `[gateway]` settings.
async fn pair_with(extra: &str) -> Pair {
    let (upstream, faults) = faults().await;
    Pair {
        direct: gateway_on(true, upstream, extra).await,
        hyper: gateway_on(false, upstream, extra).await,
        _faults: faults,
    }
}

/// What came back for a raw request: status, the problem rule (for a
/// gateway-made answer) and, for an echo, what the upstream received.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    rule: Option<String>,
    path: Option<String>,
    query: Option<String>,
    forwarded: Option<String>,
}

/// Writes `head` (without its final empty line) with `connection: close`,
/// then `body`, and reads the answer to the end.
async fn raw(addr: SocketAddr, head: &str, body: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("{head}\r\nconnection: close\r\n\r\n{body}");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line for {head:?}: {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // A chunked echo: its JSON runs from the first brace to the last.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) => serde_json::from_str::<serde_json::Value>(&body[a..=b]).ok(),
        _ => None,
    };
    let field =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|s| s.as_str()).map(String::from);
    let rule = json
        .as_ref()
        .and_then(|v| field(v, "type"))
        .map(|t| t.rsplit('/').next().unwrap_or_default().to_owned());
    let path = json.as_ref().and_then(|v| field(v, "path"));
    let query = json.as_ref().and_then(|v| field(v, "query"));
    let forwarded = json
        .as_ref()
        .and_then(|v| v.pointer("/headers/forwarded"))
        .and_then(|s| s.as_str())
        .map(String::from);
    Answer {
        status,
        rule,
        path,
        query,
        forwarded,
    }
}

/// Sends `head` through both gateways: the answers must agree.
async fn both(pair: &Pair, head: &str) -> Answer {
    with_body(pair, head, "").await
}

async fn with_body(pair: &Pair, head: &str, body: &str) -> Answer {
    let a = raw(pair.direct.addr(), head, body).await;
    let b = raw(pair.hyper.addr(), head, body).await;
    assert_eq!(a, b, "{head:?}: direct path (left) vs hyper path (right)");
    a
}

fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nhost: api.example")
}

#[tokio::test]
async fn no_spelling_of_a_protected_path_walks_around_its_policy() {
    let pair = pair().await;
    for target in [
        "/admin/echo",
        "/public/../admin/echo",
        "/public/%2e%2e/admin/echo",
        "/public/%2E./admin/echo",
        "/public/..;/admin/echo",
        "//admin/echo",
        "/%61dmin/echo",
        "/./admin/echo",
        "/admin;x/echo",
        "/admin",
        "/admin/",
        "/public/x/../../admin/echo",
    ] {
        let answer = both(&pair, &get(target)).await;
        assert_eq!(
            (answer.status, answer.rule.as_deref()),
            (401, Some("auth.missing")),
            "{target}: routed to the protected prefix"
        );
    }
}

#[tokio::test]
async fn what_cannot_be_normalised_safely_is_refused() {
    let pair = pair().await;
    for target in [
        "/admin%2fecho",
        "/public/a%2Fb/echo",
        "/public/a%5cb/echo",
        "/public/a%00/echo",
        "/public/%zz/echo",
        "/..",
        "/public/../../admin/echo",
        "/%2e%2e/admin/echo",
    ] {
        let answer = both(&pair, &get(target)).await;
        assert_eq!(
            (answer.status, answer.rule.as_deref()),
            (400, Some("request.path_unsafe")),
            "{target}"
        );
    }
}

#[tokio::test]
async fn the_upstream_gets_the_normal_path_the_gateway_routed() {
    let pair = pair().await;
    let cases = [
        (
            "/public/./x/echo?q=%2e%2e/a",
            "/public/x/echo",
            Some("q=%2e%2e/a"),
        ),
        ("/public//x///echo", "/public/x/echo", None),
        (
            "/public/%7euser/%c3%a9/echo",
            "/public/~user/%C3%A9/echo",
            None,
        ),
        ("/public/a;jsessionid=1/echo", "/public/a/echo", None),
        ("/public/echo", "/public/echo", None),
    ];
    for (target, path, query) in cases {
        let answer = both(&pair, &get(target)).await;
        assert_eq!(answer.status, 200, "{target}");
        assert_eq!(answer.path.as_deref(), Some(path), "{target}");
        assert_eq!(answer.query.as_deref(), query, "{target}");
    }
    // A catch-all's own prefix, and the root under `/{*rest}`, reach the
    // upstream (whose answer there is its own 404), not route.unknown.
    for target in ["/", "/public", "/public/"] {
        let answer = both(&pair, &get(target)).await;
        assert_eq!(answer.status, 404, "{target}");
        assert_ne!(answer.rule.as_deref(), Some("route.unknown"), "{target}");
    }
}

#[tokio::test]
async fn host_is_one_valid_authority() {
    let pair = pair().await;
    let bad = [
        "GET /public/echo HTTP/1.1",
        "GET /public/echo HTTP/1.1\r\nhost: a.example\r\nhost: b.example",
        "GET /public/echo HTTP/1.1\r\nhost: x\", for=10.6.6.6;host=\"y",
        "GET /public/echo HTTP/1.1\r\nhost: a b",
        "GET /public/echo HTTP/1.1\r\nhost: user@a.example",
        "GET /public/echo HTTP/1.1\r\nhost: a.example:http",
        "GET /public/echo HTTP/1.1\r\nhost: ",
        "GET /public/echo HTTP/1.1\r\nhost: api.example\r\nconnection: host",
    ];
    for head in bad {
        let answer = both(&pair, head).await;
        assert_eq!(
            (answer.status, answer.rule.as_deref()),
            (400, Some("request.host")),
            "{head:?}"
        );
    }
    for host in ["api.example", "api.example:8443", "[::1]:80", "127.0.0.1"] {
        let head = format!("GET /public/echo HTTP/1.1\r\nhost: {host}");
        let answer = both(&pair, &head).await;
        assert_eq!(answer.status, 200, "{host}");
        let forwarded = answer.forwarded.unwrap();
        assert!(
            forwarded.ends_with(&format!(";proto=http;host=\"{host}\"")),
            "{forwarded}"
        );
    }
}

#[tokio::test]
async fn a_client_cannot_hide_this_hop_in_forwarded() {
    let pair = pair().await;
    // An earlier element with an open quote would swallow this hop's.
    let head = "GET /public/echo HTTP/1.1\r\nhost: api.example\r\nforwarded: for=10.6.6.6;host=\"y";
    let answer = both(&pair, head).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.forwarded.as_deref(),
        Some("for=127.0.0.1;proto=http;host=\"api.example\"")
    );
    // A well-formed earlier element is kept, with this hop's after it.
    let head =
        "GET /public/echo HTTP/1.1\r\nhost: api.example\r\nforwarded: for=192.0.2.1;host=\"a, b\"";
    let answer = both(&pair, head).await;
    assert_eq!(
        answer.forwarded.as_deref(),
        Some("for=192.0.2.1;host=\"a, b\", for=127.0.0.1;proto=http;host=\"api.example\"")
    );
}

#[tokio::test]
async fn connect_and_unknown_codings_are_refused_not_forwarded() {
    let pair = pair().await;
    let connect = both(
        &pair,
        "CONNECT upstream.example:443 HTTP/1.1\r\nhost: upstream.example:443",
    )
    .await;
    assert_eq!(
        (connect.status, connect.rule.as_deref()),
        (501, Some("request.method_unsupported"))
    );
    for coding in ["gzip, chunked", "chunked, chunked", "Deflate , chunked"] {
        let head = format!(
            "POST /public/echo HTTP/1.1\r\nhost: api.example\r\ntransfer-encoding: {coding}"
        );
        let answer = with_body(&pair, &head, "2\r\nok\r\n0\r\n\r\n").await;
        assert_eq!(
            (answer.status, answer.rule.as_deref()),
            (501, Some("request.coding_unsupported")),
            "{coding}"
        );
    }
    // Plain chunked is the coding the gateway implements.
    let head = "POST /public/echo HTTP/1.1\r\nhost: api.example\r\ntransfer-encoding: chunked";
    let answer = with_body(&pair, head, "2\r\nok\r\n0\r\n\r\n").await;
    assert_eq!(answer.status, 200);
}

/// `keep_encoded_slashes` keeps `%2F` as data inside one segment: it is
/// never a separator for routing or for dot segments, so `..%2F` cannot
/// climb out of the route that owns it, and it goes upstream encoded.
#[tokio::test]
async fn kept_encoded_slashes_stay_data_inside_their_segment() {
    let pair = pair_with("keep_encoded_slashes = true").await;
    let answer = both(&pair, &get("/public/a%2fb/echo")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.path.as_deref(), Some("/public/a%2Fb/echo"));
    let answer = both(&pair, &get("/public/..%2F..%2Fadmin/echo")).await;
    assert_eq!(answer.status, 200, "routed under /public, not above it");
    assert_eq!(answer.path.as_deref(), Some("/public/..%2F..%2Fadmin/echo"));
    // `admin%2Fx` is one segment, not `admin`: it is not under the
    // protected prefix (why the option is only for upstreams that read
    // `%2F` as data too; see docs/config.md).
    let answer = both(&pair, &get("/public/../admin%2Fx/echo")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.path.as_deref(), Some("/admin%2Fx/echo"));
    // A real dot segment is still resolved, and still cannot climb out.
    let answer = both(&pair, &get("/public/../../admin/echo")).await;
    assert_eq!(
        (answer.status, answer.rule.as_deref()),
        (400, Some("request.path_unsafe"))
    );
}
