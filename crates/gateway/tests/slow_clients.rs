//! Slow and idle clients, on both data paths: a connection with no request
//! in progress closes after `idle_timeout`, a request head must be whole
//! within `header_timeout` of its first byte however it trickles in, and
//! beyond `max_connections` new connections wait until one closes.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Far above the deadlines the tests configure, far below the defaults
/// (75 s idle, 30 s head) a connection would otherwise get.
const GUARD: Duration = Duration::from_secs(10);

const REQUEST: &[u8] = b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n";

/// An upstream that answers `ok` to every request, keeping connections.
async fn ok_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while read_head(&mut stream, &mut seen).await {
                    let end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    seen.drain(..end);
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn route(upstream: SocketAddr) -> String {
    format!(
        "[upstreams.svc]\ntargets = [\"{upstream}\"]\n[[routes]]\npath = \"/{{*rest}}\"\nupstream = \"svc\"\n"
    )
}

/// A one-worker gateway on the given path with short deadlines.
async fn hasty(direct: bool, upstream: SocketAddr) -> candor_gateway::Gateway {
    gateway(
        &format!(
            "direct_path = {direct}\nworkers = 1\nidle_timeout = \"200ms\"\nheader_timeout = \"300ms\""
        ),
        &route(upstream),
    )
    .await
}

/// Reads until the gateway closes the connection: true when it did (EOF,
/// or a reset when it closed with bytes unread), false when it answered.
async fn closed_by_gateway(stream: &mut (impl AsyncRead + Unpin), what: &str) -> bool {
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(GUARD, stream.read(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("{what}: still open after the guard ({GUARD:?})"));
    match read {
        Ok(0) | Err(_) => true,
        Ok(n) => {
            eprintln!("{what}: got {:?}", String::from_utf8_lossy(&buf[..n]));
            false
        }
    }
}

/// Sends `REQUEST` and reads its whole answer.
async fn exchange(stream: &mut TcpStream) {
    stream.write_all(REQUEST).await.unwrap();
    answer(stream).await;
}

/// Reads the whole answer (`ok`, from `ok_upstream`) to a request sent.
async fn answer(stream: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.ends_with(b"\r\n\r\nok") {
        let n = tokio::time::timeout(GUARD, stream.read(&mut buf))
            .await
            .expect("an answer (guard)")
            .unwrap();
        assert!(n > 0, "closed before the answer: {seen:?}");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 200 "), "{seen:?}");
}

fn timeouts(gw: &candor_gateway::Gateway, which: &str) -> f64 {
    metric(
        &gw.metrics_text(),
        "candor_client_timeouts_total",
        &[("timeout", which)],
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn a_connection_that_never_sends_is_closed_after_the_idle_timeout() {
    let upstream = ok_upstream().await;
    for direct in [true, false] {
        let gw = hasty(direct, upstream).await;
        let mut client = TcpStream::connect(gw.addr()).await.unwrap();
        let what = format!("silent connection, direct_path = {direct}");
        assert!(closed_by_gateway(&mut client, &what).await, "{what}");
        assert_eq!(timeouts(&gw, "idle"), 1.0, "{what}");
    }
}

#[tokio::test]
async fn a_head_sent_a_byte_at_a_time_is_cut_off_at_the_header_timeout() {
    let upstream = ok_upstream().await;
    // About 100 bytes, one every 40 ms (well inside either timeout between
    // two reads): whole after about 4 s, if nothing cuts it off.
    let head = format!(
        "GET /x HTTP/1.1\r\nhost: a\r\nx-pad: {}\r\n\r\n",
        "p".repeat(60)
    );
    for direct in [true, false] {
        let gw = hasty(direct, upstream).await;
        let mut client = TcpStream::connect(gw.addr()).await.unwrap();
        let (mut reading, mut writing) = client.split();
        let mut tick = tokio::time::interval(Duration::from_millis(40));
        let mut sent = 0;
        let closed = loop {
            tokio::select! {
                closed = closed_by_gateway(&mut reading, "dribble") => break closed,
                _ = tick.tick(), if sent < head.len() => {
                    if writing.write_all(&head.as_bytes()[sent..=sent]).await.is_err() {
                        break true;
                    }
                    sent += 1;
                }
            }
        };
        assert!(
            closed,
            "direct_path = {direct}: the head was answered, not cut off"
        );
        assert!(sent < head.len(), "direct_path = {direct}: all of it sent");
        assert_eq!(timeouts(&gw, "header"), 1.0, "direct_path = {direct}");
    }
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let upstream = ok_upstream().await;
    for direct in [true, false] {
        let gw = hasty(direct, upstream).await;
        let mut client = TcpStream::connect(gw.addr()).await.unwrap();
        // A second request on the connection first: the idle time after
        // the first did not close it.
        exchange(&mut client).await;
        exchange(&mut client).await;
        let what = format!("idle after a response, direct_path = {direct}");
        assert!(closed_by_gateway(&mut client, &what).await, "{what}");
        assert_eq!(timeouts(&gw, "idle"), 1.0, "{what}");
    }
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    let upstream = ok_upstream().await;
    for direct in [true, false] {
        let gw = hasty(direct, upstream).await;
        let tcp = TcpStream::connect(gw.addr()).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .unwrap();
        let driven = tokio::spawn(conn);
        let req = http::Request::get(format!("http://{}/x", gw.addr()))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        drop(res);
        // Pings and settings are no request: the connection ends anyway.
        tokio::time::timeout(GUARD, driven)
            .await
            .unwrap_or_else(|_| panic!("direct_path = {direct}: h2c still open (guard)"))
            .unwrap()
            .ok();
        assert_eq!(timeouts(&gw, "idle"), 1.0, "direct_path = {direct}");
    }
}

#[tokio::test]
async fn an_idle_tls_connection_is_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
    let upstream = ok_upstream().await;
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\naccess_log = false\nidle_timeout = \"200ms\"\n\
         tls = {{ cert = \"cert.pem\", key = \"key.pem\" }}\n{}",
        route(upstream)
    );
    let config =
        candor_gateway::config::load_str(&toml, &dir.path().join("gateway.toml"), &|_| None)
            .unwrap();
    let gw = candor_gateway::Gateway::start(config, candor_gateway::StartOptions::default())
        .await
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(gw.addr()).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .expect("TLS handshake");
    assert!(closed_by_gateway(&mut tls, "silent TLS connection").await);
    assert_eq!(timeouts(&gw, "idle"), 1.0);
}

/// Waits (guarded) until the gateway counts `n` open client connections.
async fn open_connections(gw: &candor_gateway::Gateway, n: f64) {
    tokio::time::timeout(GUARD, async {
        while metric(&gw.metrics_text(), "candor_client_connections", &[]) != Some(n) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "never {n} open connections: {:?}",
            metric(&gw.metrics_text(), "candor_client_connections", &[])
        )
    });
}

#[tokio::test]
async fn beyond_max_connections_a_connection_waits_until_one_closes() {
    let upstream = ok_upstream().await;
    for direct in [true, false] {
        let gw = gateway(
            &format!("direct_path = {direct}\nworkers = 1\nmax_connections = 2"),
            &route(upstream),
        )
        .await;
        let mut first = TcpStream::connect(gw.addr()).await.unwrap();
        let _second = TcpStream::connect(gw.addr()).await.unwrap();
        open_connections(&gw, 2.0).await;
        // The kernel completes the third's handshake (the backlog), but
        // the gateway does not take it.
        let mut third = TcpStream::connect(gw.addr()).await.unwrap();
        third.write_all(REQUEST).await.unwrap();
        // Sent after the third's request, answered first: the gateway
        // works, and the third waits.
        exchange(&mut first).await;
        assert_eq!(
            metric(&gw.metrics_text(), "candor_client_connections", &[]),
            Some(2.0),
            "direct_path = {direct}: a third connection was taken at the limit"
        );
        let mut buf = [0u8; 64];
        assert!(
            matches!(third.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "direct_path = {direct}: the third connection was served at the limit"
        );
        drop(first);
        answer(&mut third).await;
        open_connections(&gw, 2.0).await;
    }
}
