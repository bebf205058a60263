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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream] = args.as_slice() else {
        fail(2, "usage: splice_proxy LISTEN UPSTREAM (both host:port)");
    };
    let listen: SocketAddr = listen
        .parse()
        .unwrap_or_else(|_| fail(2, &format!("LISTEN: not host:port: {listen}")));
    let upstream: SocketAddr = upstream
        .parse()
        .unwrap_or_else(|_| fail(2, &format!("UPSTREAM: not host:port: {upstream}")));
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let listener = bind(listen)
                .unwrap_or_else(|e| fail(1, &format!("cannot listen on {listen}: {e}")));
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| fail(1, &format!("event loop: {e}")));
                runtime.block_on(tokio::task::LocalSet::new().run_until(serve(listener, upstream)));
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

fn fail(code: i32, message: &str) -> ! {
    eprintln!("splice_proxy: {message}");
    std::process::exit(code)
}

/// A listener of its own per worker; the kernel spreads connections.
fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

async fn serve(listener: std::net::TcpListener, upstream: SocketAddr) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        fail(1, "cannot register the listener");
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
        let request = loop {
            if let Some(head) = request_head(&from_client, &mut out, &peer_ip, id)? {
                break head;
            }
            if client.read_buf(&mut from_client).await? == 0 {
                return Ok(());
            }
        };
        while from_client.len() < request.len + request.body {
            if client.read_buf(&mut from_client).await? == 0 {
                return Ok(());
            }
        }
        out.extend_from_slice(&from_client[request.len..request.len + request.body]);
        from_client.advance(request.len + request.body);

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
        let response = loop {
            if let Some(head) = response_head(&from_upstream, &mut out, id)? {
                break head;
            }
            if up.read_buf(&mut from_upstream).await? == 0 {
                return Ok(());
            }
        };
        while from_upstream.len() < response.len + response.body {
            if up.read_buf(&mut from_upstream).await? == 0 {
                return Ok(());
            }
        }
        out.extend_from_slice(&from_upstream[response.len..response.len + response.body]);
        pool.borrow_mut().push(up);
        client.write_all(&out).await?;
    }
}

fn invalid() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "not a request this proxy takes")
}

fn content_length(value: &[u8]) -> io::Result<usize> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.trim().parse().ok())
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
