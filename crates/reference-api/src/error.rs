//! Every way a request can fail, and [`rescue`]: the one function that says
//! which contract outcome each failure is. The contract crate then gives
//! that outcome its status, headers and problem body; no handler names a
//! status.

use axum::response::{IntoResponse, Response};
use candor_contract::{Challenge, FieldError, ServiceError};

use crate::config::REALM;
use crate::db::DbError;

/// Why a request failed, named where it was found.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request already classified by the contract (body shape, media
    /// type, schema).
    #[error(transparent)]
    Request(#[from] ServiceError),
    #[error("database: {0}")]
    Db(#[from] DbError),
    /// Hashing or random generation failed.
    #[error("crypto: {0}")]
    Crypto(&'static str),
    #[error("no such user")]
    UserNotFound,
    #[error("user {0} was deleted")]
    UserDeleted(i64),
    #[error("a user with this email already exists")]
    EmailTaken,
    /// Unknown email or wrong password: the same answer for both, so the
    /// response does not reveal which emails have accounts.
    #[error("wrong email or password")]
    WrongCredentials,
    /// No Authorization field, or one with a scheme other than Bearer.
    #[error("a session token is required")]
    NoToken,
    #[error("the Authorization field is malformed: {0}")]
    MalformedAuthorization(&'static str),
    #[error("the session token is unknown or its session has ended")]
    BadToken,
    #[error("no such session")]
    SessionNotFound,
    #[error("session {0} has ended")]
    SessionEnded(i64),
    #[error("this session belongs to another user")]
    NotYourSession,
    #[error("no such export")]
    ExportNotFound,
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Db(DbError::Sqlite(e))
    }
}

/// A Bearer challenge for the session-token routes.
fn bearer() -> Challenge {
    Challenge::bearer(REALM)
}

/// The contract outcome of each failure. Causes that are the server's own
/// (database, crypto) are logged here and never reach the client.
pub fn rescue(error: Error) -> ServiceError {
    match error {
        Error::Request(e) => e,
        Error::Db(ref cause) => {
            tracing::error!(error = %cause, "request failed: database");
            ServiceError::Internal
        }
        Error::Crypto(cause) => {
            tracing::error!(error = cause, "request failed: crypto");
            ServiceError::Internal
        }
        Error::UserNotFound | Error::SessionNotFound | Error::ExportNotFound => {
            ServiceError::not_found(error.to_string())
        }
        Error::UserDeleted(_) | Error::SessionEnded(_) => ServiceError::gone(error.to_string()),
        Error::EmailTaken => ServiceError::Unprocessable {
            detail: error.to_string(),
            errors: vec![FieldError::member("email", "is already registered")],
        },
        // Login takes credentials in the body, not in a header scheme; the
        // challenge names a scheme of our own so clients know what failed.
        Error::WrongCredentials => ServiceError::Unauthenticated {
            challenge: Challenge::new("Password")
                .param("realm", REALM)
                .param("error", "invalid_credentials"),
            detail: Some(error.to_string()),
        },
        Error::NoToken => ServiceError::Unauthenticated {
            challenge: bearer(),
            detail: Some(error.to_string()),
        },
        Error::MalformedAuthorization(why) => ServiceError::MalformedCredentials {
            challenge: bearer()
                .param("error", "invalid_request")
                .param("error_description", why),
            detail: why.to_owned(),
        },
        Error::BadToken => ServiceError::Unauthenticated {
            challenge: bearer()
                .param("error", "invalid_token")
                .param("error_description", error.to_string()),
            detail: Some(error.to_string()),
        },
        Error::NotYourSession => ServiceError::Forbidden {
            challenge: None,
            detail: Some(error.to_string()),
        },
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        rescue(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn each_failure_has_its_status() {
        let cases = [
            (
                Error::Db(DbError::Simulated),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (Error::Crypto("rng"), StatusCode::INTERNAL_SERVER_ERROR),
            (Error::UserNotFound, StatusCode::NOT_FOUND),
            (Error::UserDeleted(7), StatusCode::GONE),
            (Error::EmailTaken, StatusCode::UNPROCESSABLE_ENTITY),
            (Error::WrongCredentials, StatusCode::UNAUTHORIZED),
            (Error::NoToken, StatusCode::UNAUTHORIZED),
            (
                Error::MalformedAuthorization("empty"),
                StatusCode::BAD_REQUEST,
            ),
            (Error::BadToken, StatusCode::UNAUTHORIZED),
            (Error::SessionNotFound, StatusCode::NOT_FOUND),
            (Error::SessionEnded(3), StatusCode::GONE),
            (Error::NotYourSession, StatusCode::FORBIDDEN),
            (Error::ExportNotFound, StatusCode::NOT_FOUND),
        ];
        for (error, status) in cases {
            let label = format!("{error:?}");
            assert_eq!(rescue(error).render().status, status, "{label}");
        }
    }

    #[test]
    fn database_causes_never_reach_the_client() {
        let cause = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some("database disk image is malformed: SELECT * FROM users".into()),
        );
        let body = String::from_utf8(rescue(cause.into()).render().body()).unwrap();
        assert!(!body.contains("SELECT"), "{body}");
        assert!(!body.contains("sqlite"), "{body}");
        assert!(!body.contains("malformed"), "{body}");
    }

    #[test]
    fn every_401_challenges() {
        for error in [Error::WrongCredentials, Error::NoToken, Error::BadToken] {
            let r = rescue(error).render();
            let value = r.headers[http::header::WWW_AUTHENTICATE].to_str().unwrap();
            assert!(candor_contract::parse_challenges(value).is_ok(), "{value}");
        }
    }
}
