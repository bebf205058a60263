//! `candor faults` seen from a raw TCP client: the exact bytes each endpoint
//! sends, and how it ends the connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use candor_faults::{self as faults, FaultsHandle};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Guard against a hung test; never used to wait for something to happen.
const GUARD: Duration = Duration::from_secs(20);

async fn guarded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no progress in {GUARD:?}"))
}

async fn start() -> (SocketAddr, FaultsHandle) {
    faults::spawn_local().await.expect("faults server starts")
}

async fn connect(addr: SocketAddr, request: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send request");
    stream
}

/// Everything the server sends until it closes (a reset counts as a close).
async fn read_all(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut received = Vec::new();
    guarded("read to EOF", stream.read_to_end(&mut received)).await?;
    Ok(received)
}

/// Sends `request` on a fresh connection and returns all bytes until EOF.
async fn roundtrip(request: &str) -> Vec<u8> {
    let (addr, _server) = start().await;
    let mut stream = connect(addr, request.as_bytes()).await;
    read_all(&mut stream).await.expect("read response")
}

fn get_close(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: faults\r\nConnection: close\r\n\r\n")
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("UTF-8 response")
}

/// One parsed response.
#[derive(Debug)]
struct Response {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Reads one `Content-Length`-framed response (or a head-only one) from
/// `stream`, keeping any extra bytes in `buf` for the next call.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>, head_only: bool) -> Response {
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut fields);
        if let httparse::Status::Complete(head_len) = parsed.parse(buf).expect("valid head") {
            let headers: Vec<(String, String)> = parsed
                .headers
                .iter()
                .map(|h| (h.name.to_owned(), text(h.value).to_owned()))
                .collect();
            let status = parsed.code.expect("status");
            let reason = parsed.reason.unwrap_or_default().to_owned();
            let length = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse::<usize>().expect("numeric length"));
            let length = if head_only { 0 } else { length };
            while buf.len() < head_len + length {
                let n = guarded("read body", stream.read_buf(buf))
                    .await
                    .expect("read");
                assert_ne!(n, 0, "EOF inside a body");
            }
            let body = buf[head_len..head_len + length].to_vec();
            buf.drain(..head_len + length);
            return Response {
                status,
                reason,
                headers,
                body,
            };
        }
        let n = guarded("read head", stream.read_buf(buf))
            .await
            .expect("read");
        assert_ne!(n, 0, "EOF before a complete head");
    }
}

/// Sends `request` and reads one response on a fresh connection.
async fn ask(request: &str) -> Response {
    let (addr, _server) = start().await;
    let mut stream = connect(addr, request.as_bytes()).await;
    read_response(&mut stream, &mut Vec::new(), false).await
}

#[tokio::test]
async fn ok_answers_exact_bytes() {
    let received = roundtrip(&get_close("/ok")).await;
    assert_eq!(
        text(&received),
        "HTTP/1.1 200 OK\r\nServer: candor-faults\r\nContent-Type: application/json\r\n\
         Content-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}"
    );
}

#[tokio::test]
async fn ok_on_a_kept_alive_connection_has_no_connection_field() {
    let (addr, _server) = start().await;
    let mut stream = connect(addr, b"GET /ok HTTP/1.1\r\nHost: faults\r\n\r\n").await;
    let expected = "HTTP/1.1 200 OK\r\nServer: candor-faults\r\nContent-Type: application/json\r\n\
                    Content-Length: 11\r\n\r\n{\"ok\":true}";
    let mut received = vec![0; expected.len()];
    guarded("read", stream.read_exact(&mut received))
        .await
        .expect("read");
    assert_eq!(text(&received), expected);
}

#[tokio::test]
async fn slow_answers_eventually() {
    let response = ask("GET /slow?ms=20 HTTP/1.1\r\nHost: faults\r\n\r\n").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, br#"{"ok":true}"#);
}

#[tokio::test]
async fn reset_aborts_the_connection_without_an_answer() {
    let (addr, _server) = start().await;
    let mut stream = connect(addr, get_close("/reset").as_bytes()).await;
    match read_all(&mut stream).await {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
        Ok(received) => assert!(received.is_empty(), "got {received:?}"),
    }
}

#[tokio::test]
async fn garbage_is_not_http_then_eof() {
    let received = roundtrip(&get_close("/garbage")).await;
    assert!(!received.is_empty());
    assert!(!received.starts_with(b"HTTP/"), "{:?}", text(&received));
}

#[tokio::test]
async fn bad_length_sends_fewer_bytes_than_declared_then_eof() {
    let received = roundtrip(&get_close("/bad-length")).await;
    let text = text(&received);
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Length: 100"), "{head}");
    assert_eq!(body.len(), 10, "{body:?}");
}

#[tokio::test]
async fn truncate_never_sends_the_last_chunk() {
    let received = roundtrip(&get_close("/truncate")).await;
    let text = text(&received);
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nTransfer-Encoding: chunked"), "{head}");
    assert!(!head.contains("Content-Length"), "{head}");
    assert_eq!(body, "b\r\n{\"ok\":true}\r\n");
    assert!(!body.contains("0\r\n\r\n"));
}

#[tokio::test]
async fn status_503_is_a_problem_without_retry_after() {
    let received = roundtrip(&get_close("/status/503")).await;
    let body = r#"{"type":"about:blank","status":503}"#;
    assert_eq!(
        text(&received),
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nServer: candor-faults\r\n\
             Content-Type: application/problem+json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
    );
}

#[tokio::test]
async fn status_codes_without_a_known_reason_have_an_empty_one() {
    let response = ask("GET /status/599 HTTP/1.1\r\nHost: faults\r\n\r\n").await;
    assert_eq!(response.status, 599);
    assert_eq!(response.reason, "");
    assert_eq!(response.json()["status"], 599);
}

#[tokio::test]
async fn status_204_and_304_have_no_body() {
    let (addr, _server) = start().await;
    let mut stream = connect(
        addr,
        b"GET /status/204 HTTP/1.1\r\nHost: f\r\n\r\nGET /status/304 HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n",
    )
    .await;
    let received = read_all(&mut stream).await.expect("read");
    assert_eq!(
        text(&received),
        "HTTP/1.1 204 No Content\r\nServer: candor-faults\r\n\r\n\
         HTTP/1.1 304 Not Modified\r\nServer: candor-faults\r\nConnection: close\r\n\r\n"
    );
}

#[tokio::test]
async fn bare_401_has_no_challenge() {
    let response = ask("GET /401-bare HTTP/1.1\r\nHost: faults\r\n\r\n").await;
    assert_eq!(response.status, 401);
    assert_eq!(response.header("www-authenticate"), None);
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(response.json()["status"], 401);
}

#[tokio::test]
async fn success_error_is_a_200_that_says_it_failed() {
    let response = ask("GET /200-error HTTP/1.1\r\nHost: faults\r\n\r\n").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        response.body,
        br#"{"success":false,"error":"something failed"}"#
    );
}

#[tokio::test]
async fn echo_reports_the_request_as_received() {
    let response = ask(concat!(
        "POST /echo?a=1&b=2 HTTP/1.1\r\n",
        "Host: faults\r\n",
        "X-Forwarded-For: 10.0.0.1\r\n",
        "X-Forwarded-For: 10.0.0.2\r\n",
        "X-Request-Id: abc\r\n",
        "Content-Length: 5\r\n",
        "\r\n",
        "hello",
    ))
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("server"), Some("candor-faults"));
    let echoed = response.json();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/echo");
    assert_eq!(echoed["query"], "a=1&b=2");
    assert_eq!(echoed["version"], "HTTP/1.1");
    assert_eq!(echoed["body"], "hello");
    assert_eq!(echoed["headers"]["host"], "faults");
    assert_eq!(echoed["headers"]["x-request-id"], "abc");
    assert_eq!(
        echoed["headers"]["x-forwarded-for"],
        serde_json::json!(["10.0.0.1", "10.0.0.2"])
    );
    assert_eq!(echoed["headers"]["content-length"], "5");
}

#[tokio::test]
async fn echo_takes_content_length_as_the_contract_reads_it() {
    // A list of one length repeated is that length (RFC 9110 section 8.6).
    let response = ask(concat!(
        "POST /echo HTTP/1.1\r\n",
        "Host: faults\r\n",
        "Content-Length: 5, 5\r\n",
        "Content-Length: 5\r\n",
        "\r\n",
        "hello",
    ))
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["body"], "hello");
    for bad in ["5, 6", "+5", "5,", "5 5"] {
        let head =
            format!("POST /echo HTTP/1.1\r\nHost: faults\r\nContent-Length: {bad}\r\n\r\nhello");
        assert_eq!(ask(&head).await.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn echo_decodes_chunked_bodies() {
    let response = ask(concat!(
        "POST /echo HTTP/1.1\r\n",
        "Host: faults\r\n",
        "Transfer-Encoding: chunked\r\n",
        "\r\n",
        "5;ext=1\r\nhello\r\n",
        "6\r\n world\r\n",
        "0\r\n",
        "X-Trailer: yes\r\n",
        "\r\n",
    ))
    .await;
    let echoed = response.json();
    assert_eq!(echoed["body"], "hello world");
    assert_eq!(echoed["query"], Value::Null);
}

#[tokio::test]
async fn expect_continue_gets_an_interim_answer_before_the_body() {
    let (addr, _server) = start().await;
    let mut stream = connect(
        addr,
        b"PUT /echo HTTP/1.1\r\nHost: f\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    )
    .await;
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut received = vec![0; interim.len()];
    guarded("read interim", stream.read_exact(&mut received))
        .await
        .expect("read");
    assert_eq!(received, interim);
    stream.write_all(b"hi").await.expect("send body");
    let response = read_response(&mut stream, &mut Vec::new(), false).await;
    assert_eq!(response.json()["body"], "hi");
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let (addr, _server) = start().await;
    let mut stream = connect(addr, b"GET /ok HTTP/1.1\r\nHost: f\r\n\r\n").await;
    let mut buf = Vec::new();
    let first = read_response(&mut stream, &mut buf, false).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("connection"), None);

    stream
        .write_all(b"GET /status/502 HTTP/1.1\r\nHost: f\r\n\r\n")
        .await
        .expect("second request");
    let second = read_response(&mut stream, &mut buf, false).await;
    assert_eq!(second.status, 502);

    // Pipelined: two requests in one write, answered in order; the last
    // asks to close.
    stream
        .write_all(
            b"GET /200-error HTTP/1.1\r\nHost: f\r\n\r\nGET /echo HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n",
        )
        .await
        .expect("pipelined requests");
    let third = read_response(&mut stream, &mut buf, false).await;
    assert_eq!(third.json()["success"], false);
    let fourth = read_response(&mut stream, &mut buf, false).await;
    assert_eq!(fourth.json()["path"], "/echo");
    assert_eq!(fourth.header("connection"), Some("close"));
    assert!(buf.is_empty());
    assert!(read_all(&mut stream).await.expect("EOF").is_empty());
}

#[tokio::test]
async fn http10_closes_unless_asked_to_keep_alive() {
    let received = roundtrip("GET /ok HTTP/1.0\r\n\r\n").await;
    assert!(text(&received).contains("\r\nConnection: close\r\n"));

    let (addr, _server) = start().await;
    let mut stream = connect(addr, b"GET /ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await;
    let mut buf = Vec::new();
    let first = read_response(&mut stream, &mut buf, false).await;
    assert_eq!(first.header("connection"), Some("keep-alive"));
    stream
        .write_all(b"GET /ok HTTP/1.0\r\n\r\n")
        .await
        .expect("second request");
    let second = read_response(&mut stream, &mut buf, false).await;
    assert_eq!(second.header("connection"), Some("close"));
}

#[tokio::test]
async fn head_gets_the_head_without_the_body() {
    let (addr, _server) = start().await;
    let mut stream = connect(
        addr,
        b"HEAD /ok HTTP/1.1\r\nHost: f\r\n\r\nGET /status/418 HTTP/1.1\r\nHost: f\r\n\r\n",
    )
    .await;
    let mut buf = Vec::new();
    let head = read_response(&mut stream, &mut buf, true).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("11"));
    // The next response starts right after the head: no body was sent.
    let next = read_response(&mut stream, &mut buf, false).await;
    assert_eq!(next.status, 418);
}

#[tokio::test]
async fn endpoints_match_after_any_prefix() {
    let (addr, _server) = start().await;
    let mut stream = connect(
        addr,
        concat!(
            "GET /f/slow?ms=1 HTTP/1.1\r\nHost: f\r\n\r\n",
            "GET /any/prefix/status/503 HTTP/1.1\r\nHost: f\r\n\r\n",
            "GET /api/v1/echo?x=y HTTP/1.1\r\nHost: f\r\n\r\n",
            "GET /f/ok/more HTTP/1.1\r\nHost: f\r\n\r\n",
        )
        .as_bytes(),
    )
    .await;
    let mut buf = Vec::new();
    let slow = read_response(&mut stream, &mut buf, false).await;
    assert_eq!(
        (slow.status, slow.body.as_slice()),
        (200, &br#"{"ok":true}"#[..])
    );
    let status = read_response(&mut stream, &mut buf, false).await;
    assert_eq!(status.status, 503);
    let echo = read_response(&mut stream, &mut buf, false).await;
    assert_eq!(echo.json()["path"], "/api/v1/echo");
    assert_eq!(echo.json()["query"], "x=y");
    let unknown = read_response(&mut stream, &mut buf, false).await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn unknown_paths_are_404_problems() {
    let response = ask("GET /nowhere HTTP/1.1\r\nHost: faults\r\n\r\n").await;
    assert_eq!(response.status, 404);
    assert_eq!(response.reason, "Not Found");
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    let problem = response.json();
    assert_eq!(problem["type"], "about:blank");
    assert_eq!(problem["status"], 404);
    assert!(problem["detail"].is_string());
}

#[tokio::test]
async fn oversized_head_is_431_and_close() {
    let filler = "x".repeat(70 * 1024);
    let request = format!("GET /ok HTTP/1.1\r\nHost: f\r\nX-Filler: {filler}\r\n\r\n");
    let (addr, _server) = start().await;
    let mut stream = connect(addr, request.as_bytes()).await;
    let response = read_response(&mut stream, &mut Vec::new(), false).await;
    assert_eq!(response.status, 431);
    assert_eq!(response.header("connection"), Some("close"));
}

#[tokio::test]
async fn oversized_body_is_413_and_close() {
    let response = ask("POST /echo HTTP/1.1\r\nHost: f\r\nContent-Length: 2000000\r\n\r\n").await;
    assert_eq!(response.status, 413);
    assert_eq!(response.header("connection"), Some("close"));
}

#[tokio::test]
async fn malformed_requests_are_400_and_close() {
    for request in [
        "GET /ok HTTP/1.1\r\nBad Header\r\n\r\n",
        "POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let response = ask(request).await;
        assert_eq!(response.status, 400, "{request:?}");
        assert_eq!(response.header("connection"), Some("close"), "{request:?}");
    }
}

#[tokio::test]
async fn shutdown_closes_the_listener() {
    let (addr, server) = start().await;
    let mut stream = connect(addr, b"GET /ok HTTP/1.1\r\nHost: f\r\n\r\n").await;
    read_response(&mut stream, &mut Vec::new(), false).await;
    server.shutdown().await.expect("clean shutdown");
    // The open connection was dropped, and nothing listens any more.
    assert!(read_all(&mut stream).await.unwrap_or_default().is_empty());
    let refused = TcpStream::connect(addr).await.expect_err("nothing listens");
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
}
