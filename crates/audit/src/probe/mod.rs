//! Active probes (contract section 3): a live API, driven by its OpenAPI
//! document, is sent the requests a careless client or an attacker would
//! send, and each answer is held to what the contract expects.
//!
//! [`plan`] decides which probe applies to which operation and with which
//! credentials ([`credentials`]); [`body`] makes valid and broken request
//! bodies from the schemas; [`run`] sends them through the recording
//! [`Client`] (its budget and concurrency limit bound the run) and grades
//! every answer twice: by the probe's expectation ([`verdict`]) and by the
//! passive rules of section 2. Every finding carries the exact request and
//! response ([`ProbeEvidence`](crate::ProbeEvidence)); every probe on every
//! operation ends as one [`Case`](crate::Case).
//!
//! Safety: no DELETE and no burst without `allow_destructive`; without it,
//! no POST, PUT or PATCH either to a path whose ids this run did not create
//! itself; a delete only ever targets a resource the run created.

pub mod body;
pub mod credentials;
pub mod plan;
mod random;
mod runner;
pub mod target;
pub mod verdict;

pub use credentials::{Credential, CredentialError, Credentials};
pub use plan::{Phase, Plan, PlanOptions, Probe, Step, StepKind, plan};
pub use random::Random;
pub use runner::run;

/// Size of the oversize-body probe's body: far over any sane limit.
pub const OVERSIZE_BYTES: usize = 8 * 1024 * 1024;
/// Largest burst `--burst` may ask for.
pub const MAX_BURST: u32 = 1000;

/// What a probe run is told.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Where the API answers; paths of the document are appended to it.
    pub base_url: String,
    pub credentials: Credentials,
    /// Send DELETE (only to resources this run created), PUT/PATCH/POST to
    /// resources it did not create, and the burst.
    pub allow_destructive: bool,
    /// Requests of the opt-in rate burst (capped at [`MAX_BURST`]).
    pub burst: Option<u32>,
    /// Keep credential values in the reported requests. Off, every value
    /// given with `--auth` (but the `invalid` one) is replaced by
    /// `<ROLE credential>`, after its scheme, so a report can be shared.
    pub reveal_credentials: bool,
}

/// Told how many steps a run has and how many are done, for a progress
/// bar. Called from the task that runs the probes.
pub trait Progress: Send + Sync {
    /// The run has `total` steps.
    fn start(&self, total: u64);
    /// `n` more steps finished.
    fn advance(&self, n: u64);
    /// The run is over.
    fn finish(&self);
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _total: u64) {}
    fn advance(&self, _n: u64) {}
    fn finish(&self) {}
}

/// How a run went, beyond its findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeReport {
    pub summary: crate::Summary,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Requests sent (charged to the budget).
    pub requests: u64,
    /// Requests that got a response.
    pub responses: u64,
    /// True when some step did not run because the budget was spent.
    pub budget_exhausted: bool,
    /// The first transport error, when a request got no response.
    pub first_error: Option<String>,
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("base URL {url:?}: {why}")]
    BaseUrl { url: String, why: String },
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The first request got no answer at all: nothing was probed.
    #[error("{url} cannot be reached ({why}); nothing was probed")]
    Unreachable { url: String, why: String },
    /// The sink failed (a closed pipe, a full disk).
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

impl ProbeError {
    /// The I/O error underneath, if any (a closed pipe is not a failure).
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            ProbeError::Output(e) => Some(e),
            ProbeError::BaseUrl { .. }
            | ProbeError::Credentials(_)
            | ProbeError::Unreachable { .. } => None,
        }
    }
}

/// Checks a base URL: absolute, http or https, no query or fragment.
/// Returns it without a trailing slash.
pub fn base_url(url: &str) -> Result<String, ProbeError> {
    let fail = |why: &str| ProbeError::BaseUrl {
        url: url.to_owned(),
        why: why.to_owned(),
    };
    let parsed = url::Url::parse(url).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => {
            fail("not an absolute URL: start it with http:// or https://")
        }
        e => fail(&e.to_string()),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(fail("only http and https URLs can be probed"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(fail("no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(fail("a base URL takes no query or fragment"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(base_url("http://h:1/v1/").unwrap(), "http://h:1/v1");
        assert!(base_url("/v1").is_err());
        assert!(base_url("ftp://h/").is_err());
        assert!(base_url("http://h/?a=1").is_err());
    }
}
