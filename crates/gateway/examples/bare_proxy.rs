//! The least a reverse proxy built on this crate's stack (tokio, hyper 1)
//! does: one current-thread event loop per core on SO_REUSEPORT listeners,
//! hyper's HTTP/1.1 server, and hyper's HTTP/1.1 client on a per-worker
//! pool of kept-alive connections. No routing, no policy, no metrics, no
//! header rewriting: a baseline for `bench/gateway.sh`, as `bare_parse` is
//! for `bench/lint.sh`.
//!
//! ```sh
//! cargo run --release -p candor-gateway --example bare_proxy -- 127.0.0.1:18083 127.0.0.1:19000
//! ```

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

type Pool = Rc<RefCell<Vec<SendRequest<Incoming>>>>;

mod support;

fn main() {
    support::run("bare_proxy", serve);
}

async fn serve(listener: std::net::TcpListener, upstream: SocketAddr) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        support::fail("bare_proxy", 1, "cannot register the listener");
    };
    let pool: Pool = Rc::default();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let pool = pool.clone();
        tokio::task::spawn_local(async move {
            let service = service_fn(move |req| forward(pool.clone(), upstream, req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward(
    pool: Pool,
    upstream: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Either<Incoming, Empty<Bytes>>>, Infallible> {
    // A connection whose previous response is still being read is not
    // ready; it stays in the pool for later.
    let idle = {
        let mut pool = pool.borrow_mut();
        let ready = pool.iter().position(SendRequest::is_ready);
        ready.map(|i| pool.swap_remove(i))
    };
    let mut sender = match idle {
        Some(s) => s,
        None => match connect(upstream).await {
            Some(s) => s,
            None => return Ok(bad_gateway()),
        },
    };
    let (mut parts, body) = req.into_parts();
    // Origin form: the connection already names the upstream.
    if let Some(path) = parts.uri.path_and_query().cloned() {
        parts.uri = hyper::Uri::from(path);
    }
    match sender.send_request(Request::from_parts(parts, body)).await {
        Ok(response) => {
            pool.borrow_mut().push(sender);
            Ok(response.map(Either::Left))
        }
        Err(_) => Ok(bad_gateway()),
    }
}

async fn connect(upstream: SocketAddr) -> Option<SendRequest<Incoming>> {
    let stream = tokio::net::TcpStream::connect(upstream).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    Some(sender)
}

fn bad_gateway() -> Response<Either<Incoming, Empty<Bytes>>> {
    let mut response = Response::new(Either::Right(Empty::new()));
    *response.status_mut() = hyper::StatusCode::BAD_GATEWAY;
    response
}
