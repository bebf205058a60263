//! Traces at a real OTLP/HTTP receiver: the spans of a 200, a 502 and a
//! 504, their parent links and attributes, Trace Context sent upstream.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use http::Method;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
use prost::Message;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_PARENT: &str = "00f067aa0ba902b7";

fn client_traceparent() -> String {
    format!("00-{CLIENT_TRACE}-{CLIENT_PARENT}-01")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/HTTP receiver on 127.0.0.1:0: every span it is sent, decoded
/// with the OpenTelemetry protobuf definitions, with its resource's
/// `service.name`.
async fn receiver() -> (SocketAddr, mpsc::UnboundedReceiver<(String, Span)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: http::HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                assert_eq!(headers["content-type"], "application/x-protobuf");
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|kv| kv.key == "service.name")
                        .and_then(|kv| kv.value.clone()?.value)
                        .map(|v| match v {
                            Value::StringValue(s) => s,
                            other => format!("{other:?}"),
                        })
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            let _ = tx.send((service.clone(), span));
                        }
                    }
                }
                ""
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, rx)
}

/// An upstream that reports each request head it receives and answers by
/// path: `/ok` 200, `/bad` bytes that are no response, `/slow` nothing.
async fn upstream() -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    let mut seen = Vec::new();
                    if !read_head(&mut stream, &mut seen).await {
                        return;
                    }
                    let head = String::from_utf8_lossy(&seen).into_owned();
                    let _ = tx.send(head.clone());
                    let reply: &[u8] = if head.starts_with("GET /ok ") {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                    } else if head.starts_with("GET /bad ") {
                        b"NOT HTTP AT ALL\r\n\r\n"
                    } else {
                        // Held until the gateway gives up.
                        std::future::pending::<()>().await;
                        return;
                    };
                    if stream.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn config(upstream: SocketAddr, collector: SocketAddr) -> String {
    format!(
        "[traces]\nendpoint = \"http://{collector}/v1/traces\"\nservice_name = \"edge\"\ninterval = \"20ms\"\n\
         [upstreams.svc]\ntargets = [\"{upstream}\"]\nresponse_timeout = \"300ms\"\n\
         [[routes]]\npath = \"/{{*rest}}\"\nupstream = \"svc\"\n"
    )
}

/// The request span and the attempt span of the trace `trace` (hex),
/// awaited from the receiver.
async fn spans_of(rx: &mut mpsc::UnboundedReceiver<(String, Span)>, trace: &str) -> (Span, Span) {
    let mut server = None;
    let mut client = None;
    while server.is_none() || client.is_none() {
        let (service, span) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("spans arrive")
            .expect("receiver runs");
        assert_eq!(service, "edge");
        if hex(&span.trace_id) != trace {
            continue;
        }
        match SpanKind::try_from(span.kind) {
            Ok(SpanKind::Server) => server = Some(span),
            Ok(SpanKind::Client) => client = Some(span),
            other => panic!("unexpected span kind {other:?}"),
        }
    }
    (server.unwrap(), client.unwrap())
}

fn attributes(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn field<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn failed(span: &Span) -> bool {
    span.status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32)
}

#[tokio::test]
async fn a_200_a_502_and_a_504_each_give_a_request_span_and_an_attempt_span() {
    let (collector, mut spans) = receiver().await;
    let (up, mut heads) = upstream().await;
    let gw = gateway("", &config(up, collector)).await;
    let traceparent = client_traceparent();
    for (path, status, failure, rule) in [
        ("/ok", 200, None, None),
        (
            "/bad",
            502,
            Some("invalid_response"),
            Some("upstream.invalid_response"),
        ),
        ("/slow", 504, Some("timeout"), Some("upstream.timeout")),
    ] {
        let reply = send(
            gw.addr(),
            Method::GET,
            path,
            &[("traceparent", &traceparent), ("tracestate", "vendor=1")],
            "",
        )
        .await;
        assert_eq!(reply.status.as_u16(), status, "{path}");
        let head = heads.recv().await.expect("the upstream got the request");
        let (request, attempt) = spans_of(&mut spans, CLIENT_TRACE).await;

        // client traceparent -> request span -> attempt span -> upstream.
        assert_eq!(hex(&request.parent_span_id), CLIENT_PARENT, "{path}");
        assert_eq!(attempt.parent_span_id, request.span_id, "{path}");
        let sent = field(&head, "traceparent").expect("traceparent goes upstream");
        assert_eq!(
            sent,
            format!("00-{CLIENT_TRACE}-{}-01", hex(&attempt.span_id)),
            "{path}"
        );
        assert_eq!(field(&head, "tracestate"), Some("vendor=1"), "{path}");
        assert_eq!(request.trace_state, "vendor=1");

        let r = attributes(&request);
        assert_eq!(r["http.request.method"], "GET");
        assert_eq!(r["http.route"], "/{*rest}");
        assert_eq!(r["http.response.status_code"], status.to_string());
        assert_eq!(r.get("error.type").map(String::as_str), failure, "{path}");
        assert_eq!(r.get("candor.rule").map(String::as_str), rule, "{path}");
        assert_eq!(request.name, "GET /{*rest}");
        assert_eq!(failed(&request), status >= 500, "{path}");

        let a = attributes(&attempt);
        assert_eq!(a["http.request.method"], "GET");
        assert_eq!(a["server.address"], "127.0.0.1");
        assert_eq!(a["server.port"], up.port().to_string());
        assert_eq!(a["candor.upstream"], "svc");
        assert_eq!(a.get("error.type").map(String::as_str), failure, "{path}");
        let got = a.get("http.response.status_code").map(String::as_str);
        assert_eq!(got, (status == 200).then_some("200"), "{path}");
        assert_eq!(failed(&attempt), status >= 500, "{path}");
        assert!(request.start_time_unix_nano <= attempt.start_time_unix_nano);
        assert!(attempt.end_time_unix_nano <= request.end_time_unix_nano);

        // A client's report of a gateway-made answer leads to the trace.
        if status >= 500 {
            assert_eq!(reply.json()["trace_id"], CLIENT_TRACE, "{path}");
        }
    }
    let text = gw.metrics_text();
    assert_eq!(
        metric(&text, "candor_trace_spans_dropped_total", &[]),
        Some(0.0)
    );
    // Run once with each data path (CANDOR_TEST_DIRECT_PATH=off).
    let direct = metric(&text, "candor_direct_requests_total", &[]).unwrap();
    let hyper_only = std::env::var_os("CANDOR_TEST_DIRECT_PATH").is_some_and(|v| v == "off");
    assert_eq!(direct > 0.0, !hyper_only, "{direct}");
}

#[tokio::test]
async fn a_retry_after_a_refused_connect_carries_the_traceparent_sent() {
    let (collector, mut spans) = receiver().await;
    let (up, mut heads) = upstream().await;
    let dead = closed_port().await;
    let rest = config(up, collector).replace(
        &format!("targets = [\"{up}\"]"),
        &format!("targets = [\"{dead}\", \"{up}\"]"),
    );
    let gw = gateway("", &rest).await;
    let traceparent = client_traceparent();
    // Round robin: one of two requests goes to the dead target first.
    let mut retried = false;
    for _ in 0..2 {
        let reply = send(
            gw.addr(),
            Method::GET,
            "/ok",
            &[("traceparent", &traceparent)],
            "",
        )
        .await;
        assert_eq!(reply.status, 200);
        let head = heads.recv().await.unwrap();
        let mut request = None;
        let mut attempts = Vec::new();
        // The request span ends last: every attempt has come by then.
        while request.is_none() {
            let (_, span) = tokio::time::timeout(Duration::from_secs(10), spans.recv())
                .await
                .unwrap()
                .unwrap();
            match SpanKind::try_from(span.kind) {
                Ok(SpanKind::Server) => request = Some(span),
                _ => attempts.push(span),
            }
        }
        let request = request.unwrap();
        assert!(attempts.iter().all(|a| a.parent_span_id == request.span_id));
        let answered = attempts.last().unwrap();
        let sent = field(&head, "traceparent").unwrap();
        assert_eq!(
            sent,
            format!("00-{CLIENT_TRACE}-{}-01", hex(&answered.span_id))
        );
        if let [refused, _] = &attempts[..] {
            retried = true;
            assert_eq!(attributes(refused)["error.type"], "connect_refused");
            assert_eq!(attributes(refused)["server.port"], dead.port().to_string());
            assert_ne!(refused.span_id, answered.span_id);
        }
    }
    assert!(retried, "one request met the dead target first");
}

#[tokio::test]
async fn a_malformed_traceparent_starts_a_new_trace_and_never_goes_upstream() {
    let (collector, mut spans) = receiver().await;
    let (up, mut heads) = upstream().await;
    let gw = gateway("", &config(up, collector)).await;
    let malformed = format!("00-{}-{CLIENT_PARENT}-01", CLIENT_TRACE.to_uppercase());
    for client in [
        vec![
            ("traceparent", malformed.as_str()),
            ("tracestate", "vendor=1"),
        ],
        vec![],
    ] {
        let reply = send(gw.addr(), Method::GET, "/ok", &client, "").await;
        assert_eq!(reply.status, 200);
        let head = heads.recv().await.unwrap();
        let sent = field(&head, "traceparent").expect("a new traceparent goes upstream");
        assert_eq!(head.matches("traceparent").count(), 1, "{head}");
        let trace = &sent[3..35];
        assert_ne!(trace, CLIENT_TRACE.to_lowercase());
        assert_eq!(field(&head, "tracestate"), None, "state without its parent");
        let (request, attempt) = spans_of(&mut spans, trace).await;
        assert!(
            request.parent_span_id.is_empty(),
            "a new trace has no parent"
        );
        assert_eq!(sent, format!("00-{trace}-{}-01", hex(&attempt.span_id)));
    }
}

/// Collects the access log's lines.
struct Lines(mpsc::UnboundedSender<Vec<u8>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_access_log_line_names_the_trace() {
    let (collector, mut spans) = receiver().await;
    let (up, _heads) = upstream().await;
    let toml = format!(
        "{GATEWAY_TABLE}listen = \"127.0.0.1:0\"\naccess_log = true\n{}",
        config(up, collector)
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    let options = candor_gateway::StartOptions {
        access_log: Some(Box::new(Lines(tx))),
        config_path: None,
    };
    let gw = candor_gateway::Gateway::start(parse_config(&toml), options)
        .await
        .unwrap();
    let traceparent = client_traceparent();
    let reply = send(
        gw.addr(),
        Method::GET,
        "/ok",
        &[("traceparent", &traceparent)],
        "",
    )
    .await;
    assert_eq!(reply.status, 200);
    let mut seen = Vec::new();
    while !seen.contains(&b'\n') {
        seen.extend(rx.recv().await.unwrap());
    }
    let end = seen.iter().position(|&b| b == b'\n').unwrap();
    let line: serde_json::Value = serde_json::from_slice(&seen[..end]).unwrap();
    assert_eq!(line["trace_id"], CLIENT_TRACE);
    spans_of(&mut spans, CLIENT_TRACE).await;
}

#[tokio::test]
async fn a_collector_that_stalls_costs_dropped_spans_never_a_wait() {
    // Takes the export request and never answers it.
    let stalled = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = stalled.local_addr().unwrap();
    let (accepted, mut connected) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = stalled.accept().await {
            let _ = accepted.send(stream);
        }
    });
    let (up, _heads) = upstream().await;
    let rest = config(up, collector).replace("[traces]\n", "[traces]\nqueue = 1\nbatch = 1\n");
    let gw = gateway("", &rest).await;
    for _ in 0..4 {
        assert_eq!(get(gw.addr(), "/ok").await.status, 200);
    }
    // Eight spans: one export in flight, one queued, the rest dropped.
    let _held = connected.recv().await.unwrap();
    let dropped = metric(&gw.metrics_text(), "candor_trace_spans_dropped_total", &[]).unwrap();
    assert!(dropped >= 6.0, "{dropped}");
}

#[tokio::test]
async fn without_traces_the_client_trace_context_goes_upstream_as_sent() {
    let (up, mut heads) = upstream().await;
    let rest = format!(
        "[upstreams.svc]\ntargets = [\"{up}\"]\n[[routes]]\npath = \"/{{*rest}}\"\nupstream = \"svc\"\n"
    );
    let gw = gateway("", &rest).await;
    let traceparent = client_traceparent();
    let reply = send(
        gw.addr(),
        Method::GET,
        "/ok",
        &[("traceparent", &traceparent), ("tracestate", "vendor=1")],
        "",
    )
    .await;
    assert_eq!(reply.status, 200);
    let head = heads.recv().await.unwrap();
    assert_eq!(field(&head, "traceparent"), Some(traceparent.as_str()));
    assert_eq!(field(&head, "tracestate"), Some("vendor=1"));
}

/// An auth service that reports each question's head and answers it
/// active, closing the connection (its body is not read).
async fn auth_service() -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut seen = Vec::new();
            if !read_head(&mut stream, &mut seen).await {
                continue;
            }
            let _ = tx.send(String::from_utf8_lossy(&seen).into_owned());
            let body = br#"{"active":true,"sub":"alice","roles":["reader"]}"#;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body).await;
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn the_auth_service_hop_gets_a_span_of_its_own_and_its_traceparent() {
    let (collector, mut spans) = receiver().await;
    let (up, mut heads) = upstream().await;
    let (auth, mut questions) = auth_service().await;
    let rest = format!(
        "[auth.external]\nupstream = \"auth\"\n\
         [upstreams.auth]\ntargets = [\"{auth}\"]\n\
         [traces]\nendpoint = \"http://{collector}/v1/traces\"\nservice_name = \"edge\"\ninterval = \"20ms\"\n\
         [upstreams.svc]\ntargets = [\"{up}\"]\n\
         [[routes]]\npath = \"/{{*rest}}\"\nupstream = \"svc\"\nauth = \"external\"\n"
    );
    let gw = gateway("", &rest).await;
    let traceparent = client_traceparent();
    let reply = send(
        gw.addr(),
        Method::GET,
        "/ok",
        &[
            ("traceparent", &traceparent),
            ("authorization", "Bearer t0k3n"),
        ],
        "",
    )
    .await;
    assert_eq!(reply.status.as_u16(), 200);
    let question = questions.recv().await.expect("the auth service was asked");
    let head = heads.recv().await.expect("the upstream got the request");

    // Three spans of the client's trace: the request, and one attempt per
    // hop, each a child of the request with an id of its own.
    let mut request = None;
    let mut attempts = HashMap::new();
    while request.is_none() || attempts.len() < 2 {
        let (_, span) = tokio::time::timeout(Duration::from_secs(10), spans.recv())
            .await
            .expect("spans arrive")
            .expect("receiver runs");
        if hex(&span.trace_id) != CLIENT_TRACE {
            continue;
        }
        match SpanKind::try_from(span.kind) {
            Ok(SpanKind::Server) => request = Some(span),
            _ => {
                attempts.insert(attributes(&span)["candor.upstream"].clone(), span);
            }
        }
    }
    let request = request.unwrap();
    let (ask, forward) = (&attempts["auth"], &attempts["svc"]);
    assert_eq!(ask.parent_span_id, request.span_id);
    assert_eq!(forward.parent_span_id, request.span_id);
    assert_ne!(ask.span_id, forward.span_id);
    let a = attributes(ask);
    assert_eq!(a["http.request.method"], "POST");
    assert_eq!(a["http.response.status_code"], "200");
    assert_eq!(a["server.port"], auth.port().to_string());
    assert_eq!(
        field(&question, "traceparent"),
        Some(format!("00-{CLIENT_TRACE}-{}-01", hex(&ask.span_id)).as_str())
    );
    assert_eq!(
        field(&head, "traceparent"),
        Some(format!("00-{CLIENT_TRACE}-{}-01", hex(&forward.span_id)).as_str())
    );
}
