//! contract.md section 1, the rows the gateway answers by itself: unknown
//! route, method, retired, deprecated, limits, overload and maintenance.

mod support;

use http::Method;
use support::*;

async fn gateway_with_routes(gateway_extra: &str) -> (Gateway, candor_faults::FaultsHandle) {
    let (faults, handle) = faults().await;
    let rest = format!(
        r#"
[upstreams.svc]
targets = ["{faults}"]

[[routes]]
path = "/users/{{id}}"
methods = ["GET", "DELETE"]
upstream = "svc"

[[routes]]
path = "/users/{{id}}"
methods = ["PUT"]
upstream = "svc"

[[routes]]
path = "/docs/v1/{{*rest}}"
retired = {{ successor = "/docs/v2" }}

[[routes]]
path = "/old"
retired = {{}}

[[routes]]
path = "/reports/{{*rest}}"
upstream = "svc"
deprecated = {{ since = "2026-01-01T00:00:00Z", sunset = "2027-06-30T00:00:00Z", link = "https://example.com/migrate" }}

[[routes]]
path = "/billing/{{*rest}}"
upstream = "svc"
maintenance = {{ until = "2999-01-01T00:00:00Z" }}

[[routes]]
path = "/{{*rest}}"
upstream = "svc"
"#
    );
    (gateway(gateway_extra, &rest).await, handle)
}

use candor_gateway::Gateway;

#[tokio::test]
async fn unknown_route_is_404_problem() {
    let dead = closed_port().await;
    let rest = format!(
        "[upstreams.svc]\ntargets = [\"{dead}\"]\n[[routes]]\npath = \"/only\"\nupstream = \"svc\"\n"
    );
    let gw = gateway("", &rest).await;
    let reply = get(gw.addr(), "/nope").await;
    assert_rule(&reply, 404, "route.unknown");
    assert_eq!(reply.header("x-upstream-service"), None);
}

#[tokio::test]
async fn wrong_method_is_405_with_allow_listing_every_route_on_the_path() {
    let (gw, _f) = gateway_with_routes("").await;
    let reply = send(gw.addr(), Method::POST, "/users/7", &[], "{}").await;
    assert_rule(&reply, 405, "route.method");
    assert_eq!(reply.header("allow"), Some("GET, HEAD, DELETE, PUT"));
    // PUT and HEAD (which follows GET) reach the upstream: /users/echo is the echo endpoint.
    let put = send(gw.addr(), Method::PUT, "/users/echo", &[], "{}").await;
    assert_eq!(put.json()["method"], "PUT");
    let head = send(gw.addr(), Method::HEAD, "/users/echo", &[], "").await;
    assert_eq!(head.header("server"), Some("candor-faults"));
}

#[tokio::test]
async fn retired_routes_are_410_with_a_successor_link_when_configured() {
    let (gw, _f) = gateway_with_routes("").await;
    let reply = get(gw.addr(), "/docs/v1/intro").await;
    assert_rule(&reply, 410, "route.retired");
    assert_eq!(
        reply.header("link"),
        Some("</docs/v2>; rel=\"successor-version\"")
    );
    let bare = send(gw.addr(), Method::DELETE, "/old", &[], "").await;
    assert_rule(&bare, 410, "route.retired");
    assert_eq!(bare.header("link"), None);
}

#[tokio::test]
async fn deprecated_routes_are_served_with_deprecation_sunset_and_link() {
    let (gw, _f) = gateway_with_routes("").await;
    let reply = get(gw.addr(), "/reports/ok").await;
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(reply.header("deprecation"), Some("@1767225600"));
    assert_eq!(
        reply.header("sunset"),
        Some("Wed, 30 Jun 2027 00:00:00 GMT")
    );
    assert_eq!(
        reply.header("link"),
        Some("<https://example.com/migrate>; rel=\"deprecation\"")
    );
}

#[tokio::test]
async fn maintenance_is_503_with_retry_after_to_the_end_of_the_window() {
    let (gw, _f) = gateway_with_routes("").await;
    let reply = get(gw.addr(), "/billing/invoices").await;
    assert_rule(&reply, 503, "gateway.maintenance");
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 30_000_000_000 / 1000, "seconds until 2999: {retry}");
    // Other routes are not affected.
    assert_eq!(get(gw.addr(), "/ok").await.status.as_u16(), 200);
}

#[tokio::test]
async fn gateway_wide_maintenance_applies_to_every_route() {
    let (gw, _f) = gateway_with_routes("maintenance = { until = \"2999-01-01T00:00:00Z\" }").await;
    assert_rule(&get(gw.addr(), "/ok").await, 503, "gateway.maintenance");
    // Precedence: an unknown method on a known path is still 405 first.
    assert_rule(
        &send(gw.addr(), Method::POST, "/users/1", &[], "").await,
        405,
        "route.method",
    );
}

#[tokio::test]
async fn a_hundred_fields_pass_and_more_are_431_from_the_http_layer() {
    let (gw, _f) = gateway_with_routes("").await;
    // 99 of ours plus the client's Host: hyper's limit of 100, exactly.
    let names: Vec<String> = (0..101).map(|i| format!("x-field-{i}")).collect();
    let fields: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let ok = send(gw.addr(), Method::GET, "/ok", &fields[..99], "").await;
    assert_eq!(ok.status.as_u16(), 200);
    // Beyond it, hyper refuses the head before the gateway sees it: 431,
    // without a problem body (docs/config.md, max_header_bytes).
    let refused = send(gw.addr(), Method::GET, "/ok", &fields, "").await;
    assert_eq!(refused.status.as_u16(), 431);
}

#[tokio::test]
async fn request_limits_are_413_414_and_431() {
    let (gw, _f) =
        gateway_with_routes("max_body_bytes = 100\nmax_uri_bytes = 200\nmax_header_bytes = 1000")
            .await;
    let big = "x".repeat(101);
    assert_rule(
        &send(gw.addr(), Method::PUT, "/users/1", &[], &big).await,
        413,
        "body.too_large",
    );
    assert_eq!(
        send(gw.addr(), Method::PUT, "/users/echo", &[], &"x".repeat(100))
            .await
            .status
            .as_u16(),
        200
    );
    let long = format!("/users/{}", "a".repeat(300));
    assert_rule(&get(gw.addr(), &long).await, 414, "request.uri_too_long");
    let fat = "v".repeat(1200);
    assert_rule(
        &send(gw.addr(), Method::GET, "/ok", &[("x-fat", &fat)], "").await,
        431,
        "request.headers_too_large",
    );
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_413() {
    use http_body_util::BodyExt;
    let (gw, _f) = gateway_with_routes("max_body_bytes = 100").await;
    // No Content-Length: the body is chunked and the limit trips mid-stream.
    let body = Chunks(
        (0..10)
            .map(|_| bytes::Bytes::from(vec![b'x'; 50]))
            .collect(),
    );
    let req = http::Request::put(format!("http://{}/echo", gw.addr()))
        .body(body)
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let res = client.request(req).await.unwrap();
    assert_eq!(res.status().as_u16(), 413);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["type"], "tag:candor.dev,2026:rule/body.too_large");
}

#[tokio::test]
async fn a_client_that_sends_its_whole_body_first_still_reads_the_early_answer() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (gw, _f) = gateway_with_routes("max_body_bytes = 1000").await;
    // 8 MiB declared and sent in full before reading, as most clients do:
    // the gateway answers 413 at once, then reads the body away instead of
    // closing on it (which would reset the connection under the answer).
    let len = 8 << 20;
    let mut stream = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    let head = format!(
        "PUT /users/1 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..len / chunk.len() {
        stream
            .write_all(&chunk)
            .await
            .expect("the gateway reads the body it refused");
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.expect("an answer, not a reset");
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
}

/// A body of several chunks and no declared length.
struct Chunks(std::collections::VecDeque<bytes::Bytes>);

impl http_body::Body for Chunks {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }
}

#[tokio::test]
async fn plain_text_when_the_client_does_not_accept_json() {
    let (gw, _f) = gateway_with_routes("").await;
    let reply = send(
        gw.addr(),
        Method::GET,
        "/docs/v1/x",
        &[("accept", "text/html")],
        "",
    )
    .await;
    assert_eq!(reply.status.as_u16(), 410);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(String::from_utf8_lossy(&reply.body).starts_with("410 Gone"));
}

#[tokio::test]
async fn overload_is_503_with_retry_after() {
    let mut held = held_upstream().await;
    let rest = format!(
        "[upstreams.held]\ntargets = [\"{}\"]\nresponse_timeout = \"60s\"\n[[routes]]\npath = \"/{{*rest}}\"\nupstream = \"held\"\n",
        held.addr
    );
    let gw = gateway("max_concurrent_requests = 1", &rest).await;
    let addr = gw.addr();
    let first = tokio::spawn(async move { get(addr, "/slow-one").await });
    let release = held
        .arrived
        .recv()
        .await
        .expect("first request reached the upstream");
    let second = get(addr, "/another").await;
    assert_rule(&second, 503, "gateway.overloaded");
    assert_eq!(second.header("retry-after"), Some("1"));
    release.send(()).unwrap();
    assert_eq!(first.await.unwrap().status.as_u16(), 200);
}
