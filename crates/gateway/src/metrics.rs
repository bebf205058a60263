//! Prometheus metrics. 4xx and 5xx are kept apart by a `class` label, and
//! gateway-made errors carry their contract rule ID.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

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
    pub method: Arc<str>,
    pub status: u16,
    /// `2xx`, `4xx`, `5xx`, ...
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
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

/// Every metric the gateway exports, in one registry.
pub struct Metrics {
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
    pub reloads: Family<OutcomeLabels, Counter<u64, AtomicU64>>,
    pub rate_store_errors: Family<LimitLabels, Counter>,
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
            "Time until the response head was sent, by route and status class",
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
        Metrics {
            rate_store_errors,
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
            reloads,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
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

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
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
