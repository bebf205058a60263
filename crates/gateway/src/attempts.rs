//! Sending a request to a target of an upstream pool, for the data paths
//! and the auth service alike: timers, one retry, ejection, failure counts.

use crate::deadline::{Phase, Progress};
use crate::error::GatewayError;
use crate::metrics::{Metrics, UpstreamFailureLabels, UpstreamLabels};
use crate::trace::RequestSpan;
use crate::upstream::{Pick, Pool, SendError, Target, UpstreamFailure};
use http::Method;

/// One way of sending a request to a chosen target (hyper's client, or
/// the direct path's own connections), for [`attempts`].
pub(crate) trait Attempt {
    type Sent;
    /// The status of the response a successful attempt got.
    fn status(sent: &Self::Sent) -> u16;
    /// A call of the gateway's own (the auth service's) gets a span id of
    /// its own; the route's upstream gets the one already forwarded.
    const OWN_SPAN: bool = false;
    /// Takes the traceparent of its own span, when `OWN_SPAN`.
    fn trace(&mut self, _traceparent: http::HeaderValue) {}
    /// Sends the request to `target`; `resent` says whether it went a
    /// second time on a fresh connection (a pooled one had closed under it).
    /// `progress` is told when the connection is there (and again after a
    /// restart on a fresh one) and when the request has been written: the
    /// timers of [`attempts`] follow it.
    fn send<'a>(
        &'a mut self,
        target: &'a Target,
        resent: &'a mut bool,
        progress: &'a Progress,
    ) -> impl Future<Output = Result<Self::Sent, SendError>> + Send + 'a;
}

/// Sends a request to a target of `pool` with `send`, under the timers of
/// its phases (`connect_timeout` for the connect, `response_timeout` once
/// the request is written, see [`Progress`]): one retry on another target
/// after a connect failure when `may_retry` (body-less idempotent requests
/// only), every upstream failure counted and classified, and the target's
/// health recorded. A client's body that fails on the way is the client's
/// answer, not counted against the upstream. `send` says, through its
/// flag, whether it sent the request a second time on a fresh connection
/// (a pooled one had closed under it). Both data paths send through here,
/// each attempt in a span of its own when the request is traced.
pub(crate) async fn attempts<A: Attempt>(
    metrics: &Metrics,
    pool: &Pool,
    may_retry: bool,
    attempt: &mut A,
    progress: &Progress,
    trace: Option<(&RequestSpan, &Method)>,
) -> Result<A::Sent, GatewayError> {
    let mut avoid = None;
    let (connect, response) = (pool.config.connect_timeout, pool.config.response_timeout);
    loop {
        let target = match pool.pick(avoid) {
            Pick::Target(t) => t,
            Pick::AllEjected { retry_after } => {
                return Err(GatewayError::NoHealthyUpstream {
                    upstream: pool.name.clone(),
                    retry_after,
                });
            }
        };
        let mut resent = false;
        if avoid.is_some() {
            progress.restart();
        }
        // Boxed: it lives across the send, in a future kept small.
        let mut span = trace.map(|(span, method)| {
            Box::new(if A::OWN_SPAN {
                let own = span.attempt(&pool.name, &target.authority, method.as_str());
                attempt.trace(own.traceparent());
                own
            } else {
                span.forwarded_attempt(&pool.name, &target.authority, method.as_str())
            })
        });
        // The send future is made where it is pinned, so it is not moved
        // once made: it is most of this future's size.
        let outcome = {
            let sending = std::pin::pin!(attempt.send(target, &mut resent, progress));
            crate::deadline::guard(sending, progress, connect, response).await
        };
        if resent {
            metrics
                .resends
                .get_or_create(&UpstreamLabels {
                    upstream: pool.name.clone(),
                })
                .inc();
        }
        let failure = match outcome {
            Ok(Ok(sent)) => {
                pool.record_success(target);
                if let Some(span) = span {
                    (*span).end(Some(A::status(&sent)), None);
                }
                return Ok(sent);
            }
            Err(Phase::Connecting) => UpstreamFailure::ConnectTimeout,
            Err(Phase::Sending | Phase::Written) => UpstreamFailure::Timeout,
            Ok(Err(SendError::ClientBody(e))) => {
                if let Some(span) = span {
                    (*span).end(None, Some("client_body"));
                }
                return Err(e.into());
            }
            Ok(Err(SendError::Failure(failure))) => failure,
        };
        metrics
            .upstream_failures
            .get_or_create(&UpstreamFailureLabels {
                upstream: pool.name.clone(),
                failure: failure.as_str(),
            })
            .inc();
        if failure.is_connect() {
            pool.record_failure(target);
        }
        let retry =
            may_retry && avoid.is_none() && failure.is_connect() && pool.has_other_target(target);
        if let Some(mut span) = span.take() {
            // It reached nobody: the retry carries the forwarded id.
            if retry {
                span.renew_id();
            }
            (*span).end(None, Some(failure.as_str()));
        }
        if retry {
            metrics
                .retries
                .get_or_create(&UpstreamLabels {
                    upstream: pool.name.clone(),
                })
                .inc();
            avoid = Some(target);
            continue;
        }
        return Err(GatewayError::Upstream {
            upstream: pool.name.clone(),
            failure,
            detail: failure.describe().to_owned(),
        });
    }
}
