//! What every request shares: the current configuration (swapped whole on
//! reload), metrics, the in-flight count and the access log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use http::{HeaderMap, HeaderValue, Method};

use crate::access_log::AccessLog;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::error::{GatewayError, X_REQUEST_ID};
use crate::metrics::Metrics;
use crate::ratelimit::Limiter;
use crate::routing::RouteTable;
use crate::upstream::Pool;

/// One configuration, built and ready: routes and upstream pools.
pub struct Runtime {
    pub config: Arc<Config>,
    pub auth: Authenticator,
    /// Rate-limit policies by name.
    pub limiters: BTreeMap<String, Arc<Limiter>>,
    pub routes: RouteTable,
    pub pools: BTreeMap<String, Arc<Pool>>,
}

impl Runtime {
    /// Builds a runtime, reusing the pools (connections, ejection state) of
    /// `previous` for upstreams whose configuration did not change.
    pub fn build(
        config: Config,
        previous: Option<&Runtime>,
        workers: usize,
    ) -> Result<Self, String> {
        let mut pools = BTreeMap::new();
        for (name, upstream) in &config.upstreams {
            let reused = previous
                .and_then(|p| p.pools.get(name))
                .filter(|pool| pool.config == *upstream)
                .cloned();
            let pool = match reused {
                Some(pool) => pool,
                None => Arc::new(Pool::new(upstream.clone(), workers)?),
            };
            pools.insert(name.clone(), pool);
        }
        let routes = RouteTable::build(&config, &pools)?;
        let auth = Authenticator::build(&config.auth, &config.gateway.realm)?;
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
        Ok(Runtime {
            auth,
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
    methods: [Arc<str>; 10],
}

impl Shared {
    pub fn new(
        runtime: Runtime,
        workers: usize,
        metrics: Arc<Metrics>,
        access_log: AccessLog,
    ) -> Self {
        let methods = [
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "other",
        ]
        .map(Arc::from);
        Shared {
            runtime: ArcSwap::from_pointee(runtime),
            workers,
            metrics,
            in_flight: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            access_log,
            request_ids: RequestIds::new(),
            methods,
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

    /// A bounded set of method labels, so clients cannot grow the metrics.
    pub fn method_label(&self, method: &Method) -> Arc<str> {
        let i = match *method {
            Method::GET => 0,
            Method::HEAD => 1,
            Method::POST => 2,
            Method::PUT => 3,
            Method::PATCH => 4,
            Method::DELETE => 5,
            Method::OPTIONS => 6,
            Method::TRACE => 7,
            Method::CONNECT => 8,
            _ => 9,
        };
        self.methods[i].clone()
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
    prefix: u32,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        RequestIds {
            prefix: nanos ^ std::process::id().rotate_left(16),
            next: AtomicU64::new(1),
        }
    }

    pub fn assign(&self, headers: &HeaderMap) -> HeaderValue {
        if let Some(id) = headers.get(&X_REQUEST_ID)
            && !id.is_empty()
            && id.len() <= 128
            && id
                .as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
        {
            return id.clone();
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_maybe_shared(bytes::Bytes::from(format!("{:08x}-{n:x}", self.prefix)))
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
    }
}
