//! Real servers on 127.0.0.1:0 for the client's tests: candor serve in
//! process, the faults upstream, the reference service; one call through
//! either adapter, and a sleeper that records what it was asked to wait.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use candor_client::{Error, Policy, PolicyBuilder, RetryLayer, RetryMiddleware};
use candor_gateway::config;
use candor_gateway::{Gateway, StartOptions};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, Service};

pub const SECRET: &str = "client-test-secret-that-is-32-bytes-long";

/// A gateway from `rest` (upstreams and routes) with test defaults; under
/// `CANDOR_TEST_DIRECT_PATH=off` every request takes the hyper path.
pub async fn gateway(rest: &str) -> Gateway {
    let direct = if std::env::var_os("CANDOR_TEST_DIRECT_PATH").is_some_and(|v| v == "off") {
        "direct_path = false"
    } else {
        ""
    };
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\naccess_log = false\n{direct}\n\n\
         [auth.jwt]\nalgorithms = [\"HS256\"]\nsecret = \"{SECRET}\"\n\n{rest}"
    );
    let config = config::load_str(&toml, Path::new("test.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    Gateway::start(config, StartOptions::default())
        .await
        .expect("gateway starts")
}

pub async fn faults() -> (SocketAddr, candor_faults::FaultsHandle) {
    candor_faults::spawn_local().await.expect("faults upstream")
}

/// The reference accounts service on a fresh port and database.
pub async fn reference_api() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(candor_reference_api::serve(
        listener,
        candor_reference_api::Config::in_memory(),
    ));
    addr
}

/// A port nothing listens on.
pub fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// RFC 3339 for `secs` from now, for maintenance windows.
pub fn in_seconds(secs: u64) -> String {
    config::format_rfc3339(SystemTime::now() + Duration::from_secs(secs))
}

/// An HS256 token for `sub`, expiring `ttl` seconds from now (negative: expired).
pub fn token(sub: &str, roles: &[&str], ttl: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = serde_json::json!({ "sub": sub, "roles": roles, "exp": now + ttl });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// The waits a policy asked for; `instant` returns at once, `real` sleeps.
#[derive(Clone, Default)]
pub struct Waits(Arc<Mutex<Vec<Duration>>>);

impl Waits {
    pub fn list(&self) -> Vec<Duration> {
        self.0.lock().unwrap().clone()
    }

    pub fn instant(&self) -> impl candor_client::Sleeper {
        let seen = self.0.clone();
        move |d: Duration| {
            seen.lock().unwrap().push(d);
            async {}
        }
    }

    pub fn real(&self) -> impl candor_client::Sleeper {
        let seen = self.0.clone();
        move |d: Duration| {
            seen.lock().unwrap().push(d);
            tokio::time::sleep(d)
        }
    }
}

/// A policy builder whose waits `waits` records without sleeping.
pub fn policy(waits: &Waits) -> PolicyBuilder {
    Policy::builder().sleeper(waits.instant())
}

/// Which adapter a call goes through.
#[derive(Debug, Clone, Copy)]
pub enum Via {
    Reqwest,
    Tower,
}

pub const BOTH: [Via; 2] = [Via::Reqwest, Via::Tower];

#[derive(Debug)]
pub struct Got {
    pub status: StatusCode,
    pub body: Bytes,
}

/// One call through `via` with `policy`.
pub async fn call(
    via: Via,
    policy: &Policy,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Got, Error> {
    match via {
        Via::Reqwest => {
            let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                .with(RetryMiddleware::new(policy.clone()))
                .build();
            let mut req = client.request(method, url).body(body.to_owned());
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            match req.send().await {
                Ok(res) => Ok(Got {
                    status: res.status(),
                    body: res.bytes().await.expect("body"),
                }),
                Err(e) => Err(Error::downcast(e).unwrap_or_else(|e| panic!("not a give-up: {e}"))),
            }
        }
        Via::Tower => {
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let mut service = RetryLayer::new(policy.clone()).layer(client);
            let mut req = Request::builder().method(method).uri(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
            let res = service.call(req).await?;
            let status = res.status();
            let body = res.into_body().collect().await.expect("body").to_bytes();
            Ok(Got { status, body })
        }
    }
}

pub async fn get(
    via: Via,
    policy: &Policy,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Got, Error> {
    call(via, policy, Method::GET, url, headers, "").await
}
