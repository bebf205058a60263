//! How the service is set up: where its database lives, how slow exports
//! are, how hard passwords are hashed, and the database-failure switch.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The default database file, relative to the working directory.
pub const DEFAULT_DB: &str = "data/reference.db";

/// The realm named in every WWW-Authenticate challenge.
pub const REALM: &str = "candor-reference";

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A private in-memory database, gone when the service stops (tests).
    Memory,
    /// A file; its directory is created when missing.
    File(PathBuf),
}

impl DbLocation {
    /// `:memory:` is [`DbLocation::Memory`]; anything else is a file path.
    pub fn parse(text: &str) -> Self {
        if text == ":memory:" {
            DbLocation::Memory
        } else {
            DbLocation::File(PathBuf::from(text))
        }
    }
}

/// A shared switch that simulates a database failure: while it is on,
/// every request that needs the database fails as if the database were
/// down, and the client gets a 500 problem without internals. Clones share
/// one switch, so a test or `candor demo` can flip it from outside.
#[derive(Debug, Clone, Default)]
pub struct FailSwitch(Arc<AtomicBool>);

impl FailSwitch {
    pub fn new(on: bool) -> Self {
        FailSwitch(Arc::new(AtomicBool::new(on)))
    }

    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::SeqCst);
    }

    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A shared switch that simulates a hung database: while it is on, every
/// query waits (holding its request) until the switch is turned off. The
/// client of the service sees no answer at all, and its own timeout
/// decides (a gateway's 504). Clones share one switch.
#[derive(Debug, Clone)]
pub struct HangSwitch(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for HangSwitch {
    fn default() -> Self {
        HangSwitch(Arc::new(tokio::sync::watch::channel(false).0))
    }
}

impl HangSwitch {
    pub fn set(&self, on: bool) {
        self.0.send_replace(on);
    }

    pub fn is_on(&self) -> bool {
        *self.0.borrow()
    }

    /// How many queries the switch holds now.
    pub fn held(&self) -> usize {
        self.0.receiver_count()
    }

    /// Returns once the switch is off (at once when it is).
    pub async fn wait_while_on(&self) {
        if !self.is_on() {
            return;
        }
        let mut off = self.0.subscribe();
        let _ = off.wait_for(|on| !*on).await;
    }
}

/// Everything the service needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub db: DbLocation,
    pub fail_db: FailSwitch,
    /// How long an accepted export stays `pending` before it is done.
    pub export_delay: Duration,
    /// PBKDF2-HMAC-SHA256 iterations for new password hashes. Stored with
    /// each hash, so changing it never locks anyone out.
    pub password_iterations: NonZeroU32,
}

/// OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256.
pub const DEFAULT_PASSWORD_ITERATIONS: NonZeroU32 = match NonZeroU32::new(600_000) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

impl Default for Config {
    fn default() -> Self {
        Config {
            db: DbLocation::File(PathBuf::from(DEFAULT_DB)),
            fail_db: FailSwitch::default(),
            export_delay: Duration::from_secs(1),
            password_iterations: DEFAULT_PASSWORD_ITERATIONS,
        }
    }
}

impl Config {
    /// An in-memory database, quick exports and cheap password hashing:
    /// for tests and demos, never for real passwords.
    pub fn in_memory() -> Self {
        Config {
            db: DbLocation::Memory,
            export_delay: Duration::from_millis(50),
            password_iterations: NonZeroU32::new(1_000).unwrap_or(NonZeroU32::MIN),
            ..Config::default()
        }
    }
}
