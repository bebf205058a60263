//! The policy both adapters share: options, the budget, the pacer, the token
//! source, and the per-call state machine that turns each action into a step.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use candor_contract::fields::IDEMPOTENCY_KEY;
use candor_contract::{FailureType, is_idempotent};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use crate::budget::RetryBudget;

/// Scheme, host and port: what a quota is kept per and what the decisions
/// log (never a URI's user information). Both adapters name targets here.
pub(crate) fn target(scheme: &str, host: &str, port: Option<u16>) -> String {
    let port = port.or(match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    });
    format!("{scheme}://{host}:{}", port.unwrap_or(0))
}
use crate::classify::{Action, Answer, Facts, Wait, Why, classify, classify_failure};
use crate::error::{BoxError, Error, Reason};
use crate::pace::Pacer;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where fresh credentials come from: called once when a 401 says the token
/// is invalid or missing; its token is sent as `Authorization: Bearer`.
pub trait TokenSource: Send + Sync + 'static {
    fn token(&self) -> BoxFuture<'_, Result<String, BoxError>>;
}

impl<F, Fut> TokenSource for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, BoxError>> + Send + 'static,
{
    fn token(&self) -> BoxFuture<'_, Result<String, BoxError>> {
        Box::pin(self())
    }
}

/// How the policy waits; tokio's timer unless a test or a runtime brings its own.
pub trait Sleeper: Send + Sync + 'static {
    fn sleep(&self, wait: Duration) -> BoxFuture<'static, ()>;
}

impl<F, Fut> Sleeper for F
where
    F: Fn(Duration) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn sleep(&self, wait: Duration) -> BoxFuture<'static, ()> {
        Box::pin(self(wait))
    }
}

struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, wait: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(wait))
    }
}

/// What to retry, how long to wait, and when to stop. Cheap to clone: clones
/// share one budget, one pacer and one credential.
#[derive(Clone)]
pub struct Policy {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    max_attempts: u32,
    base_backoff: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
    deadline: Option<Duration>,
    retry_server_bugs: bool,
    add_idempotency_key: bool,
    budget: RetryBudget,
    pacer: Option<Pacer>,
    tokens: Option<Tokens>,
    sleeper: Box<dyn Sleeper>,
}

struct Tokens {
    source: Box<dyn TokenSource>,
    current: Mutex<Option<HeaderValue>>,
}

impl Default for Policy {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = &self.inner;
        f.debug_struct("Policy")
            .field("max_attempts", &i.max_attempts)
            .field("deadline", &i.deadline)
            .field("budget", &i.budget)
            .field("pace", &i.pacer.is_some())
            .field("token_source", &i.tokens.is_some())
            .finish_non_exhaustive()
    }
}

impl Policy {
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// The budget every call of this policy draws from.
    pub fn budget(&self) -> &RetryBudget {
        &self.inner.budget
    }
}

/// Builds a [`Policy`]; every option has a default that suits an API client.
pub struct PolicyBuilder {
    max_attempts: u32,
    base_backoff: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
    deadline: Option<Duration>,
    retry_server_bugs: bool,
    add_idempotency_key: bool,
    budget: RetryBudget,
    pace: bool,
    tokens: Option<Box<dyn TokenSource>>,
    sleeper: Box<dyn Sleeper>,
}

impl Default for PolicyBuilder {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            deadline: None,
            retry_server_bugs: false,
            add_idempotency_key: false,
            budget: RetryBudget::default(),
            pace: false,
            tokens: None,
            sleeper: Box::new(TokioSleeper),
        }
    }
}

impl PolicyBuilder {
    /// Attempts per call, the first included (default 3; at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The first backoff's ceiling and every backoff's cap (default 100 ms, 10 s).
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base_backoff = base;
        self.max_backoff = max.max(base);
        self
    }

    /// The longest Retry-After honoured as given; longer ones wait this long (default 60 s).
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// The whole call's time, every attempt and wait included (default: none).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Retry a 500 on repeatable requests (default off).
    pub fn retry_server_bugs(mut self, on: bool) -> Self {
        self.retry_server_bugs = on;
        self
    }

    /// Give each POST and PATCH without one a random `Idempotency-Key`, so
    /// that it may be retried (default off: the server must honour the key).
    pub fn add_idempotency_key(mut self, on: bool) -> Self {
        self.add_idempotency_key = on;
        self
    }

    /// The retry budget (default [`RetryBudget::default`]).
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Wait for a spent RateLimit quota's reset before sending (default off).
    pub fn pace(mut self, on: bool) -> Self {
        self.pace = on;
        self
    }

    /// Where fresh credentials come from on a 401.
    pub fn token_source(mut self, source: impl TokenSource) -> Self {
        self.tokens = Some(Box::new(source));
        self
    }

    /// How waits are made (default: tokio's timer).
    pub fn sleeper(mut self, sleeper: impl Sleeper) -> Self {
        self.sleeper = Box::new(sleeper);
        self
    }

    pub fn build(self) -> Policy {
        Policy {
            inner: Arc::new(Inner {
                max_attempts: self.max_attempts,
                base_backoff: self.base_backoff,
                max_backoff: self.max_backoff,
                max_retry_after: self.max_retry_after,
                deadline: self.deadline,
                retry_server_bugs: self.retry_server_bugs,
                add_idempotency_key: self.add_idempotency_key,
                budget: self.budget,
                pacer: self.pace.then(Pacer::default),
                tokens: self.tokens.map(|source| Tokens {
                    source,
                    current: Mutex::new(None),
                }),
                sleeper: self.sleeper,
            }),
        }
    }
}

/// What the adapter does next.
#[derive(Debug)]
pub(crate) enum Step {
    Done,
    Retry(Duration),
    Refresh,
    GiveUp(Error),
}

/// One call: its clock, its attempts, and what it may still do.
pub(crate) struct Call<'p> {
    p: &'p Inner,
    method: Method,
    target: String,
    deadline: Option<Instant>,
    attempts: u32,
    refreshed: bool,
    repeatable: bool,
    replayable: bool,
}

impl Inner {
    /// Adds what the policy adds before the first attempt: the current
    /// credential and, when asked, an `Idempotency-Key`.
    pub(crate) fn prepare(&self, method: &Method, headers: &mut HeaderMap) {
        if self.add_idempotency_key
            && matches!(*method, Method::POST | Method::PATCH)
            && !headers.contains_key(&IDEMPOTENCY_KEY)
        {
            let key = format!("{:032x}", fastrand::u128(..));
            if let Ok(v) = HeaderValue::from_str(&key) {
                headers.insert(IDEMPOTENCY_KEY.clone(), v);
            }
        }
        if let Some(tokens) = &self.tokens
            && !headers.contains_key(header::AUTHORIZATION)
            && let Some(v) = tokens
                .current
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        {
            headers.insert(header::AUTHORIZATION, v);
        }
    }

    pub(crate) fn start<'p>(
        &'p self,
        method: &Method,
        target: String,
        headers: &HeaderMap,
        replayable: bool,
    ) -> Call<'p> {
        self.budget.deposit();
        Call {
            p: self,
            method: method.clone(),
            target,
            deadline: self.deadline.map(|d| Instant::now() + d),
            attempts: 0,
            refreshed: false,
            repeatable: is_idempotent(method) || headers.contains_key(&IDEMPOTENCY_KEY),
            replayable,
        }
    }
}

impl Call<'_> {
    /// Time left before the deadline; `None` without one.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    fn facts(&self) -> Facts {
        Facts {
            repeatable: self.repeatable,
            retry_server_bugs: self.p.retry_server_bugs,
        }
    }

    fn give_up(&self, e: Error) -> Step {
        let e = e.with_attempts(self.attempts);
        tracing::debug!(
            method = %self.method, target = %self.target, attempts = self.attempts,
            reason = %e.reason(), status = ?e.status(), failure = ?e.failure(),
            "candor-client: give up"
        );
        Step::GiveUp(e)
    }

    /// Before each attempt: waits out a spent quota when pacing is on.
    pub(crate) async fn pace(&self) -> Result<(), Error> {
        let Some(pacer) = &self.p.pacer else {
            return Ok(());
        };
        while let Some(wait) = pacer.reserve(&self.target, Instant::now()) {
            if self.remaining().is_some_and(|left| wait >= left) {
                return Err(Error::new(Reason::DeadlineExceeded)
                    .with_retry_after(wait)
                    .with_attempts(self.attempts));
            }
            // Capped as a Retry-After is: a server's far-off reset sends the
            // request after the cap (its 429, if any, is then handled).
            let capped = wait.min(self.p.max_retry_after);
            tracing::debug!(
                method = %self.method, target = %self.target, wait_ms = capped.as_millis() as u64,
                "candor-client: quota spent, waiting for its reset"
            );
            self.p.sleeper.sleep(capped).await;
            if capped < wait {
                break;
            }
        }
        Ok(())
    }

    /// An answer came.
    pub(crate) fn on_answer(&mut self, status: StatusCode, headers: &HeaderMap) -> Step {
        self.attempts += 1;
        if let Some(pacer) = &self.p.pacer {
            pacer.observe(&self.target, headers, Instant::now());
        }
        let answer = Answer {
            status,
            headers,
            body: None,
        };
        self.decide(classify(&answer, self.facts(), SystemTime::now()))
    }

    /// No answer came: `error` is the transport's.
    pub(crate) fn on_failure(&mut self, failure: FailureType, error: BoxError) -> Step {
        self.attempts += 1;
        match self.decide(classify_failure(failure, self.facts())) {
            Step::GiveUp(e) => Step::GiveUp(e.with_failure(failure).with_source(error)),
            step => step,
        }
    }

    /// The deadline passed during an attempt.
    pub(crate) fn on_deadline(&mut self) -> Step {
        self.attempts += 1;
        self.give_up(Error::new(Reason::DeadlineExceeded).with_failure(FailureType::Timeout))
    }

    fn decide(&mut self, action: Action) -> Step {
        match action {
            Action::Done => {
                tracing::trace!(method = %self.method, target = %self.target, attempts = self.attempts, "candor-client: done");
                Step::Done
            }
            Action::GiveUp(e) => self.give_up(e),
            Action::Reauthenticate { challenges } => {
                if self.p.tokens.is_some() && !self.refreshed && self.replayable {
                    self.refreshed = true;
                    tracing::debug!(method = %self.method, target = %self.target, "candor-client: 401, refreshing the credential once");
                    Step::Refresh
                } else {
                    self.give_up(
                        Error::new(Reason::Unauthorized)
                            .with_status(StatusCode::UNAUTHORIZED)
                            .with_challenges(challenges),
                    )
                }
            }
            Action::Retry { wait, why } => self.retry(wait, why),
        }
    }

    fn retry(&mut self, wait: Wait, why: Why) -> Step {
        let fail = |reason| match why {
            Why::Status(s) => Error::new(reason).with_status(s),
            Why::Failure(f) => Error::new(reason).with_failure(f),
        };
        if !self.replayable {
            return self.give_up(fail(Reason::NotReplayable));
        }
        if self.attempts >= self.p.max_attempts {
            return self.give_up(fail(Reason::AttemptsExhausted));
        }
        let left = self.remaining();
        let pause = match wait {
            Wait::RetryAfter(asked) => {
                // Sleeping past the deadline only to fail later helps no one.
                if left.is_some_and(|left| asked > left) {
                    return self
                        .give_up(fail(Reason::RetryAfterPastDeadline).with_retry_after(asked));
                }
                asked.min(self.p.max_retry_after)
            }
            Wait::Backoff => self.backoff(),
        };
        if left.is_some_and(|left| pause >= left) {
            return self.give_up(fail(Reason::DeadlineExceeded));
        }
        if !self.p.budget.try_withdraw() {
            return self.give_up(fail(Reason::BudgetExhausted));
        }
        tracing::debug!(
            method = %self.method, target = %self.target, attempt = self.attempts + 1,
            why = %why, wait_ms = pause.as_millis() as u64,
            retry_after = matches!(wait, Wait::RetryAfter(_)),
            "candor-client: retry"
        );
        Step::Retry(pause)
    }

    /// Full jitter: uniform in [0, min(cap, base × 2^(retries made))].
    fn backoff(&self) -> Duration {
        let exp = self.attempts.saturating_sub(1).min(30);
        let ceiling = self
            .p
            .base_backoff
            .saturating_mul(1 << exp)
            .min(self.p.max_backoff);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }

    pub(crate) async fn sleep(&self, wait: Duration) {
        if !wait.is_zero() {
            self.p.sleeper.sleep(wait).await;
        }
    }

    /// Asks the token source for a fresh credential and keeps it for later calls.
    pub(crate) async fn refresh(&self) -> Result<HeaderValue, Error> {
        let failed = |e: BoxError| {
            Error::new(Reason::TokenSource)
                .with_status(StatusCode::UNAUTHORIZED)
                .with_attempts(self.attempts)
                .with_source(e)
        };
        let Some(tokens) = &self.p.tokens else {
            return Err(Error::new(Reason::Unauthorized).with_attempts(self.attempts));
        };
        let token = tokens.source.token().await.map_err(failed)?;
        let value =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| failed(Box::new(e)))?;
        *tokens.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(value.clone());
        Ok(value)
    }
}
