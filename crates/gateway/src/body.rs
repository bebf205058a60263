//! What clients send, as the gateway reads it: a size limit and a stall
//! timeout on the request body, and how its failures are answered.

use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::deadline::{Progress, Timer};
use crate::error::GatewayError;
use crate::monitor::RequestBody;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How a client's request body failed on its way: the client's fault,
/// answered as such, never as the upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientBodyError {
    /// It grew past `max_body_bytes`.
    #[error("request body is over the {limit}-byte limit")]
    TooLarge { limit: u64 },
    /// The client sent nothing of it for `body_timeout`.
    #[error("the request body stalled for more than {} ms", .after.as_millis())]
    Stalled { after: Duration },
    /// Its chunked framing is broken (a bad chunk size, a missing CRLF).
    #[error("the chunked framing of the body is broken: {why}")]
    Framing { why: String },
    /// The client closed (or its connection failed) before its end.
    #[error("the body ended before it was complete")]
    Incomplete,
}

impl From<ClientBodyError> for GatewayError {
    fn from(e: ClientBodyError) -> GatewayError {
        match e {
            ClientBodyError::TooLarge { limit } => GatewayError::BodyTooLarge { limit },
            ClientBodyError::Stalled { after } => GatewayError::BodyTimeout { after },
            // No parse position: the body never got to a parser.
            e @ (ClientBodyError::Framing { .. } | ClientBodyError::Incomplete) => {
                GatewayError::MalformedBody {
                    message: e.to_string(),
                    line: 0,
                    column: 0,
                }
            }
        }
    }
}

impl ClientBodyError {
    /// What the client's side of hyper reported about its body: broken
    /// chunked framing (hyper's decoder says invalid data or input), or a
    /// body cut short.
    fn from_incoming(error: &hyper::Error) -> ClientBodyError {
        let io = crate::cause::cause::<std::io::Error>(error);
        match io {
            Some(e) if matches!(e.kind(), ErrorKind::InvalidData | ErrorKind::InvalidInput) => {
                ClientBodyError::Framing { why: e.to_string() }
            }
            _ => ClientBodyError::Incomplete,
        }
    }
}

/// A client's request body as the gateway reads it: it fails once it
/// exceeds its limit, when the client sends nothing of it for its timeout,
/// and with the client's own fault when its framing breaks; every failure
/// is a [`ClientBodyError`]. Streamed upstream, it tells the attempt's
/// timers how far it got ([`Progress`]).
pub struct LimitedIncoming {
    inner: Incoming,
    remaining: u64,
    limit: u64,
    /// The longest wait for the client's next piece.
    timeout: Duration,
    /// Armed while waiting on the client.
    stall: Option<Timer>,
    progress: Option<Arc<Progress>>,
    /// The monitor's tap, when it judges this body: sees every piece, and
    /// the end.
    tap: Option<RequestBody>,
}

impl LimitedIncoming {
    pub fn new(inner: Incoming, limit: u64, timeout: Duration) -> Self {
        LimitedIncoming {
            inner,
            remaining: limit,
            limit,
            timeout,
            stall: None,
            progress: None,
            tap: None,
        }
    }

    /// The monitor sees the body go by.
    pub fn tap(&mut self, tap: RequestBody) {
        self.tap = Some(tap);
    }

    /// The body ended: told to its watchers.
    fn ended(&mut self) {
        if let Some(p) = &self.progress {
            p.body_ended();
        }
        if let Some(tap) = self.tap.take() {
            tap.end();
        }
    }

    /// The body reports its pieces and its end to `progress`.
    pub fn reporting(mut self, progress: Arc<Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    fn fail(&mut self, e: ClientBodyError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.stall = None;
        if let Some(p) = &self.progress {
            p.waiting(false);
        }
        Poll::Ready(Some(Err(Box::new(e))))
    }
}

impl Body for LimitedIncoming {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                // Waiting on the client: its timer runs (armed once per
                // wait, not per poll).
                let stall = this.stall.get_or_insert_with(|| {
                    if let Some(p) = &this.progress {
                        p.waiting(true);
                    }
                    Timer::after(this.timeout)
                });
                if stall.poll_expired(cx).is_ready() {
                    let after = this.timeout;
                    return this.fail(ClientBodyError::Stalled { after });
                }
                return Poll::Pending;
            }
        };
        if this.stall.take().is_some()
            && let Some(p) = &this.progress
        {
            p.waiting(false);
        }
        match frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        let limit = this.limit;
                        return this.fail(ClientBodyError::TooLarge { limit });
                    }
                    this.remaining -= len;
                    if let Some(tap) = &mut this.tap {
                        tap.data(data);
                    }
                }
                if let Some(p) = &this.progress {
                    p.moved();
                }
                // hyper polls no more once the body says it ended.
                if this.inner.is_end_stream() {
                    this.ended();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                let e = ClientBodyError::from_incoming(&e);
                this.fail(e)
            }
            None => {
                this.ended();
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
