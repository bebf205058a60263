//! contract.md section 1, upstream rows: each failure mode of a real
//! upstream on loopback, answered with its own status and failure type.

mod support;

use http::Method;
use support::*;

fn upstream_route(targets: &str, extra: &str) -> String {
    format!(
        "[upstreams.svc]\ntargets = [{targets}]\nconnect_timeout = \"500ms\"\nresponse_timeout = \"300ms\"\n{extra}\n\
         [[routes]]\npath = \"/{{*rest}}\"\nupstream = \"svc\"\n"
    )
}

fn assert_problem(reply: &Reply, status: u16, rule: &str, failure: Option<&str>) {
    assert_rule(reply, status, rule);
    let body = reply.json();
    if let Some(failure) = failure {
        assert_eq!(reply.header("x-failure-type"), Some(failure));
        assert_eq!(reply.header("x-upstream-service"), Some("svc"));
        assert_eq!(body["failure"], failure);
        assert_eq!(body["upstream"], "svc");
    }
}

#[tokio::test]
async fn refused_upstream_is_502_with_failure_type() {
    let dead = closed_port().await;
    let gw = gateway("", &upstream_route(&format!("\"{dead}\""), "")).await;
    let reply = get(gw.addr(), "/anything").await;
    assert_problem(&reply, 502, "upstream.unreachable", Some("connect_refused"));
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_502_dns() {
    // A 64-character label is longer than DNS allows (RFC 1035 section
    // 2.3.4): the resolver refuses to build the query, so the lookup fails
    // on this machine without a packet leaving it.
    let host = format!("{}.example", "a".repeat(64));
    let gw = gateway("", &upstream_route(&format!("\"{host}:80\""), "")).await;
    let reply = get(gw.addr(), "/anything").await;
    assert_problem(&reply, 502, "upstream.unreachable", Some("dns"));
}

#[tokio::test]
async fn reset_before_response_is_502_reset() {
    let (faults, _h) = faults().await;
    let gw = gateway("", &upstream_route(&format!("\"{faults}\""), "")).await;
    let reply = get(gw.addr(), "/reset").await;
    assert_problem(&reply, 502, "upstream.unreachable", Some("reset"));
}

#[tokio::test]
async fn garbage_response_is_502_invalid_response() {
    let (faults, _h) = faults().await;
    let gw = gateway("", &upstream_route(&format!("\"{faults}\""), "")).await;
    let reply = get(gw.addr(), "/garbage").await;
    assert_problem(
        &reply,
        502,
        "upstream.invalid_response",
        Some("invalid_response"),
    );
}

#[tokio::test]
async fn slow_response_head_is_504_timeout() {
    let (faults, _h) = faults().await;
    let gw = gateway("", &upstream_route(&format!("\"{faults}\""), "")).await;
    let reply = get(gw.addr(), "/slow?ms=5000").await;
    assert_problem(&reply, 504, "upstream.timeout", Some("timeout"));
}

#[tokio::test]
async fn upstream_statuses_pass_through_unchanged() {
    let (faults, _h) = faults().await;
    let gw = gateway("", &upstream_route(&format!("\"{faults}\""), "")).await;
    for code in [500u16, 503, 401, 404, 418, 204] {
        let reply = get(gw.addr(), &format!("/status/{code}")).await;
        assert_eq!(reply.status.as_u16(), code);
        assert_eq!(
            reply.header("server"),
            Some("candor-faults"),
            "the upstream's own response"
        );
        if code >= 500 {
            assert_eq!(reply.header("x-upstream-service"), Some("svc"));
            assert_eq!(
                reply.header("x-failure-type"),
                None,
                "not a gateway-made error"
            );
        } else {
            assert_eq!(reply.header("x-upstream-service"), None);
        }
        assert_eq!(
            reply.header("retry-after"),
            None,
            "nothing added without repair"
        );
    }
    let bare = get(gw.addr(), "/401-bare").await;
    assert_eq!(bare.status.as_u16(), 401);
    assert_eq!(bare.header("www-authenticate"), None);
}

#[tokio::test]
async fn debug_headers_can_be_turned_off_per_route() {
    let dead = closed_port().await;
    let rest = format!(
        "[upstreams.svc]\ntargets = [\"{dead}\"]\n[[routes]]\npath = \"/public\"\nupstream = \"svc\"\ndebug_headers = false\n"
    );
    let gw = gateway("", &rest).await;
    let reply = get(gw.addr(), "/public").await;
    assert_eq!(reply.status.as_u16(), 502);
    assert_eq!(reply.header("x-failure-type"), None);
    assert_eq!(reply.header("x-upstream-service"), None);
}

#[tokio::test]
async fn every_target_ejected_is_503_no_healthy_upstream_with_retry_after() {
    let dead = closed_port().await;
    let gw = gateway(
        "",
        &upstream_route(
            &format!("\"{dead}\""),
            "eject_after = 1\neject_for = \"30s\"",
        ),
    )
    .await;
    let first = get(gw.addr(), "/x").await;
    assert_problem(&first, 502, "upstream.unreachable", Some("connect_refused"));
    let second = get(gw.addr(), "/x").await;
    assert_problem(
        &second,
        503,
        "upstream.unavailable",
        Some("no_healthy_upstream"),
    );
    let retry: u64 = second.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
}

#[tokio::test]
async fn idempotent_requests_retry_once_on_another_target_after_a_connect_failure() {
    let dead = closed_port().await;
    let (faults, _h) = faults().await;
    let gw = gateway(
        "",
        &upstream_route(&format!("\"{dead}\", \"{faults}\""), "eject_after = 100"),
    )
    .await;
    for _ in 0..4 {
        assert_eq!(get(gw.addr(), "/ok").await.status.as_u16(), 200);
    }
    let text = gw.metrics_text();
    let retries = metric(
        &text,
        "candor_upstream_retries_total",
        &[("upstream", "svc")],
    )
    .unwrap();
    assert!(retries >= 1.0, "{text}");
    // A POST is not retried: it may have side effects.
    let mut statuses = Vec::new();
    for _ in 0..2 {
        statuses.push(
            send(gw.addr(), Method::POST, "/ok", &[], "{}")
                .await
                .status
                .as_u16(),
        );
    }
    statuses.sort();
    assert_eq!(statuses, [200, 502]);
}

#[tokio::test]
async fn truncated_bodies_abort_the_client_stream() {
    use http_body_util::BodyExt;
    let (faults, _h) = faults().await;
    let gw = gateway("", &upstream_route(&format!("\"{faults}\""), "")).await;
    for path in ["/truncate", "/bad-length"] {
        let req = http::Request::get(format!("http://{}{path}", gw.addr()))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let res = client().request(req).await.expect("head arrives");
        assert_eq!(res.status().as_u16(), 200, "the head was already sent");
        let body = res.into_body().collect().await;
        assert!(
            body.is_err(),
            "{path}: the client must see an incomplete body, not a complete one"
        );
    }
    let text = gw.metrics_text();
    assert_eq!(
        metric(
            &text,
            "candor_upstream_truncated_total",
            &[("upstream", "svc")]
        ),
        Some(2.0),
        "{text}"
    );
}

#[tokio::test]
async fn forwarded_headers_reach_the_upstream_and_hop_by_hop_ones_do_not() {
    let (faults, _h) = faults().await;
    let gw = gateway("", &upstream_route(&format!("\"{faults}\""), "")).await;
    let reply = send(
        gw.addr(),
        Method::GET,
        "/echo?q=1",
        &[
            ("x-secret", "1"),
            ("connection", "x-secret"),
            ("x-request-id", "abc-123"),
            ("host", "api.example"),
        ],
        "",
    )
    .await;
    let echo = reply.json();
    let headers = &echo["headers"];
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "api.example");
    assert_eq!(headers["host"], "api.example");
    assert_eq!(
        headers["forwarded"],
        "for=127.0.0.1;proto=http;host=\"api.example\""
    );
    assert_eq!(headers["x-request-id"], "abc-123");
    assert!(headers.get("x-secret").is_none());
    assert_eq!(echo["query"], "q=1");
    assert_eq!(reply.header("x-request-id"), Some("abc-123"));
}

#[tokio::test]
async fn the_monitor_counts_upstream_violations_and_repair_fixes_headers() {
    let (faults, _h) = faults().await;
    let extra = "monitor = true\nrepair = [\"challenge\", \"retry_after\"]";
    let gw = gateway(
        "realm = \"shop\"",
        &upstream_route(&format!("\"{faults}\""), extra),
    )
    .await;
    let ok = get(gw.addr(), "/200-error").await;
    assert_eq!(ok.status.as_u16(), 200, "the response is relayed as sent");
    let bare = get(gw.addr(), "/401-bare").await;
    assert_eq!(
        bare.header("www-authenticate"),
        Some("Bearer realm=\"shop\"")
    );
    let unavailable = get(gw.addr(), "/status/503").await;
    assert_eq!(unavailable.header("retry-after"), Some("1"));
    let fine = get(gw.addr(), "/ok").await;
    assert_eq!(fine.status.as_u16(), 200);

    let text = gw.metrics_text();
    let v = |rule| {
        metric(
            &text,
            "candor_contract_violations_total",
            &[("upstream", "svc"), ("rule", rule)],
        )
    };
    assert_eq!(v("success.error_body"), Some(1.0), "{text}");
    assert_eq!(v("auth.401_without_challenge"), Some(1.0));
    assert_eq!(v("unavailable.503_without_retry_after"), Some(1.0));
    let r = |rule| {
        metric(
            &text,
            "candor_contract_repairs_total",
            &[("upstream", "svc"), ("rule", rule)],
        )
    };
    assert_eq!(r("auth.401_without_challenge"), Some(1.0));
    assert_eq!(r("unavailable.503_without_retry_after"), Some(1.0));
}

/// An upstream that answers every request with `reply`, on any number of
/// keep-alive connections.
async fn answers_always(reply: &'static [u8]) -> std::net::SocketAddr {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while read_head(&mut stream, &mut seen).await {
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
async fn the_monitor_flags_a_refused_token_without_invalid_token() {
    // The upstream refuses everyone alike, with a bare Bearer challenge:
    // right for a request without credentials, not for one that sent a token.
    let upstream = answers_always(
        b"HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer realm=\"up\"\r\ncontent-length: 0\r\n\r\n",
    )
    .await;
    let gw = gateway(
        "",
        &upstream_route(&format!("\"{upstream}\""), "monitor = true"),
    )
    .await;
    let v = |text: &str, rule| {
        metric(
            text,
            "candor_contract_violations_total",
            &[("upstream", "svc"), ("rule", rule)],
        )
    };
    let anonymous = get(gw.addr(), "/me").await;
    assert_eq!(anonymous.status.as_u16(), 401);
    let refused = send(
        gw.addr(),
        Method::GET,
        "/me",
        &[("authorization", "Bearer expired.token")],
        "",
    )
    .await;
    assert_eq!(refused.status.as_u16(), 401);
    assert_eq!(
        refused.header("www-authenticate"),
        Some("Bearer realm=\"up\"")
    );
    // The checks run once the body has gone to the client: the count is
    // awaited, not assumed.
    let counted = async {
        loop {
            if v(&gw.metrics_text(), "auth.401_without_invalid_token").is_some() {
                break;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), counted)
        .await
        .unwrap_or_else(|_| panic!("never counted: {}", gw.metrics_text()));
    let text = gw.metrics_text();
    // Once: the request without credentials got the right answer.
    assert_eq!(
        v(&text, "auth.401_without_invalid_token"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(v(&text, "auth.401_without_challenge"), None, "{text}");
}

/// A listener whose accept queue is full: the kernel drops further SYNs,
/// so a connect to it times out rather than being refused.
fn saturated_listener() -> (
    std::net::SocketAddr,
    Vec<std::net::TcpStream>,
    socket2::Socket,
) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut held = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200)) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    (addr, held, socket)
}

#[tokio::test]
async fn connect_timeout_is_504_connect_timeout() {
    let (addr, _held, _socket) = saturated_listener();
    let gw = gateway("", &upstream_route(&format!("\"{addr}\""), "")).await;
    let reply = get(gw.addr(), "/x").await;
    assert_problem(&reply, 504, "upstream.timeout", Some("connect_timeout"));
}

/// An upstream that answers the first request of each connection with
/// keep-alive, then reads the next request and closes without answering,
/// as one does whose keep-alive timer fires just as a request arrives.
/// Counts the connections it accepted.
async fn closes_reused_connections() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if read_head(&mut stream, &mut Vec::new()).await {
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                    // The second request is read, never answered.
                    read_head(&mut stream, &mut Vec::new()).await;
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn a_pooled_connection_closed_by_the_upstream_is_retried_once_on_a_fresh_one() {
    use std::sync::atomic::Ordering;
    let (upstream, accepted) = closes_reused_connections().await;
    let gw = gateway(
        "workers = 1",
        &upstream_route(&format!("\"{upstream}\""), ""),
    )
    .await;
    for i in 0..3 {
        let reply = get(gw.addr(), "/x").await;
        assert_eq!(reply.status.as_u16(), 200, "GET #{i}: no spurious 502");
        assert_eq!(&reply.body[..], b"ok");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "the 2nd and 3rd GETs found the pooled connection closed and opened a new one"
    );
    let resends = |text: &str| {
        metric(
            text,
            "candor_upstream_resends_total",
            &[("upstream", "svc")],
        )
    };
    let text = gw.metrics_text();
    assert_eq!(resends(&text), Some(2.0), "{text}");
}

#[tokio::test]
async fn a_request_with_a_body_is_not_sent_twice_on_a_fresh_connection() {
    // The upstream may have acted on it. The first POST opens the
    // connection the second finds closed.
    let (upstream, _accepted) = closes_reused_connections().await;
    let gw = gateway(
        "workers = 1",
        &upstream_route(&format!("\"{upstream}\""), ""),
    )
    .await;
    let post = send(gw.addr(), Method::POST, "/x", &[], "{}").await;
    assert_eq!(post.status.as_u16(), 200);
    let post = send(gw.addr(), Method::POST, "/x", &[], "{}").await;
    assert_problem(&post, 502, "upstream.unreachable", Some("reset"));
    let text = gw.metrics_text();
    let resends = metric(
        &text,
        "candor_upstream_resends_total",
        &[("upstream", "svc")],
    );
    assert_eq!(resends, None, "{text}");
}

/// An upstream that answers one request per connection with keep-alive and
/// reports when the gateway closes that connection.
async fn reports_closed_connections() -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed, reports) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let closed = closed.clone();
            tokio::spawn(async move {
                if !read_head(&mut stream, &mut Vec::new()).await {
                    return;
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                // Keep-alive: wait for the gateway to close its end.
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
                let _ = closed.send(());
            });
        }
    });
    (addr, reports)
}

#[tokio::test]
async fn idle_upstream_connections_close_on_time_without_further_traffic() {
    let (upstream, mut closed) = reports_closed_connections().await;
    let gw = gateway(
        "workers = 1",
        &upstream_route(&format!("\"{upstream}\""), "pool_idle_timeout = \"100ms\""),
    )
    .await;
    let reply = get(gw.addr(), "/x").await;
    assert_eq!(reply.status.as_u16(), 200);
    // No other request goes to this upstream: the worker's reaper closes
    // the pooled connection once it has been idle for 100 ms.
    tokio::time::timeout(std::time::Duration::from_secs(10), closed.recv())
        .await
        .expect("the idle connection was closed")
        .expect("the upstream is still running");
}

#[tokio::test]
async fn a_tls_upstream_that_never_answers_the_handshake_is_504_connect_timeout() {
    // Accepts connections and says nothing: the TLS handshake never ends.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let gw = gateway("", &upstream_route(&format!("\"{addr}\""), "tls = {}")).await;
    let reply = get(gw.addr(), "/x").await;
    assert_problem(&reply, 504, "upstream.timeout", Some("connect_timeout"));
    held.abort();
}
