//! What the baseline proxies (`bare_proxy`, `splice_proxy`) share: the
//! command line and the worker model of `candor serve`, one current-thread
//! event loop per core, each on its own SO_REUSEPORT listener.

use std::future::Future;
use std::net::SocketAddr;

/// Reads `LISTEN UPSTREAM` from the command line and runs `serve` on every
/// worker, with that worker's listener and the upstream's address. `name`
/// is the program's, for messages.
pub fn run<F, Fut>(name: &str, serve: F)
where
    F: Fn(std::net::TcpListener, SocketAddr) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = ()>,
{
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream] = args.as_slice() else {
        fail(
            name,
            2,
            &format!("usage: {name} LISTEN UPSTREAM (both host:port)"),
        );
    };
    let listen: SocketAddr = listen
        .parse()
        .unwrap_or_else(|_| fail(name, 2, &format!("LISTEN: not host:port: {listen}")));
    let upstream: SocketAddr = upstream
        .parse()
        .unwrap_or_else(|_| fail(name, 2, &format!("UPSTREAM: not host:port: {upstream}")));
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let listener = bind(listen)
                .unwrap_or_else(|e| fail(name, 1, &format!("cannot listen on {listen}: {e}")));
            let name = name.to_owned();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| fail(&name, 1, &format!("event loop: {e}")));
                runtime.block_on(tokio::task::LocalSet::new().run_until(serve(listener, upstream)));
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

pub fn fail(name: &str, code: i32, message: &str) -> ! {
    eprintln!("{name}: {message}");
    std::process::exit(code)
}

/// A listener of its own per worker; the kernel spreads connections.
fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}
