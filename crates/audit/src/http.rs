//! The auditor's HTTP client.
//!
//! It sends exactly the request it is given, never follows a redirect (a
//! 3xx is something to audit, not to chase), records both sides with the
//! response body bounded, and renders every request as a `curl` line so a
//! finding can be reproduced by hand. A global request budget and a
//! concurrency limit keep a probe run safe to point at a production API.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use candor_contract::{Exchange, Request, Response};
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Semaphore;

/// A request as the auditor sent it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordedRequest {
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Headers in the order they were set.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// For a body too large to show: a POSIX shell command that writes it
    /// to standard output, so that the `curl` line can still send it.
    pub body_command: Option<String>,
}

impl RecordedRequest {
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        RecordedRequest {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            body_command: None,
        }
    }

    /// Says how to make a body left out of the record (builder style).
    pub fn body_command(mut self, command: impl Into<String>) -> Self {
        self.body_command = Some(command.into());
        self
    }

    /// Adds a header (builder style).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body (builder style).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// A `curl` command line that sends the same request. Arguments are
    /// single-quoted for a POSIX shell; a body that is not UTF-8 is
    /// replaced by a note, as a shell line cannot carry it.
    pub fn curl(&self) -> String {
        let generated = self.body.is_none() && self.body_command.is_some();
        let mut line = match (&self.body, &self.body_command) {
            (None, Some(command)) => format!("{command} | curl -i"),
            _ => String::from("curl -i"),
        };
        if self.method != "GET" || self.body.is_some() || generated {
            let _ = write!(line, " -X {}", shell_quote(&self.method));
        }
        for (name, value) in &self.headers {
            let _ = write!(line, " -H {}", shell_quote(&format!("{name}: {value}")));
        }
        let mut note = None;
        if let Some(body) = &self.body {
            match std::str::from_utf8(body) {
                Ok(text) => {
                    let _ = write!(line, " --data-binary {}", shell_quote(text));
                }
                Err(_) => {
                    line.push_str(" --data-binary @body.bin");
                    note = Some(body.len());
                }
            }
        } else if generated {
            line.push_str(" --data-binary @-");
        }
        let _ = write!(line, " {}", shell_quote(&self.url));
        if let Some(len) = note {
            let _ = write!(line, "  # body.bin: the {len}-byte body, not UTF-8");
        }
        line
    }
}

/// Quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A response as the auditor received it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The first `max_body` bytes of the body.
    pub body: Vec<u8>,
    /// True when the body went on past `max_body` (the rest was not read).
    pub body_cut: bool,
    /// Set when reading the body failed part-way (reset, truncation): the
    /// response must not be taken for a complete one.
    pub body_error: Option<String>,
    pub elapsed: Duration,
}

impl RecordedResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text, lossily.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The request and this response as an [`Exchange`], for the
    /// contract's passive checks.
    pub fn exchange(&self, request: &RecordedRequest) -> Exchange {
        Exchange {
            request: Request {
                method: request.method.clone(),
                url: request.url.clone(),
                headers: header_map(&request.headers),
                body: request.body.clone().unwrap_or_default(),
            },
            response: Response {
                status: self.status,
                headers: header_map(&self.headers),
                body: self.body.clone(),
            },
        }
    }
}

fn header_map(headers: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The run's request budget is spent; nothing was sent.
    #[error("request budget of {0} spent")]
    Budget(u64),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Other(String),
}

/// Limits of a run.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Requests the whole run may send.
    pub budget: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Per-request timeout (connect through the end of the body).
    pub timeout: Duration,
    /// Response body bytes kept and inspected.
    pub max_body: usize,
    /// Accept certificates no root vouches for (staging with a private CA).
    pub insecure: bool,
}

impl Default for ClientOptions {
    /// Safe for a production API: 500 requests, 4 at a time, 10 s each.
    fn default() -> Self {
        ClientOptions {
            budget: 500,
            concurrency: 4,
            timeout: Duration::from_secs(10),
            max_body: 64 * 1024,
            insecure: false,
        }
    }
}

/// A recording HTTP client with a budget. Cheap to clone; clones share the
/// budget and the concurrency limit.
#[derive(Clone)]
pub struct Client {
    inner: reqwest::Client,
    options: Arc<ClientOptions>,
    sent: Arc<AtomicU64>,
    permits: Arc<Semaphore>,
}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Self, SendError> {
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .danger_accept_invalid_certs(options.insecure)
            .no_proxy()
            .user_agent(concat!("candor-audit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SendError::Other(format!("cannot build HTTP client: {e}")))?;
        Ok(Client {
            inner,
            permits: Arc::new(Semaphore::new(options.concurrency.max(1))),
            options: Arc::new(options),
            sent: Arc::new(AtomicU64::new(0)),
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Requests sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Requests the budget still allows.
    pub fn remaining(&self) -> u64 {
        self.options.budget.saturating_sub(self.sent())
    }

    /// Sends `request` and records the response. The budget is charged
    /// before sending; a spent budget sends nothing.
    pub async fn send(&self, request: &RecordedRequest) -> Result<RecordedResponse, SendError> {
        let budget = self.options.budget;
        if self
            .sent
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < budget).then_some(n + 1)
            })
            .is_err()
        {
            return Err(SendError::Budget(budget));
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| SendError::Other(e.to_string()))?;
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| SendError::Invalid(format!("method {:?}: {e}", request.method)))?;
        let mut builder = self.inner.request(method, &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let started = Instant::now();
        let mut response = builder.send().await.map_err(|e| self.classify(e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        let mut body_cut = false;
        let mut body_error = None;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = self.options.max_body - body.len();
                    if chunk.len() > room {
                        body.extend_from_slice(&chunk[..room]);
                        body_cut = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    body_error = Some(error_chain(&e));
                    break;
                }
            }
        }
        Ok(RecordedResponse {
            status,
            headers,
            body,
            body_cut,
            body_error,
            elapsed: started.elapsed(),
        })
    }

    fn classify(&self, e: reqwest::Error) -> SendError {
        if e.is_timeout() {
            SendError::Timeout(self.options.timeout)
        } else if e.is_connect() {
            SendError::Connect(error_chain(&e))
        } else if e.is_builder() {
            SendError::Invalid(error_chain(&e))
        } else {
            SendError::Other(error_chain(&e))
        }
    }
}

/// The largest document [`fetch_document`] reads: over ten times the
/// largest public API description seen (13 MB).
pub const MAX_DOCUMENT: usize = 64 * 1024 * 1024;

/// True when `spec` names an http(s) URL rather than a file.
pub fn is_url(spec: &str) -> bool {
    let lower = spec.get(..8).unwrap_or(spec).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Fetches a document (an OpenAPI description an API serves) with one GET:
/// no redirect followed, at most `max` bytes, all within `timeout`. The
/// error is one line naming the URL and what went wrong.
pub async fn fetch_document(
    url: &str,
    timeout: Duration,
    max: usize,
    insecure: bool,
) -> Result<String, String> {
    if !is_url(url) {
        return Err(format!("{url}: not an http or https URL"));
    }
    let client = Client::new(ClientOptions {
        budget: 1,
        concurrency: 1,
        timeout,
        max_body: max,
        insecure,
    })
    .map_err(|e| format!("{url}: {e}"))?;
    let request = RecordedRequest::new("GET", url).header(
        "Accept",
        "application/vnd.oai.openapi, application/yaml, application/json, */*;q=0.5",
    );
    let response = client
        .send(&request)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    match response.status {
        200..=299 => {}
        300..=399 => {
            let to = response.header("location").unwrap_or("nowhere");
            return Err(format!(
                "{url} answered {} (redirects are not followed; give the URL it names: {to})",
                response.status
            ));
        }
        status => return Err(format!("{url} answered {status}, not the document")),
    }
    if let Some(error) = response.body_error {
        return Err(format!("{url}: reading the document failed: {error}"));
    }
    if response.body_cut {
        return Err(format!("{url}: the document is larger than {max} bytes"));
    }
    String::from_utf8(response.body).map_err(|_| format!("{url}: the document is not UTF-8"))
}

/// An error and its sources, joined with `: `.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_quotes_for_a_shell() {
        let req = RecordedRequest::new("POST", "http://127.0.0.1:8080/users?a=1&b=2")
            .header("Content-Type", "application/json")
            .header("Authorization", "Bearer it's")
            .body(r#"{"name":"x"}"#);
        assert_eq!(
            req.curl(),
            "curl -i -X POST -H 'Content-Type: application/json' \
             -H 'Authorization: Bearer it'\\''s' --data-binary '{\"name\":\"x\"}' \
             'http://127.0.0.1:8080/users?a=1&b=2'"
        );
        assert_eq!(
            RecordedRequest::new("GET", "http://h/x").curl(),
            "curl -i http://h/x"
        );
        // A body left out of the record is made again by a command.
        let big = RecordedRequest::new("PUT", "http://h/x")
            .header("Content-Type", "application/json")
            .body_command("head -c 9 /dev/zero");
        assert_eq!(
            big.curl(),
            "head -c 9 /dev/zero | curl -i -X PUT -H 'Content-Type: application/json' \
             --data-binary @- http://h/x"
        );
    }

    /// A server on 127.0.0.1 that answers every connection with `answer`.
    async fn canned(answer: &'static [u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = [0u8; 4096];
                let _ = stream.read(&mut head).await;
                let _ = stream.write_all(answer).await;
                let _ = stream.shutdown().await;
            }
        });
        format!("http://{addr}/openapi.yaml")
    }

    #[tokio::test]
    async fn documents_are_fetched_once_bounded_and_never_redirected() {
        let second = Duration::from_secs(30);
        let url = canned(b"HTTP/1.1 200 OK\r\ncontent-length: 14\r\n\r\nopenapi: 3.1.0").await;
        assert_eq!(
            fetch_document(&url, second, 1024, false).await,
            Ok("openapi: 3.1.0".to_owned())
        );
        // One byte over the bound.
        let err = fetch_document(&url, second, 13, false).await.unwrap_err();
        assert_eq!(err, format!("{url}: the document is larger than 13 bytes"));

        let url =
            canned(b"HTTP/1.1 301 Moved\r\nlocation: /v2.yaml\r\ncontent-length: 0\r\n\r\n").await;
        let err = fetch_document(&url, second, 1024, false).await.unwrap_err();
        assert!(
            err.contains("answered 301 (redirects are not followed"),
            "{err}"
        );
        assert!(err.ends_with(": /v2.yaml)"), "{err}");

        let url = canned(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").await;
        let err = fetch_document(&url, second, 1024, false).await.unwrap_err();
        assert_eq!(err, format!("{url} answered 404, not the document"));

        let url = canned(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n\xff\xfe").await;
        let err = fetch_document(&url, second, 1024, false).await.unwrap_err();
        assert_eq!(err, format!("{url}: the document is not UTF-8"));

        let err = fetch_document("ftp://h/x", second, 1024, false)
            .await
            .unwrap_err();
        assert_eq!(err, "ftp://h/x: not an http or https URL");
        assert!(is_url("HTTPS://h/x") && is_url("http://[::1]:8/x"));
        assert!(!is_url("api.yaml") && !is_url("http:/x") && !is_url("htt"));
    }

    #[test]
    fn exchange_keeps_both_sides() {
        let req = RecordedRequest::new("GET", "http://h/x").header("Accept", "application/json");
        let res = RecordedResponse {
            status: 401,
            headers: vec![("www-authenticate".into(), "Bearer".into())],
            body: b"{}".to_vec(),
            ..RecordedResponse::default()
        };
        let ex = res.exchange(&req);
        assert_eq!(ex.response.status, 401);
        assert_eq!(ex.response.headers["www-authenticate"], "Bearer");
        assert_eq!(ex.request.headers["accept"], "application/json");
        assert_eq!(res.header("WWW-Authenticate"), Some("Bearer"));
    }
}
