//! The gateway's decisions, each made once, over views both codecs give:
//! proxy.rs (hyper) and direct.rs (bytes) apply what they decide.

pub(crate) mod cors;
pub(crate) mod request;
pub(crate) mod response;
