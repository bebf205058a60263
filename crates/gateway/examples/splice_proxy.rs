//! What a data path built for proxying HTTP/1.1 would cost on this stack:
//! nginx's shape instead of hyper's. One task per client connection reads a
//! request head (httparse), writes it upstream on a pooled connection of its
//! own worker as bytes (hop-by-hop fields left out, the forwarding fields
//! and a request id spliced in, as `candor serve` sends them), reads the
//! response the same way and writes it back: no header map, no channel, no
//! second task. A measurement baseline for `bench/instructions.sh` and
//! `bench/gateway.sh`, as `bare_proxy` is the baseline of hyper itself; not
//! a gateway: Content-Length bodies only, no limits, no errors beyond
//! closing the connection.
//!
//! ```sh
//! cargo run --release -p candor-gateway --example splice_proxy -- 127.0.0.1:18085 127.0.0.1:19000
//! ```

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Pool = Rc<RefCell<Vec<TcpStream>>>;

mod support;

fn main() {
    support::run("splice_proxy", serve);
}

async fn serve(listener: std::net::TcpListener, upstream: SocketAddr) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        support::fail("splice_proxy", 1, "cannot register the listener");
    };
    let pool: Pool = Rc::default();
    let ids = Rc::new(Cell::new(0u64));
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (pool, ids) = (pool.clone(), ids.clone());
        tokio::task::spawn_local(async move {
            let _ = connection(stream, peer, upstream, pool, ids).await;
        });
    }
}

/// Fields a proxy does not forward (RFC 9110 section 7.6.1), and the
/// framing fields it writes itself.
fn skipped(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// A parsed head: its length, the body length, and the bytes to send on.
struct Head {
    len: usize,
    body: usize,
}

async fn connection(
    mut client: TcpStream,
    peer: SocketAddr,
    upstream: SocketAddr,
    pool: Pool,
    ids: Rc<Cell<u64>>,
) -> io::Result<()> {
    let peer_ip = peer.ip().to_string();
    let mut from_client = BytesMut::with_capacity(8192);
    let mut from_upstream = BytesMut::with_capacity(8192);
    let mut out = Vec::with_capacity(8192);
    loop {
        // The request head, rewritten for the upstream.
        out.clear();
        let id = ids.get() + 1;
        ids.set(id);
        let head = |buf: &[u8], out: &mut Vec<u8>| request_head(buf, out, &peer_ip, id);
        let Some(len) = read_message(&mut client, &mut from_client, &mut out, head).await? else {
            return Ok(());
        };
        from_client.advance(len);

        let pooled = pool.borrow_mut().pop();
        let mut up = match pooled {
            Some(up) => up,
            None => {
                let up = TcpStream::connect(upstream).await?;
                let _ = up.set_nodelay(true);
                up
            }
        };
        up.write_all(&out).await?;

        // The response, its head rewritten for the client.
        out.clear();
        from_upstream.clear();
        let head = |buf: &[u8], out: &mut Vec<u8>| response_head(buf, out, id);
        if read_message(&mut up, &mut from_upstream, &mut out, head)
            .await?
            .is_none()
        {
            return Ok(());
        }
        pool.borrow_mut().push(up);
        client.write_all(&out).await?;
    }
}

/// Reads from `stream` into `buf` until `head` parses a message head there
/// (writing the head to send on into `out`) and the message's body has
/// arrived too, which is then appended to `out`. The message's length in
/// `buf`, or `None` when the peer closed first.
async fn read_message(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    head: impl Fn(&[u8], &mut Vec<u8>) -> io::Result<Option<Head>>,
) -> io::Result<Option<usize>> {
    let parsed = loop {
        if let Some(parsed) = head(buf, out)? {
            break parsed;
        }
        if stream.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    };
    let end = parsed.len + parsed.body;
    while buf.len() < end {
        if stream.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
    out.extend_from_slice(&buf[parsed.len..end]);
    Ok(Some(end))
}

fn invalid() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "not a request this proxy takes")
}

fn content_length(value: &[u8]) -> io::Result<usize> {
    candor_contract::fold_content_length(None, value)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(invalid)
}

fn request_head(buf: &[u8], out: &mut Vec<u8>, peer_ip: &str, id: u64) -> io::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf).map_err(|_| invalid())? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let (Some(method), Some(path)) = (req.method, req.path) else {
        return Err(invalid());
    };
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut body = 0;
    let mut host: &[u8] = b"";
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            body = content_length(h.value)?;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(invalid());
        }
        if h.name.eq_ignore_ascii_case("host") {
            host = h.value;
        }
        if skipped(h.name) {
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    if body > 0 {
        out.extend_from_slice(format!("content-length: {body}\r\n").as_bytes());
    }
    // The fields `candor serve` adds, so the two compare.
    out.extend_from_slice(b"x-forwarded-for: ");
    out.extend_from_slice(peer_ip.as_bytes());
    out.extend_from_slice(b"\r\nx-forwarded-proto: http\r\nforwarded: for=");
    out.extend_from_slice(peer_ip.as_bytes());
    out.extend_from_slice(b";proto=http;host=\"");
    out.extend_from_slice(host);
    out.extend_from_slice(b"\"\r\nx-forwarded-host: ");
    out.extend_from_slice(host);
    out.extend_from_slice(format!("\r\nx-request-id: {id:x}\r\n\r\n").as_bytes());
    Ok(Some(Head { len, body }))
}

fn response_head(buf: &[u8], out: &mut Vec<u8>, id: u64) -> io::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(buf).map_err(|_| invalid())? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let code = res.code.ok_or_else(invalid)?;
    out.extend_from_slice(format!("HTTP/1.1 {code} {}\r\n", res.reason.unwrap_or("")).as_bytes());
    let mut body = None;
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            body = Some(content_length(h.value)?);
        }
        if skipped(h.name) {
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    // Without a length (chunked, or read to close) this baseline gives up.
    let body = body.ok_or_else(invalid)?;
    out.extend_from_slice(
        format!("content-length: {body}\r\nx-request-id: {id:x}\r\n\r\n").as_bytes(),
    );
    Ok(Some(Head { len, body }))
}
