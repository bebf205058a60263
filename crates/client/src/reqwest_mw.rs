//! The policy as reqwest-middleware: `ClientBuilder::new(client).with(Retry::new(policy))`.

use bytes::BytesMut;
use http::{Extensions, header};
use reqwest::{Request, Response, Url};
use reqwest_middleware::{Middleware, Next};

use crate::classify::failure_of;
use crate::error::{BoxError, Error, MAX_PROBLEM_BYTES};
use crate::policy::{Policy, Step};

/// Retries, re-authenticates or gives up on each answer, as [`Policy`] says.
/// A give-up is `reqwest_middleware::Error::Middleware` holding an [`Error`]
/// (see [`Error::from_middleware`]).
#[derive(Debug, Clone)]
pub struct RetryMiddleware {
    policy: Policy,
}

impl RetryMiddleware {
    pub fn new(policy: Policy) -> Self {
        Self { policy }
    }
}

fn target_of(url: &Url) -> String {
    crate::policy::target(
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default(),
    )
}

async fn read_problem(response: Response, mut error: Error) -> Error {
    let headers = response.headers().clone();
    let mut body = BytesMut::new();
    let mut response = response;
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_PROBLEM_BYTES {
            return error;
        }
    }
    error.attach_body(&headers, &body);
    error
}

fn give_up(e: Error) -> reqwest_middleware::Error {
    reqwest_middleware::Error::Middleware(anyhow::Error::new(e))
}

#[async_trait::async_trait]
impl Middleware for RetryMiddleware {
    async fn handle(
        &self,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let p = &*self.policy.inner;
        p.prepare(&req.method().clone(), req.headers_mut());
        // A streaming body cannot be sent twice; such a request gets one attempt.
        let replayable = req.try_clone().is_some();
        let target = target_of(req.url());
        let mut call = p.start(&req.method().clone(), target, req.headers(), replayable);
        let mut original = Some(req);
        loop {
            call.pace().await.map_err(give_up)?;
            let Some(attempt) = original
                .as_ref()
                .and_then(Request::try_clone)
                .or_else(|| original.take())
            else {
                unreachable_give_up()?
            };
            let sent = next.clone().run(attempt, extensions);
            let result = match call.remaining() {
                Some(left) => tokio::time::timeout(left, sent).await.ok(),
                None => Some(sent.await),
            };
            let step = match result {
                None => call.on_deadline(),
                Some(Ok(response)) => match call.on_answer(response.status(), response.headers()) {
                    Step::Done => return Ok(response),
                    Step::GiveUp(e) if e.status().is_some() => {
                        return Err(give_up(read_problem(response, e).await));
                    }
                    step => step,
                },
                Some(Err(reqwest_middleware::Error::Reqwest(e))) => {
                    let failure = failure_of(&e);
                    call.on_failure(failure, Box::new(e) as BoxError)
                }
                // Another middleware's error is its own to report.
                Some(Err(other)) => return Err(other),
            };
            match step {
                Step::Done => unreachable_give_up()?,
                Step::GiveUp(e) => return Err(give_up(e)),
                Step::Retry(wait) => call.sleep(wait).await,
                Step::Refresh => {
                    let value = call.refresh().await.map_err(give_up)?;
                    if let Some(r) = original.as_mut() {
                        r.headers_mut().insert(header::AUTHORIZATION, value);
                    }
                }
            }
        }
    }
}

/// The loop never gets here: a step that sends again needs a replayable request.
fn unreachable_give_up<T>() -> reqwest_middleware::Result<T> {
    Err(give_up(Error::new(crate::Reason::NotReplayable)))
}
