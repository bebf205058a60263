//! Builders for tests: a gateway from TOML text on 127.0.0.1:0, the faults
//! upstream, a held upstream the test releases, and a small HTTP client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use candor_gateway::config::{self, Config};
use candor_gateway::{Gateway, StartOptions};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

pub fn parse_config(toml: &str) -> Config {
    config::load_str(toml, Path::new("test.toml"), &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

/// `[gateway]` and, under `CANDOR_TEST_DIRECT_PATH=off`, `direct_path =
/// false`: how a test that writes its own configuration starts it, so that
/// the suite runs on either data path.
pub struct GatewayTable;

impl std::fmt::Display for GatewayTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[gateway]\n")?;
        if std::env::var_os("CANDOR_TEST_DIRECT_PATH").is_some_and(|v| v == "off") {
            f.write_str("direct_path = false\n")?;
        }
        Ok(())
    }
}

pub const GATEWAY_TABLE: GatewayTable = GatewayTable;

/// A gateway with `[gateway]` defaults suited to tests, plus `rest`.
///
/// `CANDOR_TEST_DIRECT_PATH=off` turns the direct path off where a test
/// does not choose: CI runs the gateway suite once each way.
pub async fn gateway(gateway_extra: &str, rest: &str) -> Gateway {
    let direct = if !gateway_extra.contains("direct_path")
        && std::env::var_os("CANDOR_TEST_DIRECT_PATH").is_some_and(|v| v == "off")
    {
        "direct_path = false"
    } else {
        ""
    };
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\naccess_log = false\n{direct}\n{gateway_extra}\n{rest}"
    );
    Gateway::start(parse_config(&toml), StartOptions::default())
        .await
        .expect("gateway starts")
}

/// The faults upstream on a fresh port; dropped with the handle.
pub async fn faults() -> (SocketAddr, candor_faults::FaultsHandle) {
    candor_faults::spawn_local()
        .await
        .expect("faults upstream starts")
}

/// A port nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let res = client().request(req).await.expect("gateway answers");
    let (parts, body) = res.into_parts();
    let body = body.collect().await.expect("complete body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    send(addr, Method::GET, path, &[], "").await
}

/// The value of one sample in the metrics text, by its full series name
/// with labels in any order (every `label="value"` given must be present).
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric_name, rest) = series.split_once('{').unwrap_or((series, ""));
        if metric_name != name {
            return None;
        }
        let ok = labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        ok.then(|| value.parse().ok()).flatten()
    })
}

/// Reads from `stream` onto `seen` until it holds a whole message head (up
/// to an empty line), for the test upstreams; `false` when the peer closed
/// first. What came after the head stays in `seen`, behind it.
pub async fn read_head(stream: &mut tokio::net::TcpStream, seen: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// An upstream that holds each request until the test releases it: it
/// reports every request it receives, then answers 200 when told to.
pub struct HeldUpstream {
    pub addr: SocketAddr,
    pub arrived: mpsc::Receiver<oneshot::Sender<()>>,
}

pub async fn held_upstream() -> HeldUpstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, arrived) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                if !read_head(&mut stream, &mut Vec::new()).await {
                    return;
                }
                let (release, released) = oneshot::channel();
                if tx.send(release).await.is_err() {
                    return;
                }
                let _ = released.await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nheld",
                    )
                    .await;
            });
        }
    });
    HeldUpstream { addr, arrived }
}

/// Asserts a gateway-made problem response for `rule`: status, media type,
/// type URI, and `instance` equal to the X-Request-Id.
pub fn assert_rule(reply: &Reply, status: u16, rule: &str) {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let body = reply.json();
    assert_eq!(body["type"], format!("tag:candor.dev,2026:rule/{rule}"));
    assert_eq!(body["status"], status);
    assert!(body["title"].is_string() && body["detail"].is_string());
    assert_eq!(body["instance"].as_str(), reply.header("x-request-id"));
}
