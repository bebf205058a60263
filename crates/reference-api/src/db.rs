//! The SQLite database: opening it (WAL, foreign keys, busy timeout,
//! durable commits), schema migrations by `PRAGMA user_version`, and a
//! handle that runs blocking queries off the async executor.
//!
//! One connection behind a mutex serves every request: SQLite allows one
//! writer at a time anyway, `:memory:` databases live in one connection,
//! and the queries here are short. Each query runs on tokio's blocking
//! pool, so a slow disk never stalls the executor.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

use crate::config::{DbLocation, FailSwitch, HangSwitch};

/// Why the database could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The failure switch is on.
    #[error("simulated database failure (the fail-db switch is on)")]
    Simulated,
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot create the database directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the database is at schema version {found}, newer than this build knows ({known}); refusing to touch it"
    )]
    TooNew { found: i64, known: i64 },
    /// The blocking task running a query panicked or was cancelled.
    #[error("the database task did not finish: {0}")]
    Task(String),
}

/// Schema migrations, in order: migration `i` takes the database from
/// `user_version` `i` to `i + 1`. Never edit one that has shipped; add one.
const MIGRATIONS: &[&str] = &[
    // 1: users (kept as tombstones when deleted, their personal data
    // erased), sessions (ended, never removed), exports.
    "CREATE TABLE users (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        email         TEXT COLLATE NOCASE,
        name          TEXT,
        password_hash TEXT,
        created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        deleted_at    TEXT
    ) STRICT;
    CREATE UNIQUE INDEX users_email ON users (email);
    CREATE TABLE sessions (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id     INTEGER NOT NULL REFERENCES users (id),
        token_hash  BLOB NOT NULL UNIQUE,
        created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        ended_at    TEXT
    ) STRICT;
    CREATE INDEX sessions_user ON sessions (user_id);
    CREATE TABLE exports (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
        created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        completed_at TEXT,
        users        INTEGER
    ) STRICT;",
];

/// A cheap, cloneable handle on the one connection.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    fail: FailSwitch,
    hang: HangSwitch,
}

impl Db {
    /// Opens (creating when needed) and migrates the accounts database.
    /// Blocking.
    pub fn open(location: &DbLocation, fail: FailSwitch) -> Result<Db, DbError> {
        Db::open_with(location, fail, HangSwitch::default(), MIGRATIONS)
    }

    /// Opens a database with its own schema (`migrations`, as
    /// [`MIGRATIONS`]) and switches. Blocking.
    pub fn open_with(
        location: &DbLocation,
        fail: FailSwitch,
        hang: HangSwitch,
        migrations: &[&str],
    ) -> Result<Db, DbError> {
        let mut conn = match location {
            DbLocation::Memory => Connection::open_in_memory()?,
            DbLocation::File(path) => {
                create_parent(path)?;
                Connection::open(path)?
            }
        };
        configure(&conn)?;
        migrate(&mut conn, migrations)?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
            fail,
            hang,
        })
    }

    /// Runs `query` with the connection on the blocking pool. Every query
    /// the service makes goes through here, so the failure switch covers
    /// them all.
    pub async fn run<T, F>(&self, query: F) -> Result<T, crate::Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, crate::Error> + Send + 'static,
    {
        // A hung database holds the query until the switch is off.
        self.hang.wait_while_on().await;
        if self.fail.is_on() {
            return Err(DbError::Simulated.into());
        }
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock rolled its transaction back
            // (rusqlite rolls back on drop), so the connection is sound.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            query(&mut conn)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }
}

fn create_parent(path: &Path) -> Result<(), DbError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            fs::create_dir_all(dir).map_err(|source| DbError::Directory {
                path: dir.display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}

fn configure(conn: &Connection) -> Result<(), DbError> {
    // WAL: readers never block the writer. An in-memory database answers
    // "memory" and keeps its own journal; that is fine.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    // FULL: in WAL mode NORMAL may lose the last commits on power loss; a
    // 2xx promises the write is durable.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Another process (a second instance, the sqlite3 shell) may hold the
    // write lock for a moment.
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(())
}

/// Brings the schema to the latest version, one transaction per step.
fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<(), DbError> {
    let known = migrations.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > known {
        return Err(DbError::TooNew { found, known });
    }
    for (step, sql) in migrations.iter().enumerate().skip(found.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", step as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_bring_a_new_database_to_the_latest_version() {
        let db = Db::open(&DbLocation::Memory, FailSwitch::default()).unwrap();
        let conn = db.conn.lock().unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
    }

    #[test]
    fn a_file_database_is_wal_and_reopens_without_migrating_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/ref.db");
        let location = DbLocation::File(path.clone());
        {
            let db = Db::open(&location, FailSwitch::default()).unwrap();
            let conn = db.conn.lock().unwrap();
            let mode: String = conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            conn.execute("INSERT INTO exports DEFAULT VALUES", [])
                .unwrap();
        }
        let db = Db::open(&location, FailSwitch::default()).unwrap();
        let conn = db.conn.lock().unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM exports", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ref.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = Db::open(&DbLocation::File(path), FailSwitch::default())
            .err()
            .unwrap();
        assert!(matches!(err, DbError::TooNew { found: 99, .. }), "{err}");
    }
}
