//! What every request shares: the current configuration (swapped whole on
//! reload), metrics, the in-flight count and the access log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use http::HeaderValue;

use crate::access_log::AccessLog;
use crate::auth::{Authenticator, ExternalCheck};
use crate::config::Config;
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::ratelimit::Limiter;
use crate::routing::RouteTable;
use crate::trace::Tracer;
use crate::upstream::Pool;

/// One configuration, built and ready: routes and upstream pools.
pub struct Runtime {
    pub config: Arc<Config>,
    pub auth: Authenticator,
    /// The auth service of `[auth.external]`.
    pub external: Option<Arc<ExternalCheck>>,
    /// Rate-limit policies by name.
    pub limiters: BTreeMap<String, Arc<Limiter>>,
    pub routes: RouteTable,
    pub pools: BTreeMap<String, Arc<Pool>>,
    /// Trace export, when `[traces]` is configured.
    pub tracer: Option<Arc<Tracer>>,
}

impl Runtime {
    /// Builds a runtime, reusing the pools (connections, ejection state) of
    /// `previous` for upstreams whose configuration did not change.
    pub fn build(
        config: Config,
        previous: Option<&Runtime>,
        workers: usize,
        metrics: &Metrics,
    ) -> Result<Self, String> {
        let mut pools = BTreeMap::new();
        for (name, upstream) in &config.upstreams {
            let reused = previous
                .and_then(|p| p.pools.get(name))
                .filter(|pool| pool.config == *upstream)
                .cloned();
            let pool = match reused {
                Some(pool) => pool,
                None => Arc::new(Pool::new(upstream.clone(), workers, metrics)?),
            };
            pools.insert(name.clone(), pool);
        }
        let routes = RouteTable::build(&config, &pools)?;
        let auth = Authenticator::build(&config.auth, &config.gateway.realm)?;
        // An unchanged auth service keeps its cache across a reload.
        let external = config
            .auth
            .external
            .as_ref()
            .map(|e| {
                let previous = previous.and_then(|p| p.external.as_ref());
                ExternalCheck::build(e, &pools, &config.gateway.realm, previous)
            })
            .transpose()?;
        // An unchanged policy keeps its limiter, so a reload resets no quota.
        let mut limiters = BTreeMap::new();
        for (name, limit) in &config.rate_limits {
            let reused = previous
                .and_then(|p| p.limiters.get(name))
                .filter(|l| l.config == *limit)
                .cloned();
            let limiter = match reused {
                Some(l) => l,
                None => Arc::new(Limiter::build(limit.clone())?),
            };
            limiters.insert(name.clone(), limiter);
        }
        // Unchanged settings keep their exporter (and its queue).
        let tracer = match &config.traces {
            Some(traces) => match previous
                .and_then(|p| p.tracer.as_ref())
                .filter(|t| t.config == *traces)
            {
                Some(tracer) => Some(tracer.clone()),
                None => Some(Tracer::start(traces.clone(), metrics)?),
            },
            None => None,
        };
        Ok(Runtime {
            tracer,
            auth,
            external,
            limiters,
            config: Arc::new(config),
            routes,
            pools,
        })
    }
}

/// State shared by every connection and request.
pub struct Shared {
    pub runtime: ArcSwap<Runtime>,
    /// Worker threads serving the data listener.
    pub workers: usize,
    pub metrics: Arc<Metrics>,
    pub in_flight: AtomicUsize,
    pub draining: AtomicBool,
    pub access_log: AccessLog,
    pub request_ids: RequestIds,
}

impl Shared {
    pub fn new(
        runtime: Runtime,
        workers: usize,
        metrics: Arc<Metrics>,
        access_log: AccessLog,
    ) -> Self {
        Shared {
            runtime: ArcSwap::from_pointee(runtime),
            workers,
            metrics,
            in_flight: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            access_log,
            request_ids: RequestIds::new(),
        }
    }

    /// Admits a request, or answers `gateway.overloaded` when `limit`
    /// requests are already in flight.
    pub fn admit(&self, limit: usize) -> Result<InFlight<'_>, GatewayError> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if before >= limit {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(GatewayError::Overloaded { limit });
        }
        self.metrics.in_flight.inc();
        Ok(InFlight(self))
    }
}

/// A request counted as in flight until dropped.
pub struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.metrics.in_flight.dec();
    }
}

/// Request ids: the client's `X-Request-Id` when it is sane, else
/// `<process prefix>-<counter>`.
pub struct RequestIds {
    /// The process's prefix as 8 hex digits and `-`, written once.
    prefix_hex: [u8; 9],
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let prefix = nanos ^ std::process::id().rotate_left(16);
        RequestIds {
            prefix_hex: prefix_hex(prefix),
            next: AtomicU64::new(1),
        }
    }

    /// The request's id: `client` (its X-Request-Id) when sane, else a new
    /// one.
    pub fn assign(&self, client: Option<&HeaderValue>) -> HeaderValue {
        if let Some(id) = client
            && sane_id(id.as_bytes())
        {
            return id.clone();
        }
        self.generate()
    }

    /// [`RequestIds::assign`] for a client id still in the bytes it came in.
    pub fn assign_bytes(&self, client: Option<&[u8]>) -> HeaderValue {
        if let Some(id) = client
            && sane_id(id)
            && let Some(id) = crate::field_value::shared_value(&[id])
        {
            return id;
        }
        self.generate()
    }

    fn generate(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        generated_id(&self.prefix_hex, n)
    }
}

/// A client's request id the gateway keeps: 1 to 128 characters of
/// letters, digits and `-_.:`.
fn sane_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn prefix_hex(prefix: u32) -> [u8; 9] {
    let mut buf = [b'-'; 9];
    for (i, slot) in buf[..8].iter_mut().enumerate() {
        *slot = HEX[(prefix >> (28 - 4 * i) & 0xf) as usize];
    }
    buf
}

/// `<prefix as 8 hex digits>-<n in hex>`, written without the formatting
/// machinery (this runs for nearly every request).
fn generated_id(prefix_hex: &[u8; 9], mut n: u64) -> HeaderValue {
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = HEX[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    crate::field_value::shared_value(&[prefix_hex, &digits[at..]])
        .unwrap_or_else(|| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_the_prefix_and_the_counter_in_hex() {
        for (prefix, n) in [
            (0, 0),
            (0xdead_beef, 1),
            (0x0000_00ff, 0x10),
            (u32::MAX, 0xfff),
            (0x1234_5678, u64::MAX),
        ] {
            let id = generated_id(&prefix_hex(prefix), n);
            assert_eq!(id.to_str().unwrap(), format!("{prefix:08x}-{n:x}"));
        }
    }

    #[test]
    fn a_sane_client_id_is_kept_and_others_are_replaced() {
        let ids = RequestIds::new();
        let sane = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(ids.assign(Some(&sane)), "abc-123_x.y:z");
        assert_eq!(ids.assign_bytes(Some(b"abc-123_x.y:z")), "abc-123_x.y:z");
        let first = ids.assign(Some(&HeaderValue::from_static("has space")));
        let second = ids.assign(None);
        assert_ne!(first, "has space");
        let prefix = String::from_utf8(ids.prefix_hex.to_vec()).unwrap();
        assert_eq!(first.to_str().unwrap(), format!("{prefix}1"));
        assert_eq!(second.to_str().unwrap(), format!("{prefix}2"));
        let third = ids.assign_bytes(Some(b"has\xffbyte"));
        assert_eq!(third.to_str().unwrap(), format!("{prefix}3"));
    }
}
