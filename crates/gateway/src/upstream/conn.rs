//! Upstream connections: connect (TCP, then TLS for HTTPS upstreams), the
//! HTTP/1.1 handshake, a worker-local idle list per target, and sending a
//! request on a pooled or fresh connection.
//!
//! Each connection is hyper's `client::conn::http1`, driven by its own task
//! on the worker that opened it. A connection goes back to its idle list
//! only when the response body has ended cleanly (see [`Lease`]), and is
//! taken from it only if it is ready for another request, has been idle
//! for less than `pool_idle_timeout`, and read nothing while idle (see
//! [`Watch`]). The direct path's plain connections are checked with one
//! nonblocking read when they go back and when they are taken.
//!
//! A byte an upstream sends past the end of a response would otherwise be
//! read as the start of the next response, on that connection, for
//! another client. Such a connection, or one the upstream closed while it
//! was idle, is dropped and counted (`candor_upstream_pool_discards_total`).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::classify::{UpstreamFailure, classify_connect, classify_send};
use super::{Pool, Target, UpstreamRequestBody};
use crate::body::ClientBodyError;
use crate::deadline::Progress;

type Sender = http1::SendRequest<UpstreamRequestBody>;

/// A request queued on a pooled connection, or on its way to a new one.
enum Attempt<P, F> {
    Pooled(Sender, Arc<Watch>, P),
    Fresh(F),
}

/// A connection waiting in an idle list.
pub(super) struct Idle {
    sender: Sender,
    watch: Arc<Watch>,
    since: Instant,
}

/// Why a pooled connection was dropped instead of reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    /// The upstream sent bytes past the end of a response.
    StrayBytes,
    /// The upstream closed it (or it failed) while idle.
    Closed,
}

impl Discard {
    /// The `reason` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Discard::StrayBytes => "stray_bytes",
            Discard::Closed => "closed",
        }
    }
}

/// What a nonblocking read finds on a plain connection between responses:
/// nothing (`None`: it may carry the next request), bytes nobody asked
/// for, or its end. One `try_read`: no system call unless the event loop
/// has seen the socket become readable since the last read.
fn between_responses(stream: &TcpStream) -> Option<Discard> {
    match stream.try_read(&mut [0u8; 1]) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Ok(0) | Err(_) => Some(Discard::Closed),
        Ok(_) => Some(Discard::StrayBytes),
    }
}

/// What a hyper connection's IO ([`Watched`]) and the pool share: whether
/// the connection is between responses, and what its IO saw meanwhile.
///
/// Why this is sound. hyper's client reads only (a) a response, once it
/// has started writing the request, and (b) between exchanges, where
/// `Conn::require_empty_read` fails the connection on any byte, buffered
/// or read, and closes it on the end; its dispatcher polls that read
/// before it writes a queued request (`poll_loop`: `poll_read` first).
/// So a byte past the end of a response, read in the same read as the
/// response's end or any time before the next request is written, makes
/// hyper fail the connection: the queued request, never written, comes
/// back to [`Pool::send`], which sends it on a fresh connection. What this
/// adds is that the pool sees it happen: [`IDLE`] spans from the release
/// (the body ended on the client's side) to the first write of the next
/// request, so a read that returns bytes or the end in that span marks
/// the connection, which checkout and the reaper then drop and count,
/// whatever order the request's task and the connection's task run in.
/// Bytes hyper read before the release (in the read that ended the
/// response, or one soon after) fail the connection task first: the
/// release finds it ended with an error, without a read of the end, and
/// counts stray bytes. All of this runs on the one worker thread that
/// owns the connection; the atomic only makes the sharing safe.
///
/// What no check can tell: bytes the event loop has not reported yet when
/// the request is written (under load it may not have looked for a
/// while), or that the upstream sends after it. They are then, to any
/// HTTP/1.1 client, the upstream's answer; the direct path's check has the
/// same limit.
pub(super) struct Watch(AtomicU8);

/// The response is over and the next request not yet written.
const IDLE: u8 = 1;
/// A read returned bytes while [`IDLE`].
const STRAY: u8 = 2;
/// A read returned the end, or failed, while [`IDLE`].
const CLOSED: u8 = 4;
/// The connection's task ended with an error.
const FAILED: u8 = 8;
/// A read returned the end or failed (at any time).
const READ_END: u8 = 16;
/// hyper shut the connection down itself (its response said `close`, or
/// was delimited by the close).
const SHUT_DOWN: u8 = 32;

impl Watch {
    fn new() -> Arc<Watch> {
        Arc::new(Watch(AtomicU8::new(0)))
    }

    fn flags(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, flags: u8) {
        self.0.fetch_or(flags, Ordering::AcqRel);
    }

    /// The response ended on the client's side: what is read from now
    /// until the next request is written does not belong to any response.
    fn release(&self) {
        self.set(IDLE);
    }

    /// What the IO saw while idle that rules the connection out.
    fn seen_idle(&self) -> Option<Discard> {
        let flags = self.flags();
        if flags & STRAY != 0 {
            Some(Discard::StrayBytes)
        } else if flags & CLOSED != 0 {
            Some(Discard::Closed)
        } else {
            None
        }
    }

    /// Why an idle connection is dropped (`closed`: its sender says it
    /// ended): what it read while idle, or else its end, unless hyper shut
    /// it down itself (its response said `close`).
    fn gone(&self, closed: bool) -> Option<Discard> {
        let shut_down = self.flags() & SHUT_DOWN != 0;
        self.seen_idle()
            .or((closed && !shut_down).then_some(Discard::Closed))
    }

    /// Whether a connection that ended just as its response did ended for
    /// stray bytes: hyper failed it after reads that brought bytes, never
    /// the end (what it refuses right after a response is a byte past its
    /// end). Ended otherwise (closed by the upstream or by hyper, as the
    /// response asked or not) it was never pooled, and is not counted; the
    /// direct path's check-in does the same.
    fn ended_for_stray_bytes(&self) -> bool {
        self.flags() & (FAILED | READ_END | SHUT_DOWN) == FAILED
    }
}

/// The IO under a hyper client connection, reporting to its [`Watch`].
struct Watched<T> {
    io: T,
    watch: Arc<Watch>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let (room, before) = (buf.remaining(), buf.filled().len());
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                if this.watch.flags() & IDLE != 0 {
                    this.watch.set(STRAY);
                }
            }
            Poll::Ready(Ok(())) if room == 0 => {}
            Poll::Ready(_) => {
                let idle = this.watch.flags() & IDLE != 0;
                this.watch.set(READ_END | if idle { CLOSED } else { 0 });
            }
            Poll::Pending => {}
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> Watched<T> {
    /// A request is being written: reads are its response from now on.
    fn writing(&self) {
        if self.watch.flags() & IDLE != 0 {
            self.watch.0.fetch_and(!IDLE, Ordering::AcqRel);
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.writing();
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.writing();
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.watch.set(SHUT_DOWN);
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// A plain connection of the direct path (`direct.rs`), waiting in an idle
/// list: the direct path speaks HTTP/1.1 on it itself.
pub(super) struct RawIdle {
    stream: TcpStream,
    since: Instant,
}

/// When a pooled connection went idle.
trait Since {
    fn since(&self) -> Instant;
}

impl Since for Idle {
    fn since(&self) -> Instant {
        self.since
    }
}

impl Since for RawIdle {
    fn since(&self) -> Instant {
        self.since
    }
}

/// Why a connection could not be opened. Classified like hyper-util's
/// connect errors were (see `classify_connect`).
#[derive(Debug)]
pub(super) enum ConnectError {
    /// The name did not resolve (or resolved to nothing).
    Dns,
    /// The TCP connect failed.
    Tcp(io::Error),
    /// The TCP connect did not complete within `connect_timeout`.
    Timeout,
    /// The TLS handshake failed.
    Tls(io::Error),
    /// hyper refused the connection (it does not, for HTTP/1.1).
    Handshake,
}

/// Why a request got no response head.
#[derive(Debug)]
pub enum SendError {
    /// The upstream failed, as the contract names it.
    Failure(UpstreamFailure),
    /// The client's body failed on its way (too large, stalled, broken,
    /// cut short): the client's fault, not the upstream's.
    ClientBody(ClientBodyError),
}

impl SendError {
    /// A request that got no response head on an open connection: the
    /// client's body failing, carried up through hyper as its cause, or
    /// the upstream failing.
    fn of_send(error: &hyper::Error) -> SendError {
        match super::cause::<ClientBodyError>(error) {
            Some(e) => SendError::ClientBody(e.clone()),
            None => SendError::Failure(classify_send(error)),
        }
    }
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
        prune_expired(&mut idle, now, self.pool.config.pool_idle_timeout);
        idle.push(Idle {
            sender: self.sender,
            watch: self.watch,
            since: now,
        });
    }
}

/// Drops the connections idle for `timeout` or longer (the oldest are
/// first in the list).
fn prune_expired<T: Since>(idle: &mut Vec<T>, now: Instant, timeout: std::time::Duration) {
    let expired = idle
        .iter()
        .take_while(|i| now.saturating_duration_since(i.since()) >= timeout)
        .count();
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
        let worker = super::worker_index() % self.workers;
        let now = Instant::now();
        for target in 0..self.targets.len() {
            let mut idle = self.idle[worker * self.targets.len() + target]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            prune_expired(&mut idle, now, self.config.pool_idle_timeout);
            idle.retain(|i| {
                let gone = i.watch.gone(i.sender.is_closed());
                gone.inspect(|&reason| self.discard(reason)).is_none() && !i.sender.is_closed()
            });
            drop(idle);
            let mut raw = self.raw_idle[worker * self.targets.len() + target]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            prune_expired(&mut raw, now, self.config.pool_idle_timeout);
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
        prune_expired(&mut idle, Instant::now(), self.config.pool_idle_timeout);
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
        prune_expired(&mut idle, now, self.config.pool_idle_timeout);
        idle.push(RawIdle { stream, since: now });
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
        prune_expired(&mut idle, Instant::now(), self.config.pool_idle_timeout);
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

/// `host` and `port` of a validated `host:port` target; an IPv6 host loses
/// its brackets.
fn split_authority(authority: &str) -> (&str, &str) {
    if let Some(bracketed) = authority.strip_prefix('[')
        && let Some((ip, port)) = bracketed.split_once("]:")
    {
        return (ip, port);
    }
    authority.rsplit_once(':').unwrap_or((authority, ""))
}

/// How long a connection attempt runs alone before the next address is
/// tried beside it (RFC 8305 section 5's recommended default).
const ATTEMPT_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

/// Connects to the first of `addrs` to answer, within `timeout` in all, in
/// the manner of Happy Eyeballs (RFC 8305): address families alternate,
/// each attempt gets [`ATTEMPT_DELAY`] before the next starts beside it,
/// and a failed attempt starts the next at once. So an address that drops
/// SYNs costs a quarter second, not the timeout. When none connects, the
/// last refusal is the error, or a timeout if an attempt was still running
/// when the time ran out.
async fn connect_tcp(
    addrs: &[SocketAddr],
    timeout: std::time::Duration,
) -> Result<TcpStream, ConnectError> {
    connect_staggered(&interleave_families(addrs), timeout, ATTEMPT_DELAY).await
}

async fn connect_staggered(
    addrs: &[SocketAddr],
    timeout: std::time::Duration,
    delay: std::time::Duration,
) -> Result<TcpStream, ConnectError> {
    let race = async {
        // Dropped on return, which aborts the attempts still running.
        let mut attempts = tokio::task::JoinSet::new();
        let mut next = addrs.iter().copied();
        let mut last = ConnectError::Timeout;
        loop {
            if let Some(addr) = next.next() {
                attempts.spawn(async move { TcpStream::connect(addr).await });
            } else if attempts.is_empty() {
                return Err(last);
            }
            let more = next.len() > 0;
            tokio::select! {
                Some(done) = attempts.join_next() => match done {
                    Ok(Ok(stream)) => return Ok(stream),
                    Ok(Err(e)) => last = ConnectError::Tcp(e),
                    Err(_cancelled) => {}
                },
                () = tokio::time::sleep(delay), if more => {}
            }
        }
    };
    tokio::time::timeout(timeout, race)
        .await
        .unwrap_or(Err(ConnectError::Timeout))
}

/// `addrs` with the address families alternating, the first address's
/// family first (RFC 8305 section 4), each family in its given order.
fn interleave_families(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let first_v6 = addrs.first().is_some_and(SocketAddr::is_ipv6);
    let (mut first, mut other): (Vec<_>, Vec<_>) =
        addrs.iter().copied().partition(|a| a.is_ipv6() == first_v6);
    first.reverse();
    other.reverse();
    let mut out = Vec::with_capacity(addrs.len());
    while !first.is_empty() || !other.is_empty() {
        out.extend(first.pop());
        out.extend(other.pop());
    }
    out
}

/// The HTTP/1.1 handshake on `io`, watched (see [`Watch`]); the
/// connection's task records how it ended.
async fn handshake<T>(io: T) -> Result<(Sender, Arc<Watch>), ConnectError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let watch = Watch::new();
    let watched = Watched {
        io,
        watch: watch.clone(),
    };
    let (sender, connection) = http1::handshake(TokioIo::new(watched)).await.map_err(|e| {
        tracing::debug!(error = %e, "upstream HTTP/1.1 handshake failed");
        ConnectError::Handshake
    })?;
    let ended = watch.clone();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            ended.set(FAILED);
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok((sender, watch))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener whose backlog is full: SYNs to it are dropped, so a
    /// connect hangs rather than being refused (kept alive by the values).
    fn silent_listener() -> (SocketAddr, socket2::Socket, Vec<std::net::TcpStream>) {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any.into()).unwrap();
        socket.listen(0).unwrap();
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        let mut held = Vec::new();
        for _ in 0..8 {
            match std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200))
            {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
        (addr, socket, held)
    }

    #[tokio::test]
    async fn a_silent_address_does_not_hold_up_the_next_one() {
        let (silent, _socket, _held) = silent_listener();
        let working = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let working_addr = working.local_addr().unwrap();
        // A timeout of an hour: tried in turn, the silent address would
        // keep the working one waiting for half of it, past the guard.
        let addrs = [silent, working_addr];
        let connect =
            connect_staggered(&addrs, std::time::Duration::from_secs(3600), ATTEMPT_DELAY);
        let stream = tokio::time::timeout(std::time::Duration::from_secs(20), connect)
            .await
            .expect("the second address is tried beside the first (guard: 20 s)")
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), working_addr);
    }

    #[tokio::test]
    async fn a_refused_address_moves_on_at_once_and_all_failing_gives_the_last_error() {
        // Bound and closed: nothing listens there, connects are refused.
        let refused = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let working = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let working_addr = working.local_addr().unwrap();
        // An attempt delay of an hour: only a failure can start the next.
        let hour = std::time::Duration::from_secs(3600);
        let stream = connect_staggered(&[refused, working_addr], hour, hour)
            .await
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), working_addr);
        let err = connect_staggered(&[refused, refused], hour, hour)
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectError::Tcp(_)), "{err:?}");
    }

    #[test]
    fn address_families_alternate_from_the_first_ones() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let given = [
            a("[::1]:1"),
            a("[::2]:1"),
            a("[::3]:1"),
            a("10.0.0.1:1"),
            a("10.0.0.2:1"),
        ];
        assert_eq!(
            interleave_families(&given),
            [
                a("[::1]:1"),
                a("10.0.0.1:1"),
                a("[::2]:1"),
                a("10.0.0.2:1"),
                a("[::3]:1")
            ]
        );
        let v4_first = [a("10.0.0.1:1"), a("[::1]:1")];
        assert_eq!(interleave_families(&v4_first), v4_first);
        assert!(interleave_families(&[]).is_empty());
    }

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(
            split_authority("api.internal:8080"),
            ("api.internal", "8080")
        );
        assert_eq!(split_authority("127.0.0.1:9000"), ("127.0.0.1", "9000"));
        assert_eq!(split_authority("[::1]:9001"), ("::1", "9001"));
    }
}
