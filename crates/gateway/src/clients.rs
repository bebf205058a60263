//! Client connections: how many may be open, how accept failures are
//! retried, and how long a connection may idle or take over a request head.
//!
//! The direct path keeps the two deadlines in its own read loop
//! (`direct::next_head`). A connection hyper serves reads through
//! [`Guarded`], which learns from the service [`serve_hyper`] wraps when a
//! request is in progress: hyper's own `header_read_timeout` cannot do it,
//! since it never starts before the first byte (hyper-util's version sniff
//! reads that without a timer) and after a response it counts the idle
//! time and the next head as one.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::metrics::{Metrics, TimeoutLabels};
use crate::pipeline::request::ConnInfo;
use crate::proxy;
use crate::state::Shared;

/// The hyper server a connection is handed to.
pub(crate) type Builder = Arc<auto::Builder<TokioExecutor>>;

/// A connection's deadlines: `[gateway] idle_timeout` with no request in
/// progress (before the first byte, between requests), `header_timeout`
/// for a request head from its first byte.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub(crate) idle: Duration,
    pub(crate) header: Duration,
}

impl Timeouts {
    pub(crate) fn of(gw: &crate::config::Gateway) -> Timeouts {
        Timeouts {
            idle: gw.idle_timeout,
            header: gw.header_timeout,
        }
    }
}

/// Counts a connection closed by one of its deadlines.
pub(crate) fn timed_out(metrics: &Metrics, head: bool) {
    let timeout = if head { "header" } else { "idle" };
    metrics
        .client_timeouts
        .get_or_create(&TimeoutLabels { timeout })
        .inc();
}

/// Waits until a new client connection is readable (its first bytes, or its
/// end), for at most `idle`, and not past its worker's drain: until then a
/// connection costs this small task, not the buffers and parser state of
/// the path that serves it. False: closed by the deadline (counted) or the
/// drain.
pub(crate) async fn first_bytes(stream: &TcpStream, idle: Duration, metrics: &Metrics) -> bool {
    let mut readable = std::pin::pin!(stream.readable());
    let watched = std::future::poll_fn(|cx| {
        if crate::drain::draining() {
            return Poll::Ready(false);
        }
        readable.as_mut().poll(cx).map(|_| true)
    });
    match tokio::time::timeout(idle, watched).await {
        Ok(ready) => ready,
        Err(_) => {
            timed_out(metrics, false);
            false
        }
    }
}

/// Descriptors left for everything but client connections: listeners,
/// event loops, the admin listener, files and logs.
const RESERVED_DESCRIPTORS: u64 = 100;

/// `max_connections` when the descriptor limit is unknown or unlimited.
const FALLBACK_MAX_CONNECTIONS: usize = 10_000;

/// The default `max_connections`: half of what the process's descriptor
/// limit (`RLIMIT_NOFILE`, soft) leaves after a reserve, since each client
/// connection may hold an upstream connection too.
pub(crate) fn default_max_connections() -> usize {
    match descriptor_limit() {
        Some(limit) => usize::try_from(limit.saturating_sub(RESERVED_DESCRIPTORS) / 2)
            .unwrap_or(usize::MAX)
            .max(16),
        None => FALLBACK_MAX_CONNECTIONS,
    }
}

/// The soft `RLIMIT_NOFILE`; None when unlimited or unknown.
pub(crate) fn descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// What the workers of one gateway share about their client connections:
/// the places under `max_connections` and the accept-failure log.
pub(crate) struct Clients {
    places: Arc<Semaphore>,
    open: Gauge<i64, AtomicI64>,
    metrics: Arc<Metrics>,
    /// When an accept failure was last logged, and the failures since.
    warned: Mutex<(Option<Instant>, u64)>,
}

/// A place under `max_connections`, taken before an accept.
pub(crate) struct Place {
    _permit: OwnedSemaphorePermit,
}

/// An open client connection, counted until dropped (its place with it).
pub(crate) struct Open {
    _place: Place,
    open: Gauge<i64, AtomicI64>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// Log accept failures at most this often (all workers together).
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(1);

impl Clients {
    pub(crate) fn new(max_connections: usize, metrics: Arc<Metrics>) -> Clients {
        Clients {
            places: Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS))),
            open: metrics.client_connections.clone(),
            metrics,
            warned: Mutex::new((None, 0)),
        }
    }

    /// Waits for a free place: at the limit a worker stops accepting, and
    /// new connections wait in the kernel's backlog.
    pub(crate) async fn place(&self) -> Place {
        match self.places.clone().acquire_owned().await {
            Ok(permit) => Place { _permit: permit },
            // The semaphore is never closed.
            Err(_) => std::future::pending().await,
        }
    }

    /// Counts an accepted connection in its place.
    pub(crate) fn open(&self, place: Place) -> Open {
        self.open.inc();
        Open {
            _place: place,
            open: self.open.clone(),
        }
    }

    /// Counts a failed accept and logs it, unless one was logged less than
    /// a second ago (then it is counted in the next line).
    pub(crate) fn accept_failed(&self, error: &io::Error, retry_in: Duration) {
        self.metrics.accept_errors.inc();
        let now = Instant::now();
        let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
        warned.1 += 1;
        if warned
            .0
            .is_none_or(|at| now.duration_since(at) >= ACCEPT_LOG_EVERY)
        {
            tracing::warn!(
                error = %error,
                failures = warned.1,
                ?retry_in,
                "accept failed (counted in candor_accept_errors_total)"
            );
            *warned = (Some(now), 0);
        }
    }
}

/// The delay before the next accept while accepts fail: doubling from
/// 10 ms to 1 s, back to none after a success. A worker that spun on a
/// failing accept (out of descriptors) would take its thread for nothing.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    delay: Duration,
}

const BACKOFF_FIRST: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

impl Backoff {
    pub(crate) fn failed(&mut self) -> Duration {
        self.delay = if self.delay.is_zero() {
            BACKOFF_FIRST
        } else {
            (self.delay * 2).min(BACKOFF_MAX)
        };
        self.delay
    }

    pub(crate) fn succeeded(&mut self) {
        self.delay = Duration::ZERO;
    }
}

/// Serves a client connection with hyper (HTTP/1.1 or HTTP/2) under the
/// connection's deadlines, until it ends or its worker drains.
pub(crate) async fn serve_hyper<S>(
    io: S,
    builder: Builder,
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    timeouts: Timeouts,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let requests = Arc::new(Requests::default());
    let io = Guarded {
        inner: io,
        requests: requests.clone(),
        timeouts,
        metrics: shared.metrics.clone(),
        phase: Phase::Idle,
        armed: false,
        first_read: true,
        h2: false,
        timer: None,
    };
    let service = service_fn(move |req| {
        let in_progress = InProgress::start(&requests);
        let handled = proxy::handle(shared.clone(), conn.clone(), req);
        async move {
            let Ok(response) = handled.await;
            Ok::<_, Infallible>(response.map(|body| Tracked {
                body,
                _in_progress: in_progress,
            }))
        }
    });
    let served = builder.serve_connection(TokioIo::new(io), service);
    let _ = crate::drain::graceful(served).await;
}

/// Requests of one connection whose response has not ended.
#[derive(Default)]
struct Requests {
    count: AtomicUsize,
    /// The connection's task, woken when the last one ends: hyper reads
    /// again (and the idle deadline starts) only when woken.
    waker: Mutex<Option<Waker>>,
}

impl Requests {
    fn in_progress(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    fn wake_on_end(&self, waker: &Waker) {
        let mut slot = self.waker.lock().unwrap_or_else(PoisonError::into_inner);
        match &*slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }
}

/// A request in progress: from its head's arrival until its response body
/// is dropped (sent whole, or abandoned).
struct InProgress(Arc<Requests>);

impl InProgress {
    fn start(requests: &Arc<Requests>) -> InProgress {
        requests.count.fetch_add(1, Ordering::Relaxed);
        InProgress(requests.clone())
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::Relaxed) == 1
            && let Some(waker) = &*self.0.waker.lock().unwrap_or_else(PoisonError::into_inner)
        {
            waker.wake_by_ref();
        }
    }
}

/// A response body that keeps its request in progress until dropped.
pub(crate) struct Tracked<B> {
    body: B,
    _in_progress: InProgress,
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No request in progress: `timeouts.idle`.
    Idle,
    /// Bytes of a request head came: `timeouts.header` from the first.
    Head,
    /// A request is in progress: no deadline here.
    Busy,
}

/// A client connection as hyper reads it: a read that would wait past the
/// phase's deadline fails instead, and hyper closes the connection (with
/// no answer, as for its own header timeout and as nginx does).
struct Guarded<S> {
    inner: S,
    requests: Arc<Requests>,
    timeouts: Timeouts,
    metrics: Arc<Metrics>,
    phase: Phase,
    /// The phase's deadline is set (lazily: at the phase's first wait, so a
    /// request that comes whole costs no clock read).
    armed: bool,
    first_read: bool,
    /// HTTP/2: bytes without a stream (pings, settings) start no head; the
    /// idle deadline runs until a stream opens.
    h2: bool,
    /// Boxed: hyper wants its IO `Unpin`. Made at the first wait.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.requests.in_progress() {
            this.phase = Phase::Busy;
            if polled.is_pending() {
                this.requests.wake_on_end(cx.waker());
            }
            return polled;
        }
        match polled {
            Poll::Ready(Ok(())) => {
                let got = &buf.filled()[before..];
                if !got.is_empty() {
                    if this.first_read {
                        this.first_read = false;
                        this.h2 = got.starts_with(b"PRI ");
                    }
                    if !this.h2 && this.phase != Phase::Head {
                        this.phase = Phase::Head;
                        this.armed = false;
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.phase == Phase::Busy {
                    // The last response ended: the connection is idle.
                    this.phase = Phase::Idle;
                    this.armed = false;
                }
                if !this.armed {
                    let wait = match this.phase {
                        Phase::Head => this.timeouts.header,
                        _ => this.timeouts.idle,
                    };
                    let deadline = Instant::now() + wait;
                    match &mut this.timer {
                        Some(timer) => timer.as_mut().reset(deadline),
                        None => this.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                    this.armed = true;
                }
                let Some(timer) = &mut this.timer else {
                    return Poll::Pending;
                };
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // Counted once: hyper does not read again after an error.
                timed_out(&this.metrics, this.phase == Phase::Head);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    match this.phase {
                        Phase::Head => "request head not complete within header_timeout",
                        _ => "no request within idle_timeout",
                    },
                )))
            }
        }
    }
}

write_through!([S] Guarded<S>, inner);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_backoff_doubles_to_a_second_and_resets_on_success() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..9)
            .map(|_| u64::try_from(backoff.failed().as_millis()).unwrap_or(u64::MAX))
            .collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(), BACKOFF_FIRST);
    }

    #[test]
    fn the_default_connection_limit_is_below_the_descriptor_limit() {
        let max = default_max_connections();
        match descriptor_limit() {
            Some(limit) if limit > 2 * RESERVED_DESCRIPTORS => {
                assert!((max as u64) < limit, "{max} of {limit}");
            }
            _ => assert!(max >= 16),
        }
    }
}
