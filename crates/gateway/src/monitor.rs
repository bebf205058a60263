//! The upstream monitor: the contract's passive checks on every response an
//! upstream sends through the gateway, counted per upstream and rule.
//!
//! Bodies are tapped, not buffered: frames go to the client as they come,
//! and the monitor keeps (reference-counted) copies of at most
//! `monitor_body_bytes`. The checks run when the body ends.
//!
//! Of the request it keeps the fields the rules read (`REQUEST_FIELDS`,
//! `Authorization` among them, held only until the checks run), and the
//! body only when the rules read it (a JSON body without a content coding,
//! `candor_contract::reads_request_body`) and it fits the same budget
//! ([`RequestBody`]): so `body.malformed_not_400` and
//! `server.500_on_client_fault` are judged here as in `candor lint`.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use candor_contract::{CheckOptions, Exchange, check_exchange};
use http::HeaderMap;

use crate::metrics::Metrics;

/// A request body the monitor judges, kept as it goes upstream: set once
/// the whole body went by within the budget, never set otherwise (a body
/// cut short, answered early or over the budget is not judged).
pub type Tapped = Arc<OnceLock<Vec<Bytes>>>;

/// The tap on one request body: what went by of it so far.
pub struct RequestBody {
    chunks: Vec<Bytes>,
    seen: usize,
    budget: usize,
    whole: Tapped,
}

impl RequestBody {
    /// The one decision, for both data paths, of which request bodies are
    /// kept: on a monitored upstream, a body the rules read (JSON, not
    /// coded: `fields` holds the request's `REQUEST_FIELDS`), unless its
    /// declared length is 0 or over the budget. Every other request costs
    /// nothing. The tap feeds the body's bytes in; the [`Tapped`] goes to
    /// the [`Observation`].
    pub fn tap(
        monitored: bool,
        fields: &HeaderMap,
        declared: Option<u64>,
        budget: usize,
    ) -> Option<(RequestBody, Tapped)> {
        if !monitored
            || declared.is_some_and(|n| n == 0 || n > budget as u64)
            || !candor_contract::reads_request_body(fields)
        {
            return None;
        }
        let whole = Tapped::default();
        let tap = RequestBody {
            chunks: Vec::new(),
            seen: 0,
            budget,
            whole: whole.clone(),
        };
        Some((tap, whole))
    }

    /// A piece of the body went by: kept (a reference) while the body is
    /// within the budget; past it, nothing is kept.
    pub fn data(&mut self, data: &Bytes) {
        self.seen = self.seen.saturating_add(data.len());
        if self.seen > self.budget {
            self.chunks = Vec::new();
        } else if !data.is_empty() {
            self.chunks.push(data.clone());
        }
    }

    /// Body bytes the caller does not hold as `Bytes` (a reused read
    /// buffer): copied, while within the budget.
    pub fn data_slice(&mut self, data: &[u8]) {
        if self.seen.saturating_add(data.len()) <= self.budget {
            self.data(&Bytes::copy_from_slice(data));
        } else {
            self.seen = self.seen.saturating_add(data.len());
            self.chunks = Vec::new();
        }
    }

    /// The body ended: the monitor may judge it, if it stayed within the
    /// budget.
    pub fn end(self) {
        if self.seen <= self.budget {
            // Set once: a tap ends at most once.
            let _ = self.whole.set(self.chunks);
        }
    }
}

/// One exchange being watched.
pub struct Observation {
    pub upstream: Arc<str>,
    pub exchange: Exchange,
    budget: usize,
    chunks: Vec<Bytes>,
    seen: usize,
    /// The request body, when it is one the rules read.
    request_body: Option<Tapped>,
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
            request_body: None,
            metrics,
        }
    }

    /// The request's body is tapped: judged if it ends whole by the time
    /// the response does.
    pub fn with_request_body(mut self, tapped: Option<Tapped>) -> Self {
        self.request_body = tapped;
        self
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
        // Frames kept as `Bytes` are joined here (slices were copied into
        // the body as they came: a caller uses one or the other).
        if !self.chunks.is_empty() {
            let mut body = Vec::with_capacity(self.seen.min(self.budget.saturating_add(1)));
            for chunk in &self.chunks {
                body.extend_from_slice(chunk);
            }
            self.exchange.response.body = body;
        }
        // Joined only for the answers judged against it.
        if let Some(whole) = self.request_body.as_ref().and_then(|t| t.get())
            && candor_contract::judges_request_body(self.exchange.response.status)
        {
            self.exchange.request.body = whole.concat();
        }
        // Over budget, the kept prefix (longer than the budget) still shows
        // the body is not empty, but rules that need the whole body skip
        // it; a kept request body is within the budget.
        let options = CheckOptions {
            max_body_bytes: self.budget,
            assume_json_api: false,
        };
        for finding in check_exchange(&self.exchange, &options) {
            self.metrics.violation(&self.upstream, finding.rule.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CONTENT_ENCODING, CONTENT_TYPE};

    fn fields(pairs: &[(http::HeaderName, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(name.clone(), http::HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn only_json_bodies_of_monitored_upstreams_within_the_budget_are_tapped() {
        let json = fields(&[(CONTENT_TYPE, "application/json; charset=utf-8")]);
        let tapped = |monitored, f: &HeaderMap, declared| {
            RequestBody::tap(monitored, f, declared, 64).is_some()
        };
        assert!(tapped(true, &json, Some(64)));
        assert!(tapped(true, &json, None), "chunked: judged as it comes");
        assert!(tapped(
            true,
            &fields(&[(CONTENT_TYPE, "application/problem+json")]),
            Some(3)
        ));
        // Everything else costs nothing.
        assert!(!tapped(false, &json, Some(3)), "monitor off");
        assert!(!tapped(true, &json, Some(0)), "no body");
        assert!(!tapped(true, &json, Some(65)), "over the budget");
        assert!(!tapped(true, &HeaderMap::new(), Some(3)), "no media type");
        assert!(!tapped(
            true,
            &fields(&[(CONTENT_TYPE, "text/plain")]),
            Some(3)
        ));
        assert!(!tapped(
            true,
            &fields(&[
                (CONTENT_TYPE, "application/json"),
                (CONTENT_ENCODING, "gzip")
            ]),
            Some(3)
        ));
    }

    #[test]
    fn a_body_is_judged_only_when_it_ended_within_the_budget() {
        let json = fields(&[(CONTENT_TYPE, "application/json")]);
        let (mut tap, whole) = RequestBody::tap(true, &json, None, 8).unwrap();
        tap.data(&Bytes::from_static(b"{\"a\""));
        tap.data_slice(b":1}");
        assert!(whole.get().is_none(), "not before its end");
        tap.end();
        assert_eq!(whole.get().unwrap().concat(), b"{\"a\":1}");

        // Past the budget: nothing kept, nothing judged.
        let (mut tap, whole) = RequestBody::tap(true, &json, None, 8).unwrap();
        tap.data_slice(b"{\"a\":");
        tap.data(&Bytes::from_static(b"12345}"));
        assert!(tap.chunks.is_empty());
        tap.data_slice(b"");
        tap.end();
        assert!(whole.get().is_none());

        // Cut short (never ended): not judged.
        let (mut tap, whole) = RequestBody::tap(true, &json, None, 8).unwrap();
        tap.data_slice(b"{");
        drop(tap);
        assert!(whole.get().is_none());
    }
}
