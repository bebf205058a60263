//! Listeners and lifecycle: accept (cleartext or TLS), serve HTTP/1.1 and
//! HTTP/2 on each connection, reload the configuration atomically, and
//! drain on shutdown.
//!
//! Phases: `Running` -> (shutdown) `Draining`: no new connections, /readyz
//! false, in-flight requests finish within `shutdown_grace` -> `Stopped`.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::access_log::{AccessLog, Output};
use crate::clients::{Backoff, Clients, Timeouts};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::pipeline::request::ConnInfo;
use crate::reload::{reload, reload_file};
use crate::state::{Runtime, Shared};

/// How often each worker closes its upstream connections that have been
/// idle for their upstream's `pool_idle_timeout`.
const IDLE_REAP_EVERY: Duration = Duration::from_secs(1);

/// Where the gateway is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    Draining,
    Stopped,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Config(String),
}

/// A running gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    config_path: Option<PathBuf>,
    shutdown: CancellationToken,
    phase: watch::Receiver<Phase>,
    task: tokio::task::JoinHandle<()>,
}

/// Options that are not part of the configuration file.
#[derive(Default)]
pub struct StartOptions {
    /// Where access log lines go; None: as configured (`access_log_path`,
    /// else stdout).
    pub access_log: Option<Box<dyn io::Write + Send>>,
    /// The file the configuration came from, for reloads.
    pub config_path: Option<PathBuf>,
}

impl Gateway {
    /// Binds the listeners and starts serving.
    pub async fn start(config: Config, options: StartOptions) -> Result<Gateway, StartError> {
        let listen = config.gateway.listen;
        let admin_listen = config.gateway.admin_listen;
        let tls = match &config.gateway.tls {
            Some(files) => Some(tls_acceptor(&files.cert, &files.key)?),
            None => None,
        };
        let workers = match config.gateway.workers {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            n => n,
        };
        let access_log = if config.gateway.access_log {
            let output = match (options.access_log, &config.gateway.access_log_path) {
                (Some(writer), _) => Output::Writer(writer),
                (None, Some(path)) => Output::File(path.clone()),
                (None, None) => Output::Stdout,
            };
            AccessLog::start(output, workers)
                .map_err(|e| StartError::Config(format!("access log: {e}")))?
        } else {
            AccessLog::disabled()
        };
        let max_connections = max_connections(config.gateway.max_connections);
        let metrics = Arc::new(Metrics::new());
        let runtime =
            Runtime::build(config, None, workers, &metrics).map_err(StartError::Config)?;
        let clients = Arc::new(Clients::new(max_connections, metrics.clone()));
        let shared = Arc::new(Shared::new(runtime, workers, metrics, access_log));

        let listeners = bind_reuseport(listen, workers).map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
        let addr = listeners[0]
            .local_addr()
            .map_err(|source| StartError::Bind {
                addr: listen,
                source,
            })?;
        let shutdown = CancellationToken::new();
        // The admin listener outlives the drain, so /readyz can say so.
        let admin_stop = CancellationToken::new();
        let admin_addr = match admin_listen {
            Some(admin) => {
                let l = TcpListener::bind(admin)
                    .await
                    .map_err(|source| StartError::Bind {
                        addr: admin,
                        source,
                    })?;
                let a = l.local_addr().map_err(|source| StartError::Bind {
                    addr: admin,
                    source,
                })?;
                let reload_path = options.config_path.clone();
                tokio::spawn(crate::admin::serve(
                    l,
                    shared.clone(),
                    reload_path,
                    admin_stop.clone(),
                ));
                Some(a)
            }
            None => None,
        };

        let mut closed = Vec::new();
        let mut drained = Vec::new();
        for (index, listener) in listeners.into_iter().enumerate() {
            let (closed_tx, closed_rx) = oneshot::channel();
            let (drained_tx, drained_rx) = oneshot::channel();
            let worker = Worker {
                index,
                listener,
                tls: tls.clone(),
                shared: shared.clone(),
                clients: clients.clone(),
                shutdown: shutdown.clone(),
                closed: closed_tx,
            };
            std::thread::Builder::new()
                .name(format!("candor-worker-{index}"))
                .spawn(move || {
                    worker.run();
                    let _ = drained_tx.send(());
                })
                .map_err(|source| StartError::Bind {
                    addr: listen,
                    source,
                })?;
            closed.push(closed_rx);
            drained.push(drained_rx);
        }

        let (phase_tx, phase) = watch::channel(Phase::Running);
        let lifecycle = shared.clone();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            token.cancelled().await;
            for rx in closed {
                let _ = rx.await;
            }
            lifecycle.draining.store(true, Ordering::SeqCst);
            let _ = phase_tx.send(Phase::Draining);
            for rx in drained {
                let _ = rx.await;
            }
            admin_stop.cancel();
            // Every request has been logged: write the last lines out.
            let log = lifecycle.clone();
            let _ = tokio::task::spawn_blocking(move || log.access_log.finish()).await;
            let _ = phase_tx.send(Phase::Stopped);
        });
        Ok(Gateway {
            shared,
            addr,
            admin_addr,
            config_path: options.config_path,
            shutdown,
            phase,
            task,
        })
    }

    /// The address the data listener is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener's address, when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The lifecycle phase, observable.
    pub fn phase(&self) -> watch::Receiver<Phase> {
        self.phase.clone()
    }

    /// The metrics exposition (also on the admin listener's /metrics).
    pub fn metrics_text(&self) -> String {
        self.shared.metrics.encode()
    }

    /// Swaps in a new configuration (already validated). The listen
    /// addresses and TLS files of a running gateway do not change.
    pub fn reload(&self, config: Config) -> Result<(), String> {
        reload(&self.shared, config)
    }

    /// Reloads from the file the gateway was started with.
    pub fn reload_from_file(&self) -> Result<(), String> {
        match &self.config_path {
            Some(path) => reload_file(&self.shared, path),
            None => Err("the gateway was not started from a file".into()),
        }
    }

    /// Writes out the access log's buffered lines and reopens its file by
    /// path (SIGUSR1 in `candor serve`; logrotate renames the file first).
    /// Returns once the lines of requests logged before the call are in
    /// the old file; later ones go to the new file.
    pub async fn reopen_access_log(&self) -> io::Result<()> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.access_log.reopen())
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)))
    }

    /// Starts draining: stop accepting, let in-flight requests finish.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the gateway stopped (after `shutdown`).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// One worker thread: its own current-thread event loop, its own listener
/// socket (SO_REUSEPORT spreads connections across workers) and its own
/// upstream connections, so a request never changes threads.
struct Worker {
    index: usize,
    listener: std::net::TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    /// `max_connections`, shared by the workers.
    clients: Arc<Clients>,
    shutdown: CancellationToken,
    /// Told once this worker stopped accepting.
    closed: oneshot::Sender<()>,
}

impl Worker {
    fn run(self) {
        crate::upstream::set_worker_index(self.index);
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, worker = self.index, "cannot start a worker event loop");
                return;
            }
        };
        runtime.block_on(self.serve());
    }

    async fn serve(self) {
        let Worker {
            listener,
            tls,
            shared,
            clients,
            shutdown,
            closed,
            ..
        } = self;
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot register the listener");
                let _ = closed.send(());
                return;
            }
        };
        let builder = Arc::new(http_builder(&shared.runtime.load().config));
        // Response-head deadlines of this worker's requests (see deadline.rs).
        crate::deadline::start_ticker();
        // This worker's idle upstream connections close on time, whether or
        // not requests still go to their targets.
        let reaper = {
            let shared = shared.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(IDLE_REAP_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        _ = tick.tick() => {}
                    }
                    for pool in shared.runtime.load().pools.values() {
                        pool.reap_idle();
                    }
                }
            })
        };
        let mut backoff = Backoff::default();
        loop {
            // At `max_connections` the listener is not polled: new
            // connections wait in the kernel's backlog until one closes.
            let place = tokio::select! {
                () = shutdown.cancelled() => break,
                place = clients.place() => place,
            };
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                // The client gave up before the accept: nothing to wait for.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // Out of file descriptors and the like: retrying at
                    // once would spin (and log) until one frees up.
                    drop(place);
                    let delay = backoff.failed();
                    clients.accept_failed(&e, delay);
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                    continue;
                }
            };
            backoff.succeeded();
            let open = clients.open(place);
            let _ = stream.set_nodelay(true);
            let conn = Arc::new(ConnInfo::new(peer, tls.is_some()));
            let gw = &shared.runtime.load().config.gateway;
            let timeouts = Timeouts::of(gw);
            let Some(acceptor) = &tls else {
                let direct = gw.direct_path.then(|| read_buffer_limit(gw));
                let shared = shared.clone();
                let builder = builder.clone();
                // The path's state (kilobytes) is made once the client
                // sends, in a task of its own: the small task that waited
                // for the first byte is not another layer polled on every
                // wake of every request.
                let served = crate::drain::watch(async move {
                    if !crate::clients::first_bytes(&stream, timeouts.idle, &shared.metrics).await {
                        return;
                    }
                    match direct {
                        Some(limit) => {
                            tokio::spawn(crate::drain::watch(async move {
                                let _open = open;
                                crate::direct::serve(
                                    stream, shared, conn, builder, limit, timeouts,
                                )
                                .await;
                            }));
                        }
                        None => {
                            tokio::spawn(crate::drain::watch(async move {
                                let _open = open;
                                crate::clients::serve_hyper(
                                    stream, builder, shared, conn, timeouts,
                                )
                                .await;
                            }));
                        }
                    }
                });
                tokio::spawn(served);
                continue;
            };
            let acceptor = acceptor.clone();
            let builder = builder.clone();
            let shared = shared.clone();
            let token = shutdown.clone();
            tokio::spawn(async move {
                let _open = open;
                let Some(stream) = handshake(acceptor, stream, &token).await else {
                    return;
                };
                let served = crate::clients::serve_hyper(stream, builder, shared, conn, timeouts);
                crate::drain::watch(served).await;
            });
        }
        drop(listener);
        let _ = closed.send(());
        let _ = reaper.await;
        let grace = shared.runtime.load().config.gateway.shutdown_grace;
        if tokio::time::timeout(grace, crate::drain::drain())
            .await
            .is_err()
        {
            tracing::warn!(
                ?grace,
                "shutdown grace elapsed with requests still in flight"
            );
        }
    }
}

/// `count` listening sockets on one address, with SO_REUSEPORT so the
/// kernel spreads connections across them. Port 0 picks one free port for
/// all of them. The address must be free: SO_REUSEPORT would also let a
/// second gateway (any process of the same user) join the group and take
/// a share of the first one's clients.
fn bind_reuseport(addr: SocketAddr, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    use socket2::{Domain, Socket, Type};
    if addr.port() != 0 {
        ensure_unshared(addr)?;
    }
    let mut listeners: Vec<std::net::TcpListener> = Vec::with_capacity(count);
    let mut bind_to = addr;
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&bind_to.into())?;
        socket.listen(1024)?;
        let listener: std::net::TcpListener = socket.into();
        bind_to = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Fails when a socket already listens on `addr`: a probe bound without
/// SO_REUSEPORT cannot share the address with one. SO_REUSEADDR keeps a
/// restart possible while the previous run's connections are in TIME_WAIT.
/// The probe is closed before the workers bind, so two gateways started at
/// the same instant could still both pass it.
fn ensure_unshared(addr: SocketAddr) -> io::Result<()> {
    use socket2::{Domain, Socket, Type};
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    probe.set_reuse_address(true)?;
    match probe.bind(&addr.into()) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "the address is already in use by another process",
        )),
        other => other,
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    shutdown: &CancellationToken,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    tokio::select! {
        () = shutdown.cancelled() => None,
        r = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)) => r.ok()?.ok(),
    }
}

/// How much of a request head is buffered before it is refused: above the
/// gateway's own size checks, so they answer first.
fn read_buffer_limit(gw: &crate::config::Gateway) -> usize {
    (gw.max_header_bytes + gw.max_uri_bytes + 4096).max(8192 + 1024)
}

fn http_builder(config: &Config) -> auto::Builder<TokioExecutor> {
    let gw = &config.gateway;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The gateway checks header and URI sizes itself (to answer with a
    // problem body); hyper's own buffer limit stays above them as a backstop.
    // The number of fields is hyper's limit, its default of 100 (Envoy's
    // default too): hyper answers more with a bare 431. A higher limit makes
    // hyper allocate its parse arrays for every request (about 1,000
    // instructions each, bench/instructions.sh).
    let buf = read_buffer_limit(gw);
    // No header_read_timeout: `clients::Guarded` keeps a connection's
    // deadlines (hyper's starts only after the first byte).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(buf);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(buf).unwrap_or(u32::MAX));
    builder
}

/// The configured `max_connections`, or one below the descriptor limit.
fn max_connections(configured: Option<usize>) -> usize {
    let limit = crate::clients::descriptor_limit();
    match configured {
        Some(max) => {
            if let Some(limit) = limit.filter(|&l| max as u64 >= l) {
                tracing::warn!(
                    max_connections = max,
                    descriptor_limit = limit,
                    "max_connections is not below the descriptor limit (ulimit -n): accepts may fail for want of descriptors"
                );
            }
            max
        }
        None => {
            let max = crate::clients::default_max_connections();
            tracing::info!(
                max_connections = max,
                descriptor_limit = limit,
                "client connections limited from the descriptor limit (set gateway.max_connections to choose)"
            );
            max
        }
    }
}

fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, StartError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| StartError::Tls(format!("{}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| StartError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}
