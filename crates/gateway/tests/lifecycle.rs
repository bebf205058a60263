//! Lifecycle: drain on shutdown, atomic reload (good and bad), metrics
//! after a known sequence, HTTP/2 cleartext.

mod support;

use std::io::Write;

use candor_gateway::{Gateway, Phase, StartOptions};
use support::*;

fn catch_all(upstream: std::net::SocketAddr, name: &str) -> String {
    format!(
        "[upstreams.{name}]\ntargets = [\"{upstream}\"]\nresponse_timeout = \"60s\"\n[[routes]]\npath = \"/{{*rest}}\"\nupstream = \"{name}\"\n"
    )
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests_and_refuses_new_ones() {
    let mut held = held_upstream().await;
    let gw = gateway("shutdown_grace = \"30s\"", &catch_all(held.addr, "held")).await;
    let (addr, admin) = (gw.addr(), gw.admin_addr().unwrap());
    assert_eq!(get(admin, "/readyz").await.status.as_u16(), 200);

    let in_flight = tokio::spawn(async move { get(addr, "/work").await });
    let release = held
        .arrived
        .recv()
        .await
        .expect("request reached the upstream");

    let mut phase = gw.phase();
    gw.shutdown();
    phase.wait_for(|p| *p == Phase::Draining).await.unwrap();
    assert_eq!(
        get(admin, "/readyz").await.status.as_u16(),
        503,
        "not ready while draining"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no new connections while draining"
    );

    release.send(()).unwrap();
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status.as_u16(), 200, "the in-flight request finished");
    assert_eq!(&reply.body[..], b"held");
    phase.wait_for(|p| *p == Phase::Stopped).await.unwrap();
    gw.wait().await;
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_without_waiting_for_the_grace() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (upstream, _faults) = faults().await;
    // A grace long enough that only the drain itself can end the
    // connection below before the guard does.
    let gw = gateway("shutdown_grace = \"1h\"", &catch_all(upstream, "f")).await;
    let mut idle = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    idle.write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.ends_with(b"{\"ok\":true}") {
        let n = idle.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the answer");
        seen.extend_from_slice(&buf[..n]);
    }
    // The connection is now idle and kept alive.
    let mut phase = gw.phase();
    gw.shutdown();
    // The guard is below the 75 s idle_timeout, which would also close an
    // idle connection: the close must come from the drain.
    let closed = tokio::time::timeout(std::time::Duration::from_secs(20), idle.read(&mut buf))
        .await
        .expect("the drain closes an idle connection (guard: 20 s)");
    assert_eq!(closed.unwrap_or(0), 0, "EOF, no further bytes");
    phase.wait_for(|p| *p == Phase::Stopped).await.unwrap();
    gw.wait().await;
}

#[tokio::test]
async fn reload_swaps_routes_atomically_and_a_bad_config_keeps_the_old_one() {
    let (faults, _f) = faults().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let write = |routes: &str| {
        let mut f = std::fs::File::create(&path).unwrap();
        write!(
            f,
            "{GATEWAY_TABLE}listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\naccess_log = false\n\
             [upstreams.svc]\ntargets = [\"{faults}\"]\n{routes}"
        )
        .unwrap();
    };
    write("[[routes]]\npath = \"/a/{*rest}\"\nupstream = \"svc\"\n");
    let config = candor_gateway::config::load_file(&path).unwrap();
    let options = StartOptions {
        access_log: None,
        config_path: Some(path.clone()),
    };
    let gw = Gateway::start(config, options).await.unwrap();
    assert_eq!(get(gw.addr(), "/a/ok").await.status.as_u16(), 200);
    assert_eq!(get(gw.addr(), "/b/ok").await.status.as_u16(), 404);

    write("[[routes]]\npath = \"/b/{*rest}\"\nupstream = \"svc\"\n");
    gw.reload_from_file().expect("good config reloads");
    assert_eq!(get(gw.addr(), "/a/ok").await.status.as_u16(), 404);
    assert_eq!(get(gw.addr(), "/b/ok").await.status.as_u16(), 200);

    write("[[routes]]\npath = \"/c/{*rest}\"\nupstream = \"missing\"\n");
    let err = gw.reload_from_file().expect_err("bad config is rejected");
    assert!(
        err.contains("gateway.toml") && err.contains("missing"),
        "{err}"
    );
    assert_eq!(
        get(gw.addr(), "/b/ok").await.status.as_u16(),
        200,
        "the old config keeps serving"
    );

    // The admin endpoint reloads too.
    write("[[routes]]\npath = \"/d/{*rest}\"\nupstream = \"svc\"\n");
    let admin = gw.admin_addr().unwrap();
    let reply = send(admin, http::Method::POST, "/-/reload", &[], "").await;
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(get(gw.addr(), "/d/ok").await.status.as_u16(), 200);

    let text = get(admin, "/metrics").await;
    let text = String::from_utf8_lossy(&text.body);
    assert_eq!(
        metric(
            &text,
            "candor_config_reloads_total",
            &[("outcome", "success")]
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &text,
            "candor_config_reloads_total",
            &[("outcome", "failure")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn metrics_after_a_known_sequence_keep_4xx_and_5xx_apart() {
    let (faults, _f) = faults().await;
    let rest = format!(
        "{}[[routes]]\npath = \"/gone\"\nretired = {{}}\n",
        catch_all(faults, "svc").replace("path = \"/{*rest}\"", "path = \"/api/{*rest}\"")
    );
    let gw = gateway("", &rest).await;
    for path in [
        "/api/ok",
        "/api/ok",
        "/api/status/503",
        "/api/status/404",
        "/nope",
        "/gone",
    ] {
        get(gw.addr(), path).await;
    }
    let admin = gw.admin_addr().unwrap();
    let text = String::from_utf8_lossy(&get(admin, "/metrics").await.body).into_owned();
    let requests = |labels: &[(&str, &str)]| metric(&text, "candor_requests_total", labels);
    assert_eq!(
        requests(&[
            ("route", "/api/{*rest}"),
            ("status", "200"),
            ("class", "2xx")
        ]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        requests(&[
            ("route", "/api/{*rest}"),
            ("status", "503"),
            ("class", "5xx"),
            ("source", "upstream")
        ]),
        Some(1.0)
    );
    assert_eq!(
        requests(&[
            ("route", "/api/{*rest}"),
            ("status", "404"),
            ("class", "4xx"),
            ("source", "upstream")
        ]),
        Some(1.0)
    );
    assert_eq!(
        requests(&[
            ("route", "unmatched"),
            ("status", "404"),
            ("source", "gateway")
        ]),
        Some(1.0)
    );
    assert_eq!(
        requests(&[("route", "/gone"), ("status", "410"), ("source", "gateway")]),
        Some(1.0)
    );
    let errors = |rule| metric(&text, "candor_gateway_errors_total", &[("rule", rule)]);
    assert_eq!(errors("route.unknown"), Some(1.0));
    assert_eq!(errors("route.retired"), Some(1.0));
    assert_eq!(
        metric(
            &text,
            "candor_request_duration_seconds_count",
            &[("route", "/api/{*rest}"), ("class", "2xx")]
        ),
        Some(2.0)
    );
    assert_eq!(metric(&text, "candor_in_flight_requests", &[]), Some(0.0));
    assert_eq!(get(admin, "/healthz").await.status.as_u16(), 200);
}

#[tokio::test]
async fn http2_cleartext_is_served() {
    use http_body_util::{BodyExt, Full};
    let (faults, _f) = faults().await;
    let gw = gateway("", &catch_all(faults, "svc")).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<bytes::Bytes>>();
    let req = http::Request::get(format!("http://{}/echo", gw.addr()))
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    let res = client.request(req).await.unwrap();
    assert_eq!(res.version(), http::Version::HTTP_2);
    assert_eq!(res.status().as_u16(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        echo["headers"]["host"].is_string(),
        "Host is set from :authority: {echo}"
    );
}

#[tokio::test]
async fn access_log_lines_are_json_with_the_rule_of_gateway_errors() {
    let (faults, _f) = faults().await;
    let toml = format!(
        "{GATEWAY_TABLE}listen = \"127.0.0.1:0\"\naccess_log = true\n{}",
        catch_all(faults, "svc").replace("path = \"/{*rest}\"", "path = \"/api/{*rest}\"")
    );
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    struct Lines(std::sync::mpsc::Sender<Vec<u8>>);
    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.send(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let options = StartOptions {
        access_log: Some(Box::new(Lines(tx))),
        config_path: None,
    };
    let gw = Gateway::start(parse_config(&toml), options).await.unwrap();
    get(gw.addr(), "/nope").await;
    let mut seen = Vec::new();
    while !seen.contains(&b'\n') {
        seen.extend(
            tokio::task::spawn_blocking({
                let chunk = rx.recv().unwrap();
                move || chunk
            })
            .await
            .unwrap(),
        );
    }
    let line: serde_json::Value =
        serde_json::from_slice(&seen[..seen.iter().position(|&b| b == b'\n').unwrap()]).unwrap();
    assert_eq!(line["status"], 404);
    assert_eq!(line["rule"], "route.unknown");
    assert_eq!(line["path"], "/nope");
    assert!(line["request_id"].is_string());
}

#[tokio::test]
async fn a_second_gateway_on_a_served_address_fails_to_start() {
    let (upstream, _faults) = faults().await;
    let first = gateway("", &catch_all(upstream, "f")).await;
    let addr = first.addr();
    let on = |addr: std::net::SocketAddr| {
        parse_config(&format!(
            "{GATEWAY_TABLE}listen = \"{addr}\"\naccess_log = false\n{}",
            catch_all(upstream, "f")
        ))
    };
    let Err(err) = Gateway::start(on(addr), StartOptions::default()).await else {
        panic!("a second gateway started on {addr}");
    };
    match &err {
        candor_gateway::StartError::Bind { addr: at, source } => {
            assert_eq!(*at, addr);
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        err.to_string(),
        format!("cannot listen on {addr}: the address is already in use by another process")
    );
    // The first one keeps every client.
    for _ in 0..8 {
        assert_eq!(get(addr, "/ok").await.status.as_u16(), 200);
    }

    // Once it has stopped, the address can be served again.
    first.shutdown();
    first.wait().await;
    let again = Gateway::start(on(addr), StartOptions::default())
        .await
        .expect("the address is free again");
    assert_eq!(get(addr, "/ok").await.status.as_u16(), 200);
    again.shutdown();
    again.wait().await;
}
