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
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::classify::{ConnectError, UpstreamFailure, classify_send};
use crate::body::{ClientBodyError, LimitedIncoming};

/// The request body type sent upstream: the client's body, streamed with
/// its size limit, or bytes the gateway already holds (a body it had to
/// read to validate, or nothing, for a retry of a body-less request).
pub type UpstreamRequestBody = Either<LimitedIncoming, Full<Bytes>>;

pub(super) type Sender = http1::SendRequest<UpstreamRequestBody>;

/// A request queued on a pooled connection, or on its way to a new one.
pub(super) enum Attempt<P, F> {
    Pooled(Sender, Arc<Watch>, P),
    Fresh(F),
}

/// A connection waiting in an idle list.
pub(super) struct Idle {
    pub(super) sender: Sender,
    pub(super) watch: Arc<Watch>,
    /// When it has been idle for the pool's idle timeout.
    pub(super) expires: Instant,
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
pub(super) fn between_responses(stream: &TcpStream) -> Option<Discard> {
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
    pub(super) fn release(&self) {
        self.set(IDLE);
    }

    /// What the IO saw while idle that rules the connection out.
    pub(super) fn seen_idle(&self) -> Option<Discard> {
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
    pub(super) fn gone(&self, closed: bool) -> Option<Discard> {
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
    pub(super) fn ended_for_stray_bytes(&self) -> bool {
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
    pub(super) stream: TcpStream,
    pub(super) expires: Instant,
}

/// When a pooled connection has been idle too long: kept as an instant,
/// so a check is one comparison.
pub(super) trait Expires {
    fn expires(&self) -> Instant;
}

impl Expires for Idle {
    fn expires(&self) -> Instant {
        self.expires
    }
}

impl Expires for RawIdle {
    fn expires(&self) -> Instant {
        self.expires
    }
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
    pub(super) fn of_send(error: &hyper::Error) -> SendError {
        match crate::cause::cause::<ClientBodyError>(error) {
            Some(e) => SendError::ClientBody(e.clone()),
            None => SendError::Failure(classify_send(error)),
        }
    }
}

/// `host` and `port` of a validated `host:port` target; an IPv6 host loses
/// its brackets.
pub(super) fn split_authority(authority: &str) -> (&str, &str) {
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
pub(super) async fn connect_tcp(
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
pub(super) async fn handshake<T>(io: T) -> Result<(Sender, Arc<Watch>), ConnectError>
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
