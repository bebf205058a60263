//! Upstream connections: connect (TCP, then TLS for HTTPS upstreams), the
//! HTTP/1.1 handshake, a worker-local idle list per target, and sending a
//! request on a pooled or fresh connection.
//!
//! Each connection is hyper's `client::conn::http1`, driven by its own task
//! on the worker that opened it. A connection goes back to its idle list
//! only when the response body has ended cleanly (see [`Lease`]), and is
//! taken from it only if it is ready for another request and has been idle
//! for less than `pool_idle_timeout`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, PoisonError};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::classify::{UpstreamFailure, classify_connect, classify_send};
use super::{Pool, Target, UpstreamRequestBody};
use crate::body::ClientBodyError;
use crate::deadline::Progress;

type Sender = http1::SendRequest<UpstreamRequestBody>;

/// A request queued on a pooled connection, or on its way to a new one.
enum Attempt<P, F> {
    Pooled(Sender, P),
    Fresh(F),
}

/// A connection waiting in an idle list.
pub(super) struct Idle {
    sender: Sender,
    since: Instant,
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
}

impl Lease {
    /// The name of the upstream the connection goes to.
    pub fn upstream(&self) -> &Arc<str> {
        &self.pool.name
    }

    /// The response body ended cleanly: the connection may carry another
    /// request.
    pub fn release(self) {
        if self.sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.pool.idle[self.slot]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        prune_expired(&mut idle, now, self.pool.config.pool_idle_timeout);
        idle.push(Idle {
            sender: self.sender,
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
            idle.retain(|i| !i.sender.is_closed());
            drop(idle);
            let mut raw = self.raw_idle[worker * self.targets.len() + target]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            prune_expired(&mut raw, now, self.config.pool_idle_timeout);
            // Closed by the upstream (a read sees the end) or sending
            // what nobody asked for: not reusable.
            raw.retain(|i| {
                matches!(i.stream.try_read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
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
    /// `target`, unless expired. It may have been closed by the upstream
    /// unseen: the caller sends again on a fresh one if so.
    pub fn checkout_raw(&self, target: &Target) -> Option<TcpStream> {
        let mut idle = self.raw_idle[self.slot(target)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.is_empty() {
            return None;
        }
        prune_expired(&mut idle, Instant::now(), self.config.pool_idle_timeout);
        idle.pop().map(|i| i.stream)
    }

    /// Returns a plain connection whose response ended cleanly to this
    /// worker's idle list for `target`.
    pub fn checkin_raw(&self, target: &Target, stream: TcpStream) {
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

    /// The most recently used idle connection of this worker to `target`
    /// that can take a request now. Closed and expired ones are dropped.
    fn checkout(&self, slot: usize) -> Option<Sender> {
        let mut idle = self.idle[slot]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.is_empty() {
            return None;
        }
        prune_expired(&mut idle, Instant::now(), self.config.pool_idle_timeout);
        while let Some(conn) = idle.pop() {
            // Not ready means closed, or still busy with a request body the
            // upstream answered before reading: either way, not reusable.
            if conn.sender.is_ready() {
                return Some(conn.sender);
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
            Some(mut sender) => {
                let streams = streams(&req);
                let sending = sender.try_send_request(req);
                progress.handed(streams);
                Attempt::Pooled(sender, sending)
            }
            None => Attempt::Fresh(Box::pin(self.send_fresh(target, slot, req, progress))),
        };
        async move {
            let (sender, sending) = match attempt {
                Attempt::Pooled(sender, sending) => (sender, sending),
                Attempt::Fresh(fresh) => return fresh.await,
            };
            let req = match sending.await {
                Ok(response) => return Ok((response, self.lease(slot, sender))),
                Err(mut e) => {
                    let failure = match SendError::of_send(e.error()) {
                        SendError::Failure(failure) => failure,
                        client => return Err(client),
                    };
                    match (e.take_message(), retry) {
                        (Some(unsent), _) => unsent,
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
        let mut sender = self
            .connect(target)
            .await
            .map_err(|e| SendError::Failure(classify_connect(&e)))?;
        let streams = streams(&req);
        let sending = sender.try_send_request(req);
        progress.handed(streams);
        match sending.await {
            Ok(response) => Ok((response, self.lease(slot, sender))),
            Err(e) => Err(SendError::of_send(e.error())),
        }
    }

    fn lease(self: &Arc<Self>, slot: usize, sender: Sender) -> Lease {
        Lease {
            pool: self.clone(),
            slot,
            sender,
        }
    }

    /// Opens a connection to `target`: resolve, TCP connect within
    /// `connect_timeout` (TCP_NODELAY), TLS for HTTPS upstreams, then the
    /// HTTP/1.1 handshake. The connection is driven by a task of its own on
    /// the calling worker.
    async fn connect(&self, target: &Target) -> Result<Sender, ConnectError> {
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

async fn handshake<T>(io: T) -> Result<Sender, ConnectError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(io)).await.map_err(|e| {
        tracing::debug!(error = %e, "upstream HTTP/1.1 handshake failed");
        ConnectError::Handshake
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
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
