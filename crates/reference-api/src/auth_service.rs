//! The reference auth service: RFC 7662 token introspection on its own
//! SQLite store of sessions, with the accounts service's failure switches.
//!
//! The gateway posts `token=<bearer token>` to `/introspect`; the answer is
//! `{"active": true, "sub", "roles", "exp"}` or `{"active": false}`. A
//! failing database is the service's 500, a hung one holds the answer, and
//! `invalid-answers` makes it answer something no introspection client can
//! read: the guide's Client -> Gateway -> Auth Service -> Database flow,
//! with each of its failures at hand.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use candor_contract::ServiceError;
use candor_contract::axum::{Json, method_not_allowed, no_route};
use http::HeaderMap;
use http::header::CONTENT_TYPE;
use rusqlite::OptionalExtension;
use serde::Serialize;
use serde_json::Value;

use crate::Error;
use crate::app::StartError;
use crate::body::Members;
use crate::config::{DbLocation, FailSwitch, HangSwitch};
use crate::crypto;
use crate::db::Db;

/// The sessions store's schema, one migration per step (never edit one
/// that has shipped; add one).
const MIGRATIONS: &[&str] = &["CREATE TABLE sessions (
        token_hash  BLOB PRIMARY KEY,
        subject     TEXT NOT NULL,
        roles       TEXT NOT NULL DEFAULT '',
        expires_at  INTEGER NOT NULL,
        revoked_at  INTEGER
    ) STRICT;"];

const FORM: &str = "application/x-www-form-urlencoded";

/// How the auth service starts.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub db: Option<DbLocation>,
    pub switches: AuthSwitches,
}

/// The failure switches, shared with whoever flips them.
#[derive(Debug, Clone, Default)]
pub struct AuthSwitches {
    /// The database fails: introspection answers 500.
    pub fail_db: FailSwitch,
    /// The database hangs: introspection does not answer until it is off.
    pub hang_db: HangSwitch,
    /// Introspection answers 200 with an HTML page instead of JSON.
    pub invalid_answers: FailSwitch,
}

struct AuthState {
    db: Db,
    switches: AuthSwitches,
}

/// A running auth service: its router, switches and sessions.
pub struct AuthService {
    state: Arc<AuthState>,
}

impl AuthService {
    /// Opens (and migrates) its sessions database; in memory by default.
    pub async fn open(config: AuthConfig) -> Result<AuthService, StartError> {
        let location = config.db.unwrap_or(DbLocation::Memory);
        let switches = config.switches;
        let (fail, hang) = (switches.fail_db.clone(), switches.hang_db.clone());
        let db =
            tokio::task::spawn_blocking(move || Db::open_with(&location, fail, hang, MIGRATIONS))
                .await
                .map_err(|e| StartError::Setup(format!("opening the sessions database: {e}")))??;
        Ok(AuthService {
            state: Arc::new(AuthState { db, switches }),
        })
    }

    /// `/introspect` and the switches under `/-/auth/`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/introspect", post(introspect))
            .route("/-/auth/fail-db", post(set_fail_db))
            .route("/-/auth/hang-db", post(set_hang_db))
            .route("/-/auth/invalid-answers", post(set_invalid_answers))
            .fallback(no_route)
            .method_not_allowed_fallback(method_not_allowed)
            .with_state(Arc::clone(&self.state))
    }

    pub fn switches(&self) -> AuthSwitches {
        self.state.switches.clone()
    }

    /// Stores a session for `token`: `subject` with `roles`, active until
    /// `expires` (a time in the past makes an expired session).
    pub async fn add_session(
        &self,
        token: &str,
        subject: &str,
        roles: &[&str],
        expires: SystemTime,
    ) -> Result<(), Error> {
        let hash = crypto::token_digest(token);
        let subject = subject.to_owned();
        let roles = roles.join(" ");
        let expires = unix(expires);
        self.state
            .db
            .run(move |conn| {
                conn.execute(
                    "INSERT OR REPLACE INTO sessions (token_hash, subject, roles, expires_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![hash, subject, roles, expires],
                )?;
                Ok(())
            })
            .await
    }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// RFC 7662 section 2.2: what the service says about a token.
#[derive(Serialize)]
struct Introspection {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
}

impl Introspection {
    fn inactive() -> Self {
        Introspection {
            active: false,
            sub: None,
            roles: None,
            exp: None,
        }
    }
}

async fn introspect(
    State(state): State<Arc<AuthState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    let token = if body.is_empty() {
        None
    } else {
        let media = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim);
        if !media.is_some_and(|m| m.eq_ignore_ascii_case(FORM)) {
            return Err(ServiceError::UnsupportedMedia {
                supported: vec![FORM.to_owned()],
                method: Some(http::Method::POST),
            }
            .into());
        }
        form_value(&body, "token")
    };
    let Some(token) = token else {
        // No token to look at is not an active one (RFC 7662 section 2.2).
        return Ok(Json(Introspection::inactive()).into_response());
    };
    let hash = crypto::token_digest(&token);
    let now = unix(SystemTime::now());
    let found = state
        .db
        .run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT subject, roles, expires_at FROM sessions
                     WHERE token_hash = ?1 AND revoked_at IS NULL",
                    [hash],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, i64>(2)?,
                        ))
                    },
                )
                .optional()?)
        })
        .await?;
    if state.switches.invalid_answers.is_on() {
        // What a misconfigured proxy or a crashed framework might send: a
        // 200 no introspection client can read.
        return Ok((
            [(CONTENT_TYPE, "text/html; charset=utf-8")],
            "<html><body>Welcome to nginx!</body></html>\n",
        )
            .into_response());
    }
    let answer = match found {
        Some((sub, roles, exp)) if exp > now => Introspection {
            active: true,
            sub: Some(sub),
            roles: Some(roles.split_ascii_whitespace().map(Into::into).collect()),
            exp: Some(exp),
        },
        _ => Introspection::inactive(),
    };
    Ok(Json(answer).into_response())
}

/// The first value of `name` in a form-encoded body, decoded.
fn form_value(body: &[u8], name: &str) -> Option<String> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        (decode(key)? == name).then(|| decode(value)).flatten()
    })
}

/// application/x-www-form-urlencoded decoding: `+` is a space, `%XX` a
/// byte; the result must be UTF-8.
fn decode(text: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[derive(Serialize)]
struct Switch {
    on: bool,
}

/// `{"on": bool}`, the body every switch takes.
fn switch_body(body: &Value) -> Result<bool, Error> {
    let mut m = Members::of(body);
    let on = m.boolean("on");
    m.finish()?;
    Ok(on.unwrap_or_default())
}

async fn set_fail_db(
    State(state): State<Arc<AuthState>>,
    Json(body): Json<Value>,
) -> Result<Json<Switch>, Error> {
    let on = switch_body(&body)?;
    state.switches.fail_db.set(on);
    tracing::warn!(on, "auth service: fail-db switch set");
    Ok(Json(Switch { on }))
}

async fn set_hang_db(
    State(state): State<Arc<AuthState>>,
    Json(body): Json<Value>,
) -> Result<Json<Switch>, Error> {
    let on = switch_body(&body)?;
    state.switches.hang_db.set(on);
    tracing::warn!(on, "auth service: hang-db switch set");
    Ok(Json(Switch { on }))
}

async fn set_invalid_answers(
    State(state): State<Arc<AuthState>>,
    Json(body): Json<Value>,
) -> Result<Json<Switch>, Error> {
    let on = switch_body(&body)?;
    state.switches.invalid_answers.set(on);
    tracing::warn!(on, "auth service: invalid-answers switch set");
    Ok(Json(Switch { on }))
}

/// How long a demo or test session lives unless told otherwise.
pub const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_decoded() {
        assert_eq!(
            form_value(b"token=a%2Bb+c", "token").as_deref(),
            Some("a+b c")
        );
        assert_eq!(form_value(b"x=1&token=t", "token").as_deref(), Some("t"));
        assert_eq!(form_value(b"x=1", "token"), None);
        assert_eq!(form_value(b"token=%zz", "token"), None);
        assert_eq!(form_value(b"token=%f", "token"), None);
    }
}
