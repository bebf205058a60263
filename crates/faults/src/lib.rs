//! `candor faults`: a deliberately misbehaving HTTP/1.1 upstream.
//!
//! Gateways are judged by what they do when the upstream fails (contract §4),
//! so this server fails on purpose, in ways an HTTP library would refuse to.
//! HTTP/1.1 is written by hand on the socket for that reason.
//!
//! # Endpoints
//!
//! Any method is accepted on every endpoint; the query string is ignored
//! except by `/slow`.
//!
//! | path | behaviour |
//! |---|---|
//! | `/ok` | 200 `application/json` `{"ok":true}` (the benchmark fast path) |
//! | `/slow?ms=N` | waits N ms (default 1000, capped at 60000) before the head, then as `/ok` |
//! | `/reset` | reads the request, then resets the connection (RST) before answering |
//! | `/garbage` | writes bytes that are not HTTP, then closes |
//! | `/bad-length` | 200 head declaring `Content-Length: 100`, sends 10 bytes, closes |
//! | `/truncate` | 200 head with `Transfer-Encoding: chunked`, one chunk, closes without the last chunk |
//! | `/status/{code}` | that status (200-999) with `{"type":"about:blank","status":code}` as `application/problem+json`; 204 and 304 carry no body, 205 an empty one; no recovery headers on purpose (503 without `Retry-After`, 401 without `WWW-Authenticate`, ...) |
//! | `/401-bare` | 401 without `WWW-Authenticate`, problem body |
//! | `/200-error` | 200 `application/json` `{"success":false,"error":"something failed"}` |
//! | `/echo` | 200 `application/json` describing the request as received: `method`, `path`, `query` (string or null), `version`, `headers` (lower-cased names; a string, or an array when repeated) and `body` (UTF-8, lossy) |
//!
//! Anything else is a 404 problem body, as is `/status/{code}` with a code
//! that is not three digits in 200-999.
//!
//! **Prefixes.** An endpoint matches at the *end* of the path, after any
//! prefix, so a gateway that forwards `/f/{*rest}` without stripping `/f`
//! still reaches it: `/f/slow?ms=10` is `/slow?ms=10`, `/any/prefix/status/503`
//! is `/status/503`. Matching stays exact otherwise: `/echo/more` and `/ok/`
//! are unknown.
//!
//! # HTTP/1.1 handling
//!
//! - The request head is limited to 64 KiB and 128 fields; over either, 431
//!   and close. A head that does not parse gets 400 and close.
//! - Request bodies are read whole before answering, up to 1 MiB (413 and
//!   close above that): `Content-Length` bodies, and chunked bodies, which are
//!   decoded (chunk extensions and trailers are read and dropped). A
//!   `Transfer-Encoding` whose last coding is not `chunked`, or conflicting
//!   `Content-Length` values, get 400 and close. `Expect: 100-continue` is
//!   answered with `100 Continue` before the body is read.
//! - Connections are kept alive (requests may be pipelined) unless the
//!   request says `Connection: close`, the request is HTTP/1.0 without
//!   `Connection: keep-alive`, or the endpoint breaks the connection.
//! - Every well-formed response carries `Server: candor-faults` and
//!   `Content-Length` (never on 204 or 304, as RFC 9110 §8.6 requires), and
//!   `Connection: close` when the server closes afterwards. There is no
//!   `Date`, so responses are byte-for-byte reproducible. HEAD gets the head
//!   alone.
//! - On shutdown the server stops accepting and drops open connections.

mod server;

pub use server::{FaultsHandle, serve, spawn_local};
