//! The monitor on request bodies: a malformed JSON body answered with
//! anything but 400 is counted as `body.malformed_not_400`, on both paths.

mod support;

use std::net::SocketAddr;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MALFORMED: &str = "{\"name\": \"ada\",}";
const VALID: &str = "{\"name\": \"ada\"}";

/// A monitored upstream (64-byte budget) and an unmonitored one, both the
/// faults server, on the direct path or not.
async fn watching(direct: bool, upstream: SocketAddr) -> candor_gateway::Gateway {
    gateway(
        &format!("direct_path = {direct}\nworkers = 1"),
        &format!(
            r#"
[upstreams.watched]
targets = ["{upstream}"]
monitor = true
monitor_body_bytes = 64

[upstreams.quiet]
targets = ["{upstream}"]

[[routes]]
path = "/quiet/{{*rest}}"
upstream = "quiet"

[[routes]]
path = "/{{*rest}}"
upstream = "watched"
"#
        ),
    )
    .await
}

fn post(path: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: api.example\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn chunked(path: &str, pieces: &[&str]) -> Vec<u8> {
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nhost: api.example\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    for piece in pieces {
        out.push_str(&format!("{:x}\r\n{piece}\r\n", piece.len()));
    }
    out.push_str("0\r\n\r\n");
    out.into_bytes()
}

/// One keep-alive connection: each request's answer is read whole before
/// the next goes, so the monitor has judged an exchange before the next
/// one's (the checks run when the response body ends).
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn to(addr: SocketAddr) -> Conn {
        Conn {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    /// Sends `request`; the status of its answer.
    async fn ask(&mut self, request: &[u8]) -> u16 {
        self.stream.write_all(request).await.unwrap();
        loop {
            let mut fields = [httparse::EMPTY_HEADER; 32];
            let mut res = httparse::Response::new(&mut fields);
            if let httparse::Status::Complete(len) = res.parse(&self.buf).unwrap() {
                let status = res.code.unwrap();
                let body: usize = res
                    .headers
                    .iter()
                    .find(|f| f.name.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |f| {
                        std::str::from_utf8(f.value).unwrap().parse().unwrap()
                    });
                if self.buf.len() >= len + body {
                    self.buf.drain(..len + body);
                    return status;
                }
            }
            let mut more = [0u8; 4096];
            let n = self.stream.read(&mut more).await.unwrap();
            assert!(n > 0, "the gateway closed mid-answer");
            self.buf.extend_from_slice(&more[..n]);
        }
    }
}

fn malformed_count(text: &str, upstream: &str) -> Option<f64> {
    metric(
        text,
        "candor_contract_violations_total",
        &[("upstream", upstream), ("rule", "body.malformed_not_400")],
    )
}

/// Waits until the monitor counted `n` malformed bodies on `watched`: the
/// metrics text then.
async fn counted(gw: &candor_gateway::Gateway, n: f64) -> String {
    let wait = async {
        loop {
            let text = gw.metrics_text();
            if malformed_count(&text, "watched").is_some_and(|c| c >= n) {
                return text;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("never counted {n}: {}", gw.metrics_text()))
}

#[tokio::test]
async fn malformed_json_answered_with_anything_but_400_is_counted_on_both_paths() {
    let (upstream, _faults) = faults().await;
    for direct in [true, false] {
        let gw = watching(direct, upstream).await;
        let mut conn = Conn::to(gw.addr()).await;
        // Not counted: valid JSON answered 422, malformed answered 400, a
        // body that is not JSON, one with a content coding.
        let quiet = [
            post("/status/422", "application/json", VALID),
            post("/status/400", "application/json", MALFORMED),
            post("/status/422", "text/plain", MALFORMED),
            format!(
                "POST /status/422 HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\n\r\n{MALFORMED}",
                MALFORMED.len()
            )
            .into_bytes(),
        ];
        for request in &quiet {
            conn.ask(request).await;
        }
        // Counted: malformed answered 422, and (a +json type) 200.
        assert_eq!(
            conn.ask(&post("/status/422", "application/json", MALFORMED))
                .await,
            422
        );
        assert_eq!(
            conn.ask(&post("/ok", "application/merge-patch+json", MALFORMED))
                .await,
            200
        );
        let text = counted(&gw, 2.0).await;
        assert_eq!(
            malformed_count(&text, "watched"),
            Some(2.0),
            "direct_path = {direct}: {text}"
        );
        if direct {
            assert!(
                metric(&text, "candor_direct_requests_total", &[]).is_some_and(|n| n >= 6.0),
                "the direct path served them: {text}"
            );
        }
    }
}

#[tokio::test]
async fn a_body_over_the_budget_is_not_judged_on_both_paths() {
    let (upstream, _faults) = faults().await;
    // Malformed, and longer than the 64-byte budget.
    let large = format!("{{\"name\": \"{}\",}}", "a".repeat(80));
    for direct in [true, false] {
        let gw = watching(direct, upstream).await;
        let mut conn = Conn::to(gw.addr()).await;
        assert_eq!(
            conn.ask(&post("/status/422", "application/json", &large))
                .await,
            422
        );
        // Without a declared length, it grows past the budget as it comes.
        let (head, tail) = large.split_at(40);
        assert_eq!(conn.ask(&chunked("/status/422", &[head, tail])).await, 422);
        // Then one within it: the only one counted.
        conn.ask(&post("/status/422", "application/json", MALFORMED))
            .await;
        let text = counted(&gw, 1.0).await;
        assert_eq!(
            malformed_count(&text, "watched"),
            Some(1.0),
            "direct_path = {direct}: {text}"
        );
    }
}

#[tokio::test]
async fn a_chunked_malformed_body_is_judged_whole_on_both_paths() {
    let (upstream, _faults) = faults().await;
    for direct in [true, false] {
        let gw = watching(direct, upstream).await;
        let mut conn = Conn::to(gw.addr()).await;
        // Valid in pieces: judged whole, so not counted.
        let (a, b) = VALID.split_at(7);
        conn.ask(&chunked("/status/422", &[a, b])).await;
        let (a, b) = MALFORMED.split_at(7);
        assert_eq!(conn.ask(&chunked("/status/422", &[a, b])).await, 422);
        let text = counted(&gw, 1.0).await;
        assert_eq!(
            malformed_count(&text, "watched"),
            Some(1.0),
            "direct_path = {direct}: {text}"
        );
    }
}

#[tokio::test]
async fn an_unmonitored_upstream_keeps_no_body_on_both_paths() {
    let (upstream, _faults) = faults().await;
    for direct in [true, false] {
        let gw = watching(direct, upstream).await;
        let mut conn = Conn::to(gw.addr()).await;
        let (a, b) = MALFORMED.split_at(7);
        conn.ask(&post("/quiet/status/422", "application/json", MALFORMED))
            .await;
        conn.ask(&chunked("/quiet/status/422", &[a, b])).await;
        // The monitored one after them is counted: they were not.
        conn.ask(&post("/status/422", "application/json", MALFORMED))
            .await;
        let text = counted(&gw, 1.0).await;
        assert_eq!(malformed_count(&text, "quiet"), None, "{text}");
        assert_eq!(malformed_count(&text, "watched"), Some(1.0), "{text}");
    }
}
