//! candor-audit: proves whether an API obeys the status-code contract.
//!
//! Three sources of findings share one report model ([`Located`], [`Case`],
//! [`Sink`]): recorded traffic (HAR 1.2 and JSON lines, plain or gzip) run
//! through the contract's passive rules; OpenAPI documents linted
//! statically; and live APIs and gateways probed over HTTP.

//!
//! The namespaces below are the crate's API; the report model is
//! re-exported at the top.

pub mod http;
pub mod input;
pub mod lint;
pub mod openapi;
pub mod probe;
pub mod report;
pub mod suite;

mod model;

pub use model::{Case, CaseOutcome, Located, Occurrence, ProbeEvidence, Sink, Skipped, Summary};
