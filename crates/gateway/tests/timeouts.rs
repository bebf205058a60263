//! Timeouts on both data paths: `response_timeout` runs once the request
//! has been written (the connect has its own), and a client whose body
//! stalls, breaks its framing or ends early gets its own answer (408, 400),
//! never an upstream's 504 or 502, and is not counted against the upstream.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How long any await here may take: far beyond every timeout the tests
/// configure, far below the hour a timer started at the wrong moment
/// would wait.
const GUARD: Duration = Duration::from_secs(20);

async fn guarded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {GUARD:?}"))
}

/// A gateway on the given path in front of `upstream`, one worker (so a
/// second request finds the first one's pooled connection), with
/// `upstream_extra` in the upstream's table and `gateway_extra` in
/// `[gateway]`; one target, ejected after one failure.
async fn gateway_on(
    direct: bool,
    upstream: SocketAddr,
    gateway_extra: &str,
    upstream_extra: &str,
) -> candor_gateway::Gateway {
    gateway(
        &format!("direct_path = {direct}\nworkers = 1\n{gateway_extra}"),
        &format!(
            r#"
[upstreams.svc]
targets = ["{upstream}"]
eject_after = 1
{upstream_extra}

[[routes]]
path = "/{{*rest}}"
upstream = "svc"
"#
        ),
    )
    .await
}

/// A response read off a raw connection: status, head, body.
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    fn field(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn rule(&self) -> serde_json::Value {
        let body: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.head, self.body));
        body["type"].clone()
    }
}

/// Reads one response with a `Content-Length` body (all the answers here
/// have one).
async fn read_response(stream: &mut TcpStream) -> Raw {
    let mut seen = Vec::new();
    assert!(
        read_head(stream, &mut seen).await,
        "the gateway closed before a response"
    );
    let end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&seen[..end]).into_owned();
    let status = head[9..12].parse().unwrap();
    let mut raw = Raw {
        status,
        head,
        body: String::new(),
    };
    let len: usize = raw
        .field("content-length")
        .map_or(0, |v| v.parse().unwrap());
    let mut body = seen[end..].to_vec();
    while body.len() < len {
        let mut buf = [0u8; 4096];
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    raw.body = String::from_utf8_lossy(&body).into_owned();
    raw
}

/// Whether the gateway closes the connection (reads see its end).
async fn closes(stream: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    matches!(
        tokio::time::timeout(GUARD, stream.read_to_end(&mut rest)).await,
        Ok(Ok(_))
    )
}

#[tokio::test]
async fn a_head_that_does_not_come_is_a_504_after_response_timeout_not_connect_timeout_too() {
    let mut held = held_upstream().await;
    for direct in [true, false] {
        // A connect_timeout of an hour: counted into the head's wait (as
        // it was), the 504 would come an hour late.
        let gw = gateway_on(
            direct,
            held.addr,
            "",
            "connect_timeout = \"1h\"\nresponse_timeout = \"50ms\"",
        )
        .await;
        let reply = guarded("held head", get(gw.addr(), "/slow")).await;
        assert_rule(&reply, 504, "upstream.timeout");
        assert_eq!(reply.header("x-failure-type"), Some("timeout"));
        // The request did reach the upstream: the timer ran on the head.
        assert!(held.arrived.try_recv().is_ok(), "direct_path = {direct}");
    }
}

/// An upstream that answers the first request on each connection at once
/// (keeping the connection) and holds every later one until the test ends;
/// counts the connections it accepts.
async fn answers_once_per_connection() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut seen = Vec::new();
                if !read_head(&mut stream, &mut seen).await {
                    return;
                }
                let end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                seen.drain(..end);
                let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                if stream.write_all(reply).await.is_err() {
                    return;
                }
                // The next request is read and never answered.
                let _ = read_head(&mut stream, &mut seen).await;
                std::future::pending::<()>().await;
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn a_request_on_a_pooled_connection_gets_the_response_timeout_too() {
    for direct in [true, false] {
        let (upstream, accepted) = answers_once_per_connection().await;
        let gw = gateway_on(
            direct,
            upstream,
            "",
            "connect_timeout = \"1h\"\nresponse_timeout = \"100ms\"",
        )
        .await;
        let first = guarded("first request", get(gw.addr(), "/a")).await;
        assert_eq!(first.status, 200, "direct_path = {direct}");
        let second = guarded("second request", get(gw.addr(), "/b")).await;
        assert_rule(&second, 504, "upstream.timeout");
        assert_eq!(second.header("x-failure-type"), Some("timeout"));
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "direct_path = {direct}: the second request went on the pooled connection"
        );
    }
}

/// An upstream that reads a request up to the end of its body (a body that
/// ends with `END`, or a chunked one), then answers 200 at once; reports
/// each body's start as it arrives.
async fn answers_after_the_body() -> (SocketAddr, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (started, started_rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let started = started.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                if !read_head(&mut stream, &mut seen).await {
                    return;
                }
                let mut told = false;
                loop {
                    let end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let body = &seen[end..];
                    if !told && !body.is_empty() {
                        told = true;
                        let _ = started.send(()).await;
                    }
                    if body.ends_with(b"END") || body.ends_with(b"END\r\n0\r\n\r\n") {
                        break;
                    }
                    let mut buf = [0u8; 4096];
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = stream.write_all(reply).await;
            });
        }
    });
    (addr, started_rx)
}

#[tokio::test]
async fn a_slow_upload_does_not_count_against_the_upstream() {
    // Framed by length (both paths take it) and chunked (hyper's, behind
    // either path).
    let uploads: [(&str, &[u8], &[u8]); 2] = [
        ("content-length: 9\r\n", b"first-", b"END"),
        (
            "transfer-encoding: chunked\r\n",
            b"6\r\nfirst-\r\n",
            b"3\r\nEND\r\n0\r\n\r\n",
        ),
    ];
    for direct in [true, false] {
        for (framing, first, rest) in uploads {
            let (upstream, mut started) = answers_after_the_body().await;
            let gw = gateway_on(
                direct,
                upstream,
                "",
                "connect_timeout = \"100ms\"\nresponse_timeout = \"100ms\"",
            )
            .await;
            let mut client = TcpStream::connect(gw.addr()).await.unwrap();
            let head = format!("POST /upload HTTP/1.1\r\nhost: a\r\n{framing}\r\n");
            client.write_all(head.as_bytes()).await.unwrap();
            client.write_all(first).await.unwrap();
            guarded("the upload's start upstream", started.recv()).await;
            // A slow client: the rest comes well after both timeouts have
            // passed (counted from the attempt's start, they would answer
            // 504 meanwhile).
            tokio::time::sleep(Duration::from_millis(600)).await;
            client.write_all(rest).await.unwrap();
            let reply = guarded("after the upload", read_response(&mut client)).await;
            assert_eq!(
                (reply.status, reply.body.as_str()),
                (200, "ok"),
                "direct_path = {direct}, {framing}: {}{}",
                reply.head,
                reply.body
            );
        }
    }
}

#[tokio::test]
async fn a_whole_body_then_no_head_is_a_504_after_response_timeout() {
    // The upstream reads the whole body, then never answers: the head's
    // timer starts when the body has gone (on the hyper path, the body
    // says so from the upstream connection's task).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut all = Vec::new();
                let _ = stream.read_to_end(&mut all).await;
            });
        }
    });
    for direct in [true, false] {
        let gw = gateway_on(
            direct,
            upstream,
            "",
            "connect_timeout = \"1h\"\nresponse_timeout = \"100ms\"",
        )
        .await;
        let reply = guarded(
            "a body, no head",
            send(gw.addr(), http::Method::POST, "/x", &[], "a body"),
        )
        .await;
        assert_rule(&reply, 504, "upstream.timeout");
        assert_eq!(reply.header("x-failure-type"), Some("timeout"));
    }
}

#[tokio::test]
async fn an_upstream_that_stops_taking_the_body_is_a_504() {
    // The upstream reads the head and then nothing: once the socket
    // buffers are full, the gateway waits on the upstream, not on the
    // client, and response_timeout bounds that wait.
    let held = held_upstream().await;
    for direct in [true, false] {
        let gw = gateway_on(
            direct,
            held.addr,
            "max_body_bytes = 134217728",
            "connect_timeout = \"1h\"\nresponse_timeout = \"200ms\"",
        )
        .await;
        let mut client = TcpStream::connect(gw.addr()).await.unwrap();
        let size = 96 * 1024 * 1024;
        let head = format!("POST /big HTTP/1.1\r\nhost: a\r\ncontent-length: {size}\r\n\r\n");
        client.write_all(head.as_bytes()).await.unwrap();
        let (mut reading, mut writing) = client.into_split();
        let writer = tokio::spawn(async move {
            let chunk = vec![b'b'; 1024 * 1024];
            for _ in 0..96 {
                if writing.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        });
        let mut seen = Vec::new();
        let answered = guarded("a stuck upload", read_head_half(&mut reading, &mut seen)).await;
        writer.abort();
        let text = String::from_utf8_lossy(&seen);
        assert!(answered, "direct_path = {direct}: closed without an answer");
        assert!(
            text.starts_with("HTTP/1.1 504"),
            "direct_path = {direct}: {text}"
        );
        assert!(
            text.contains("x-failure-type: timeout"),
            "direct_path = {direct}: {text}"
        );
    }
}

/// `read_head` on the read half of a split stream.
async fn read_head_half(stream: &mut tokio::net::tcp::OwnedReadHalf, seen: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// The upstream failures counted for upstream `svc`, in a metrics text.
fn upstream_failures(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("candor_upstream_failures_total{") && l.contains("\"svc\""))
        .collect()
}

#[tokio::test]
async fn a_body_that_stalls_is_the_client_s_408_and_closes_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("any.json");
    std::fs::write(&schema, r#"{"type": "object"}"#).unwrap();
    // Streamed by length and chunked, and read whole for a schema.
    let cases: [(&str, &str, &[u8]); 3] = [
        ("/stream", "content-length: 10\r\n", b"01234"),
        (
            "/stream",
            "transfer-encoding: chunked\r\n",
            b"5\r\n01234\r\n",
        ),
        (
            "/checked",
            "content-length: 10\r\ncontent-type: application/json\r\n",
            b"{\"a\":",
        ),
    ];
    for direct in [true, false] {
        for (path, framing, part) in cases {
            let mut held = held_upstream().await;
            let upstream = held.addr;
            let gw = gateway(
                &format!("direct_path = {direct}\nworkers = 1\nbody_timeout = \"100ms\""),
                &format!(
                    r#"
[upstreams.svc]
targets = ["{upstream}"]
eject_after = 1
response_timeout = "1h"

[[routes]]
path = "/checked"
upstream = "svc"
request_schema = "{}"

[[routes]]
path = "/{{*rest}}"
upstream = "svc"
"#,
                    schema.display()
                ),
            )
            .await;
            let case = format!("direct_path = {direct}, {path} {framing}");
            let mut client = TcpStream::connect(gw.addr()).await.unwrap();
            let head = format!("POST {path} HTTP/1.1\r\nhost: a\r\n{framing}\r\n");
            client.write_all(head.as_bytes()).await.unwrap();
            client.write_all(part).await.unwrap();
            // The rest never comes.
            let reply = guarded(&case, read_response(&mut client)).await;
            assert_eq!(reply.status, 408, "{case}: {}{}", reply.head, reply.body);
            assert_eq!(
                reply.rule(),
                "tag:candor.dev,2026:rule/request.body_timeout",
                "{case}"
            );
            assert_eq!(reply.field("connection"), Some("close"), "{case}");
            assert!(closes(&mut client).await, "{case}: the connection closes");

            let text = gw.metrics_text();
            assert_eq!(upstream_failures(&text), Vec::<&str>::new(), "{case}");
            assert_eq!(
                metric(
                    &text,
                    "candor_gateway_errors_total",
                    &[("rule", "request.body_timeout")]
                ),
                Some(1.0),
                "{case}: {text}"
            );
            // Not ejected: the next request reaches the same target (each
            // held request is let go; the stalled one's connection is gone).
            let mut next = tokio::spawn(get(gw.addr(), "/after"));
            let reply = guarded(&case, async {
                loop {
                    tokio::select! {
                        reply = &mut next => break reply.unwrap(),
                        Some(release) = held.arrived.recv() => {
                            let _ = release.send(());
                        }
                    }
                }
            })
            .await;
            assert_eq!(reply.status, 200, "{case}: not ejected");
        }
    }
}

#[tokio::test]
async fn a_broken_chunked_body_is_the_client_s_400() {
    // Only the hyper path takes chunked request bodies: the direct path
    // hands them over, so both configurations answer through it.
    for direct in [true, false] {
        let held = held_upstream().await;
        let gw = gateway_on(direct, held.addr, "", "response_timeout = \"1h\"").await;
        for broken in [
            &b"5\r\nhello\r\nzz\r\n"[..],
            b"5\r\nhello!\r\n0\r\n\r\n",
            b"5;\nhello\r\n",
        ] {
            let case = format!(
                "direct_path = {direct}, {:?}",
                String::from_utf8_lossy(broken)
            );
            let mut client = TcpStream::connect(gw.addr()).await.unwrap();
            client
                .write_all(b"POST /x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n")
                .await
                .unwrap();
            client.write_all(broken).await.unwrap();
            let reply = guarded(&case, read_response(&mut client)).await;
            assert_eq!(reply.status, 400, "{case}: {}{}", reply.head, reply.body);
            assert_eq!(
                reply.rule(),
                "tag:candor.dev,2026:rule/body.malformed",
                "{case}"
            );
            assert!(
                reply.body.contains("chunked framing"),
                "{case}: {}",
                reply.body
            );
        }
        let text = gw.metrics_text();
        assert_eq!(upstream_failures(&text), Vec::<&str>::new(), "{text}");
        assert_eq!(
            metric(
                &text,
                "candor_gateway_errors_total",
                &[("rule", "body.malformed")]
            ),
            Some(3.0),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_body_the_client_cuts_short_is_not_the_upstream_s_failure() {
    for direct in [true, false] {
        for framing in ["content-length: 10\r\n", "transfer-encoding: chunked\r\n"] {
            let held = held_upstream().await;
            let gw = gateway_on(direct, held.addr, "", "response_timeout = \"1h\"").await;
            let case = format!("direct_path = {direct}, {framing}");
            let mut client = TcpStream::connect(gw.addr()).await.unwrap();
            let head = format!("POST /x HTTP/1.1\r\nhost: a\r\n{framing}\r\n");
            client.write_all(head.as_bytes()).await.unwrap();
            client.write_all(b"5\r\n012").await.unwrap();
            // Gone mid-body: nobody reads the answer; the metrics say what
            // it was.
            drop(client);
            let counted = || {
                metric(
                    &gw.metrics_text(),
                    "candor_gateway_errors_total",
                    &[("rule", "body.malformed")],
                )
            };
            guarded(&case, async {
                while counted() != Some(1.0) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await;
            let text = gw.metrics_text();
            assert_eq!(
                upstream_failures(&text),
                Vec::<&str>::new(),
                "{case}: {text}"
            );
        }
    }
}
