//! A tap on what upstreams answer: frames pass to the client untouched,
//! while the monitor, the request count and truncation metrics look on.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::pool::Lease;
use crate::body::BoxError;
use crate::metrics::{Metrics, Tally, UpstreamLabels};
use crate::monitor::Observation;

/// An upstream's response body on its way to the client.
///
/// Frames pass through untouched. An error from the upstream is passed on
/// too, which makes hyper abort the client's stream (no final chunk on
/// HTTP/1.1, RST_STREAM on HTTP/2): a truncated body never looks complete.
///
/// The upstream connection goes back to its pool when the body has ended
/// cleanly, and only then; a body that fails or is dropped before its end
/// closes the connection.
///
/// The request is counted (`candor_requests_total`) when the body ends:
/// as `class="aborted"` when the upstream's body failed, else by its
/// status (a client that went away mid-body included).
pub struct UpstreamBody {
    inner: Incoming,
    observation: Option<Box<Observation>>,
    /// Where the request and a failed body
    /// (`candor_upstream_truncated_total`) are counted.
    metrics: Arc<Metrics>,
    lease: Option<Lease>,
    tally: Option<Tally>,
}

impl UpstreamBody {
    pub fn new(
        inner: Incoming,
        observation: Option<Box<Observation>>,
        metrics: Arc<Metrics>,
        lease: Option<Lease>,
    ) -> Self {
        UpstreamBody {
            inner,
            observation,
            metrics,
            lease,
            tally: None,
        }
    }

    /// Counts the request when the body ends (or breaks off).
    pub fn count_at_end(&mut self, tally: Tally) {
        self.tally = Some(tally);
    }

    fn count(&mut self, aborted: bool) {
        if let Some(tally) = self.tally.take() {
            tally.count(&self.metrics, aborted);
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match frame {
            Some(Ok(frame)) => {
                if let (Some(obs), Some(data)) = (self.observation.as_mut(), frame.data_ref()) {
                    obs.data(data);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                self.observation = None;
                self.count(true);
                // Dropped, not released: the connection closes.
                if let Some(lease) = self.lease.take() {
                    self.metrics
                        .truncated
                        .get_or_create(&UpstreamLabels {
                            upstream: lease.upstream().clone(),
                        })
                        .inc();
                }
                Poll::Ready(Some(Err(Box::new(e))))
            }
            None => {
                self.count(false);
                if let Some(obs) = self.observation.take() {
                    obs.finish();
                }
                if let Some(lease) = self.lease.take() {
                    lease.release();
                }
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

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // A body with no content (or whose last frame said it was the
        // end) is not polled to its end by hyper; the observation still has
        // a complete body to judge, and the connection is reusable.
        if self.inner.is_end_stream() {
            if let Some(obs) = self.observation.take() {
                obs.finish();
            }
            if let Some(lease) = self.lease.take() {
                lease.release();
            }
        }
        // Not aborted by the upstream: the client went away, or hyper
        // dropped a body it need not send.
        self.count(false);
    }
}
