//! TLS with ALPN: h2 and http/1.1 on the same listener.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use candor_gateway::{Gateway, StartOptions};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use support::*;

async fn tls_gateway(
    dir: &std::path::Path,
) -> (Gateway, rustls::RootCertStore, candor_faults::FaultsHandle) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();

    let (faults, handle) = faults().await;
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\naccess_log = false\ntls = {{ cert = \"cert.pem\", key = \"key.pem\" }}\n\
         [upstreams.svc]\ntargets = [\"{faults}\"]\n[[routes]]\npath = \"/{{*rest}}\"\nupstream = \"svc\"\n"
    );
    let config =
        candor_gateway::config::load_str(&toml, &dir.join("gateway.toml"), &|_| None).unwrap();
    let gw = Gateway::start(config, StartOptions::default())
        .await
        .unwrap();
    (gw, roots, handle)
}

async fn connect(
    gw: &Gateway,
    roots: rustls::RootCertStore,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

#[tokio::test]
async fn tls_negotiates_h2_by_alpn_and_proxies() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, roots, _f) = tls_gateway(dir.path()).await;
    let tls = connect(&gw, roots, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("https://localhost/echo")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["headers"]["x-forwarded-proto"], "https");
}

#[tokio::test]
async fn tls_serves_http1_to_clients_without_h2() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, roots, _f) = tls_gateway(dir.path()).await;
    let tls = connect(&gw, roots, &[b"http/1.1"]).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/nope")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(
        res.status().as_u16(),
        404,
        "proxied over HTTP/1.1 inside TLS"
    );
}

fn self_signed(dir: &std::path::Path, name: &str) -> rcgen::CertifiedKey<rcgen::KeyPair> {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
    rcgen::CertifiedKey {
        cert,
        signing_key: key,
    }
}

async fn gateway_with_https_upstream(
    dir: &std::path::Path,
    target: std::net::SocketAddr,
    ca: &str,
) -> Gateway {
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\naccess_log = false\n\
         [upstreams.secure]\ntargets = [\"{target}\"]\ntls = {{ ca = \"{ca}\" }}\n\
         [[routes]]\npath = \"/{{*rest}}\"\nupstream = \"secure\"\n"
    );
    let config =
        candor_gateway::config::load_str(&toml, &dir.join("front.toml"), &|_| None).unwrap();
    Gateway::start(config, StartOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn https_upstreams_are_verified_against_their_ca() {
    let dir = tempfile::tempdir().unwrap();
    // The upstream: a TLS gateway in front of candor faults.
    let (upstream, _roots, _f) = tls_gateway(dir.path()).await;
    self_signed(dir.path(), "stranger");

    let front = gateway_with_https_upstream(dir.path(), upstream.addr(), "cert.pem").await;
    let reply = get(front.addr(), "/echo").await;
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(
        reply.json()["headers"]["x-forwarded-proto"],
        "https",
        "the last hop was TLS"
    );

    let distrustful =
        gateway_with_https_upstream(dir.path(), upstream.addr(), "stranger.pem").await;
    let reply = get(distrustful.addr(), "/echo").await;
    assert_eq!(reply.status.as_u16(), 502);
    assert_eq!(reply.header("x-failure-type"), Some("tls"));
    assert_eq!(
        reply.json()["type"],
        "tag:candor.dev,2026:rule/upstream.unreachable"
    );
}
