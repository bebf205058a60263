//! One upstream's live state: its targets with passive ejection, and per
//! worker idle lists of connections, from checkout to release.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::classify::{ConnectError, UpstreamFailure, classify_connect};
use super::conn::{
    Attempt, Discard, Expires, Idle, RawIdle, SendError, Sender, UpstreamRequestBody, Watch,
    between_responses, connect_tcp, handshake, split_authority,
};
use crate::deadline::Progress;
use std::io;

use crate::config::Upstream;
use crate::metrics::{DiscardLabels, Metrics};

thread_local! {
    /// The index of the worker thread running this code (0 elsewhere).
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The index of the worker running the calling code.
pub(crate) fn worker_index() -> usize {
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
    idle: Vec<Mutex<Vec<Idle>>>,
    /// The direct path's plain connections, laid out as `idle`.
    raw_idle: Vec<Mutex<Vec<RawIdle>>>,
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
        // The clock only when some target was ejected (0: never, or healthy
        // again): most picks find the first one healthy.
        let mut now = None;
        let mut now_ms = || *now.get_or_insert_with(|| self.now_ms());
        let n = self.targets.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut soonest = u64::MAX;
        for i in 0..n {
            let target = &self.targets[(start + i) % n];
            if avoid.is_some_and(|a| std::ptr::eq(a, target)) {
                continue;
            }
            let until = target.ejected_until_ms.load(Ordering::Relaxed);
            if until == 0 || until <= now_ms() {
                return Pick::Target(target);
            }
            soonest = soonest.min(until);
        }
        let wait = soonest.saturating_sub(now_ms());
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

/// The connection that carries a response, until its body ends. Returned
/// to its worker's idle list by [`Lease::release`]; dropped otherwise,
/// which closes it.
pub struct Lease {
    pool: Arc<Pool>,
    slot: usize,
    sender: Sender,
    watch: Arc<Watch>,
}

impl Lease {
    /// The name of the upstream the connection goes to.
    pub fn upstream(&self) -> &Arc<str> {
        &self.pool.name
    }

    /// The response body ended cleanly: the connection may carry another
    /// request, unless it ended with its response (counted when for stray
    /// bytes).
    pub fn release(self) {
        if self.sender.is_closed() {
            if self.watch.ended_for_stray_bytes() {
                self.pool.discard(Discard::StrayBytes);
            }
            return;
        }
        self.watch.release();
        let now = Instant::now();
        let mut idle = self.pool.idle[self.slot]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        prune_expired(&mut idle, now);
        idle.push(Idle {
            sender: self.sender,
            watch: self.watch,
            expires: expiry(now, self.pool.config.pool_idle_timeout),
        });
    }
}

/// When a connection idle from `now` expires; a timeout past the clock's
/// range is a century.
fn expiry(now: Instant, timeout: Duration) -> Instant {
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

/// Drops the connections idle for the pool's idle timeout or longer (the
/// oldest are first in the list).
fn prune_expired<T: Expires>(idle: &mut Vec<T>, now: Instant) {
    let expired = idle.iter().take_while(|i| i.expires() <= now).count();
    if expired > 0 {
        idle.drain(..expired);
    }
}

impl Pool {
    /// Closes the calling worker's connections that have been idle for
    /// `pool_idle_timeout` or longer, or that the upstream closed. Each
    /// worker calls it on a timer, so an idle connection is closed on time
    /// even when no request goes to its target any more.
    pub fn reap_idle(&self) {
        let worker = worker_index() % self.workers;
        let now = Instant::now();
        for target in 0..self.targets.len() {
            let mut idle = self.idle[worker * self.targets.len() + target]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            prune_expired(&mut idle, now);
            idle.retain(|i| {
                let gone = i.watch.gone(i.sender.is_closed());
                gone.inspect(|&reason| self.discard(reason)).is_none() && !i.sender.is_closed()
            });
            drop(idle);
            let mut raw = self.raw_idle[worker * self.targets.len() + target]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            prune_expired(&mut raw, now);
            raw.retain(|i| {
                between_responses(&i.stream)
                    .inspect(|&reason| self.discard(reason))
                    .is_none()
            });
        }
    }

    /// Closes every idle connection of every worker: the pool was replaced
    /// by a reload, and only responses still streaming hold it.
    pub fn close_idle(&self) {
        for slot in &self.idle {
            slot.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
        for slot in &self.raw_idle {
            slot.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }

    /// Whether the direct path can speak to this upstream (plain HTTP).
    pub fn is_plain(&self) -> bool {
        self.tls.is_none()
    }

    /// The most recently used idle plain connection of this worker to
    /// `target`, unless expired. One that sent bytes or closed while idle
    /// (as far as the event loop has seen) is dropped and counted. It may
    /// still have been closed by the upstream unseen: the caller sends
    /// again on a fresh one if so.
    pub fn checkout_raw(&self, target: &Target) -> Option<TcpStream> {
        let mut idle = self.raw_idle[self.slot(target)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.is_empty() {
            return None;
        }
        prune_expired(&mut idle, Instant::now());
        while let Some(conn) = idle.pop() {
            match between_responses(&conn.stream) {
                None => return Some(conn.stream),
                Some(reason) => self.discard(reason),
            }
        }
        None
    }

    /// Returns a plain connection whose response ended exactly where its
    /// framing said to this worker's idle list for `target`, unless more
    /// is readable: bytes past the response (dropped and counted) or its
    /// end (dropped: it was never idle in the pool).
    pub fn checkin_raw(&self, target: &Target, stream: TcpStream) {
        match between_responses(&stream) {
            None => {}
            Some(Discard::StrayBytes) => return self.discard(Discard::StrayBytes),
            Some(Discard::Closed) => return,
        }
        let now = Instant::now();
        let mut idle = self.raw_idle[self.slot(target)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        prune_expired(&mut idle, now);
        idle.push(RawIdle {
            stream,
            expires: expiry(now, self.config.pool_idle_timeout),
        });
    }

    /// Opens a plain connection to `target` for the direct path: resolve
    /// and TCP connect within `connect_timeout`, as [`Pool::send`] does.
    pub async fn connect_raw(&self, target: &Target) -> Result<TcpStream, UpstreamFailure> {
        self.connect_tcp(target)
            .await
            .map(|(tcp, _host)| tcp)
            .map_err(|e| classify_connect(&e))
    }

    /// Counts a pooled connection dropped instead of reused.
    pub fn discard(&self, reason: Discard) {
        match reason {
            Discard::StrayBytes => self.discards[0].inc(),
            Discard::Closed => self.discards[1].inc(),
        };
    }

    /// The most recently used idle connection of this worker to `target`
    /// that can take a request now. Expired ones are dropped; so are
    /// those that read bytes or their end while idle, or closed, and
    /// counted.
    fn checkout(&self, slot: usize) -> Option<(Sender, Arc<Watch>)> {
        let mut idle = self.idle[slot]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.is_empty() {
            return None;
        }
        prune_expired(&mut idle, Instant::now());
        while let Some(conn) = idle.pop() {
            let gone = conn.watch.gone(conn.sender.is_closed());
            // Not ready and not closed: still busy with a request body the
            // upstream answered before reading. Not reusable either.
            if gone.is_none() && conn.sender.is_ready() {
                return Some((conn.sender, conn.watch));
            }
            if let Some(reason) = gone {
                self.discard(reason);
            }
        }
        None
    }

    /// Sends `req` to `target` on one of this worker's idle connections, or
    /// on a new one.
    ///
    /// A pooled connection may have been closed by the upstream while idle,
    /// unseen yet. When the request was not written (hyper hands it back),
    /// or `retry` can rebuild it (a body-less idempotent request) and the
    /// connection ended before a response, the request is sent once more on
    /// a fresh connection: the upstream never answered it. `resent` says
    /// whether that happened.
    ///
    /// The request is queued on a pooled connection before the returned
    /// future is first polled, so that future holds only what is still to
    /// come (it is part of every request's future; see `proxy`).
    ///
    /// `progress` learns when the connection is there and the request
    /// handed to it (written, for a request whose body does not stream;
    /// a streamed body says itself when it has ended).
    pub fn send<'a, F>(
        self: &'a Arc<Self>,
        target: &'a Target,
        req: Request<UpstreamRequestBody>,
        retry: Option<F>,
        resent: &'a mut bool,
        progress: &'a Progress,
    ) -> impl Future<Output = Result<(Response<Incoming>, Lease), SendError>> + Send + 'a
    where
        F: FnOnce() -> Request<UpstreamRequestBody> + Send + 'a,
    {
        let slot = self.slot(target);
        // Boxed: a new connection (and its TLS state) is rare next to a
        // reuse, and would otherwise make every request's future larger.
        let attempt = match self.checkout(slot) {
            Some((mut sender, watch)) => {
                let streams = streams(&req);
                let sending = sender.try_send_request(req);
                progress.handed(streams);
                Attempt::Pooled(sender, watch, sending)
            }
            None => Attempt::Fresh(Box::pin(self.send_fresh(target, slot, req, progress))),
        };
        async move {
            let (sender, watch, sending) = match attempt {
                Attempt::Pooled(sender, watch, sending) => (sender, watch, sending),
                Attempt::Fresh(fresh) => return fresh.await,
            };
            let req = match sending.await {
                Ok(response) => return Ok((response, self.lease(slot, sender, watch))),
                Err(mut e) => {
                    let failure = match SendError::of_send(e.error()) {
                        SendError::Failure(failure) => failure,
                        client => return Err(client),
                    };
                    match (e.take_message(), retry) {
                        // hyper refused the connection before writing the
                        // request: what it read while idle says why.
                        (Some(unsent), _) => {
                            self.discard(watch.seen_idle().unwrap_or(Discard::Closed));
                            unsent
                        }
                        (None, Some(again)) if failure == UpstreamFailure::Reset => again(),
                        _ => return Err(SendError::Failure(failure)),
                    }
                }
            };
            *resent = true;
            progress.restart();
            Box::pin(self.send_fresh(target, slot, req, progress)).await
        }
    }

    /// Sends `req` on a new connection to `target`.
    async fn send_fresh(
        self: &Arc<Self>,
        target: &Target,
        slot: usize,
        req: Request<UpstreamRequestBody>,
        progress: &Progress,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        let (mut sender, watch) = self
            .connect(target)
            .await
            .map_err(|e| SendError::Failure(classify_connect(&e)))?;
        let streams = streams(&req);
        let sending = sender.try_send_request(req);
        progress.handed(streams);
        match sending.await {
            Ok(response) => Ok((response, self.lease(slot, sender, watch))),
            Err(e) => Err(SendError::of_send(e.error())),
        }
    }

    fn lease(self: &Arc<Self>, slot: usize, sender: Sender, watch: Arc<Watch>) -> Lease {
        Lease {
            pool: self.clone(),
            slot,
            sender,
            watch,
        }
    }

    /// Opens a connection to `target`: resolve, TCP connect within
    /// `connect_timeout` (TCP_NODELAY), TLS for HTTPS upstreams, then the
    /// HTTP/1.1 handshake. The connection is driven by a task of its own on
    /// the calling worker.
    async fn connect(&self, target: &Target) -> Result<(Sender, Arc<Watch>), ConnectError> {
        let (tcp, host) = self.connect_tcp(target).await?;
        match &self.tls {
            None => handshake(tcp).await,
            Some(tls) => {
                let name =
                    rustls_pki_types::ServerName::try_from(host.to_owned()).map_err(|e| {
                        ConnectError::Tls(io::Error::new(io::ErrorKind::InvalidInput, e))
                    })?;
                // The handshake is part of connecting: a server that
                // accepts and then says nothing is a connect timeout.
                let stream =
                    tokio::time::timeout(self.config.connect_timeout, tls.connect(name, tcp))
                        .await
                        .map_err(|_elapsed| ConnectError::Timeout)?
                        .map_err(ConnectError::Tls)?;
                handshake(stream).await
            }
        }
    }

    /// Resolves `target` and opens a TCP connection to it (TCP_NODELAY);
    /// also returns the target's host, for TLS.
    async fn connect_tcp<'t>(
        &self,
        target: &'t Target,
    ) -> Result<(TcpStream, &'t str), ConnectError> {
        let (host, port) = split_authority(&target.authority);
        let port: u16 = port.parse().map_err(|_| {
            ConnectError::Tcp(io::Error::new(io::ErrorKind::InvalidInput, "invalid port"))
        })?;
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => {
                let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
                    .await
                    .map_err(|e| {
                        tracing::debug!(error = %e, host, "upstream name did not resolve");
                        ConnectError::Dns
                    })?
                    .collect();
                if found.is_empty() {
                    return Err(ConnectError::Dns);
                }
                found
            }
        };
        let tcp = connect_tcp(&addrs, self.config.connect_timeout).await?;
        let _ = tcp.set_nodelay(true);
        Ok((tcp, host))
    }
}

/// Whether the request's body streams from the client (and so says itself
/// when it has all gone), rather than being at hand.
fn streams(req: &Request<UpstreamRequestBody>) -> bool {
    use http_body::Body as _;
    matches!(req.body(), http_body_util::Either::Left(body) if !body.is_end_stream())
}
