//! The lingering close's bounds: how much of an unread request body is read
//! away behind an answer, and for how long (RFC 9112 section 9.6).
//!
//! A client sends its whole body before it reads the answer; closing with
//! the body unread would reset the connection and could lose the answer.
//! Reading it away lets the answer arrive, within these bounds. Every
//! server that answers before reading (`axum::read_away`, the gateway's
//! two data paths) keeps to the same ones.

use std::time::Duration;

/// How much of an unread request body is read away: a body longer than
/// this closes the connection once this much is read.
pub const LINGER_BYTES: u64 = 16 << 20;
/// How long reading an unread request body away may take.
pub const LINGER_TIME: Duration = Duration::from_secs(5);

/// A request body read away piece by piece, by [`read_away_pieces`].
#[cfg(feature = "tokio")]
pub trait Pieces {
    /// Reads the next piece: its length, `Ok(None)` at the body's end, or
    /// `Err(())` when the body broke off.
    fn next_piece(&mut self) -> impl Future<Output = Result<Option<u64>, ()>> + Send;
}

/// Reads `body` away within [`LINGER_BYTES`] and [`LINGER_TIME`]: whether
/// it ended within them (then the connection can serve its next request).
/// The one bounded loop every server here uses behind an early answer.
#[cfg(feature = "tokio")]
pub async fn read_away_pieces(body: &mut impl Pieces) -> bool {
    let reading = async {
        let mut read = 0u64;
        loop {
            match body.next_piece().await {
                Ok(Some(n)) => {
                    read = read.saturating_add(n);
                    if read > LINGER_BYTES {
                        return false;
                    }
                }
                Ok(None) => return true,
                Err(()) => return false,
            }
        }
    };
    tokio::time::timeout(LINGER_TIME, reading)
        .await
        .unwrap_or(false)
}

#[cfg(all(test, feature = "tokio"))]
mod tests {
    use super::*;

    /// A body of the given pieces, then its end (or a break).
    struct Given(Vec<Result<Option<u64>, ()>>);

    impl Pieces for Given {
        async fn next_piece(&mut self) -> Result<Option<u64>, ()> {
            if self.0.is_empty() {
                Ok(None)
            } else {
                self.0.remove(0)
            }
        }
    }

    #[tokio::test]
    async fn a_body_is_read_away_only_within_the_bounds() {
        assert!(
            read_away_pieces(&mut Given(vec![Ok(Some(10)), Ok(Some(LINGER_BYTES - 10))])).await
        );
        assert!(!read_away_pieces(&mut Given(vec![Ok(Some(LINGER_BYTES)), Ok(Some(1))])).await);
        assert!(!read_away_pieces(&mut Given(vec![Ok(Some(1)), Err(())])).await);
        assert!(read_away_pieces(&mut Given(Vec::new())).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_ends_is_given_up_after_the_linger_time() {
        struct Stalled;
        impl Pieces for Stalled {
            async fn next_piece(&mut self) -> Result<Option<u64>, ()> {
                std::future::pending().await
            }
        }
        assert!(!read_away_pieces(&mut Stalled).await);
    }
}
