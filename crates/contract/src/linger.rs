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
