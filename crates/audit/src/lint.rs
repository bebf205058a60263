//! The lint engine: every exchange of recorded traffic through the
//! contract's passive rules, on all cores, with findings in input order.
//!
//! One reader thread splits the input into batches; worker threads parse
//! the entries and run [`check_exchange`]; the calling thread puts the
//! batches back in order, feeds [`History`] (the rules that span several
//! exchanges) and the [`Sink`]. A fixed number of batch tokens bounds what
//! is in flight, so memory stays flat however big the input is, and the
//! output is the same whatever the number of threads.

use std::any::Any;
use std::collections::BTreeMap;
use std::io;
use std::io::Read;
use std::num::NonZeroUsize;
use std::ops::ControlFlow;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, PoisonError, mpsc};
use std::thread;

use candor_contract::{
    CheckOptions, Exchange, Finding, History, Request, Response, check_exchange,
};

use crate::input::{self, Batch, Entry, InputError, Traffic};
use crate::{Located, Sink, Skipped, Summary};

/// Batches in flight per worker thread: read, being checked, or waiting
/// for an earlier batch to be written. A batch is about 1 MiB of input.
const BATCHES_PER_WORKER: usize = 4;

/// How to lint.
#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    /// Worker threads; 0 means one per available core.
    pub threads: usize,
    pub check: CheckOptions,
}

/// Told how far reading has got, for a progress bar. Called from the
/// reader thread, hence `Sync`.
pub trait Progress: Send + Sync {
    /// A file starts; its size in bytes (compressed, for gzip) when known.
    fn start_file(&self, name: &str, total_bytes: Option<u64>);
    /// `bytes` more bytes of the current file were read (as stored).
    fn advance(&self, bytes: u64);
    /// The current file is done, read to its end or not.
    fn finish(&self);
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start_file(&self, _name: &str, _total_bytes: Option<u64>) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// Why a run stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    /// A whole input file could not be read; the message names it.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The sink failed (a closed pipe, a full disk).
    #[error("cannot write the report: {0}")]
    Output(io::Error),
}

impl LintError {
    /// The I/O error underneath, if any (a closed pipe is not a failure).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            LintError::Input(error) => error.io_error(),
            LintError::Output(error) => Some(error),
        }
    }
}

/// Lints `inputs` in order (`-` is standard input) and reports to `sink`.
///
/// Files are linted one after another, and rules that span exchanges see
/// them all as one sequence: a DELETE in one file and a 404 for the same
/// URL in the next still count. Entries that cannot be read go to
/// [`Sink::skipped`]; a file that cannot be read at all stops the run.
/// [`Sink::finish`] is called only when every file was read.
pub fn run(
    inputs: &[String],
    options: &LintOptions,
    progress: &dyn Progress,
    sink: &mut dyn Sink,
) -> Result<Summary, LintError> {
    let workers = match options.threads {
        0 => thread::available_parallelism().map_or(1, NonZeroUsize::get),
        n => n,
    };
    let mut collector = Collector {
        sink,
        history: History::default(),
        summary: Summary::default(),
    };
    for file in inputs {
        lint_file(file, workers, &options.check, progress, &mut collector)?;
    }
    collector
        .sink
        .finish(&collector.summary)
        .map_err(LintError::Output)?;
    Ok(collector.summary)
}

fn lint_file(
    file: &str,
    workers: usize,
    check: &CheckOptions,
    progress: &dyn Progress,
    collector: &mut Collector<'_>,
) -> Result<(), LintError> {
    let raw = input::open(file)?;
    progress.start_file(file, raw.len);
    let counted = Counted {
        inner: raw.reader,
        progress,
    };
    let result = input::decode(file, counted)
        .map_err(LintError::from)
        .and_then(|traffic| {
            if workers <= 1 {
                lint_sequential(traffic, file, check, collector)
            } else {
                lint_parallel(traffic, file, workers, check, collector)
            }
        });
    progress.finish();
    result
}

/// Everything on the calling thread.
fn lint_sequential(
    traffic: Traffic<'_>,
    file: &str,
    check: &CheckOptions,
    collector: &mut Collector<'_>,
) -> Result<(), LintError> {
    let mut output = Ok(());
    traffic.read_batches(file, |batch| {
        output = collector.write(file, lint_batch(batch, file, check));
        if output.is_ok() {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    })?;
    output.map_err(LintError::Output)
}

/// A reader thread, `workers` checking threads, and the calling thread
/// writing results in order.
fn lint_parallel(
    traffic: Traffic<'_>,
    file: &str,
    workers: usize,
    check: &CheckOptions,
    collector: &mut Collector<'_>,
) -> Result<(), LintError> {
    let window = workers * BATCHES_PER_WORKER;
    // The reader takes a token per batch; the collector gives it back once
    // the batch is written. Neither channel below can hold more than that.
    let (token_tx, token_rx) = mpsc::sync_channel::<()>(window);
    for _ in 0..window {
        token_tx
            .send(())
            .expect("the token channel has room for the window");
    }
    let (batch_tx, batch_rx) = mpsc::channel::<(u64, Batch)>();
    let batch_rx = Mutex::new(batch_rx);
    let (result_tx, result_rx) = mpsc::channel::<(u64, Linted)>();

    thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut seq = 0;
            traffic.read_batches(file, |batch| {
                if token_rx.recv().is_err() || batch_tx.send((seq, batch)).is_err() {
                    return ControlFlow::Break(());
                }
                seq += 1;
                ControlFlow::Continue(())
            })
        });
        for _ in 0..workers {
            let result_tx = result_tx.clone();
            let batch_rx = &batch_rx;
            scope.spawn(move || {
                loop {
                    let next = batch_rx
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .recv();
                    let Ok((seq, batch)) = next else { break };
                    // A panic must reach the collector, or it would wait
                    // for this batch forever.
                    let linted =
                        panic::catch_unwind(AssertUnwindSafe(|| lint_batch(batch, file, check)));
                    if result_tx.send((seq, linted)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(result_tx);

        let written = collect_in_order(result_rx, token_tx, file, collector);
        let read = reader
            .join()
            .unwrap_or_else(|payload| panic::resume_unwind(payload));
        written?;
        read.map_err(LintError::from)
    })
}

/// Writes batch results in sequence order until every worker is done.
/// Dropping `tokens` on return stops the reader.
fn collect_in_order(
    results: mpsc::Receiver<(u64, Linted)>,
    tokens: mpsc::SyncSender<()>,
    file: &str,
    collector: &mut Collector<'_>,
) -> Result<(), LintError> {
    let mut pending = BTreeMap::new();
    let mut next = 0u64;
    for (seq, linted) in results {
        pending.insert(seq, linted);
        while let Some(linted) = pending.remove(&next) {
            let outcomes = linted.unwrap_or_else(|payload| panic::resume_unwind(payload));
            collector.write(file, outcomes).map_err(LintError::Output)?;
            // Cannot block: a token is only returned after one was taken.
            let _ = tokens.send(());
            next += 1;
        }
    }
    Ok(())
}

/// A batch's results, or the panic that interrupted them.
type Linted = Result<Vec<Outcome>, Box<dyn Any + Send>>;

/// What became of one entry.
enum Outcome {
    Checked {
        entry: usize,
        line: Option<usize>,
        /// Method, URL and status are all that [`History`] and [`Located`]
        /// need; headers and bodies are dropped on the worker.
        method: String,
        url: String,
        status: u16,
        findings: Vec<Finding>,
    },
    Skipped(Skipped),
}

/// Parses and checks one batch; pure, so any thread may run it.
fn lint_batch(batch: Batch, file: &str, check: &CheckOptions) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(batch.len());
    batch.parse(file, |entry| {
        outcomes.push(match entry {
            Entry::Exchange(recorded) => {
                let findings = check_exchange(&recorded.exchange, check);
                let Exchange { request, response } = recorded.exchange;
                Outcome::Checked {
                    entry: recorded.entry,
                    line: recorded.line,
                    method: request.method,
                    url: request.url,
                    status: response.status,
                    findings,
                }
            }
            Entry::Skipped(skipped) => Outcome::Skipped(skipped),
        });
    });
    outcomes
}

/// The in-order end of the pipeline: history, summary and sink.
struct Collector<'s> {
    sink: &'s mut dyn Sink,
    history: History,
    summary: Summary,
}

impl Collector<'_> {
    fn write(&mut self, file: &str, outcomes: Vec<Outcome>) -> io::Result<()> {
        for outcome in outcomes {
            match outcome {
                Outcome::Skipped(skipped) => {
                    self.summary.skipped += 1;
                    self.sink.skipped(&skipped)?;
                }
                Outcome::Checked {
                    entry,
                    line,
                    method,
                    url,
                    status,
                    findings,
                } => {
                    self.summary.exchanges += 1;
                    // History looks only at method, URL and status.
                    let exchange = Exchange {
                        request: Request {
                            method,
                            url,
                            ..Request::default()
                        },
                        response: Response {
                            status,
                            ..Response::default()
                        },
                    };
                    let later = self.history.observe(&exchange);
                    for finding in findings.into_iter().chain(later) {
                        self.summary.count(finding.severity);
                        self.sink.finding(&Located::traffic(
                            file,
                            entry,
                            line,
                            exchange.request.method.as_str(),
                            exchange.request.url.as_str(),
                            exchange.response.status,
                            finding,
                        ))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Reports every byte read from a file to the progress bar.
struct Counted<'p> {
    inner: Box<dyn Read + Send>,
    progress: &'p dyn Progress,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
