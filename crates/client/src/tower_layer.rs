//! The policy as a tower layer, for any `Service<http::Request<B>>` whose body
//! can be replayed: hyper-util's legacy client, or a whole tower stack.

use std::future::poll_fn;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, header};
use http_body::Body;
use http_body_util::{BodyExt, Empty, Full, Limited};
use tower::{Layer, Service};

use crate::classify::failure_of;
use crate::error::{BoxError, Error, MAX_PROBLEM_BYTES};
use crate::policy::{BoxFuture, Policy, Step};

/// A request body that can be sent again. Buffered bodies can; a stream
/// cannot (its impl says `None`), and such a request gets one attempt.
pub trait ReplayBody: Sized {
    fn replay(&self) -> Option<Self>;
}

impl<D: Clone> ReplayBody for Full<D> {
    fn replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D> ReplayBody for Empty<D> {
    fn replay(&self) -> Option<Self> {
        Some(Empty::new())
    }
}

impl ReplayBody for String {
    fn replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl ReplayBody for Bytes {
    fn replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D, E> ReplayBody for http_body_util::combinators::BoxBody<D, E> {
    fn replay(&self) -> Option<Self> {
        None
    }
}

impl<D, E> ReplayBody for http_body_util::combinators::UnsyncBoxBody<D, E> {
    fn replay(&self) -> Option<Self> {
        None
    }
}

fn replay<B: ReplayBody>(req: &Request<B>) -> Option<Request<B>> {
    let body = req.body().replay()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    Some(copy)
}

/// Wraps a service in [`RetryService`].
#[derive(Debug, Clone)]
pub struct RetryLayer {
    policy: Policy,
}

impl RetryLayer {
    pub fn new(policy: Policy) -> Self {
        Self { policy }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = RetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// Retries, re-authenticates or gives up on each answer, as [`Policy`] says;
/// a give-up is an [`Error`], the inner service's errors classified in it.
#[derive(Debug, Clone)]
pub struct RetryService<S> {
    inner: S,
    policy: Policy,
}

impl<S, B, RB> Service<Request<B>> for RetryService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: ReplayBody + Send + 'static,
    RB: Body + Send + 'static,
    RB::Data: Send,
    RB::Error: Into<BoxError>,
{
    type Response = Response<RB>;
    type Error = Error;
    type Future = BoxFuture<'static, Result<Response<RB>, Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Readiness is awaited per attempt, on the clone that sends it.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let mut inner = self.inner.clone();
        let policy = self.policy.clone();
        Box::pin(async move {
            let p = &*policy.inner;
            let method = req.method().clone();
            p.prepare(&method, req.headers_mut());
            let replayable = req.body().replay().is_some();
            let uri = req.uri();
            let target = crate::policy::target(
                uri.scheme_str().unwrap_or("http"),
                uri.host().unwrap_or(""),
                uri.port_u16(),
            );
            let mut call = p.start(&method, target, req.headers(), replayable);
            let mut original = Some(req);
            loop {
                call.pace().await?;
                let attempt = match original.as_ref().and_then(replay) {
                    Some(copy) => copy,
                    None => original
                        .take()
                        .ok_or_else(|| Error::new(crate::Reason::NotReplayable))?,
                };
                let sent = async {
                    poll_fn(|cx| inner.poll_ready(cx))
                        .await
                        .map_err(Into::<BoxError>::into)?;
                    inner.call(attempt).await.map_err(Into::<BoxError>::into)
                };
                let result = match call.remaining() {
                    Some(left) => tokio::time::timeout(left, sent).await.ok(),
                    None => Some(sent.await),
                };
                let step = match result {
                    None => call.on_deadline(),
                    Some(Ok(response)) => {
                        match call.on_answer(response.status(), response.headers()) {
                            Step::Done => return Ok(response),
                            Step::GiveUp(mut e) if e.status().is_some() => {
                                let (parts, body) = response.into_parts();
                                if let Ok(all) =
                                    Limited::new(body, MAX_PROBLEM_BYTES).collect().await
                                {
                                    e.attach_body(&parts.headers, &all.to_bytes());
                                }
                                return Err(e);
                            }
                            step => step,
                        }
                    }
                    Some(Err(e)) => {
                        let failure = failure_of(&*e);
                        call.on_failure(failure, e)
                    }
                };
                match step {
                    Step::Done => return Err(Error::new(crate::Reason::NotReplayable)),
                    Step::GiveUp(e) => return Err(e),
                    Step::Retry(wait) => call.sleep(wait).await,
                    Step::Refresh => {
                        let value = call.refresh().await?;
                        if let Some(r) = original.as_mut() {
                            r.headers_mut().insert(header::AUTHORIZATION, value);
                        }
                    }
                }
            }
        })
    }
}
