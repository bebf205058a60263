//! Upstreams: per-worker pools of HTTP/1.1 connections, round-robin target
//! choice with passive ejection, and failure classification.

mod classify;
mod conn;

pub use classify::{UpstreamFailure, cause};
pub use conn::{Discard, Lease, SendError};

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use tokio::time::Instant;

use crate::body::LimitedIncoming;
use crate::config::Upstream;
use crate::metrics::{DiscardLabels, Metrics};

/// The request body type sent upstream: the client's body, streamed with
/// its size limit, or bytes the gateway already holds (a body it had to
/// read to validate, or nothing, for a retry of a body-less request).
pub type UpstreamRequestBody = Either<LimitedIncoming, Full<Bytes>>;

thread_local! {
    /// The index of the worker thread running this code (0 elsewhere).
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The index of the worker running the calling code.
fn worker_index() -> usize {
    WORKER.with(std::cell::Cell::get)
}

/// Marks the current thread as worker `index`, so that it uses its own
/// upstream connections.
pub fn set_worker_index(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// One upstream's live state.
///
/// Each worker thread has its own idle connections per target: a request
/// and the upstream connection that carries it are driven by the same event
/// loop, with no hand-off between threads. The idle lists sit behind one
/// mutex each, but only their own worker ever takes it (uncontended).
pub struct Pool {
    pub config: Arc<crate::config::Upstream>,
    pub name: Arc<str>,
    /// The TLS connector of an HTTPS upstream.
    tls: Option<tokio_rustls::TlsConnector>,
    targets: Vec<Target>,
    /// Idle connections, `workers * targets` lists: worker `w`'s list for
    /// target `t` is at `w * targets.len() + t`.
    idle: Vec<Mutex<Vec<conn::Idle>>>,
    /// The direct path's plain connections, laid out as `idle`.
    raw_idle: Vec<Mutex<Vec<conn::RawIdle>>>,
    workers: usize,
    next: AtomicUsize,
    epoch: Instant,
    /// `candor_upstream_pool_discards_total` for this upstream, by
    /// [`Discard`] (`stray_bytes`, `closed`).
    discards: [prometheus_client::metrics::counter::Counter; 2],
}

/// One `host:port` of an upstream, with its ejection state.
pub struct Target {
    pub authority: Arc<str>,
    /// Its position in the pool's list.
    index: usize,
    consecutive_failures: AtomicU32,
    /// Milliseconds since the pool's epoch until which it is ejected.
    ejected_until_ms: AtomicU64,
}

impl Target {
    /// Its position in its pool's list.
    pub fn index(&self) -> usize {
        self.index
    }
}

/// The target chosen for a request, or how long until one is back.
pub enum Pick<'a> {
    Target(&'a Target),
    AllEjected { retry_after: Duration },
}

impl Pool {
    pub fn new(config: Arc<Upstream>, workers: usize, metrics: &Metrics) -> Result<Self, String> {
        let tls = match config.tls {
            Some(_) => {
                let mut tls = tls_client_config(&config)?;
                // The one protocol the pool speaks. (hyper-rustls offered
                // no ALPN at all; a server that speaks only h2 now fails
                // the handshake, a clear `tls` 502, instead of failing on
                // HTTP/1.1 bytes it cannot read.)
                tls.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some(tokio_rustls::TlsConnector::from(Arc::new(tls)))
            }
            None => None,
        };
        let targets: Vec<Target> = config
            .targets
            .iter()
            .enumerate()
            .map(|(index, t)| Target {
                authority: Arc::from(t.as_str()),
                index,
                consecutive_failures: AtomicU32::new(0),
                ejected_until_ms: AtomicU64::new(0),
            })
            .collect();
        let workers = workers.max(1);
        let idle = (0..workers * targets.len())
            .map(|_| Mutex::new(Vec::new()))
            .collect();
        let raw_idle = (0..workers * targets.len())
            .map(|_| Mutex::new(Vec::new()))
            .collect();
        let name: Arc<str> = Arc::from(config.name.as_str());
        let discards = [Discard::StrayBytes, Discard::Closed].map(|reason| {
            metrics
                .pool_discards
                .get_or_create(&DiscardLabels {
                    upstream: name.clone(),
                    reason: reason.as_str(),
                })
                .clone()
        });
        Ok(Pool {
            name,
            config,
            tls,
            targets,
            idle,
            raw_idle,
            workers,
            next: AtomicUsize::new(0),
            epoch: Instant::now(),
            discards,
        })
    }

    /// The target at `index` in the list.
    pub fn target(&self, index: usize) -> Option<&Target> {
        self.targets.get(index)
    }

    /// The calling worker's idle list for `target`.
    fn slot(&self, target: &Target) -> usize {
        let worker = worker_index() % self.workers;
        worker * self.targets.len() + target.index
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Round robin over the targets that are not ejected, skipping `avoid`.
    pub fn pick(&self, avoid: Option<&Target>) -> Pick<'_> {
        let now = self.now_ms();
        let n = self.targets.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut soonest = u64::MAX;
        for i in 0..n {
            let target = &self.targets[(start + i) % n];
            if avoid.is_some_and(|a| std::ptr::eq(a, target)) {
                continue;
            }
            let until = target.ejected_until_ms.load(Ordering::Relaxed);
            if until <= now {
                return Pick::Target(target);
            }
            soonest = soonest.min(until);
        }
        let wait = soonest.saturating_sub(now);
        Pick::AllEjected {
            retry_after: Duration::from_millis(if wait == u64::MAX { 1000 } else { wait }),
        }
    }

    /// Whether another target than `this` could take a retry now.
    pub fn has_other_target(&self, this: &Target) -> bool {
        self.targets.len() > 1 && matches!(self.pick(Some(this)), Pick::Target(_))
    }

    /// Records a failure that says the target is down; ejects it after
    /// `eject_after` in a row.
    pub fn record_failure(&self, target: &Target) {
        let failures = target.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= self.config.eject_after {
            let until = self.now_ms().saturating_add(
                u64::try_from(self.config.eject_for.as_millis()).unwrap_or(u64::MAX),
            );
            target.ejected_until_ms.store(until, Ordering::Relaxed);
        }
    }

    /// Records a response from the target: it is healthy.
    pub fn record_success(&self, target: &Target) {
        if target.consecutive_failures.load(Ordering::Relaxed) != 0 {
            target.consecutive_failures.store(0, Ordering::Relaxed);
            target.ejected_until_ms.store(0, Ordering::Relaxed);
        }
    }
}

/// The TLS client settings of an upstream: its own CA file, or the system's
/// trusted roots. Unused for plain HTTP upstreams.
fn tls_client_config(config: &Upstream) -> Result<rustls::ClientConfig, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match config.tls.as_ref().and_then(|t| t.ca.as_ref()) {
        Some(ca) => {
            let certs = CertificateDer::pem_file_iter(ca)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("upstream {}: {}: {e}", config.name, ca.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "upstream {}: {}: no certificate in it",
                    config.name,
                    ca.display()
                ));
            }
        }
        None if config.tls.is_some() => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
        None => {}
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tls)
}
