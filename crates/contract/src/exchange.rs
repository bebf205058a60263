//! One HTTP request and the response it got, as recorded or observed.
//!
//! The model is deliberately tolerant: the method is any token, the status
//! any integer (so `status.unregistered` can see 999), and bodies are raw
//! bytes. Readers of HAR, JSON lines or live traffic all build this.

use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};

/// A request as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// The method, upper-cased as sent (`GET`, `POST`, ...).
    pub method: String,
    /// The full URL or the origin-form path.
    pub url: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A response as received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    /// The status code; any integer, so out-of-range values can be flagged.
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A request and its response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exchange {
    pub request: Request,
    pub response: Response,
}

impl Request {
    /// The path of the URL, without query or fragment (`/users/7`).
    pub fn path(&self) -> &str {
        url_path(&self.url)
    }

    /// The media type of the body, lower-cased, without parameters.
    pub fn media_type(&self) -> Option<String> {
        media_type(&self.headers)
    }
}

impl Response {
    /// The media type of the body, lower-cased, without parameters.
    pub fn media_type(&self) -> Option<String> {
        media_type(&self.headers)
    }

    /// The declared Content-Length, when present and numeric.
    pub fn content_length(&self) -> Option<u64> {
        content_length(&self.headers)
    }
}

/// The declared Content-Length of a message, when present and numeric.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    content_length_value(headers.get(CONTENT_LENGTH)?)
}

/// A Content-Length field value as a number, when it is one.
pub fn content_length_value(value: &HeaderValue) -> Option<u64> {
    value.to_str().ok()?.trim().parse().ok()
}

/// The essence of a Content-Type value: `application/problem+json`.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim();
    (!essence.is_empty()).then(|| essence.to_ascii_lowercase())
}

/// True for `application/json`, `application/problem+json` and any other
/// `+json` structured-syntax suffix (RFC 6839).
pub fn is_json_media_type(essence: &str) -> bool {
    essence == "application/json" || essence.ends_with("+json") || essence == "text/json"
}

/// The path component of an absolute URL or origin-form target.
pub fn url_path(url: &str) -> &str {
    let rest = match url.find("://") {
        Some(i) => {
            let after = &url[i + 3..];
            match after.find(['/', '?', '#']) {
                Some(j) => &after[j..],
                None => return "/",
            }
        }
        None => url,
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let path = &rest[..end];
    if path.is_empty() { "/" } else { path }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_path_handles_absolute_and_origin_forms() {
        assert_eq!(url_path("https://api.example/users/7?x=1"), "/users/7");
        assert_eq!(url_path("https://api.example"), "/");
        assert_eq!(url_path("https://api.example?q"), "/");
        assert_eq!(url_path("/a/b#frag"), "/a/b");
        assert_eq!(url_path(""), "/");
    }

    #[test]
    fn media_type_drops_parameters_and_case() {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            "Application/JSON; charset=utf-8".parse().unwrap(),
        );
        assert_eq!(media_type(&h).as_deref(), Some("application/json"));
        assert!(is_json_media_type("application/problem+json"));
        assert!(!is_json_media_type("text/html"));
    }
}
