//! candor-contract: the HTTP status-code contract as a library.
//!
//! No I/O and no async: the rule catalog, RFC 9457 problem details, the
//! WWW-Authenticate, Retry-After and RateLimit fields, and the passive
//! checks over a recorded [`Exchange`]. The gateway and the auditor both
//! stand on it; any Rust service can too.

#[cfg(feature = "axum")]
pub mod axum;
mod challenge;
mod check;
mod duration;
mod exchange;
mod failure;
pub mod fields;
mod finding;
mod linger;
mod problem;
mod ratelimit;
mod recovery;
mod retry_after;
pub mod rules;
mod service;
mod signals;
pub mod status;
mod target;
pub mod words;

pub use challenge::{AuthParam, Challenge, ChallengeError, parse_challenges, render_challenges};
pub use check::{
    CheckOptions, History, REQUEST_FIELDS, RESPONSE_FIELDS, check_exchange, failure_signal,
    judges_request_body, reads_request_body,
};
pub use duration::{DurationError, parse_duration, parse_duration_or_seconds};
pub use exchange::{
    Exchange, Request, Response, content_length, content_length_digits, content_length_value,
    fold_content_length, is_json_media_type, media_type, url_path,
};
pub use failure::FailureType;
pub use finding::{Finding, MAX_EVIDENCE};
pub use linger::{LINGER_BYTES, LINGER_TIME};
#[cfg(feature = "tokio")]
pub use linger::{Pieces, read_away_pieces};
pub use problem::{PROBLEM_JSON, Problem, ProblemError};
pub use ratelimit::{RateLimit, RateLimitError, RateLimitPolicy};
pub use recovery::{Recovery, invites_new_credentials, is_idempotent};
pub use retry_after::{RetryAfter, RetryAfterError};
pub use rules::{RULES, Rule, Section, Severity};
pub use service::{
    Accepted, Created, ErrorResponse, FieldError, NoContent, ServiceError, pointer_token,
};
/// The path normaliser's properties, for the fuzz target; not in a normal build.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use target::fuzzing;
pub use target::{
    Authority, HostError, PathError, PathOptions, forwarded_quotes_closed, normalize_path,
};
