//! The upstream monitor: the contract's passive checks on every response an
//! upstream sends through the gateway, counted per upstream and rule.
//!
//! Bodies are tapped, not buffered: frames go to the client as they come,
//! and the monitor keeps (reference-counted) copies of at most
//! `monitor_body_bytes`. The checks run when the body ends.
//!
//! Of the request it keeps the fields the rules read (`REQUEST_FIELDS`,
//! `Authorization` among them, held only until the checks run), never the
//! body: request bodies stream upstream uncopied, so the rules that judge
//! the request body (`body.malformed_not_400`, `server.500_on_client_fault`)
//! do not run here; `candor lint` and `candor audit` run them.

use std::sync::Arc;

use bytes::Bytes;
use candor_contract::{CheckOptions, Exchange, check_exchange};

use crate::metrics::Metrics;

/// One exchange being watched.
pub struct Observation {
    pub upstream: Arc<str>,
    pub exchange: Exchange,
    budget: usize,
    chunks: Vec<Bytes>,
    seen: usize,
    metrics: Arc<Metrics>,
}

impl Observation {
    pub fn new(
        upstream: Arc<str>,
        exchange: Exchange,
        budget: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        Observation {
            upstream,
            exchange,
            budget,
            chunks: Vec::new(),
            seen: 0,
            metrics,
        }
    }

    /// A frame of the response body went by.
    pub fn data(&mut self, data: &Bytes) {
        if self.seen <= self.budget {
            self.chunks.push(data.clone());
        }
        self.seen = self.seen.saturating_add(data.len());
    }

    /// Body bytes went by that the caller does not hold as `Bytes`: copied
    /// into the body as it will be checked, while within the budget.
    pub fn data_slice(&mut self, data: &[u8]) {
        if self.seen <= self.budget {
            let room = self.budget.saturating_add(1).saturating_sub(self.seen);
            self.exchange
                .response
                .body
                .extend_from_slice(&data[..data.len().min(room)]);
        }
        self.seen = self.seen.saturating_add(data.len());
    }

    /// The body ended: run the checks and count what they find.
    pub fn finish(mut self) {
        let over_budget = self.seen > self.budget;
        // Frames kept as `Bytes` are joined here (slices were copied into
        // the body as they came: a caller uses one or the other).
        if !self.chunks.is_empty() {
            let mut body = Vec::with_capacity(self.seen.min(self.budget.saturating_add(1)));
            for chunk in &self.chunks {
                body.extend_from_slice(chunk);
            }
            self.exchange.response.body = body;
        }
        // Over budget, the kept prefix still shows the body is not empty,
        // but rules that need the whole body are skipped.
        let options = CheckOptions {
            max_body_bytes: if over_budget { 0 } else { self.budget },
            assume_json_api: false,
        };
        for finding in check_exchange(&self.exchange, &options) {
            self.metrics.violation(&self.upstream, finding.rule.id);
        }
    }
}
