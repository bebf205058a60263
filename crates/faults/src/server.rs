//! The server: accept, read each request by hand, and answer it the way its
//! endpoint fails. What each endpoint does is listed in lib.rs.

use std::future::Future;
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use httparse::Status;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// Largest request head accepted (request line and fields).
const MAX_HEAD: usize = 64 * 1024;
/// Most header fields accepted in a request head or a trailer section.
const MAX_FIELDS: usize = 128;
/// Largest request body accepted, after chunked decoding.
const MAX_BODY: usize = 1024 * 1024;
/// Longest chunk-size line (size, extensions) accepted.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Bytes reserved in the read buffer ahead of each read.
const READ_CHUNK: usize = 8 * 1024;

/// `/slow` without `ms=`.
const SLOW_DEFAULT_MS: u64 = 1_000;
/// Longest wait `/slow` honours.
const SLOW_MAX_MS: u64 = 60_000;

/// How long a closing connection keeps reading (and discarding) what the
/// client still sends, so the close is a FIN and not an RST that could
/// destroy the response in the client's receive buffer. Well inside the
/// contract's `LINGER_TIME` / `LINGER_BYTES`: a test upstream closes fast.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_MAX_BYTES: usize = 256 * 1024;
/// Pause after an accept error that is not about one connection (such as
/// running out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

const OK_BODY: &str = r#"{"ok":true}"#;
const SUCCESS_ERROR_BODY: &str = r#"{"success":false,"error":"something failed"}"#;
const UNKNOWN_DETAIL: &str = "candor faults has no endpoint at this path";

/// The whole `/ok` answer on a kept-alive HTTP/1.1 connection, the case
/// benchmarks hit.
const OK_RESPONSE: &[u8] = concat!(
    "HTTP/1.1 200 OK\r\n",
    "Server: candor-faults\r\n",
    "Content-Type: application/json\r\n",
    "Content-Length: 11\r\n",
    "\r\n",
    r#"{"ok":true}"#,
)
.as_bytes();

/// What `/garbage` sends instead of a response.
const GARBAGE: &[u8] = b"this is not http\r\n\r\n";

/// `/bad-length`: declares 100 bytes and sends these 10.
const BAD_LENGTH: &[u8] = concat!(
    "HTTP/1.1 200 OK\r\n",
    "Server: candor-faults\r\n",
    "Content-Type: application/json\r\n",
    "Content-Length: 100\r\n",
    "\r\n",
    r#"{"ok":true"#,
)
.as_bytes();

/// `/truncate`: one chunk holding a complete-looking body, and no last chunk.
const TRUNCATED: &[u8] = concat!(
    "HTTP/1.1 200 OK\r\n",
    "Server: candor-faults\r\n",
    "Content-Type: application/json\r\n",
    "Transfer-Encoding: chunked\r\n",
    "\r\n",
    "b\r\n",
    r#"{"ok":true}"#,
    "\r\n",
)
.as_bytes();

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Serves the fault endpoints on `listener`, one task per connection, until
/// `shutdown` resolves; then stops accepting and drops open connections.
///
/// Accept errors that concern a single connection are skipped; others (such
/// as running out of file descriptors) pause the loop briefly. The only error
/// returned is a listener that cannot accept at all.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => {
                connections.shutdown().await;
                return Ok(());
            }
            // Reap finished connections so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream));
                }
                Err(e) if is_per_connection(&e) => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                    connections.shutdown().await;
                    return Err(e);
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
        }
    }
}

fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    )
}

/// Runs [`serve`] on `127.0.0.1` with an ephemeral port in a tokio task.
///
/// Must be called inside a tokio runtime. The server stops when the handle
/// is dropped or [`FaultsHandle::shutdown`] is awaited.
pub async fn spawn_local() -> io::Result<(SocketAddr, FaultsHandle)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, async move {
        // Resolves on send and on drop of the handle alike.
        let _ = stopped.await;
    }));
    Ok((addr, FaultsHandle { stop, task }))
}

/// Keeps a [`spawn_local`] server running; dropping it stops the server.
#[derive(Debug)]
pub struct FaultsHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl FaultsHandle {
    /// Stops the server and waits until its listener is closed and every
    /// open connection dropped.
    pub async fn shutdown(self) -> io::Result<()> {
        let Self { stop, task } = self;
        drop(stop);
        task.await.map_err(io::Error::other)?
    }
}

/// What a fault endpoint is, read from the request target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Ok,
    Slow { ms: u64 },
    Reset,
    Garbage,
    BadLength,
    Truncate,
    Status(u16),
    Unauthorized,
    SuccessError,
    Echo,
    Unknown,
}

/// Splits a request target into path and query, dropping the scheme and
/// authority of an absolute-form target.
fn split_target(target: &str) -> (&str, Option<&str>) {
    let target = match target.split_once("://") {
        Some((_, rest)) if !target.starts_with('/') => rest.find('/').map_or("/", |i| &rest[i..]),
        _ => target,
    };
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// Matches the endpoint at the end of the path (any prefix is allowed).
fn route(target: &str) -> Endpoint {
    let (path, query) = split_target(target);
    if !path.starts_with('/') {
        return Endpoint::Unknown;
    }
    let mut segments = path.rsplit('/');
    let last = segments.next().unwrap_or_default();
    match last {
        "ok" => Endpoint::Ok,
        "slow" => Endpoint::Slow { ms: slow_ms(query) },
        "reset" => Endpoint::Reset,
        "garbage" => Endpoint::Garbage,
        "bad-length" => Endpoint::BadLength,
        "truncate" => Endpoint::Truncate,
        "401-bare" => Endpoint::Unauthorized,
        "200-error" => Endpoint::SuccessError,
        "echo" => Endpoint::Echo,
        code if segments.next() == Some("status") => {
            status_code(code).map_or(Endpoint::Unknown, Endpoint::Status)
        }
        _ => Endpoint::Unknown,
    }
}

/// `ms=N` from a query string, defaulted and capped.
fn slow_ms(query: Option<&str>) -> u64 {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("ms="))
        .and_then(|ms| ms.parse::<u64>().ok())
        .unwrap_or(SLOW_DEFAULT_MS)
        .min(SLOW_MAX_MS)
}

/// A final status code this server can send: three digits, 200-999.
fn status_code(segment: &str) -> Option<u16> {
    if segment.len() != 3 || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok().filter(|code| *code >= 200)
}

/// How the request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(usize),
    Chunked,
}

/// What the server needs to know about a request head once it is parsed.
#[derive(Debug, Clone, Copy)]
struct Head {
    /// Bytes of the head, from the start of the buffer.
    len: usize,
    endpoint: Endpoint,
    is_head_method: bool,
    http10: bool,
    keep_alive: bool,
    framing: Framing,
    expect_continue: bool,
}

/// Why a request is answered by the server itself instead of an endpoint.
#[derive(Debug)]
enum Fail {
    /// The peer went away or the socket failed: nothing left to answer,
    /// and nobody to tell why.
    Io,
    /// Answer with this status and detail, then close.
    Reject(u16, &'static str),
}

impl From<io::Error> for Fail {
    fn from(_: io::Error) -> Self {
        Self::Io
    }
}

/// Parses the head at the start of `buf`; `Ok(None)` when it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Fail> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut fields);
    let len = match req.parse(buf) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(Fail::Reject(431, "the request head is over 64 KiB"));
        }
        Ok(Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Fail::Reject(431, "the request has over 128 header fields"));
        }
        Err(_) => return Err(Fail::Reject(400, "the request head is not valid HTTP/1.1")),
    };
    if len > MAX_HEAD {
        return Err(Fail::Reject(431, "the request head is over 64 KiB"));
    }
    let http10 = req.version == Some(0);
    let (mut close, mut keep_alive, mut expect_continue) = (false, false, false);
    let mut content_length: Option<u64> = None;
    let mut chunked: Option<bool> = None;
    for field in req.headers.iter() {
        let name = field.name;
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                candor_contract::fold_content_length(content_length, field.value).ok_or(
                    Fail::Reject(400, "Content-Length is not one length in decimal digits"),
                )?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = tokens(field.value).last().unwrap_or_default();
            chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in tokens(field.value) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = field.value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    let framing = match (chunked, content_length) {
        (Some(false), _) => {
            return Err(Fail::Reject(
                400,
                "Transfer-Encoding does not end with chunked",
            ));
        }
        // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3); such a
        // message may be an attack, so the connection is closed afterwards.
        (Some(true), Some(_)) => {
            close = true;
            Framing::Chunked
        }
        (Some(true), None) => Framing::Chunked,
        (None, Some(0) | None) => Framing::None,
        (None, Some(n)) => match usize::try_from(n) {
            Ok(n) if n <= MAX_BODY => Framing::Length(n),
            _ => return Err(Fail::Reject(413, "the request body is over 1 MiB")),
        },
    };
    Ok(Some(Head {
        len,
        endpoint: req.path.map_or(Endpoint::Unknown, route),
        is_head_method: req.method == Some("HEAD"),
        http10,
        keep_alive: if http10 { keep_alive } else { !close },
        framing,
        expect_continue: expect_continue && !http10,
    }))
}

/// The comma-separated tokens of a field value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(<[u8]>::trim_ascii)
}

/// Reads more bytes into `buf`; the peer closing is `UnexpectedEof`.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    if buf.capacity() - buf.len() < READ_CHUNK / 2 {
        buf.reserve(READ_CHUNK);
    }
    match stream.read_buf(buf).await? {
        0 => Err(io::ErrorKind::UnexpectedEof.into()),
        _ => Ok(()),
    }
}

/// Where the request body is, once read.
enum Body {
    /// In the read buffer, as sent (`Content-Length` framing).
    Buffered(std::ops::Range<usize>),
    /// Decoded from chunks.
    Decoded(Vec<u8>),
}

/// Reads the chunked body that starts at `pos` in `buf`. Returns the decoded
/// body and the offset just past its trailer section.
async fn read_chunked(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    mut pos: usize,
) -> Result<(Vec<u8>, usize), Fail> {
    let mut body = Vec::new();
    loop {
        let (line, size) = match httparse::parse_chunk_size(&buf[pos..]) {
            Ok(Status::Complete(sized)) => sized,
            Ok(Status::Partial) if buf.len() - pos > MAX_CHUNK_LINE => {
                return Err(Fail::Reject(400, "a chunk-size line is too long"));
            }
            Ok(Status::Partial) => {
                fill(stream, buf).await?;
                continue;
            }
            Err(_) => return Err(Fail::Reject(400, "the chunked body is malformed")),
        };
        pos += line;
        if size == 0 {
            return Ok((body, skip_trailers(stream, buf, pos).await?));
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|size| body.len() + size <= MAX_BODY)
            .ok_or(Fail::Reject(413, "the request body is over 1 MiB"))?;
        let end = pos + size;
        while buf.len() < end + 2 {
            fill(stream, buf).await?;
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(Fail::Reject(400, "a chunk does not end with CRLF"));
        }
        body.extend_from_slice(&buf[pos..end]);
        pos = end + 2;
    }
}

/// Reads past the trailer section at `pos`; returns the offset after it.
async fn skip_trailers(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    pos: usize,
) -> Result<usize, Fail> {
    loop {
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        match httparse::parse_headers(&buf[pos..], &mut fields) {
            Ok(Status::Complete((len, _))) => return Ok(pos + len),
            Ok(Status::Partial) if buf.len() - pos < MAX_HEAD => fill(stream, buf).await?,
            Ok(Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Err(Fail::Reject(431, "the trailer section is too large"));
            }
            Err(_) => return Err(Fail::Reject(400, "the trailer section is malformed")),
        }
    }
}

/// How a connection ends after an exchange.
enum After {
    KeepAlive,
    /// FIN, after lingering for what the client still sends.
    Close,
    /// RST.
    Reset,
    /// The peer is gone or the socket failed.
    Drop,
}

async fn connection(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(READ_CHUNK);
    let mut out = Vec::new();
    loop {
        let after = match exchange(&mut stream, &mut buf, &mut out).await {
            Ok(after) => after,
            Err(Fail::Io) => After::Drop,
            Err(Fail::Reject(status, detail)) => {
                out.clear();
                let written = write_problem(&mut out, status, Some(detail), Conn::Close, true);
                match written {
                    Ok(()) if stream.write_all(&out).await.is_ok() => After::Close,
                    _ => After::Drop,
                }
            }
        };
        match after {
            After::KeepAlive => {}
            After::Close => return close_lingering(stream).await,
            After::Reset => return reset(&stream),
            After::Drop => return,
        }
    }
}

/// Reads one request (head and body) and answers it.
async fn exchange(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<After, Fail> {
    let head = loop {
        if let Some(head) = parse_head(buf)? {
            break head;
        }
        match fill(stream, buf).await {
            Ok(()) => {}
            // Closed between requests, or mid-head: nobody to answer.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(After::Drop),
            Err(e) => return Err(e.into()),
        }
    };
    if head.expect_continue && head.framing != Framing::None && buf.len() == head.len {
        stream.write_all(CONTINUE).await?;
    }
    let (body, consumed) = match head.framing {
        Framing::None => (Body::Buffered(head.len..head.len), head.len),
        Framing::Length(n) => {
            let end = head.len + n;
            buf.reserve(end.saturating_sub(buf.len()));
            while buf.len() < end {
                fill(stream, buf).await?;
            }
            (Body::Buffered(head.len..end), end)
        }
        Framing::Chunked => {
            let (decoded, end) = read_chunked(stream, buf, head.len).await?;
            (Body::Decoded(decoded), end)
        }
    };

    let conn = match (head.keep_alive, head.http10) {
        (false, _) => Conn::Close,
        (true, true) => Conn::KeepAlive,
        (true, false) => Conn::Default,
    };
    let send_body = !head.is_head_method;
    out.clear();
    match head.endpoint {
        Endpoint::Ok | Endpoint::Slow { .. } => {
            if let Endpoint::Slow { ms } = head.endpoint {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            if conn == Conn::Default && send_body {
                stream.write_all(OK_RESPONSE).await?;
            } else {
                let ok = Reply::json(200, OK_BODY.as_bytes());
                write_reply(out, &ok, conn, send_body)?;
            }
        }
        Endpoint::Reset => return Ok(After::Reset),
        Endpoint::Garbage => {
            stream.write_all(GARBAGE).await?;
            return Ok(After::Close);
        }
        Endpoint::BadLength => {
            stream.write_all(BAD_LENGTH).await?;
            return Ok(After::Close);
        }
        Endpoint::Truncate => {
            stream.write_all(TRUNCATED).await?;
            return Ok(After::Close);
        }
        Endpoint::Status(code) => write_problem(out, code, None, conn, send_body)?,
        Endpoint::Unauthorized => write_problem(out, 401, None, conn, send_body)?,
        Endpoint::SuccessError => {
            let reply = Reply::json(200, SUCCESS_ERROR_BODY.as_bytes());
            write_reply(out, &reply, conn, send_body)?;
        }
        Endpoint::Echo => {
            let body = match &body {
                Body::Buffered(range) => &buf[range.clone()],
                Body::Decoded(decoded) => decoded,
            };
            let echoed = echo(&buf[..head.len], body)?;
            write_reply(out, &Reply::json(200, &echoed), conn, send_body)?;
        }
        Endpoint::Unknown => write_problem(out, 404, Some(UNKNOWN_DETAIL), conn, send_body)?,
    }
    if !out.is_empty() {
        stream.write_all(out).await?;
    }

    buf.drain(..consumed);
    if buf.is_empty() && buf.capacity() > 8 * READ_CHUNK {
        buf.shrink_to(READ_CHUNK);
    }
    Ok(match conn {
        Conn::Close => After::Close,
        Conn::Default | Conn::KeepAlive => After::KeepAlive,
    })
}

/// The request as JSON, for `/echo`.
fn echo(head: &[u8], body: &[u8]) -> io::Result<Vec<u8>> {
    use serde_json::{Map, Value};

    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut fields);
    // Parsed once already; a failure here would be a bug, reported as one.
    req.parse(head).map_err(io::Error::other)?;
    let (path, query) = split_target(req.path.unwrap_or_default());
    let mut headers = Map::new();
    for field in req.headers.iter() {
        let name = field.name.to_ascii_lowercase();
        let value = Value::String(String::from_utf8_lossy(field.value).into_owned());
        match headers.get_mut(&name) {
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
            None => {
                headers.insert(name, value);
            }
        }
    }
    let echoed = serde_json::json!({
        "method": req.method.unwrap_or_default(),
        "path": path,
        "query": query,
        "version": if req.version == Some(0) { "HTTP/1.0" } else { "HTTP/1.1" },
        "headers": headers,
        "body": String::from_utf8_lossy(body),
    });
    serde_json::to_vec(&echoed).map_err(io::Error::other)
}

/// The `Connection` field a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    /// None: HTTP/1.1 persists by default.
    Default,
    /// `Connection: keep-alive`, for HTTP/1.0 clients that asked for it.
    KeepAlive,
    /// `Connection: close`; the server closes after the response.
    Close,
}

struct Reply<'a> {
    status: u16,
    content_type: &'static str,
    body: &'a [u8],
}

impl<'a> Reply<'a> {
    fn json(status: u16, body: &'a [u8]) -> Self {
        Self {
            status,
            content_type: "application/json",
            body,
        }
    }
}

/// `{"type":"about:blank","status":N}` (plus `detail`) as problem+json.
fn write_problem(
    out: &mut Vec<u8>,
    status: u16,
    detail: Option<&str>,
    conn: Conn,
    send_body: bool,
) -> io::Result<()> {
    let mut body = Vec::with_capacity(96);
    write!(body, r#"{{"type":"about:blank","status":{status}"#)?;
    if let Some(detail) = detail {
        body.extend_from_slice(br#","detail":"#);
        serde_json::to_writer(&mut body, detail).map_err(io::Error::other)?;
    }
    body.push(b'}');
    let reply = Reply {
        status,
        content_type: "application/problem+json",
        body: &body,
    };
    write_reply(out, &reply, conn, send_body)
}

/// Appends a well-formed response to `out`. 204 and 304 get neither body
/// nor `Content-Length`/`Content-Type`; 205 gets an empty body.
fn write_reply(
    out: &mut Vec<u8>,
    reply: &Reply<'_>,
    conn: Conn,
    send_body: bool,
) -> io::Result<()> {
    let status = reply.status;
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or_default();
    write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nServer: candor-faults\r\n"
    )?;
    let body = match status {
        204 | 304 => None,
        205 => Some(&[][..]),
        _ => Some(reply.body),
    };
    if let Some(body) = body {
        if !body.is_empty() {
            write!(out, "Content-Type: {}\r\n", reply.content_type)?;
        }
        write!(out, "Content-Length: {}\r\n", body.len())?;
    }
    match conn {
        Conn::Default => {}
        Conn::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        Conn::Close => out.extend_from_slice(b"Connection: close\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    if let Some(body) = body.filter(|_| send_body) {
        out.extend_from_slice(body);
    }
    Ok(())
}

/// Closes with a FIN, then drains what the client still sends for a short
/// while: closing a socket with unread input sends an RST instead, which can
/// make the client lose the response.
async fn close_lingering(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < LINGER_MAX_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Closes with an RST: a zero linger time makes close(2) abort the
/// connection instead of shutting it down.
fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_exact_endpoint_names() {
        assert_eq!(route("/ok"), Endpoint::Ok);
        assert_eq!(route("/ok?x=1"), Endpoint::Ok);
        assert_eq!(route("/reset"), Endpoint::Reset);
        assert_eq!(route("/garbage"), Endpoint::Garbage);
        assert_eq!(route("/bad-length"), Endpoint::BadLength);
        assert_eq!(route("/truncate"), Endpoint::Truncate);
        assert_eq!(route("/401-bare"), Endpoint::Unauthorized);
        assert_eq!(route("/200-error"), Endpoint::SuccessError);
        assert_eq!(route("/echo"), Endpoint::Echo);
        assert_eq!(route("/status/503"), Endpoint::Status(503));
        assert_eq!(route("/"), Endpoint::Unknown);
        assert_eq!(route("/nope"), Endpoint::Unknown);
        assert_eq!(route("/ok/"), Endpoint::Unknown);
        assert_eq!(route("/echo/more"), Endpoint::Unknown);
        assert_eq!(route("ok"), Endpoint::Unknown);
        assert_eq!(route("*"), Endpoint::Unknown);
    }

    #[test]
    fn routes_accept_any_prefix() {
        assert_eq!(route("/f/slow?ms=10"), Endpoint::Slow { ms: 10 });
        assert_eq!(route("/any/prefix/status/503"), Endpoint::Status(503));
        assert_eq!(route("/status/ok"), Endpoint::Ok);
        assert_eq!(route("/a/b/echo?q"), Endpoint::Echo);
    }

    #[test]
    fn absolute_form_targets_are_routed_by_path() {
        assert_eq!(route("http://upstream:9000/f/ok"), Endpoint::Ok);
        assert_eq!(route("http://upstream:9000"), Endpoint::Unknown);
        assert_eq!(split_target("http://h/echo?a=b"), ("/echo", Some("a=b")));
    }

    #[test]
    fn status_codes_are_three_digits_from_200() {
        assert_eq!(route("/status/200"), Endpoint::Status(200));
        assert_eq!(route("/status/999"), Endpoint::Status(999));
        for bad in ["100", "199", "1000", "+20", "abc", "", "50"] {
            assert_eq!(route(&format!("/status/{bad}")), Endpoint::Unknown, "{bad}");
        }
    }

    #[test]
    fn slow_defaults_and_caps_its_wait() {
        assert_eq!(slow_ms(None), SLOW_DEFAULT_MS);
        assert_eq!(slow_ms(Some("x=1")), SLOW_DEFAULT_MS);
        assert_eq!(slow_ms(Some("ms=oops")), SLOW_DEFAULT_MS);
        assert_eq!(slow_ms(Some("a=b&ms=25")), 25);
        assert_eq!(slow_ms(Some("ms=999999")), SLOW_MAX_MS);
    }

    #[test]
    fn fast_path_matches_the_general_writer() {
        let mut out = Vec::new();
        write_reply(
            &mut out,
            &Reply::json(200, OK_BODY.as_bytes()),
            Conn::Default,
            true,
        )
        .unwrap();
        assert_eq!(out, OK_RESPONSE);
    }

    #[test]
    fn problem_bodies_are_json() {
        let mut out = Vec::new();
        write_problem(&mut out, 404, Some(UNKNOWN_DETAIL), Conn::Close, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(value["status"], 404);
        assert_eq!(value["type"], "about:blank");
        assert!(text.contains("\r\nConnection: close\r\n"));
    }

    #[test]
    fn no_content_statuses_carry_no_length() {
        let mut out = Vec::new();
        write_problem(&mut out, 204, None, Conn::Default, true).unwrap();
        assert_eq!(
            out,
            b"HTTP/1.1 204 No Content\r\nServer: candor-faults\r\n\r\n"
        );
        out.clear();
        write_problem(&mut out, 205, None, Conn::Default, true).unwrap();
        assert_eq!(
            out,
            b"HTTP/1.1 205 Reset Content\r\nServer: candor-faults\r\nContent-Length: 0\r\n\r\n"
        );
    }
}
