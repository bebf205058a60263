//! The queries: users, sessions, exports and the admin report. Each
//! function is one transaction on a borrowed connection and returns either
//! a representation or a typed [`Error`]; a write is committed before it
//! returns, so a 2xx always follows a durable write.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::Error;

/// A user as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: Option<String>,
    pub created_at: String,
}

/// A session as clients see it (the token is shown once, at login).
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub id: i64,
    pub user_id: i64,
    pub created_at: String,
}

/// An export's status resource.
#[derive(Debug, Clone, Serialize)]
pub struct Export {
    pub id: i64,
    /// `pending`, then `done`.
    pub status: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// How many active users the export holds, once done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    pub active: i64,
    pub ended: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserCounts {
    pub active: i64,
    pub deleted: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportCounts {
    pub pending: i64,
    pub done: i64,
}

/// What `GET /admin/reports` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub users: UserCounts,
    pub sessions: Counts,
    pub exports: ExportCounts,
}

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

pub fn insert_user(
    conn: &mut Connection,
    email: &str,
    name: Option<&str>,
    password_hash: &str,
) -> Result<User, Error> {
    let tx = conn.transaction()?;
    let inserted = tx.query_row(
        "INSERT INTO users (email, name, password_hash) VALUES (?1, ?2, ?3)
         RETURNING id, email, name, created_at",
        params![email, name, password_hash],
        |row| {
            Ok(User {
                id: row.get(0)?,
                email: row.get(1)?,
                name: row.get(2)?,
                created_at: row.get(3)?,
            })
        },
    );
    let user = match inserted {
        Ok(user) => user,
        // The unique index decides, so two racing creates cannot both win.
        Err(e) if is_unique_violation(&e) => return Err(Error::EmailTaken),
        Err(e) => return Err(e.into()),
    };
    tx.commit()?;
    Ok(user)
}

/// The user, `UserNotFound`, or `UserDeleted` for a tombstone.
pub fn user(conn: &mut Connection, id: Option<i64>) -> Result<User, Error> {
    let Some(id) = id else {
        return Err(Error::UserNotFound);
    };
    let row = conn
        .query_row(
            "SELECT email, name, created_at, deleted_at FROM users WHERE id = ?1",
            [id],
            |row| {
                Ok((
                    row.get::<_, Option<String>>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                ))
            },
        )
        .optional()?;
    match row {
        None => Err(Error::UserNotFound),
        Some((_, _, _, Some(_))) | Some((None, _, _, None)) => Err(Error::UserDeleted(id)),
        Some((Some(email), name, created_at, None)) => Ok(User {
            id,
            email,
            name,
            created_at,
        }),
    }
}

/// Deletes a user: the row stays as a tombstone (so the id answers 410 and
/// is never reused) with its personal data erased, and its sessions end.
pub fn delete_user(conn: &mut Connection, id: Option<i64>) -> Result<(), Error> {
    let Some(id) = id else {
        return Err(Error::UserNotFound);
    };
    let tx = conn.transaction()?;
    let deleted_at: Option<Option<String>> = tx
        .query_row("SELECT deleted_at FROM users WHERE id = ?1", [id], |row| {
            row.get(0)
        })
        .optional()?;
    match deleted_at {
        None => return Err(Error::UserNotFound),
        Some(Some(_)) => return Err(Error::UserDeleted(id)),
        Some(None) => {}
    }
    tx.execute(
        &format!(
            "UPDATE users SET email = NULL, name = NULL, password_hash = NULL, deleted_at = {NOW}
             WHERE id = ?1"
        ),
        [id],
    )?;
    tx.execute(
        &format!("UPDATE sessions SET ended_at = {NOW} WHERE user_id = ?1 AND ended_at IS NULL"),
        [id],
    )?;
    tx.commit()?;
    Ok(())
}

/// The id and password hash of the active user with this email.
pub fn login_lookup(conn: &mut Connection, email: &str) -> Result<Option<(i64, String)>, Error> {
    Ok(conn
        .query_row(
            "SELECT id, password_hash FROM users
             WHERE email = ?1 AND deleted_at IS NULL AND password_hash IS NOT NULL",
            [email],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?)
}

/// Starts a session for `user_id`, whose token digests to `token_hash`.
pub fn insert_session(
    conn: &mut Connection,
    user_id: i64,
    token_hash: &[u8],
) -> Result<Session, Error> {
    let tx = conn.transaction()?;
    // The user may have been deleted since the password was checked.
    let active: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1 AND deleted_at IS NULL)",
        [user_id],
        |row| row.get(0),
    )?;
    if !active {
        return Err(Error::WrongCredentials);
    }
    let session = tx.query_row(
        "INSERT INTO sessions (user_id, token_hash) VALUES (?1, ?2)
         RETURNING id, user_id, created_at",
        params![user_id, token_hash],
        |row| {
            Ok(Session {
                id: row.get(0)?,
                user_id: row.get(1)?,
                created_at: row.get(2)?,
            })
        },
    )?;
    tx.commit()?;
    Ok(session)
}

/// The session `target`, as seen by the holder of the token digesting to
/// `token_hash`. Authentication comes first (the contract's precedence):
/// an unknown or ended token is `BadToken` whatever the target; then an
/// unknown target is `SessionNotFound`, an ended one `SessionEnded`, and
/// another user's `NotYourSession`.
fn authorized_session(
    conn: &Connection,
    token_hash: &[u8],
    target: Option<i64>,
) -> Result<(Session, bool), Error> {
    let caller: Option<i64> = conn
        .query_row(
            "SELECT user_id FROM sessions WHERE token_hash = ?1 AND ended_at IS NULL",
            [token_hash],
            |row| row.get(0),
        )
        .optional()?;
    let Some(caller) = caller else {
        return Err(Error::BadToken);
    };
    let Some(target) = target else {
        return Err(Error::SessionNotFound);
    };
    let row = conn
        .query_row(
            "SELECT user_id, created_at, ended_at FROM sessions WHERE id = ?1",
            [target],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                ))
            },
        )
        .optional()?;
    let Some((user_id, created_at, ended_at)) = row else {
        return Err(Error::SessionNotFound);
    };
    if user_id != caller {
        return Err(Error::NotYourSession);
    }
    let session = Session {
        id: target,
        user_id,
        created_at,
    };
    Ok((session, ended_at.is_some()))
}

pub fn session(
    conn: &mut Connection,
    token_hash: &[u8],
    target: Option<i64>,
) -> Result<Session, Error> {
    match authorized_session(conn, token_hash, target)? {
        (session, true) => Err(Error::SessionEnded(session.id)),
        (session, false) => Ok(session),
    }
}

/// Ends (logs out) a session; the row stays, so its id answers 410.
pub fn end_session(
    conn: &mut Connection,
    token_hash: &[u8],
    target: Option<i64>,
) -> Result<(), Error> {
    let tx = conn.transaction()?;
    let (session, ended) = authorized_session(&tx, token_hash, target)?;
    if ended {
        return Err(Error::SessionEnded(session.id));
    }
    tx.execute(
        &format!("UPDATE sessions SET ended_at = {NOW} WHERE id = ?1"),
        [session.id],
    )?;
    tx.commit()?;
    Ok(())
}

fn export_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Export> {
    Ok(Export {
        id: row.get(0)?,
        status: row.get(1)?,
        created_at: row.get(2)?,
        completed_at: row.get(3)?,
        users: row.get(4)?,
    })
}

pub fn insert_export(conn: &mut Connection) -> Result<Export, Error> {
    let tx = conn.transaction()?;
    let export = tx.query_row(
        "INSERT INTO exports DEFAULT VALUES
         RETURNING id, status, created_at, completed_at, users",
        [],
        export_row,
    )?;
    tx.commit()?;
    Ok(export)
}

pub fn export(conn: &mut Connection, id: Option<i64>) -> Result<Export, Error> {
    let Some(id) = id else {
        return Err(Error::ExportNotFound);
    };
    conn.query_row(
        "SELECT id, status, created_at, completed_at, users FROM exports WHERE id = ?1",
        [id],
        export_row,
    )
    .optional()?
    .ok_or(Error::ExportNotFound)
}

/// Does the export's work (a snapshot count of active users) and marks it
/// done. Doing it twice is harmless.
pub fn complete_export(conn: &mut Connection, id: i64) -> Result<(), Error> {
    let tx = conn.transaction()?;
    tx.execute(
        &format!(
            "UPDATE exports SET status = 'done', completed_at = {NOW},
                 users = (SELECT count(*) FROM users WHERE deleted_at IS NULL)
             WHERE id = ?1 AND status = 'pending'"
        ),
        [id],
    )?;
    tx.commit()?;
    Ok(())
}

/// Exports accepted but not done, to resume after a restart.
pub fn pending_exports(conn: &mut Connection) -> Result<Vec<i64>, Error> {
    let mut stmt = conn.prepare("SELECT id FROM exports WHERE status = 'pending' ORDER BY id")?;
    let ids = stmt
        .query_map([], |row| row.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(ids)
}

pub fn report(conn: &mut Connection) -> Result<Report, Error> {
    // One read transaction: the counts are of one snapshot.
    let tx = conn.transaction()?;
    let report = {
        let count =
            |sql: &str| -> Result<i64, Error> { Ok(tx.query_row(sql, [], |row| row.get(0))?) };
        Report {
            users: UserCounts {
                active: count("SELECT count(*) FROM users WHERE deleted_at IS NULL")?,
                deleted: count("SELECT count(*) FROM users WHERE deleted_at IS NOT NULL")?,
            },
            sessions: Counts {
                active: count("SELECT count(*) FROM sessions WHERE ended_at IS NULL")?,
                ended: count("SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL")?,
            },
            exports: ExportCounts {
                pending: count("SELECT count(*) FROM exports WHERE status = 'pending'")?,
                done: count("SELECT count(*) FROM exports WHERE status = 'done'")?,
            },
        }
    };
    tx.commit()?;
    Ok(report)
}
