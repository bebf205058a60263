//! The HTTP surface: the router and one handler per operation. Handlers
//! return typed successes (`Created`, `Accepted`, `NoContent`, `Json`) or
//! an [`Error`]; none names a status.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::routing::{get, post};
use candor_contract::axum::{Json, method_not_allowed, no_route};
use candor_contract::{Accepted, Created, NoContent, ServiceError};
use http::HeaderMap;
use http::header::{AUTHORIZATION, CACHE_CONTROL};
use http::request::Parts;
use serde::Serialize;
use serde_json::Value;

use crate::Error;
use crate::app::AppState;
use crate::body::{Members, is_email};
use crate::crypto;
use crate::store::{self, Export, Report, Session, User};

type AppRef = State<Arc<AppState>>;

/// Every operation of the service. Unknown paths and wrong methods are
/// answered through the contract too (404 and 405 problems, with Allow).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/users", post(create_user))
        .route("/users/{id}", get(get_user).delete(delete_user))
        .route("/sessions", post(create_session))
        .route("/sessions/{id}", get(get_session).delete(delete_session))
        .route("/admin/reports", get(reports))
        .route("/exports", post(create_export))
        .route("/exports/{id}", get(get_export))
        .route("/-/fail-db", post(set_fail_db))
        .route("/openapi.yaml", get(openapi))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_request(
            crate::linger::lingering_bodies,
        ))
        .with_state(state)
}

/// A resource id from the path: a positive decimal integer without leading
/// zeros. Anything else names no resource (404), never a plain-text
/// rejection.
pub struct PathId(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let raw = Path::<String>::from_request_parts(parts, state)
            .await
            .ok()
            .map(|Path(raw)| raw);
        Ok(PathId(raw.as_deref().and_then(parse_id)))
    }
}

fn parse_id(text: &str) -> Option<i64> {
    let canonical =
        !text.is_empty() && !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit());
    if canonical { text.parse().ok() } else { None }
}

/// Runs CPU-heavy work (password hashing) off the executor.
async fn blocking<T, F>(work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| Error::Crypto("the hashing task did not finish"))?
}

/// The service's own OpenAPI document, served so that a tool can be
/// pointed at the running service (`candor audit --spec URL`).
pub const OPENAPI: &str = include_str!("../openapi.yaml");

/// `GET /openapi.yaml`: the description, not an operation of the API, so
/// the document does not declare it (as it does not declare `/-/fail-db`).
async fn openapi() -> ([(http::HeaderName, &'static str); 1], &'static str) {
    ([(http::header::CONTENT_TYPE, "application/yaml")], OPENAPI)
}

const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 1024;
const MAX_NAME: usize = 200;

async fn create_user(State(app): AppRef, Json(body): Json<Value>) -> Result<Created<User>, Error> {
    let mut m = Members::of(&body);
    let email = m.string("email");
    let password = m.string("password");
    let name = m.optional_string("name");
    if let Some(email) = email {
        m.check("email", is_email(email), "must be an email address");
    }
    if let Some(password) = password {
        let len = password.chars().count();
        m.check(
            "password",
            (MIN_PASSWORD..=MAX_PASSWORD).contains(&len),
            "must be 8 to 1024 characters",
        );
    }
    if let Some(name) = name {
        m.check(
            "name",
            name.chars().count() <= MAX_NAME && !name.chars().any(char::is_control),
            "must be at most 200 characters, without control characters",
        );
    }
    m.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(Error::Request(ServiceError::invalid(
            "",
            "email and password are required",
        )));
    };
    let (email, name) = (email.to_owned(), name.map(str::to_owned));
    let password = password.to_owned();
    let iterations = app.password_iterations;
    let hash = blocking(move || crypto::hash_password(&password, iterations)).await?;
    let user = app
        .db
        .run(move |conn| store::insert_user(conn, &email, name.as_deref(), &hash))
        .await?;
    Ok(Created {
        location: format!("/users/{}", user.id),
        body: user,
    })
}

async fn get_user(State(app): AppRef, PathId(id): PathId) -> Result<Json<User>, Error> {
    Ok(Json(app.db.run(move |conn| store::user(conn, id)).await?))
}

async fn delete_user(State(app): AppRef, PathId(id): PathId) -> Result<NoContent, Error> {
    app.db.run(move |conn| store::delete_user(conn, id)).await?;
    Ok(NoContent)
}

/// The login answer: the session and, this once, its token.
#[derive(Serialize)]
struct NewSession {
    #[serde(flatten)]
    session: Session,
    token: String,
    token_type: &'static str,
}

async fn create_session(
    State(app): AppRef,
    Json(body): Json<Value>,
) -> Result<([(http::HeaderName, &'static str); 1], Created<NewSession>), Error> {
    let mut m = Members::of(&body);
    let email = m.string("email");
    let password = m.string("password");
    m.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(Error::Request(ServiceError::invalid(
            "",
            "email and password are required",
        )));
    };
    let (email, password) = (email.to_owned(), password.to_owned());
    let found = app
        .db
        .run(move |conn| store::login_lookup(conn, &email))
        .await?;
    // An unknown email costs a hash too, so timing does not tell whether
    // an account exists.
    let (user_id, stored) = match found {
        Some((id, hash)) => (Some(id), hash),
        None => (None, app.dummy_hash.clone()),
    };
    let matches = blocking(move || Ok(crypto::verify_password(&stored, &password))).await?;
    let (Some(user_id), true) = (user_id, matches) else {
        return Err(Error::WrongCredentials);
    };
    let token = crypto::new_token()?;
    let digest = crypto::token_digest(&token);
    let session = app
        .db
        .run(move |conn| store::insert_session(conn, user_id, &digest))
        .await?;
    Ok((
        // The body holds a credential: no cache may keep it.
        [(CACHE_CONTROL, "no-store")],
        Created {
            location: format!("/sessions/{}", session.id),
            body: NewSession {
                session,
                token,
                token_type: "Bearer",
            },
        },
    ))
}

/// The Bearer token of the request. No Authorization field, or another
/// scheme, is "no credentials"; a malformed field is `invalid_request`.
fn bearer_token(headers: &HeaderMap) -> Result<String, Error> {
    let mut fields = headers.get_all(AUTHORIZATION).iter();
    let Some(field) = fields.next() else {
        return Err(Error::NoToken);
    };
    if fields.next().is_some() {
        return Err(Error::MalformedAuthorization(
            "more than one Authorization field",
        ));
    }
    let Ok(value) = field.to_str() else {
        return Err(Error::MalformedAuthorization(
            "the Authorization field is not visible ASCII",
        ));
    };
    let value = value.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::NoToken);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Error::MalformedAuthorization("the Bearer token is empty"));
    }
    if token.contains([' ', '\t']) {
        return Err(Error::MalformedAuthorization(
            "the Bearer token contains whitespace",
        ));
    }
    Ok(token.to_owned())
}

async fn get_session(
    State(app): AppRef,
    PathId(id): PathId,
    headers: HeaderMap,
) -> Result<Json<Session>, Error> {
    let digest = crypto::token_digest(&bearer_token(&headers)?);
    let session = app
        .db
        .run(move |conn| store::session(conn, &digest, id))
        .await?;
    Ok(Json(session))
}

async fn delete_session(
    State(app): AppRef,
    PathId(id): PathId,
    headers: HeaderMap,
) -> Result<NoContent, Error> {
    let digest = crypto::token_digest(&bearer_token(&headers)?);
    app.db
        .run(move |conn| store::end_session(conn, &digest, id))
        .await?;
    Ok(NoContent)
}

/// Counts for administrators. The role check is the gateway's job: this
/// service trusts whoever reaches it (see the README).
async fn reports(State(app): AppRef) -> Result<Json<Report>, Error> {
    Ok(Json(app.db.run(store::report).await?))
}

async fn create_export(State(app): AppRef) -> Result<Accepted<Export>, Error> {
    let export = app.db.run(store::insert_export).await?;
    app.start_export(export.id);
    Ok(Accepted {
        location: format!("/exports/{}", export.id),
        body: export,
    })
}

async fn get_export(State(app): AppRef, PathId(id): PathId) -> Result<Json<Export>, Error> {
    Ok(Json(app.db.run(move |conn| store::export(conn, id)).await?))
}

#[derive(Serialize)]
struct FailDb {
    fail_db: bool,
}

/// Turns the simulated database failure on or off (`{"on": true}`). An
/// operator control, not part of the API: keep `/-/` behind the gateway's
/// admin role.
async fn set_fail_db(State(app): AppRef, Json(body): Json<Value>) -> Result<Json<FailDb>, Error> {
    let mut m = Members::of(&body);
    let on = m.boolean("on");
    m.finish()?;
    let on = on.unwrap_or_default();
    app.fail_db.set(on);
    tracing::warn!(on, "fail-db switch set");
    Ok(Json(FailDb { fail_db: on }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn ids_are_canonical_positive_integers() {
        assert_eq!(parse_id("7"), Some(7));
        assert_eq!(parse_id("9223372036854775807"), Some(i64::MAX));
        for bad in [
            "",
            "0",
            "007",
            "-1",
            "+1",
            "1.0",
            "abc",
            "9223372036854775808",
        ] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }

    fn auth(values: &[&str]) -> Result<String, Error> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        bearer_token(&headers)
    }

    #[test]
    fn bearer_tokens_are_read_strictly() {
        assert_eq!(auth(&["Bearer abc"]).unwrap(), "abc");
        assert_eq!(auth(&["bearer  abc "]).unwrap(), "abc");
        assert!(matches!(auth(&[]), Err(Error::NoToken)));
        assert!(matches!(auth(&["Basic YTpi"]), Err(Error::NoToken)));
        assert!(matches!(
            auth(&["Bearer"]),
            Err(Error::MalformedAuthorization(_))
        ));
        assert!(matches!(
            auth(&["Bearer a b"]),
            Err(Error::MalformedAuthorization(_))
        ));
        assert!(matches!(
            auth(&["Bearer a", "Bearer b"]),
            Err(Error::MalformedAuthorization(_))
        ));
    }
}
