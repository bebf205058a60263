//! JSON access log lines, written by a thread of their own so that a slow
//! stdout never blocks the data path. When the queue is full, lines are
//! dropped and counted rather than delaying requests.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use serde::Serialize;

/// One request, as logged.
#[derive(Serialize)]
pub struct Line<'a> {
    pub request_id: &'a str,
    pub peer: SocketAddr,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    /// The contract rule of a gateway-made response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<&'a str>,
    /// The trace id, when the request is traced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<&'a str>,
    pub micros: u128,
}

/// The access log's queue.
pub struct AccessLog {
    tx: Option<SyncSender<Vec<u8>>>,
    pub dropped: AtomicU64,
}

impl AccessLog {
    /// Lines go to `out`, written by a background thread.
    pub fn to_writer(out: Box<dyn Write + Send>) -> Self {
        let (tx, rx) = sync_channel(16_384);
        let spawned = std::thread::Builder::new()
            .name("candor-access-log".into())
            .spawn(move || write_lines(rx, out));
        AccessLog {
            tx: spawned.ok().map(|_| tx),
            dropped: AtomicU64::new(0),
        }
    }

    /// A log that writes nothing.
    pub fn disabled() -> Self {
        AccessLog {
            tx: None,
            dropped: AtomicU64::new(0),
        }
    }

    pub fn log(&self, line: Line<'_>) {
        let Some(tx) = &self.tx else { return };
        let Ok(mut bytes) = serde_json::to_vec(&line) else {
            return;
        };
        bytes.push(b'\n');
        match tx.try_send(bytes) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn write_lines(rx: Receiver<Vec<u8>>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::new(out);
    while let Ok(line) = rx.recv() {
        if out.write_all(&line).is_err() {
            return;
        }
        // Write whatever else is queued, then flush once.
        while let Ok(line) = rx.try_recv() {
            if out.write_all(&line).is_err() {
                return;
            }
        }
        if out.flush().is_err() {
            return;
        }
    }
}
