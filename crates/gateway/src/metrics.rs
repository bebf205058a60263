//! Prometheus metrics. 4xx and 5xx are kept apart by a `class` label, and
//! gateway-made errors carry their contract rule ID.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's path pattern, or `unmatched`.
    pub route: Arc<str>,
    /// The method, from a bounded set (see [`method_label`]).
    pub method: &'static str,
    pub status: u16,
    /// `2xx`, `4xx`, `5xx`, ..., or `aborted`: the upstream broke the
    /// body off after the head was sent.
    pub class: &'static str,
    /// `gateway` when the gateway made the response, else `upstream`.
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    pub route: Arc<str>,
    pub class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamFailureLabels {
    pub upstream: Arc<str>,
    pub failure: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamRuleLabels {
    pub upstream: Arc<str>,
    pub rule: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub upstream: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DiscardLabels {
    pub upstream: Arc<str>,
    /// `stray_bytes` or `closed`.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthCheckLabels {
    /// The auth service's upstream.
    pub upstream: Arc<str>,
    /// `allowed`, `denied` (its 401/403, or inactive credentials) or
    /// `failed` (no decision: the answer was a 502, 503 or 504).
    pub outcome: &'static str,
    /// `hit` when the answer came from the cache, else `miss`.
    pub cache: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

/// Every metric the gateway exports, in one registry.
pub struct Metrics {
    /// Tells this instance's entries apart in the per-worker handle cache.
    id: u64,
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<LatencyLabels, Histogram>,
    pub in_flight: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub gateway_errors: Family<RuleLabels, Counter>,
    pub upstream_failures: Family<UpstreamFailureLabels, Counter>,
    pub violations: Family<UpstreamRuleLabels, Counter>,
    pub repairs: Family<UpstreamRuleLabels, Counter>,
    pub truncated: Family<UpstreamLabels, Counter>,
    pub retries: Family<UpstreamLabels, Counter>,
    pub resends: Family<UpstreamLabels, Counter>,
    pub pool_discards: Family<DiscardLabels, Counter>,
    pub reloads: Family<OutcomeLabels, Counter<u64, AtomicU64>>,
    pub rate_store_errors: Family<LimitLabels, Counter>,
    pub auth_checks: Family<AuthCheckLabels, Counter>,
    pub direct_requests: Counter,
    pub direct_handovers: Counter,
    /// Client connections open now (see `clients.rs`).
    pub client_connections: Gauge<i64, std::sync::atomic::AtomicI64>,
    /// Client connections closed by a deadline, `idle` or `header`.
    pub client_timeouts: Family<TimeoutLabels, Counter>,
    pub accept_errors: Counter,
    /// Spans dropped because the export queue was full (`[traces]`).
    pub trace_spans_dropped: Counter,
    pub trace_spans_exported: Counter,
    /// Export requests that failed (their spans are dropped).
    pub trace_export_failures: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TimeoutLabels {
    pub timeout: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    pub limit: Arc<str>,
    /// What followed: `allowed` or `denied` (the `on_store_error` policy).
    pub outcome: &'static str,
}

/// Latency buckets, seconds: 0.5 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("candor");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by route, method, status, status class and who made the response",
            requests.clone(),
        );
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(LATENCY_BUCKETS)) as fn() -> Histogram,
        );
        registry.register(
            "request_duration_seconds",
            "Time until the response head was sent, by route and status class (observed when the response ends, aborted or not)",
            latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight_requests",
            "Requests being handled",
            in_flight.clone(),
        );
        let gateway_errors = Family::<RuleLabels, Counter>::default();
        registry.register(
            "gateway_errors",
            "Responses the gateway made itself, by contract rule",
            gateway_errors.clone(),
        );
        let upstream_failures = Family::<UpstreamFailureLabels, Counter>::default();
        registry.register(
            "upstream_failures",
            "Upstream failures, by upstream and failure type",
            upstream_failures.clone(),
        );
        let violations = Family::<UpstreamRuleLabels, Counter>::default();
        registry.register(
            "contract_violations",
            "Contract violations committed by upstreams (monitor), by upstream and rule",
            violations.clone(),
        );
        let repairs = Family::<UpstreamRuleLabels, Counter>::default();
        registry.register(
            "contract_repairs",
            "Upstream responses the gateway repaired, by upstream and rule",
            repairs.clone(),
        );
        let truncated = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream_truncated",
            "Upstream bodies that failed after the head was sent (client stream aborted)",
            truncated.clone(),
        );
        let retries = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream_retries",
            "Requests retried on another target after a connect failure",
            retries.clone(),
        );
        let resends = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream_resends",
            "Requests sent once more on a fresh connection because the pooled one closed under them",
            resends.clone(),
        );
        let pool_discards = Family::<DiscardLabels, Counter>::default();
        registry.register(
            "upstream_pool_discards",
            "Pooled upstream connections dropped instead of reused: bytes past the end of a response (stray_bytes), or closed while idle",
            pool_discards.clone(),
        );
        let reloads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration reloads, by outcome",
            reloads.clone(),
        );
        let rate_store_errors = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rate_limit_store_errors",
            "Rate-limit checks the store could not answer, by limit and what followed",
            rate_store_errors.clone(),
        );
        let auth_checks = Family::<AuthCheckLabels, Counter>::default();
        registry.register(
            "auth_service_checks",
            "External auth checks, by auth service, outcome (allowed, denied, failed) and cache (hit, miss)",
            auth_checks.clone(),
        );
        let direct_requests = Counter::default();
        registry.register(
            "direct_requests",
            "Requests answered on the direct HTTP/1.1 path (the rest went through hyper)",
            direct_requests.clone(),
        );
        let direct_handovers = Counter::default();
        registry.register(
            "direct_handovers",
            "Client connections the direct path handed to hyper, at the first request it does not take",
            direct_handovers.clone(),
        );
        let client_connections = Gauge::default();
        registry.register(
            "client_connections",
            "Client connections open (at most max_connections)",
            client_connections.clone(),
        );
        let client_timeouts = Family::<TimeoutLabels, Counter>::default();
        registry.register(
            "client_timeouts",
            "Client connections closed with no request in progress (idle) or in the middle of a request head (header)",
            client_timeouts.clone(),
        );
        let accept_errors = Counter::default();
        registry.register(
            "accept_errors",
            "Failed accepts on the client listener (out of file descriptors, say), retried with backoff",
            accept_errors.clone(),
        );
        let trace_spans_dropped = Counter::default();
        registry.register(
            "trace_spans_dropped",
            "Spans dropped because the trace export queue was full (the data path never waits for it)",
            trace_spans_dropped.clone(),
        );
        let trace_spans_exported = Counter::default();
        registry.register(
            "trace_spans_exported",
            "Spans the OTLP collector accepted",
            trace_spans_exported.clone(),
        );
        let trace_export_failures = Counter::default();
        registry.register(
            "trace_export_failures",
            "OTLP export requests that failed or timed out (their spans are dropped)",
            trace_export_failures.clone(),
        );
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Metrics {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            rate_store_errors,
            auth_checks,
            registry,
            requests,
            latency,
            in_flight,
            gateway_errors,
            upstream_failures,
            violations,
            repairs,
            truncated,
            retries,
            resends,
            pool_discards,
            reloads,
            direct_requests,
            direct_handovers,
            client_connections,
            client_timeouts,
            accept_errors,
            trace_spans_dropped,
            trace_spans_exported,
            trace_export_failures,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts one answered request and observes its latency (`seconds`:
    /// until its head was ready).
    ///
    /// `Family::get_or_create` hashes every label with SipHash under a lock;
    /// per request that is most of the metrics' cost. So each worker thread
    /// keeps the handles it has used, keyed by the labels' identity (the
    /// route label's address, which the cached entry keeps alive, and small
    /// integers), and asks the families only the first time.
    pub fn observe_request(&self, request: RequestKey<'_>, seconds: f64) {
        let key = HandleKey {
            metrics: self.id,
            route: Arc::as_ptr(request.route).cast::<u8>() as usize,
            method: request.method,
            status: request.status,
            gateway: request.gateway,
            aborted: request.aborted,
        };
        HANDLES.with(|cache| {
            let mut cache = cache.borrow_mut();
            if let Some(handles) = cache.get(&key) {
                handles.requests.inc();
                handles.latency.observe(seconds);
                return;
            }
            if cache.len() >= HANDLE_CACHE_ENTRIES {
                // Reloads leave old route labels behind: start over.
                cache.clear();
            }
            let class = if request.aborted {
                "aborted"
            } else {
                class(request.status)
            };
            let handles = RequestHandles {
                requests: self
                    .requests
                    .get_or_create(&RequestLabels {
                        route: request.route.clone(),
                        method: request.method,
                        status: request.status,
                        class,
                        source: if request.gateway {
                            "gateway"
                        } else {
                            "upstream"
                        },
                    })
                    .clone(),
                latency: self
                    .latency
                    .get_or_create(&LatencyLabels {
                        route: request.route.clone(),
                        class,
                    })
                    .clone(),
                _route: request.route.clone(),
            };
            handles.requests.inc();
            handles.latency.observe(seconds);
            cache.insert(key, handles);
        });
    }

    pub fn violation(&self, upstream: &Arc<str>, rule: &'static str) {
        self.violations
            .get_or_create(&UpstreamRuleLabels {
                upstream: upstream.clone(),
                rule,
            })
            .inc();
    }
}

/// The labels of one answered request, as `observe_request` takes them.
#[derive(Clone, Copy)]
pub struct RequestKey<'a> {
    /// The route's label, or `unmatched`.
    pub route: &'a Arc<str>,
    /// The method's label ([`method_label`]).
    pub method: &'static str,
    pub status: u16,
    /// The gateway made the response (else the upstream did).
    pub gateway: bool,
    /// The upstream broke its body off: counted as `class="aborted"`.
    pub aborted: bool,
}

/// An upstream's response whose head went out, counted when its body
/// ends (see `body::UpstreamBody`): what `observe_request` takes, owned.
pub struct Tally {
    pub route: Arc<str>,
    pub method: &'static str,
    pub status: u16,
    /// Until the response head was ready.
    pub seconds: f64,
}

impl Tally {
    /// Counts the request; `aborted`: the upstream broke its body off.
    pub fn count(self, metrics: &Metrics, aborted: bool) {
        metrics.observe_request(
            RequestKey {
                route: &self.route,
                method: self.method,
                status: self.status,
                gateway: false,
                aborted,
            },
            self.seconds,
        );
    }
}

/// More distinct label sets than any one configuration makes (routes x
/// methods x statuses seen): the cache is cleared when it reaches this.
const HANDLE_CACHE_ENTRIES: usize = 4096;

thread_local! {
    static HANDLES: RefCell<HashMap<HandleKey, RequestHandles, BuildHasherDefault<KeyHasher>>> =
        RefCell::new(HashMap::default());
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct HandleKey {
    metrics: u64,
    route: usize,
    method: &'static str,
    status: u16,
    gateway: bool,
    aborted: bool,
}

struct RequestHandles {
    requests: Counter,
    latency: Histogram,
    /// Keeps the label's address from being reused by another label while
    /// the entry is keyed by it.
    _route: Arc<str>,
}

/// A multiply-rotate hash for [`HandleKey`]: a few integers this process
/// made, not input an attacker chooses, so SipHash's protection buys
/// nothing here.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A method's label: the standard ones by name, any other as `other`, so
/// that clients cannot grow the metrics.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// The `2xx`-style class of a status.
pub fn class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// One sample in every family, so that the exposition names them all
    /// (a family without samples is left out of it).
    fn every_family(m: &Metrics) {
        let route: Arc<str> = Arc::from("/r");
        let up: Arc<str> = Arc::from("u");
        m.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                method: "GET",
                status: 200,
                class: "2xx",
                source: "upstream",
            })
            .inc();
        m.latency
            .get_or_create(&LatencyLabels {
                route,
                class: "2xx",
            })
            .observe(0.1);
        m.gateway_errors
            .get_or_create(&RuleLabels { rule: "r" })
            .inc();
        let failure = UpstreamFailureLabels {
            upstream: up.clone(),
            failure: "f",
        };
        m.upstream_failures.get_or_create(&failure).inc();
        let rule = UpstreamRuleLabels {
            upstream: up.clone(),
            rule: "r",
        };
        m.violations.get_or_create(&rule).inc();
        m.repairs.get_or_create(&rule).inc();
        let upstream = UpstreamLabels {
            upstream: up.clone(),
        };
        for family in [&m.truncated, &m.retries, &m.resends] {
            family.get_or_create(&upstream).inc();
        }
        m.auth_checks
            .get_or_create(&AuthCheckLabels {
                upstream: up.clone(),
                outcome: "failed",
                cache: "miss",
            })
            .inc();
        m.pool_discards
            .get_or_create(&DiscardLabels {
                upstream: up.clone(),
                reason: "closed",
            })
            .inc();
        m.reloads
            .get_or_create(&OutcomeLabels { outcome: "success" })
            .inc();
        m.rate_store_errors
            .get_or_create(&LimitLabels {
                limit: up,
                outcome: "allowed",
            })
            .inc();
        m.client_timeouts
            .get_or_create(&TimeoutLabels { timeout: "idle" })
            .inc();
    }

    /// The sample names of every family in an exposition: a counter's
    /// `_total`, a histogram's `_bucket`, `_sum` and `_count`, a gauge's
    /// name.
    fn exported(text: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for rest in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            for suffix in suffixes {
                names.insert(format!("{name}{suffix}"));
            }
        }
        names
    }

    /// Every `candor_...` metric name a text mentions.
    fn mentioned(text: &str) -> BTreeSet<&str> {
        let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
        let bytes = text.as_bytes();
        text.match_indices("candor_")
            .filter(|(at, _)| *at == 0 || !word(&bytes[at - 1]))
            .map(|(at, _)| {
                let len = bytes[at..].iter().take_while(|b| word(b)).count();
                &text[at..at + len]
            })
            .collect()
    }

    #[test]
    fn metric_names_are_found_in_text() {
        let text = "rate(candor_a_total[5m]) / sum(candor_b_bucket{x=\"1\"}) xcandor_c";
        let names: Vec<_> = mentioned(text).into_iter().collect();
        assert_eq!(names, ["candor_a_total", "candor_b_bucket"]);
    }

    /// The alerting rules, their unit tests and the Grafana dashboard in
    /// examples/ name only metrics the gateway exports (promtool checks
    /// the rest of them in CI).
    #[test]
    fn operator_files_use_only_exported_metrics() {
        let metrics = Metrics::new();
        every_family(&metrics);
        let text = metrics.encode();
        let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let registered = include_str!("metrics.rs")
            .matches(concat!("registry", ".register("))
            .count();
        assert_eq!(families, registered, "every_family misses one:\n{text}");
        let exported = exported(&text);
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        for file in [
            "prometheus/candor-rules.yml",
            "prometheus/candor-rules.test.yml",
            "grafana/candor.json",
        ] {
            let text = std::fs::read_to_string(examples.join(file)).unwrap();
            let used = mentioned(&text);
            assert!(used.len() >= 5, "{file}: {used:?}");
            let unknown: Vec<_> = used.iter().filter(|n| !exported.contains(**n)).collect();
            assert!(unknown.is_empty(), "{file}: not exported: {unknown:?}");
        }
        let dashboard: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(examples.join("grafana/candor.json")).unwrap(),
        )
        .unwrap();
        let panels = dashboard["panels"].as_array().unwrap();
        assert!(panels.len() >= 6);
        assert!(panels.iter().all(|p| p["targets"][0]["expr"].is_string()));
    }
}
