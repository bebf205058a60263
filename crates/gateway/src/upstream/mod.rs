//! Upstreams: per-worker pools of HTTP/1.1 connections, round-robin target
//! choice with passive ejection, and failure classification.

mod classify;
mod conn;
mod pool;
mod response;

pub use classify::UpstreamFailure;
pub use conn::{Discard, SendError, UpstreamRequestBody};
pub(crate) use pool::worker_index;
pub use pool::{Lease, Pick, Pool, Target, set_worker_index};
pub use response::UpstreamBody;
