//! Pooled upstream connections on both data paths: bytes an upstream sends
//! past the end of a response, or a close while idle, never reach the next
//! client; such connections are dropped and counted. And a response the
//! upstream aborts mid-body is counted as aborted, not as its status class.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A response that is itself a whole HTTP message: what a leak would show.
const SECRET: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nSECRET";

/// A guard around every await on the gateway or the upstream.
const GUARD: Duration = Duration::from_secs(20);

/// What the upstream's first connection does once its first answer is out.
#[derive(Clone, Copy)]
enum Then {
    /// Serves further requests like any other connection.
    Serve,
    /// Waits for the test's go, writes these bytes, reports it, and serves
    /// on.
    Late(&'static [u8]),
    /// Waits for the test's go, closes, and reports it.
    Close,
}

/// A raw upstream: its first connection answers its first request with
/// `first` (as given, stray bytes and all), then does `then`; every other
/// request on any connection gets a clean 200 whose body names its
/// connection (`connection 2` for the second one accepted).
struct Upstream {
    addr: SocketAddr,
    /// The test's go, for [`Then::Late`] and [`Then::Close`].
    go: mpsc::Sender<()>,
    /// The upstream's report that it wrote or closed.
    done: mpsc::Receiver<()>,
}

async fn upstream(first: Vec<u8>, then: Then) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (go, mut go_rx) = mpsc::channel::<()>(1);
    let (done_tx, done) = mpsc::channel::<()>(1);
    tokio::spawn(async move {
        let mut accepted = 0usize;
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            accepted += 1;
            let mut seen = Vec::new();
            if accepted == 1 {
                if !read_head(&mut stream, &mut seen).await {
                    continue;
                }
                seen.clear();
                stream.write_all(&first).await.unwrap();
                match then {
                    Then::Serve => {}
                    Then::Late(bytes) => {
                        go_rx.recv().await;
                        stream.write_all(bytes).await.unwrap();
                        done_tx.send(()).await.unwrap();
                    }
                    Then::Close => {
                        go_rx.recv().await;
                        drop(stream);
                        done_tx.send(()).await.unwrap();
                        continue;
                    }
                }
            }
            tokio::spawn(serve(stream, seen, accepted));
        }
    });
    Upstream { addr, go, done }
}

/// Answers every request on `stream` with a clean 200 naming connection
/// `n` (a head only for HEAD).
async fn serve(mut stream: TcpStream, mut seen: Vec<u8>, n: usize) {
    loop {
        if !read_head(&mut stream, &mut seen).await {
            return;
        }
        let end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = seen.starts_with(b"HEAD ");
        seen.drain(..end);
        let body = format!("connection {n}");
        let mut answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
        if !head {
            answer.push_str(&body);
        }
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A gateway on one data path, with one worker (so one pool), in front of
/// `upstream`.
async fn gateway_on(direct: bool, upstream: SocketAddr) -> candor_gateway::Gateway {
    gateway(
        &format!("direct_path = {direct}\nworkers = 1"),
        &format!(
            "[upstreams.svc]\ntargets = [\"{upstream}\"]\n\n[[routes]]\npath = \"/{{*rest}}\"\nupstream = \"svc\"\n"
        ),
    )
    .await
}

/// What a client got: the status, and the body (as far as it came).
#[derive(Debug)]
struct Got {
    status: u16,
    body: String,
    /// Everything, head included.
    raw: String,
}

/// Sends `method /path` on a new client connection that asks to close,
/// and reads until the gateway closes it.
async fn ask(gateway: SocketAddr, method: &str) -> Got {
    let exchange = async {
        let mut client = TcpStream::connect(gateway).await.unwrap();
        let request = format!("{method} /p HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
        client.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        // A reset after an aborted body still leaves what came before it.
        let _ = client.read_to_end(&mut out).await;
        out
    };
    let out = tokio::time::timeout(GUARD, exchange)
        .await
        .expect("the gateway answers (guard: 20 s)");
    let raw = String::from_utf8_lossy(&out).into_owned();
    let status = raw
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {raw:?}"));
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Got { status, body, raw }
}

fn discards(gw: &candor_gateway::Gateway, reason: &str) -> f64 {
    metric(
        &gw.metrics_text(),
        "candor_upstream_pool_discards_total",
        &[("upstream", "svc"), ("reason", reason)],
    )
    .unwrap_or(0.0)
}

/// The first exchange leaves stray bytes behind (or a closed connection);
/// the next client must get a clean answer from a second connection, the
/// discard is counted once under `reason` (none after a HEAD, whose
/// connection is never pooled), and the one after reuses the second
/// connection.
async fn next_client_is_clean(first: Vec<u8>, then: Then, method: &str, reason: &str) {
    let discarded = if method == "HEAD" { 0.0 } else { 1.0 };
    for direct in [true, false] {
        let path = if direct { "direct" } else { "hyper" };
        let mut up = upstream(first.clone(), then).await;
        let gw = gateway_on(direct, up.addr).await;
        let got = ask(gw.addr(), method).await;
        assert_eq!(got.status, 200, "{path}: {got:?}");
        if !matches!(then, Then::Serve) {
            // The client has read its response: only now does the upstream
            // write (or close), and only then does the next client ask.
            up.go.send(()).await.unwrap();
            tokio::time::timeout(GUARD, up.done.recv())
                .await
                .expect("the upstream reports (guard: 20 s)");
        }
        let next = ask(gw.addr(), "GET").await;
        assert!(!next.raw.contains("SECRET"), "{path}: leaked: {next:?}");
        assert_eq!(next.status, 200, "{path}: {next:?}");
        assert_eq!(next.body, "connection 2", "{path}: {next:?}");
        assert_eq!(
            discards(&gw, reason),
            discarded,
            "{path}: {}",
            gw.metrics_text()
        );
        let again = ask(gw.addr(), "GET").await;
        assert_eq!(
            again.body, "connection 2",
            "{path}: pooled again: {again:?}"
        );
        assert_eq!(
            discards(&gw, "stray_bytes") + discards(&gw, "closed"),
            discarded,
            "{path}"
        );
    }
}

/// A HEAD handler that writes the GET body, itself a whole response: the
/// connection that answered a HEAD is not reused at all.
#[tokio::test]
async fn a_body_on_a_head_answer_never_reaches_the_next_client() {
    let mut first = b"HTTP/1.1 200 OK\r\ncontent-length: 44\r\n\r\n".to_vec();
    first.extend_from_slice(SECRET);
    next_client_is_clean(first, Then::Serve, "HEAD", "stray_bytes").await;
}

#[tokio::test]
async fn bytes_past_the_content_length_never_reach_the_next_client() {
    let mut first = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello".to_vec();
    first.extend_from_slice(SECRET);
    next_client_is_clean(first, Then::Serve, "GET", "stray_bytes").await;
}

#[tokio::test]
async fn bytes_after_the_last_chunk_never_reach_the_next_client() {
    let mut first =
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec();
    first.extend_from_slice(SECRET);
    next_client_is_clean(first, Then::Serve, "GET", "stray_bytes").await;
}

/// The stray bytes come once the response is over and its client has it:
/// the connection is idle in the pool by then.
#[tokio::test]
async fn late_stray_bytes_on_an_idle_connection_never_reach_the_next_client() {
    let first = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello".to_vec();
    next_client_is_clean(first, Then::Late(SECRET), "GET", "stray_bytes").await;
}

/// A HEAD answer whose body comes after the client has its head.
#[tokio::test]
async fn a_late_body_on_a_head_answer_never_reaches_the_next_client() {
    let first = b"HTTP/1.1 200 OK\r\ncontent-length: 44\r\n\r\n".to_vec();
    next_client_is_clean(first, Then::Late(SECRET), "HEAD", "stray_bytes").await;
}

#[tokio::test]
async fn an_idle_connection_the_upstream_closed_is_dropped_and_counted() {
    let first = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello".to_vec();
    next_client_is_clean(first, Then::Close, "GET", "closed").await;
}

/// A clean exchange leaves nothing to discard: the second request reuses
/// the first connection.
#[tokio::test]
async fn a_clean_response_keeps_its_connection() {
    for direct in [true, false] {
        let up = upstream(
            b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\nconnection 1".to_vec(),
            Then::Serve,
        )
        .await;
        let gw = gateway_on(direct, up.addr).await;
        assert_eq!(ask(gw.addr(), "GET").await.body, "connection 1");
        assert_eq!(ask(gw.addr(), "GET").await.body, "connection 1");
        let text = gw.metrics_text();
        for reason in ["stray_bytes", "closed"] {
            assert_eq!(
                metric(
                    &text,
                    "candor_upstream_pool_discards_total",
                    &[("upstream", "svc"), ("reason", reason)],
                ),
                Some(0.0),
                "direct_path = {direct}: {text}"
            );
        }
    }
}

/// A connection the upstream closes as its response says (`close`, or a
/// body delimited by the close) is not pooled, and not a discard.
#[tokio::test]
async fn a_connection_closed_with_its_response_is_not_a_discard() {
    for first in [
        &b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 12\r\n\r\nconnection 1"[..],
        b"HTTP/1.1 200 OK\r\n\r\nconnection 1",
    ] {
        for direct in [true, false] {
            let up = upstream(first.to_vec(), Then::Close).await;
            up.go.send(()).await.unwrap();
            let gw = gateway_on(direct, up.addr).await;
            // (Chunked by the gateway when the close delimited it.)
            assert!(ask(gw.addr(), "GET").await.body.contains("connection 1"));
            assert_eq!(ask(gw.addr(), "GET").await.body, "connection 2");
            let text = gw.metrics_text();
            for reason in ["stray_bytes", "closed"] {
                assert_eq!(
                    metric(
                        &text,
                        "candor_upstream_pool_discards_total",
                        &[("upstream", "svc"), ("reason", reason)],
                    ),
                    Some(0.0),
                    "direct_path = {direct}: {text}"
                );
            }
        }
    }
}

/// An upstream body cut short is counted as `class="aborted"` with its
/// status, never as a 2xx; a complete one as 2xx.
#[tokio::test]
async fn an_aborted_response_is_counted_as_aborted_not_2xx() {
    for direct in [true, false] {
        let up = upstream(
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b".to_vec(),
            Then::Close,
        )
        .await;
        let gw = gateway_on(direct, up.addr).await;
        // The upstream closes right after its first answer: 10 bytes of 100.
        up.go.send(()).await.unwrap();
        let got = ask(gw.addr(), "GET").await;
        assert_eq!(got.status, 200);
        assert_eq!(got.body, "only ten b", "direct_path = {direct}");
        let text = gw.metrics_text();
        let requests = |class: &str| {
            metric(
                &text,
                "candor_requests_total",
                &[("route", "/{*rest}"), ("status", "200"), ("class", class)],
            )
        };
        assert_eq!(
            requests("aborted"),
            Some(1.0),
            "direct_path = {direct}: {text}"
        );
        assert_eq!(requests("2xx"), None, "direct_path = {direct}: {text}");
        assert_eq!(
            metric(
                &text,
                "candor_request_duration_seconds_count",
                &[("route", "/{*rest}"), ("class", "aborted")],
            ),
            Some(1.0),
            "direct_path = {direct}: {text}"
        );
        // The next response, complete, is a 2xx.
        assert_eq!(ask(gw.addr(), "GET").await.body, "connection 2");
        let text = gw.metrics_text();
        assert_eq!(
            metric(
                &text,
                "candor_requests_total",
                &[("route", "/{*rest}"), ("status", "200"), ("class", "2xx")],
            ),
            Some(1.0),
            "direct_path = {direct}: {text}"
        );
    }
}
