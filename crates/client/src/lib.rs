//! candor-client: the client side of the HTTP status-code contract.
//!
//! Every answer is read as an action from the contract's catalog
//! (contract.md §6, [`candor_contract::Recovery`]): done, retry (after what
//! Retry-After says, or a jittered backoff, within a deadline and a retry
//! budget), re-authenticate once with a fresh token, or give up with a typed
//! [`Error`] that carries the status, the problem+json and the challenges.
//! One [`Policy`] drives both adapters: [`RetryMiddleware`] for
//! reqwest-middleware and [`RetryLayer`] for tower (hyper-util's client).
//!
//! Proactive pacing ([`PolicyBuilder::pace`]) is off by default: it trusts
//! the server's RateLimit fields, holds requests back on the client's own
//! clock, and keeps its count per server, not per quota key; a client that
//! shares a quota with others, or talks to a server whose fields are wrong,
//! would wait for nothing. Turn it on for a server you know sends them.

mod budget;
mod classify;
mod error;
mod pace;
mod policy;
mod reqwest_mw;
mod tower_layer;

pub use budget::RetryBudget;
pub use classify::{
    Action, Answer, Facts, Wait, Why, challenges, classify, classify_failure, failure_of,
    retry_after,
};
pub use error::{BoxError, Error, MAX_PROBLEM_BYTES, Reason};
pub use policy::{BoxFuture, Policy, PolicyBuilder, Sleeper, TokenSource};
pub use reqwest_mw::RetryMiddleware;
pub use tower_layer::{ReplayBody, RetryLayer, RetryService};
