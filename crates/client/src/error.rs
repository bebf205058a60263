//! The typed error a call gives up with: why, and everything the answer said
//! (status, problem+json, challenges, failure type) for the caller to act on.

use std::fmt;
use std::time::Duration;

use candor_contract::{Challenge, FailureType, Problem, is_json_media_type, media_type};
use http::{HeaderMap, StatusCode};

/// Any error a transport can return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a call gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The answer says the same request will get the same answer (4xx, 500).
    Status,
    /// 401 again after one fresh credential, no token source, or a challenge
    /// that a new token will not cure.
    Unauthorized,
    /// The server asked for a wait that ends after the call's deadline.
    RetryAfterPastDeadline,
    /// The call's deadline passed (during an attempt, or before the next one).
    DeadlineExceeded,
    /// Every attempt allowed was made.
    AttemptsExhausted,
    /// The retry budget is spent: retries would multiply an outage.
    BudgetExhausted,
    /// The request may have been processed and is neither idempotent nor
    /// carries an `Idempotency-Key`, so repeating it is not safe.
    NotRepeatable,
    /// The request's body is a stream that cannot be sent twice.
    NotReplayable,
    /// The token source failed.
    TokenSource,
}

impl Reason {
    /// A name for logs and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Status => "status",
            Reason::Unauthorized => "unauthorized",
            Reason::RetryAfterPastDeadline => "retry_after_past_deadline",
            Reason::DeadlineExceeded => "deadline_exceeded",
            Reason::AttemptsExhausted => "attempts_exhausted",
            Reason::BudgetExhausted => "budget_exhausted",
            Reason::NotRepeatable => "not_repeatable",
            Reason::NotReplayable => "not_replayable",
            Reason::TokenSource => "token_source",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Reason::Status => "the answer will not change on a retry",
            Reason::Unauthorized => "not authenticated",
            Reason::RetryAfterPastDeadline => "the server's Retry-After ends past the deadline",
            Reason::DeadlineExceeded => "the deadline passed",
            Reason::AttemptsExhausted => "every attempt failed",
            Reason::BudgetExhausted => "the retry budget is spent",
            Reason::NotRepeatable => "the request is not safe to repeat",
            Reason::NotReplayable => "the request body cannot be sent again",
            Reason::TokenSource => "the token source failed",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much of a give-up answer's body is read for its problem document.
pub const MAX_PROBLEM_BYTES: usize = 64 * 1024;

/// A call that gave up: the reason, and what the last answer said.
#[derive(Debug)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    reason: Reason,
    status: Option<StatusCode>,
    problem: Option<Problem>,
    challenges: Vec<Challenge>,
    failure: Option<FailureType>,
    retry_after: Option<Duration>,
    attempts: u32,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(reason: Reason) -> Self {
        Self {
            inner: Box::new(Inner {
                reason,
                status: None,
                problem: None,
                challenges: Vec::new(),
                failure: None,
                retry_after: None,
                attempts: 0,
                source: None,
            }),
        }
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.inner.status = Some(status);
        self
    }

    pub(crate) fn with_challenges(mut self, challenges: Vec<Challenge>) -> Self {
        self.inner.challenges = challenges;
        self
    }

    pub(crate) fn with_failure(mut self, failure: FailureType) -> Self {
        self.inner.failure = Some(failure);
        self
    }

    pub(crate) fn with_retry_after(mut self, wait: Duration) -> Self {
        self.inner.retry_after = Some(wait);
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Self {
        self.inner.attempts = attempts;
        self
    }

    pub(crate) fn with_source(mut self, source: BoxError) -> Self {
        self.inner.source = Some(source);
        self
    }

    /// Reads the answer's body as a problem document when its media type is
    /// JSON (`application/problem+json` or any `+json`); anything else is left out.
    pub fn attach_body(&mut self, headers: &HeaderMap, body: &[u8]) {
        let json = media_type(headers).is_some_and(|m| is_json_media_type(&m));
        if json && !body.is_empty() {
            self.inner.problem = Problem::from_slice(body).ok();
        }
    }

    /// Why the call gave up.
    pub fn reason(&self) -> Reason {
        self.inner.reason
    }

    /// The status of the last answer, when there was one.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The last answer's problem document, when it sent one.
    pub fn problem(&self) -> Option<&Problem> {
        self.inner.problem.as_ref()
    }

    /// The last answer's `WWW-Authenticate` challenges, parsed.
    pub fn challenges(&self) -> &[Challenge] {
        &self.inner.challenges
    }

    /// How the last attempt failed when no answer came, in the gateway's terms
    /// (`connect_refused`, `reset`, `timeout`, ...).
    pub fn failure(&self) -> Option<FailureType> {
        self.inner.failure
    }

    /// The wait the server asked for, when it asked for one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// Attempts sent, the first included.
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// Takes this error out of a reqwest-middleware error; any other error back.
    pub fn downcast(error: reqwest_middleware::Error) -> Result<Self, reqwest_middleware::Error> {
        match error {
            reqwest_middleware::Error::Middleware(e) => e
                .downcast::<Self>()
                .map_err(reqwest_middleware::Error::Middleware),
            other => Err(other),
        }
    }

    /// This error inside a reqwest-middleware error, when it is one.
    pub fn from_middleware(error: &reqwest_middleware::Error) -> Option<&Self> {
        match error {
            reqwest_middleware::Error::Middleware(e) => e.downcast_ref::<Self>(),
            reqwest_middleware::Error::Reqwest(_) => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        write!(f, "gave up: {}", i.reason.describe())?;
        if let Some(status) = i.status {
            write!(f, " ({status})")?;
        } else if let Some(failure) = i.failure {
            write!(f, " ({failure})")?;
        }
        if let Some(wait) = i.retry_after {
            write!(f, ", Retry-After {}s", wait.as_secs())?;
        }
        if let Some(detail) = i.problem.as_ref().and_then(|p| p.detail.as_deref()) {
            write!(f, ": {detail}")?;
        }
        let attempts = candor_contract::words::count(i.attempts, "attempt", "attempts");
        write!(f, " after {attempts}")
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
