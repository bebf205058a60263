//! contract.md section 1, rate.limited: 429 with an accurate Retry-After and
//! the RateLimit fields, in memory and in a real redis-server shared by two
//! gateways; a Redis outage under both on_store_error policies.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use candor_gateway::{Gateway, StartOptions};
use http::Method;
use support::*;

fn limited_config(faults: std::net::SocketAddr, limit: &str) -> String {
    format!(
        "{GATEWAY_TABLE}listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\naccess_log = false\n\
         [rate_limits.standard]\n{limit}\n\
         [upstreams.svc]\ntargets = [\"{faults}\"]\n\
         [[routes]]\npath = \"/limited/{{*rest}}\"\nupstream = \"svc\"\nrate_limit = \"standard\"\n\
         [[routes]]\npath = \"/free/{{*rest}}\"\nupstream = \"svc\"\n"
    )
}

async fn start(toml: &str) -> Gateway {
    let config = candor_gateway::config::load_str(toml, Path::new("gw.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    Gateway::start(config, StartOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn over_quota_is_429_with_retry_after_and_ratelimit_fields() {
    let (faults, _f) = faults().await;
    let gw = start(&limited_config(
        faults,
        "requests = 3\nper = \"60s\"\nkey = \"ip\"",
    ))
    .await;
    for remaining in [2, 1, 0] {
        let reply = get(gw.addr(), "/limited/ok").await;
        assert_eq!(reply.status.as_u16(), 200);
        assert_eq!(
            reply.header("ratelimit-policy"),
            Some("\"standard\";q=3;w=60")
        );
        let field = reply.header("ratelimit").unwrap().to_owned();
        assert!(
            field.starts_with(&format!("\"standard\";r={remaining};t=")),
            "{field}"
        );
    }
    let limited = get(gw.addr(), "/limited/ok").await;
    assert_rule(&limited, 429, "rate.limited");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (19..=20).contains(&retry),
        "one request every 20 s: {retry}"
    );
    assert!(
        limited
            .header("ratelimit")
            .unwrap()
            .starts_with("\"standard\";r=0;t=")
    );
    assert_eq!(
        limited.header("ratelimit-policy"),
        Some("\"standard\";q=3;w=60")
    );
    // Routes without a limit are not counted.
    assert_eq!(get(gw.addr(), "/free/ok").await.status.as_u16(), 200);
    assert_eq!(get(gw.addr(), "/free/ok").await.header("ratelimit"), None);
}

#[tokio::test]
async fn quotas_are_per_key() {
    let (faults, _f) = faults().await;
    let gw = start(&limited_config(
        faults,
        "requests = 1\nper = \"60s\"\nkey = \"header:x-tenant\"",
    ))
    .await;
    let a = [("x-tenant", "a")];
    let b = [("x-tenant", "b")];
    assert_eq!(
        send(gw.addr(), Method::GET, "/limited/ok", &a, "")
            .await
            .status
            .as_u16(),
        200
    );
    assert_eq!(
        send(gw.addr(), Method::GET, "/limited/ok", &b, "")
            .await
            .status
            .as_u16(),
        200
    );
    assert_eq!(
        send(gw.addr(), Method::GET, "/limited/ok", &a, "")
            .await
            .status
            .as_u16(),
        429
    );
}

/// A redis-server of our own on a unix socket, stopped on drop.
struct Redis {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("redis.sock");
        Self::start_at(dir, socket)
    }

    fn start_at(dir: tempfile::TempDir, socket: PathBuf) -> Redis {
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--unixsocket",
            ])
            .arg(&socket)
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        let out = child.stdout.take().unwrap();
        let mut lines = BufReader::new(out).lines();
        loop {
            let line = lines
                .next()
                .expect("redis-server says it is ready")
                .unwrap();
            if line
                .to_ascii_lowercase()
                .contains("ready to accept connections")
            {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Redis {
            child,
            socket,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// Stops the server and keeps its directory for a restart.
    fn kill(mut self) -> (tempfile::TempDir, PathBuf) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        (dir, self.socket.clone())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn two_gateways_sharing_redis_hold_one_quota_exactly() {
    let redis = Redis::start();
    let (faults, _f) = faults().await;
    let limit = format!(
        "requests = 5\nper = \"60s\"\nkey = \"ip\"\nstore = \"{}\"",
        redis.url()
    );
    let one = start(&limited_config(faults, &limit)).await;
    let two = start(&limited_config(faults, &limit)).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let gw = if i % 2 == 0 { &one } else { &two };
        statuses.push(get(gw.addr(), "/limited/ok").await.status.as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "{statuses:?}"
    );
    let limited = get(one.addr(), "/limited/ok").await;
    assert_rule(&limited, 429, "rate.limited");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=12).contains(&retry), "one request every 12 s: {retry}");
}

#[tokio::test]
async fn a_redis_outage_follows_on_store_error() {
    let redis = Redis::start();
    let url = redis.url();
    let (faults, _f) = faults().await;
    let allow = start(&limited_config(
        faults,
        &format!("requests = 100\nper = \"60s\"\nstore = \"{url}\"\non_store_error = \"allow\""),
    ))
    .await;
    let deny = start(&limited_config(
        faults,
        &format!("requests = 100\nper = \"60s\"\nstore = \"{url}\"\non_store_error = \"deny\""),
    ))
    .await;
    assert_eq!(get(allow.addr(), "/limited/ok").await.status.as_u16(), 200);
    assert_eq!(get(deny.addr(), "/limited/ok").await.status.as_u16(), 200);

    let (dir, socket) = redis.kill();
    assert_eq!(
        get(allow.addr(), "/limited/ok").await.status.as_u16(),
        200,
        "allow: traffic goes on"
    );
    let denied = get(deny.addr(), "/limited/ok").await;
    assert_rule(&denied, 503, "gateway.overloaded");
    assert!(denied.header("retry-after").is_some());

    let metrics = String::from_utf8_lossy(&get(deny.admin_addr().unwrap(), "/metrics").await.body)
        .into_owned();
    assert_eq!(
        metric(
            &metrics,
            "candor_rate_limit_store_errors_total",
            &[("limit", "standard"), ("outcome", "denied")]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        get(deny.admin_addr().unwrap(), "/readyz")
            .await
            .status
            .as_u16(),
        503
    );
    assert_eq!(
        get(allow.admin_addr().unwrap(), "/readyz")
            .await
            .status
            .as_u16(),
        200
    );

    // The store comes back on the same socket; the gateway reconnects by itself.
    let _redis = Redis::start_at(dir, socket);
    let mut recovered = false;
    for _ in 0..50 {
        if get(deny.addr(), "/limited/ok").await.status.as_u16() == 200 {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "the gateway reconnected to Redis");
    assert_eq!(
        get(deny.admin_addr().unwrap(), "/readyz")
            .await
            .status
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn a_client_over_quota_gets_429_before_its_body_is_read() {
    let (faults, _f) = faults().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("schema.json"),
        r#"{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}"#,
    )
    .unwrap();
    let toml = format!(
        "{GATEWAY_TABLE}listen = \"127.0.0.1:0\"\naccess_log = false\n\
         [rate_limits.one]\nrequests = 1\nper = \"60s\"\nkey = \"ip\"\n\
         [upstreams.svc]\ntargets = [\"{faults}\"]\n\
         [[routes]]\npath = \"/users\"\nupstream = \"svc\"\nrate_limit = \"one\"\nrequest_schema = \"schema.json\"\n"
    );
    let config = candor_gateway::config::load_str(&toml, &dir.path().join("gw.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    let gw = Gateway::start(config, StartOptions::default())
        .await
        .unwrap();
    let json = [("content-type", "application/json")];
    // The one allowed request is judged on its body ...
    let first = send(gw.addr(), Method::POST, "/users", &json, "{\"name\": 7}").await;
    assert_rule(&first, 400, "body.schema");
    assert!(
        first.header("ratelimit").is_some(),
        "limited routes say where the client stands"
    );
    // ... the next is refused on quota, whatever its body.
    let second = send(gw.addr(), Method::POST, "/users", &json, "{not json").await;
    assert_rule(&second, 429, "rate.limited");
}
