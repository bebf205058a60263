//! Retry amplification: N concurrent callers against an upstream that fails
//! half its requests, with naive retries (3 attempts) and with candor-client.
//!
//! Two upstreams: an *outage* (half the items fail, and keep failing on a
//! retry: what a budget is for) and a *flaky* one (each attempt fails with
//! probability 1/2, so retries do help). Prints a table; settings come from
//! the environment: CALLERS (32), CALLS per caller (100), PORT (20150).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use candor_client::{Policy, RetryMiddleware};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Copy, PartialEq)]
enum Upstream {
    Outage,
    Flaky,
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A keep-alive HTTP/1.1 upstream that counts requests and fails half of them.
async fn upstream(
    listener: TcpListener,
    kind: Arc<std::sync::Mutex<Upstream>>,
    seen: Arc<AtomicU64>,
) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let kind = kind.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            let mut chunk = [0u8; 1024];
            loop {
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                buf.drain(..end + 4);
                seen.fetch_add(1, Ordering::Relaxed);
                let item: u64 = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.rsplit('/').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let mode = *kind.lock().unwrap_or_else(|p| p.into_inner());
                let fail = match mode {
                    Upstream::Outage => item.is_multiple_of(2),
                    Upstream::Flaky => fastrand::bool(),
                };
                let status = if fail {
                    StatusCode::BAD_GATEWAY
                } else {
                    StatusCode::OK
                };
                let reply = format!(
                    "HTTP/1.1 {} {}\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{{}}",
                    status.as_str(),
                    status.canonical_reason().unwrap_or("")
                );
                if stream.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Up to three attempts on any 5xx, with the same backoff as the policy's.
async fn naive(client: &reqwest::Client, url: &str) -> bool {
    for attempt in 0..3u32 {
        if attempt > 0 {
            let ceiling = Duration::from_millis(1 << (attempt - 1)).min(Duration::from_millis(10));
            tokio::time::sleep(ceiling.mul_f64(fastrand::f64())).await;
        }
        match client.get(url).send().await {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) if r.status().is_server_error() => continue,
            _ => return false,
        }
    }
    false
}

struct Row {
    calls: u64,
    upstream: u64,
    ok: u64,
    secs: f64,
}

async fn run(naive_mode: bool, base: &str, callers: u64, calls: u64, seen: &AtomicU64) -> Row {
    let plain = reqwest::Client::new();
    // One policy for every caller: they share its budget, as one client would.
    let policy = Policy::builder()
        .max_attempts(3)
        .backoff(Duration::from_millis(1), Duration::from_millis(10))
        .build();
    let retrying = reqwest_middleware::ClientBuilder::new(plain.clone())
        .with(RetryMiddleware::new(policy))
        .build();
    let before = seen.load(Ordering::Relaxed);
    let ok = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..callers {
        let (plain, retrying, ok) = (plain.clone(), retrying.clone(), ok.clone());
        let base = base.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in 0..calls {
                let url = format!("{base}/item/{}", c * calls + i);
                let good = if naive_mode {
                    naive(&plain, &url).await
                } else {
                    retrying.get(&url).send().await.is_ok()
                };
                if good {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Row {
        calls: callers * calls,
        upstream: seen.load(Ordering::Relaxed) - before,
        ok: ok.load(Ordering::Relaxed),
        secs: started.elapsed().as_secs_f64(),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let callers = env("CALLERS", 32);
    let calls = env("CALLS", 100);
    let port = env("PORT", 20150);
    let listener = TcpListener::bind(("127.0.0.1", port as u16)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let kind = Arc::new(std::sync::Mutex::new(Upstream::Outage));
    let seen = Arc::new(AtomicU64::new(0));
    tokio::spawn(upstream(listener, kind.clone(), seen.clone()));

    println!("{callers} callers x {calls} calls, upstream failing 50% with 502");
    println!(
        "{:<8} {:<22} {:>7} {:>9} {:>14} {:>9} {:>7}",
        "upstream", "client", "calls", "upstream", "amplification", "success", "secs"
    );
    for (name, mode) in [("outage", Upstream::Outage), ("flaky", Upstream::Flaky)] {
        *kind.lock().unwrap_or_else(|p| p.into_inner()) = mode;
        for (label, naive_mode) in [("naive, 3 attempts", true), ("candor-client budget", false)] {
            let row = run(naive_mode, &base, callers, calls, &seen).await;
            println!(
                "{:<8} {:<22} {:>7} {:>9} {:>13.2}x {:>8.1}% {:>7.2}",
                name,
                label,
                row.calls,
                row.upstream,
                row.upstream as f64 / row.calls as f64,
                100.0 * row.ok as f64 / row.calls as f64,
                row.secs
            );
        }
    }
    Ok(())
}
