//! Finding an error of one type in another's source chain: how timeouts,
//! TLS failures and client body faults are told apart wherever they surface.

use std::error::Error as StdError;
use std::io;

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
pub(crate) fn cause<'a, E: StdError + 'static>(
    error: &'a (dyn StdError + 'static),
) -> Option<&'a E> {
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
