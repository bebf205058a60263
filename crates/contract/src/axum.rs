//! The axum integration (cargo feature `axum`): contract errors and
//! successes as axum responses, and a JSON extractor whose every rejection
//! is a [`ServiceError`] rendered by [`ServiceError::render`], never axum's
//! plain-text default.
//!
//! [`read_away`] is the lingering close (RFC 9112 section 9.6) a service
//! owes a client whose request body it answered without reading.
//!
//! A router built on it answers unknown paths and wrong methods through
//! the contract too:
//!
//! ```ignore
//! Router::new()
//!     .route("/users", post(create_user))
//!     .fallback(candor_contract::axum::no_route)
//!     // after every route: it applies to the routes registered so far
//!     .method_not_allowed_fallback(candor_contract::axum::method_not_allowed)
//! ```

use ::axum::body::Body;
use ::axum::extract::rejection::{BytesRejection, FailedToBufferBody, JsonRejection};
use ::axum::extract::{FromRequest, Request};
use ::axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue, LOCATION};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::service::{
    Accepted, Created, ErrorResponse, FieldError, NoContent, ServiceError, pointer_token,
};

/// The media type the JSON extractor takes, named in `Accept-Post`.
const APPLICATION_JSON: &str = "application/json";

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        self.render().into_response()
    }
}

/// A JSON request body (extractor) or response body (200 OK).
///
/// As an extractor it wraps axum's `Json` and turns each rejection into a
/// contract error: no or another Content-Type is `UnsupportedMedia` (415
/// with Accept-Post on POST), unparseable JSON `Malformed` (400 with line
/// and column), JSON of the wrong shape `Invalid` (400 with a JSON Pointer
/// to the member), an oversize body `TooLarge` (413).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ServiceError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let method = req.method().clone();
        match ::axum::Json::<T>::from_request(req, state).await {
            Ok(::axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(match ServiceError::from(rejection) {
                ServiceError::UnsupportedMedia { supported, .. } => {
                    ServiceError::UnsupportedMedia {
                        supported,
                        method: Some(method),
                    }
                }
                other => other,
            }),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        json_response(StatusCode::OK, None, &self.0)
    }
}

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        json_response(StatusCode::CREATED, Some(&self.location), &self.body)
    }
}

impl<T: Serialize> IntoResponse for Accepted<T> {
    fn into_response(self) -> Response {
        json_response(StatusCode::ACCEPTED, Some(&self.location), &self.body)
    }
}

impl IntoResponse for NoContent {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        response
    }
}

/// A JSON success response. A body that does not serialize or a location
/// that is not a valid field value is the service's bug: `Internal`.
fn json_response<T: Serialize>(status: StatusCode, location: Option<&str>, body: &T) -> Response {
    let Ok(bytes) = serde_json::to_vec(body) else {
        return ServiceError::Internal.into_response();
    };
    let location = match location.map(HeaderValue::try_from).transpose() {
        Ok(location) => location,
        Err(_) => return ServiceError::Internal.into_response(),
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(APPLICATION_JSON));
    if let Some(location) = location {
        headers.insert(LOCATION, location);
    }
    response
}

/// Router fallback for paths no route serves: `route.unknown`.
pub async fn no_route() -> ServiceError {
    ServiceError::NoRoute
}

/// Method-not-allowed fallback: `route.method`. axum adds the `Allow`
/// header listing the route's methods to this response.
pub async fn method_not_allowed() -> ServiceError {
    ServiceError::MethodNotAllowed { allow: Vec::new() }
}

impl From<JsonRejection> for ServiceError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonSyntaxError(e) => malformed(&e),
            JsonRejection::JsonDataError(e) => invalid(&e),
            JsonRejection::MissingJsonContentType(_) => ServiceError::UnsupportedMedia {
                supported: vec![APPLICATION_JSON.to_owned()],
                method: None,
            },
            JsonRejection::BytesRejection(BytesRejection::FailedToBufferBody(
                FailedToBufferBody::LengthLimitError(_),
            )) => ServiceError::TooLarge { limit: None },
            JsonRejection::BytesRejection(_) => ServiceError::Malformed {
                detail: "the body could not be read".to_owned(),
                line: None,
                column: None,
            },
            // axum may add rejections; until mapped, they are our bug to fix.
            _ => ServiceError::Internal,
        }
    }
}

/// The JSON error behind a rejection, and the path to where it happened
/// when serde_path_to_error tracked one.
fn json_cause<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<(&'a serde_json::Error, Option<&'a serde_path_to_error::Path>)> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(tracked) = e.downcast_ref::<serde_path_to_error::Error<serde_json::Error>>() {
            return Some((tracked.inner(), Some(tracked.path())));
        }
        if let Some(plain) = e.downcast_ref::<serde_json::Error>() {
            return Some((plain, None));
        }
        current = e.source();
    }
    None
}

/// serde_json's message without the " at line L column C" it appends.
fn message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(bare) => bare.to_owned(),
        None => text,
    }
}

fn malformed(rejection: &(dyn std::error::Error + 'static)) -> ServiceError {
    match json_cause(rejection) {
        Some((e, _)) => ServiceError::Malformed {
            detail: message(e),
            line: (e.line() > 0).then_some(e.line()),
            column: (e.line() > 0).then_some(e.column()),
        },
        None => ServiceError::Malformed {
            detail: "the body does not parse".to_owned(),
            line: None,
            column: None,
        },
    }
}

fn invalid(rejection: &(dyn std::error::Error + 'static)) -> ServiceError {
    let Some((e, path)) = json_cause(rejection) else {
        return ServiceError::invalid("", "the body does not have the expected shape");
    };
    let mut pointer = String::new();
    for segment in path.into_iter().flat_map(|p| p.iter()) {
        match segment {
            serde_path_to_error::Segment::Seq { index } => {
                pointer.push('/');
                pointer.push_str(&index.to_string());
            }
            serde_path_to_error::Segment::Map { key } => {
                pointer.push('/');
                pointer.push_str(&pointer_token(key));
            }
            serde_path_to_error::Segment::Enum { variant } => {
                pointer.push('/');
                pointer.push_str(&pointer_token(variant));
            }
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    let message = message(e);
    // serde reports a missing member at its parent; point at the member.
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        pointer.push('/');
        pointer.push_str(&pointer_token(name));
    }
    ServiceError::Invalid {
        errors: vec![FieldError::new(pointer, message)],
    }
}

/// Reads away what is left of a request body that was answered without
/// being read (401, 413, 415, 429, ...), at most [`LINGER_BYTES`](crate::LINGER_BYTES) for at
/// most [`LINGER_TIME`](crate::LINGER_TIME), then drops it.
///
/// A client sends its whole body before it reads the answer; if the
/// connection were closed with that body unread, the kernel would reset it
/// and the client could lose the answer (RFC 9112 section 9.6, the
/// lingering close). Reading the body lets the answer arrive, and a body
/// that ends within the bounds even leaves the connection reusable. Run it
/// on a task of its own.
pub async fn read_away<B>(body: B)
where
    B: http_body::Body + Unpin + Send,
    B::Data: AsRef<[u8]>,
{
    crate::read_away_pieces(&mut Frames(body)).await;
}

/// A body's frames, as the pieces of the lingering close.
struct Frames<B>(B);

impl<B> crate::Pieces for Frames<B>
where
    B: http_body::Body + Unpin + Send,
    B::Data: AsRef<[u8]>,
{
    async fn next_piece(&mut self) -> Result<Option<u64>, ()> {
        let body = &mut self.0;
        match std::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_frame(cx)).await {
            None => Ok(None),
            Some(Err(_)) => Err(()),
            // Trailers count as nothing read.
            Some(Ok(frame)) => Ok(Some(
                frame.data_ref().map_or(0, |d| d.as_ref().len() as u64),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use ::axum::extract::FromRequest;
    use http::Method;
    use serde::Deserialize;
    use serde_json::{Value, json};

    use super::*;
    use crate::problem::{PROBLEM_JSON, Problem};

    /// Drives a future that has everything it needs in memory.
    fn ready<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(value) => value,
            Poll::Pending => panic!("an in-memory future was not ready"),
        }
    }

    fn body(response: Response) -> Vec<u8> {
        ready(::axum::body::to_bytes(response.into_body(), usize::MAX))
            .unwrap()
            .to_vec()
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct NewUser {
        email: String,
        age: u8,
        #[serde(default)]
        tags: Vec<String>,
    }

    fn extract(content_type: Option<&str>, body: impl Into<Body>) -> Result<NewUser, ServiceError> {
        let mut builder = Request::builder().method(Method::POST).uri("/users");
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        let request = builder.body(body.into()).unwrap();
        ready(Json::<NewUser>::from_request(request, &())).map(|Json(v)| v)
    }

    #[test]
    fn valid_json_is_extracted() {
        let got = extract(Some("application/json"), r#"{"email":"a@b.c","age":3}"#).unwrap();
        assert_eq!(
            got,
            NewUser {
                email: "a@b.c".into(),
                age: 3,
                tags: vec![]
            }
        );
    }

    #[test]
    fn truncated_json_is_malformed_with_its_position() {
        let e = extract(Some("application/json"), "{\n  \"email\": \"a@b").unwrap_err();
        let ServiceError::Malformed { line, column, .. } = &e else {
            panic!("{e:?}");
        };
        assert_eq!((*line, *column), (Some(2), Some(15)));
        let r = e.render();
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.problem.extensions["line"], 2);
    }

    #[test]
    fn trailing_garbage_is_malformed() {
        let e = extract(Some("application/json"), r#"{"email":"a","age":1} x"#).unwrap_err();
        assert!(
            matches!(e, ServiceError::Malformed { line: Some(1), .. }),
            "{e:?}"
        );
    }

    #[test]
    fn missing_member_points_at_the_member() {
        let e = extract(Some("application/json"), r#"{"age":1}"#).unwrap_err();
        assert_eq!(e, ServiceError::invalid("/email", "missing field `email`"),);
    }

    #[test]
    fn wrong_types_point_into_objects_and_arrays() {
        let e = extract(Some("application/json"), r#"{"email":"a","age":"x"}"#).unwrap_err();
        let ServiceError::Invalid { errors } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(errors[0].pointer, "/age");
        assert!(errors[0].message.starts_with("invalid type"), "{errors:?}");

        let e = extract(
            Some("application/json"),
            r#"{"email":"a","age":1,"tags":["x",2]}"#,
        )
        .unwrap_err();
        let ServiceError::Invalid { errors } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(errors[0].pointer, "/tags/1");
    }

    #[test]
    fn a_non_object_is_invalid_at_the_root() {
        let e = extract(Some("application/json"), r#""a string""#).unwrap_err();
        let ServiceError::Invalid { errors } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(errors[0].pointer, "");
    }

    #[test]
    fn missing_or_other_content_type_is_415_with_accept_post() {
        for ct in [None, Some("text/plain")] {
            let e = extract(ct, r#"{"email":"a","age":1}"#).unwrap_err();
            let r = e.into_response();
            assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert_eq!(r.headers()["accept-post"], "application/json");
            assert_eq!(r.headers()[CONTENT_TYPE], PROBLEM_JSON);
        }
    }

    #[test]
    fn oversize_body_is_413() {
        let big = format!(r#"{{"email":"{}","age":1}}"#, "a".repeat(3 << 20));
        let e = extract(Some("application/json"), big).unwrap_err();
        assert_eq!(e.render().status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn errors_render_as_problem_responses() {
        let r = ServiceError::gone("user 7 was deleted").into_response();
        assert_eq!(r.status(), StatusCode::GONE);
        assert_eq!(r.headers()[CONTENT_TYPE], PROBLEM_JSON);
        let problem = Problem::from_slice(&body(r)).unwrap();
        assert_eq!(problem.status, Some(410));
        assert_eq!(problem.detail.as_deref(), Some("user 7 was deleted"));
    }

    #[test]
    fn successes_carry_status_location_and_json() {
        let r = Created {
            location: "/users/7".to_owned(),
            body: json!({"id": 7}),
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.headers()[LOCATION], "/users/7");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(
            serde_json::from_slice::<Value>(&body(r)).unwrap(),
            json!({"id": 7})
        );

        let r = Accepted {
            location: "/exports/1".to_owned(),
            body: json!({"status": "pending"}),
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(r.headers()[LOCATION], "/exports/1");

        let r = NoContent.into_response();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert!(body(r).is_empty());

        let r = Json(json!({"ok": 1})).into_response();
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[test]
    fn an_invalid_location_is_an_internal_error_not_a_panic() {
        let r = Created {
            location: "/users/\n7".to_owned(),
            body: json!({}),
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(r.headers()[CONTENT_TYPE], PROBLEM_JSON);
    }
}
