//! Traces: W3C Trace Context read from the client (or a trace started here),
//! a span per request and per upstream attempt, exported over OTLP/HTTP.
//!
//! Off (no `[traces]`), a request carries `None` and pays one branch. On,
//! finished spans go into a bounded queue that never waits: when it is
//! full the span is dropped and counted. A task sends them in batches.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use http_body_util::Full;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use prometheus_client::metrics::counter::Counter;
use prost::Message;
use tokio::sync::mpsc;

use crate::config::Traces;
use crate::metrics::Metrics;

/// The exporter's side of tracing: the queue into it, and its drop count.
pub(crate) struct Tracer {
    pub config: Arc<Traces>,
    queue: mpsc::Sender<Span>,
    dropped: Counter,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("endpoint", &self.config.endpoint)
            .finish()
    }
}

impl Tracer {
    /// Starts the exporter task on the current tokio runtime; it ends once
    /// every handle on this tracer is gone and the queue is sent.
    pub(crate) fn start(config: Arc<Traces>, metrics: &Metrics) -> Result<Arc<Tracer>, String> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "traces: no async runtime to export from".to_owned())?;
        let (queue, rx) = mpsc::channel(config.queue);
        let exporter = Exporter {
            config: config.clone(),
            exported: metrics.trace_spans_exported.clone(),
            failed: metrics.trace_export_failures.clone(),
        };
        handle.spawn(exporter.run(rx));
        Ok(Arc::new(Tracer {
            config,
            queue,
            dropped: metrics.trace_spans_dropped.clone(),
        }))
    }

    /// The span of a request whose `traceparent` / `tracestate` fields (the
    /// first of each, and how many traceparents came) are given. A missing
    /// or malformed traceparent starts a new trace; a tracestate goes on
    /// only with the traceparent it belongs to.
    pub(crate) fn request(
        self: &Arc<Self>,
        traceparent: Option<&[u8]>,
        traceparents: u8,
        tracestate: Option<&[u8]>,
    ) -> Box<RequestSpan> {
        let parent = traceparent
            .filter(|_| traceparents == 1)
            .and_then(parse_traceparent);
        let (trace_id, parent_id) = match parent {
            Some(p) => (p.trace_id, Some(p.parent_id)),
            None => (new_trace_id(), None),
        };
        let tracestate = parent
            .and(tracestate)
            .filter(|s| valid_tracestate(s))
            .and_then(|s| HeaderValue::from_bytes(s).ok());
        let forwarded = new_span_id();
        // Boxed: what the data path carries and moves is one pointer.
        Box::new(RequestSpan {
            tracer: self.clone(),
            trace_id,
            span_id: new_span_id(),
            parent_id,
            tracestate,
            forwarded,
            traceparent: traceparent_value(&trace_id, &forwarded),
            trace_hex: hex_of(&trace_id),
            start: now_nanos(),
        })
    }

    fn export(&self, span: Span) {
        if self.queue.try_send(span).is_err() {
            self.dropped.inc();
        }
    }
}

/// A traceparent's ids, once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parent {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

/// A `traceparent` value read strictly (W3C Trace Context, section 3.2):
/// lowercase hex, version `00` exactly 55 characters (a later version may
/// go on after a `-`), version `ff` and all-zero ids refused.
pub(crate) fn parse_traceparent(value: &[u8]) -> Option<Parent> {
    if value.len() < 55 || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let version = hex_byte(&value[0..2])?;
    if version == 0xff || (version == 0 && value.len() != 55) {
        return None;
    }
    if value.len() > 55 && value[55] != b'-' {
        return None;
    }
    let mut trace_id = [0u8; 16];
    for (i, b) in trace_id.iter_mut().enumerate() {
        *b = hex_byte(&value[3 + 2 * i..5 + 2 * i])?;
    }
    let mut parent_id = [0u8; 8];
    for (i, b) in parent_id.iter_mut().enumerate() {
        *b = hex_byte(&value[36 + 2 * i..38 + 2 * i])?;
    }
    let flags = hex_byte(&value[53..55])?;
    if trace_id == [0; 16] || parent_id == [0; 8] {
        return None;
    }
    Some(Parent {
        trace_id,
        parent_id,
        flags,
    })
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(digit(two[0])? << 4 | digit(two[1])?)
}

/// A tracestate the gateway passes on: visible ASCII, at most 512
/// characters (the spec's floor for what must be propagated).
fn valid_tracestate(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= 512 && value.iter().all(|&b| (b' '..=b'~').contains(&b))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_into(out: &mut [u8], bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
}

fn hex_of(trace_id: &[u8; 16]) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex_into(&mut out, trace_id);
    out
}

/// `00-<trace id>-<span id>-01`: this gateway samples what it traces.
fn traceparent_value(trace_id: &[u8; 16], span_id: &[u8; 8]) -> HeaderValue {
    let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-01";
    hex_into(&mut buf[3..35], trace_id);
    hex_into(&mut buf[36..52], span_id);
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

thread_local! {
    /// SplitMix64 state per thread, seeded from std's random hasher keys.
    static RNG: Cell<u64> = Cell::new({
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(now_nanos());
        h.finish()
    });
}

fn next_u64() -> u64 {
    RNG.with(|state| {
        let s = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

fn new_span_id() -> [u8; 8] {
    loop {
        let id = next_u64();
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

fn new_trace_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&new_span_id());
    id[8..].copy_from_slice(&next_u64().to_be_bytes());
    id
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn text(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

/// W3C Trace Context fields: replaced by the gateway's own when it traces.
pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub(crate) static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// One request's span (kind SERVER), from its head to its answer.
pub(crate) struct RequestSpan {
    tracer: Arc<Tracer>,
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_id: Option<[u8; 8]>,
    /// The client's, passed on with its traceparent.
    pub tracestate: Option<HeaderValue>,
    /// The span id the upstream's traceparent names: the attempt that
    /// reaches it (a retry after a connect failure takes it over, as the
    /// failed attempt reached nobody).
    forwarded: [u8; 8],
    /// The traceparent sent upstream.
    pub traceparent: HeaderValue,
    trace_hex: [u8; 32],
    start: u64,
}

/// How a request was answered, for its span.
pub(crate) struct Answer<'a> {
    pub method: &'a str,
    /// The route's pattern, when one matched.
    pub route: Option<&'a str>,
    pub status: u16,
    /// The contract rule of a gateway-made answer.
    pub rule: Option<&'static str>,
    /// The failure type of an upstream failure.
    pub failure: Option<&'static str>,
    pub upstream: Option<&'a str>,
}

impl RequestSpan {
    /// The trace id, 32 lowercase hex digits.
    pub(crate) fn trace_id(&self) -> &str {
        // Hex digits only.
        std::str::from_utf8(&self.trace_hex).unwrap_or_default()
    }

    /// A span for a call to any upstream (an auth service, say) with a
    /// span id of its own: send [`AttemptSpan::traceparent`] with it and
    /// [`AttemptSpan::end`] it when the call is over.
    pub fn attempt(&self, upstream: &str, server_address: &str, method: &str) -> AttemptSpan {
        self.attempt_with(new_span_id(), upstream, server_address, method)
    }

    /// The span of an attempt at the route's upstream: it carries the id
    /// already in the forwarded traceparent.
    pub(crate) fn forwarded_attempt(
        &self,
        upstream: &str,
        server_address: &str,
        method: &str,
    ) -> AttemptSpan {
        self.attempt_with(self.forwarded, upstream, server_address, method)
    }

    fn attempt_with(
        &self,
        span_id: [u8; 8],
        upstream: &str,
        server_address: &str,
        method: &str,
    ) -> AttemptSpan {
        let (host, port) = split_authority(server_address);
        let mut attributes = vec![
            text("http.request.method", method),
            text("server.address", host),
            text("candor.upstream", upstream),
        ];
        if let Some(port) = port {
            attributes.push(int("server.port", i64::from(port)));
        }
        AttemptSpan {
            tracer: self.tracer.clone(),
            trace_id: self.trace_id,
            span_id,
            parent_id: self.span_id,
            name: method.to_owned(),
            attributes,
            start: now_nanos(),
        }
    }

    /// Ends the span with what the request was answered.
    pub(crate) fn end(self, answer: Answer<'_>) {
        let mut attributes = vec![
            text("http.request.method", answer.method),
            int("http.response.status_code", i64::from(answer.status)),
        ];
        if let Some(route) = answer.route {
            attributes.push(text("http.route", route));
        }
        if let Some(rule) = answer.rule {
            attributes.push(text("candor.rule", rule));
        }
        if let Some(upstream) = answer.upstream {
            attributes.push(text("candor.upstream", upstream));
        }
        // A server span fails on 5xx only (4xx is the client's).
        let error_type = match (answer.failure, answer.rule) {
            (Some(failure), _) => Some(failure.to_owned()),
            _ if answer.status < 500 => None,
            (None, Some(rule)) => Some(rule.to_owned()),
            (None, None) => Some(answer.status.to_string()),
        };
        let failed = error_type.is_some();
        if let Some(error_type) = error_type {
            attributes.push(text("error.type", error_type));
        }
        let name = match answer.route {
            Some(route) => format!("{} {route}", answer.method),
            None => answer.method.to_owned(),
        };
        let span = Span {
            trace_id: self.trace_id.to_vec(),
            span_id: self.span_id.to_vec(),
            trace_state: self
                .tracestate
                .as_ref()
                .and_then(|s| s.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            parent_span_id: self.parent_id.map(|p| p.to_vec()).unwrap_or_default(),
            name,
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: self.start,
            end_time_unix_nano: now_nanos(),
            attributes,
            status: failed.then(|| Status {
                code: status::StatusCode::Error as i32,
                message: String::new(),
            }),
            ..Span::default()
        };
        self.tracer.export(span);
    }
}

/// `host[:port]` (an IPv6 host bracketed).
fn split_authority(authority: &str) -> (&str, Option<u16>) {
    if let Some(rest) = authority.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        return (host, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port.parse().ok()),
        _ => (authority, None),
    }
}

/// One attempt at an upstream (kind CLIENT): a child of its request's span.
pub struct AttemptSpan {
    tracer: Arc<Tracer>,
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_id: [u8; 8],
    name: String,
    attributes: Vec<KeyValue>,
    start: u64,
}

impl AttemptSpan {
    /// The traceparent to send with this attempt.
    pub fn traceparent(&self) -> HeaderValue {
        traceparent_value(&self.trace_id, &self.span_id)
    }

    /// Gives the span a fresh id: an attempt that reached nobody hands the
    /// forwarded id to the retry that follows it.
    pub(crate) fn renew_id(&mut self) {
        self.span_id = new_span_id();
    }

    /// Ends the attempt: the upstream's status, or the failure type (the
    /// contract's `X-Failure-Type` vocabulary) when none came.
    pub fn end(mut self, status: Option<u16>, failure: Option<&str>) {
        if let Some(status) = status {
            self.attributes
                .push(int("http.response.status_code", i64::from(status)));
        }
        // A client span fails on 4xx too: the request did not succeed.
        let error_type = match (failure, status) {
            (Some(failure), _) => Some(failure.to_owned()),
            (None, Some(status)) if status >= 400 => Some(status.to_string()),
            _ => None,
        };
        let failed = error_type.is_some();
        if let Some(error_type) = error_type {
            self.attributes.push(text("error.type", error_type));
        }
        let span = Span {
            trace_id: self.trace_id.to_vec(),
            span_id: self.span_id.to_vec(),
            parent_span_id: self.parent_id.to_vec(),
            name: std::mem::take(&mut self.name),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: self.start,
            end_time_unix_nano: now_nanos(),
            attributes: std::mem::take(&mut self.attributes),
            status: failed.then(|| Status {
                code: status::StatusCode::Error as i32,
                message: String::new(),
            }),
            ..Span::default()
        };
        self.tracer.export(span);
    }
}

/// The task that batches queued spans and posts them to the collector.
struct Exporter {
    config: Arc<Traces>,
    exported: Counter,
    failed: Counter,
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

impl Exporter {
    async fn run(self, mut rx: mpsc::Receiver<Span>) {
        let client: Client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let mut batch = Vec::with_capacity(self.config.batch);
        loop {
            // The first span starts a batch; it goes when full or when
            // `interval` has passed since.
            let Some(first) = rx.recv().await else { return };
            batch.push(first);
            let deadline = tokio::time::Instant::now() + self.config.interval;
            let mut open = true;
            while batch.len() < self.config.batch {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(span)) => batch.push(span),
                    Ok(None) => {
                        open = false;
                        break;
                    }
                    Err(_) => break,
                }
            }
            let spans = std::mem::replace(&mut batch, Vec::with_capacity(self.config.batch));
            self.send(&client, spans).await;
            if !open {
                return;
            }
        }
    }

    async fn send(&self, client: &Client, spans: Vec<Span>) {
        let count = spans.len() as u64;
        let body = self.encode(spans);
        let request = http::Request::post(self.config.endpoint.clone())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(Bytes::from(body)));
        let Ok(request) = request else {
            self.failed.inc();
            return;
        };
        let sent = tokio::time::timeout(self.config.timeout, async {
            let response = client.request(request).await.ok()?;
            let ok = response.status().is_success();
            // Read the answer away, so the connection is reused.
            let _ = http_body_util::BodyExt::collect(response.into_body()).await;
            Some(ok)
        })
        .await;
        if let Ok(Some(true)) = sent {
            self.exported.inc_by(count);
        } else {
            self.failed.inc();
            tracing::warn!(
                endpoint = %self.config.endpoint,
                spans = count,
                "trace export failed; the batch is dropped"
            );
        }
    }

    fn encode(&self, spans: Vec<Span>) -> Vec<u8> {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![text("service.name", self.config.service_name.clone())],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "candor-gateway".to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ..InstrumentationScope::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
        .encode_to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_gives_its_ids() {
        let p = parse_traceparent(VALID.as_bytes()).unwrap();
        assert_eq!(hex_of(&p.trace_id), *b"4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(p.parent_id, 0x00f0_67aa_0ba9_02b7_u64.to_be_bytes());
        assert_eq!(p.flags, 1);
        // A later version may carry more, after a dash.
        let later = format!("01{}-what-comes-next", &VALID[2..]);
        assert!(parse_traceparent(later.as_bytes()).is_some());
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        let bad = [
            "",
            &VALID[..54],
            &format!("{VALID}-"),
            &VALID.to_uppercase(),
            &format!("ff{}", &VALID[2..]),
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            &format!("01{}x", &VALID[2..]),
        ];
        for value in bad {
            assert_eq!(parse_traceparent(value.as_bytes()), None, "{value:?}");
        }
    }

    #[test]
    fn a_made_traceparent_reads_back() {
        let (trace, span) = (new_trace_id(), new_span_id());
        let value = traceparent_value(&trace, &span);
        let p = parse_traceparent(value.as_bytes()).unwrap();
        assert_eq!((p.trace_id, p.parent_id, p.flags), (trace, span, 1));
        assert_ne!(new_span_id(), span, "ids differ");
    }

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(split_authority("127.0.0.1:80"), ("127.0.0.1", Some(80)));
        assert_eq!(split_authority("[::1]:8080"), ("::1", Some(8080)));
        assert_eq!(split_authority("api.internal"), ("api.internal", None));
    }
}
