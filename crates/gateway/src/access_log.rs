//! JSON access log lines, written into a per-worker buffer on the data path
//! and handed to a thread of its own that writes them (stdout or a file).
//!
//! A request only appends its fields to its worker's buffer (an uncontended
//! lock, no allocation once the buffer has grown). The writer thread swaps
//! the buffers out every `FLUSH_EVERY`, or sooner when one fills, and
//! writes them with the lock released, so a slow disk never delays a
//! request: a buffer that reaches `MAX_PENDING` drops lines (counted)
//! instead. `finish` writes out what is left; `reopen` reopens the file
//! (SIGUSR1, for logrotate).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::Duration;

/// The longest a line waits in a buffer before it is written.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// A buffer this full wakes the writer before its time.
const WAKE_AT: usize = 64 * 1024;
/// A buffer this full (the writer is stuck) drops new lines.
const MAX_PENDING: usize = 8 * 1024 * 1024;

/// One request, as logged.
#[cfg_attr(test, derive(serde::Serialize))]
pub struct Line<'a> {
    /// The request id's bytes (checked when assigned: letters, digits,
    /// `-_.:`), escaped all the same.
    #[cfg_attr(test, serde(serialize_with = "tests::as_text"))]
    pub request_id: &'a [u8],
    pub peer: SocketAddr,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    /// The contract rule of a gateway-made response.
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    pub rule: Option<&'static str>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    pub route: Option<&'a str>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    pub upstream: Option<&'a str>,
    /// The trace id, when the request is traced.
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    pub trace_id: Option<&'a str>,
    pub micros: u128,
}

/// Where the lines go.
pub enum Output {
    Stdout,
    /// Appended to; reopened by path on `reopen`.
    File(PathBuf),
    /// Any writer (tests).
    Writer(Box<dyn Write + Send>),
}

/// The access log: the buffers and the writer thread.
pub struct AccessLog {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    /// One buffer per worker thread (other threads share worker 0's).
    buffers: Box<[Mutex<Vec<u8>>]>,
    writer: Thread,
    /// Told what the writer thread should do besides its periodic flush.
    control: Mutex<Sender<Control>>,
    stop: AtomicBool,
    dropped: AtomicU64,
}

enum Control {
    /// Write out, reopen the file, then answer.
    Reopen(Sender<io::Result<()>>),
    /// Write out everything, then answer and end.
    Finish(Sender<()>),
}

impl AccessLog {
    /// Lines go to `output`, from `workers` worker threads.
    pub fn start(output: Output, workers: usize) -> io::Result<Self> {
        let sink = Sink::open(output)?;
        let (tx, rx) = channel();
        let buffers: Box<[Mutex<Vec<u8>>]> = (0..workers.max(1))
            .map(|_| Mutex::new(Vec::new()))
            .collect();
        let (ready_tx, ready_rx) = channel::<Arc<Inner>>();
        let handle = std::thread::Builder::new()
            .name("candor-access-log".into())
            .spawn(move || {
                if let Ok(inner) = ready_rx.recv() {
                    write_loop(&inner, sink, &rx);
                }
            })?;
        let inner = Arc::new(Inner {
            buffers,
            writer: handle.thread().clone(),
            control: Mutex::new(tx),
            stop: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let _ = ready_tx.send(inner.clone());
        Ok(AccessLog { inner: Some(inner) })
    }

    /// A log that writes nothing.
    pub fn disabled() -> Self {
        AccessLog { inner: None }
    }

    /// Lines dropped because the writer could not keep up.
    #[cfg(test)]
    pub fn dropped(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.dropped.load(Ordering::Relaxed))
    }

    pub fn log(&self, line: Line<'_>) {
        let Some(inner) = &self.inner else { return };
        let slot = crate::upstream::worker_index() % inner.buffers.len();
        let Ok(mut buf) = inner.buffers[slot].lock() else {
            return;
        };
        if buf.len() >= MAX_PENDING {
            drop(buf);
            inner.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let before = buf.len();
        encode(&mut buf, &line);
        let wake = before < WAKE_AT && buf.len() >= WAKE_AT;
        drop(buf);
        if wake {
            inner.writer.unpark();
        }
    }

    /// Writes out what is buffered and reopens the file by its path (the
    /// old one was renamed away by logrotate). Returns once the lines
    /// logged before the call are in the old file and the new one is open.
    pub fn reopen(&self) -> io::Result<()> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let (tx, rx) = channel();
        inner.send(Control::Reopen(tx));
        rx.recv()
            .unwrap_or_else(|_| Err(io::Error::other("the access log writer has stopped")))
    }

    /// Writes out every line logged so far and stops the writer. Lines
    /// logged later are dropped.
    pub fn finish(&self) {
        let Some(inner) = &self.inner else { return };
        let (tx, rx) = channel();
        inner.send(Control::Finish(tx));
        let _ = rx.recv();
    }
}

impl Inner {
    fn send(&self, control: Control) {
        if let Ok(tx) = self.control.lock() {
            let _ = tx.send(control);
        }
        self.writer.unpark();
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        if let Some(inner) = &self.inner
            && !inner.stop.load(Ordering::Acquire)
        {
            self.finish();
        }
    }
}

/// The writer thread: swap each buffer for the spare, write it unlocked.
fn write_loop(inner: &Inner, mut sink: Sink, control: &std::sync::mpsc::Receiver<Control>) {
    let mut spare = Vec::new();
    loop {
        std::thread::park_timeout(FLUSH_EVERY);
        let mut failed = drain(inner, &mut sink, &mut spare).err();
        while let Ok(request) = control.try_recv() {
            match request {
                Control::Reopen(reply) => {
                    let outcome = drain(inner, &mut sink, &mut spare).and_then(|()| sink.reopen());
                    if let Err(e) = &outcome {
                        tracing::warn!(error = %e, "cannot reopen the access log");
                    }
                    failed = None;
                    let _ = reply.send(outcome);
                }
                Control::Finish(reply) => {
                    inner.stop.store(true, Ordering::Release);
                    let _ = drain(inner, &mut sink, &mut spare);
                    let _ = reply.send(());
                    return;
                }
            }
        }
        if let Some(e) = failed {
            // Keep going: the next reopen may fix it (a full disk freed).
            tracing::warn!(error = %e, "cannot write the access log");
        }
    }
}

/// Writes out every buffer (their lines stay whole: a buffer holds only
/// whole lines) and flushes.
fn drain(inner: &Inner, sink: &mut Sink, spare: &mut Vec<u8>) -> io::Result<()> {
    let mut outcome = Ok(());
    for buffer in &inner.buffers {
        {
            let Ok(mut buf) = buffer.lock() else { continue };
            if buf.is_empty() {
                continue;
            }
            std::mem::swap(&mut *buf, spare);
        }
        if outcome.is_ok() {
            outcome = sink.out.write_all(spare);
        } else {
            inner.dropped.fetch_add(
                spare.iter().filter(|&&b| b == b'\n').count() as u64,
                Ordering::Relaxed,
            );
        }
        // A buffer grown by a burst is not kept forever.
        if spare.capacity() > 4 * WAKE_AT {
            *spare = Vec::with_capacity(WAKE_AT);
        }
        spare.clear();
    }
    outcome.and_then(|()| sink.out.flush())
}

struct Sink {
    out: Box<dyn Write + Send>,
    path: Option<PathBuf>,
}

impl Sink {
    fn open(output: Output) -> io::Result<Sink> {
        Ok(match output {
            Output::Stdout => Sink {
                out: Box::new(io::stdout()),
                path: None,
            },
            Output::Writer(out) => Sink { out, path: None },
            Output::File(path) => Sink {
                out: Box::new(open_append(&path)?),
                path: Some(path),
            },
        })
    }

    fn reopen(&mut self) -> io::Result<()> {
        if let Some(path) = &self.path {
            self.out = Box::new(open_append(path)?);
        }
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Appends `line` as one JSON object and a newline: the fields written
/// straight into the buffer (the bytes serde_json would write).
fn encode(buf: &mut Vec<u8>, line: &Line<'_>) {
    // One reservation for the whole line: an escaped byte takes at most 6.
    let text = line.request_id.len()
        + line.method.len()
        + line.path.len()
        + line.rule.map_or(0, str::len)
        + line.route.map_or(0, str::len)
        + line.upstream.map_or(0, str::len)
        + line.trace_id.map_or(0, str::len);
    buf.reserve(192 + 6 * text);
    buf.extend_from_slice(b"{\"request_id\":");
    string(buf, line.request_id);
    buf.extend_from_slice(b",\"peer\":\"");
    peer(buf, line.peer);
    buf.extend_from_slice(b"\",\"method\":");
    string(buf, line.method.as_bytes());
    buf.extend_from_slice(b",\"path\":");
    string(buf, line.path.as_bytes());
    buf.extend_from_slice(b",\"status\":");
    number(buf, u64::from(line.status));
    if let Some(rule) = line.rule {
        buf.extend_from_slice(b",\"rule\":");
        string(buf, rule.as_bytes());
    }
    if let Some(route) = line.route {
        buf.extend_from_slice(b",\"route\":");
        string(buf, route.as_bytes());
    }
    if let Some(upstream) = line.upstream {
        buf.extend_from_slice(b",\"upstream\":");
        string(buf, upstream.as_bytes());
    }
    if let Some(trace_id) = line.trace_id {
        buf.extend_from_slice(b",\"trace_id\":");
        string(buf, trace_id.as_bytes());
    }
    buf.extend_from_slice(b",\"micros\":");
    number(buf, u64::try_from(line.micros).unwrap_or(u64::MAX));
    buf.extend_from_slice(b"}\n");
}

/// A JSON string. Nearly every field needs no escape: one branch-free scan
/// says so, and the bytes are copied whole.
fn string(buf: &mut Vec<u8>, s: &[u8]) {
    buf.push(b'"');
    let plain = !s.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        buf.extend_from_slice(s);
    } else {
        escaped(buf, s);
    }
    buf.push(b'"');
}

/// Quotes, backslashes and control characters escaped as serde_json does;
/// bytes that are not UTF-8 (a request id is checked, but still) as U+FFFD.
fn escaped(buf: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for chunk in s.utf8_chunks() {
        let bytes = chunk.valid().as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let short = match b {
                b'"' => b'"',
                b'\\' => b'\\',
                b'\n' => b'n',
                b'\r' => b'r',
                b'\t' => b't',
                0x08 => b'b',
                0x0c => b'f',
                0..=0x1f => 0,
                _ => continue,
            };
            buf.extend_from_slice(&bytes[start..i]);
            if short == 0 {
                buf.extend_from_slice(b"\\u00");
                buf.push(HEX[usize::from(b >> 4)]);
                buf.push(HEX[usize::from(b & 0xf)]);
            } else {
                buf.push(b'\\');
                buf.push(short);
            }
            start = i + 1;
        }
        buf.extend_from_slice(&bytes[start..]);
        if !chunk.invalid().is_empty() {
            buf.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
}

/// "00", "01", ... "99": two digits per division.
const PAIRS: [u8; 200] = {
    let mut pairs = [0u8; 200];
    let mut n = 0;
    while n < 100 {
        pairs[2 * n] = b'0' + (n / 10) as u8;
        pairs[2 * n + 1] = b'0' + (n % 10) as u8;
        n += 1;
    }
    pairs
};

fn number(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + n as u8;
    }
    buf.extend_from_slice(&digits[at..]);
}

/// `1.2.3.4:5`; IPv6 (`[::1]:5`) through the formatter, which is rare.
fn peer(buf: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                number(buf, u64::from(octet));
            }
            buf.push(b':');
            number(buf, u64::from(addr.port()));
        }
        IpAddr::V6(_) => {
            let _ = write!(buf, "{addr}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn as_text<S: serde::Serializer>(id: &&[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(id))
    }

    fn line<'a>(id: &'a str, path: &'a str, peer: &str, micros: u128) -> Line<'a> {
        Line {
            request_id: id.as_bytes(),
            peer: peer.parse().unwrap(),
            method: "GET",
            path,
            status: 404,
            rule: Some("route.unknown"),
            route: None,
            upstream: Some("app"),
            trace_id: None,
            micros,
        }
    }

    #[test]
    fn lines_are_the_json_serde_would_write() {
        let odd = "/a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f}/é/✓";
        for l in [
            line("5f0c1a2b-17", "/nope", "127.0.0.1:50312", 41),
            line("x", odd, "[::1]:8080", 0),
            line("", "", "255.255.255.0:0", u128::from(u64::MAX)),
            line("a\u{7f}b", "/x", "1.0.10.100:65535", 9),
            Line {
                request_id: b"bad\xffbyte\"",
                ..line("", "/?", "0.0.0.0:10", 10)
            },
            Line {
                route: Some("/users/{id}"),
                rule: None,
                upstream: None,
                ..line("id", "/users/1", "10.0.0.1:1", 1_000_000)
            },
            Line {
                trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
                ..line("t", "/traced", "10.0.0.2:2", 7)
            },
        ] {
            let mut buf = Vec::new();
            encode(&mut buf, &l);
            let mut want = serde_json::to_vec(&l).unwrap();
            want.push(b'\n');
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }

    #[test]
    fn numbers_are_their_decimal_digits() {
        let mut values = vec![
            0,
            1,
            9,
            10,
            11,
            99,
            100,
            101,
            255,
            999,
            1000,
            65535,
            u64::MAX,
        ];
        values.extend((0..64).map(|shift| 1u64 << shift));
        values.extend((1..20).map(|p| 10u64.pow(p) - 1));
        for n in values {
            let mut buf = Vec::new();
            number(&mut buf, n);
            assert_eq!(String::from_utf8(buf).unwrap(), n.to_string());
        }
    }

    /// A writer the test can read.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn finish_writes_out_every_line_from_every_thread() {
        let out = Captured::default();
        let log = Arc::new(AccessLog::start(Output::Writer(Box::new(out.clone())), 2).unwrap());
        let threads: Vec<_> = (0..3)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    crate::upstream::set_worker_index(t);
                    for i in 0..5000 {
                        let id = format!("{t}-{i}");
                        log.log(line(&id, "/p", "127.0.0.1:1", 1));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        log.finish();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let mut ids: Vec<String> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["request_id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 15_000);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 15_000, "no line twice");
        assert_eq!(log.dropped(), 0);
    }
}
