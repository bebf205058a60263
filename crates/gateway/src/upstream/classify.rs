//! Names an upstream failure.
//!
//! Connect failures are named by the phase that failed (resolve, TCP
//! connect, TLS handshake), then by the `io::Error` kind or the
//! `rustls::Error` found inside it; failures on an open connection by
//! hyper's error. Our own response-head timer is classified by the caller,
//! which knows it fired.

use std::error::Error as StdError;
use std::io;

use super::conn::ConnectError;

/// How an upstream failed: the contract's `X-Failure-Type` vocabulary,
/// under the name the send path has always used.
pub use candor_contract::FailureType as UpstreamFailure;

/// Classifies a connection that could not be opened.
pub(super) fn classify_connect(error: &ConnectError) -> UpstreamFailure {
    match error {
        ConnectError::Dns => UpstreamFailure::Dns,
        ConnectError::Timeout => UpstreamFailure::ConnectTimeout,
        ConnectError::Tls(e) if cause::<rustls::Error>(e).is_some() => UpstreamFailure::Tls,
        ConnectError::Tcp(e) | ConnectError::Tls(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused => UpstreamFailure::ConnectRefused,
            io::ErrorKind::TimedOut => UpstreamFailure::ConnectTimeout,
            _ => UpstreamFailure::ConnectError,
        },
        ConnectError::Handshake => UpstreamFailure::ConnectError,
    }
}

/// Classifies a request that got no response head on an open connection
/// (our own timer aside).
pub(super) fn classify_send(error: &hyper::Error) -> UpstreamFailure {
    if error.is_parse() || error.is_parse_status() {
        return UpstreamFailure::InvalidResponse;
    }
    if error.is_timeout() {
        return UpstreamFailure::Timeout;
    }
    // Incomplete message, reset, broken pipe, canceled, or anything
    // unnamed: the connection ended before a response.
    UpstreamFailure::Reset
}

fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |e: &&'a (dyn StdError + 'static)| {
        (*e).source()
    })
}

/// Finds an error of type `E` anywhere in the chain, including inside the
/// payloads of (possibly nested) `io::Error`s, whose `source()` skips their
/// own payload. tokio-rustls reports a bad certificate as an `io::Error`
/// holding the `rustls::Error` (hyper-rustls nested one more `io::Error`).
pub fn cause<'a, E: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    chain(error).find_map(|e| {
        let mut current = e;
        loop {
            if let Some(found) = current.downcast_ref::<E>() {
                return Some(found);
            }
            current = current.downcast_ref::<io::Error>()?.get_ref()?;
        }
    })
}
