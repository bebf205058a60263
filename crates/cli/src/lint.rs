//! `candor lint`: recorded traffic in, findings out.

use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;

use anyhow::{Context, Result};
use candor_audit::lint::{self, LintOptions, Progress};
use candor_audit::report::{self, Format};
use candor_audit::{Located, Sink, Skipped, Summary};
use candor_contract::{CheckOptions, Severity};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Outcome;

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files to lint: HAR 1.2 or JSON lines (one exchange per line), plain
    /// or gzip; `-` reads stdin. The format is detected from the content.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,

    /// Report format.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    format: FormatArg,

    /// Exit 1 when a finding of this severity or worse is found.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    fail_on: FailOn,

    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,

    /// Response bodies larger than this are not inspected.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    max_body_bytes: usize,

    /// Treat every exchange as a JSON API call (otherwise detected from
    /// the request's Accept and Content-Type and the URL).
    #[arg(long)]
    assume_json_api: bool,

    /// Never draw a progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Table,
    Json,
    Sarif,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FailOn {
    Error,
    Warn,
    Info,
    /// Always exit 0 when the input could be read.
    Never,
}

pub fn run(args: LintArgs) -> Result<Outcome> {
    let format = match args.format {
        FormatArg::Table => Format::Table,
        FormatArg::Json => Format::Json,
        FormatArg::Sarif => Format::Sarif,
    };
    let options = LintOptions {
        threads: args.threads,
        check: CheckOptions {
            max_body_bytes: args.max_body_bytes,
            assume_json_api: args.assume_json_api,
        },
    };
    let stdout = io::stdout();
    let mut sink = report::sink(format, Box::new(stdout));
    let bar = TerminalProgress::new(!args.no_progress && io::stderr().is_terminal());
    let mut sink = WarnSkipped(sink.as_mut());
    let summary = lint::run(&args.files, &options, &bar, &mut sink).context("lint failed")?;
    io::stdout().flush()?;
    if summary.skipped > 0 {
        anyhow::bail!(
            "{} entr{} could not be read and were skipped (reported above)",
            summary.skipped,
            if summary.skipped == 1 { "y" } else { "ies" }
        );
    }
    let threshold = match args.fail_on {
        FailOn::Error => Some(Severity::Error),
        FailOn::Warn => Some(Severity::Warn),
        FailOn::Info => Some(Severity::Info),
        FailOn::Never => None,
    };
    Ok(match threshold {
        Some(t) if summary.reaches(t) => Outcome::Findings,
        _ => Outcome::Clean,
    })
}

/// A byte-based progress bar on stderr, drawn only on a terminal.
struct TerminalProgress {
    bar: Mutex<Option<ProgressBar>>,
    enabled: bool,
}

impl TerminalProgress {
    fn new(enabled: bool) -> Self {
        TerminalProgress {
            bar: Mutex::new(None),
            enabled,
        }
    }
}

impl Progress for TerminalProgress {
    fn start_file(&self, name: &str, total_bytes: Option<u64>) {
        if !self.enabled {
            return;
        }
        let bar = match total_bytes {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::no_length(),
        };
        bar.set_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{msg} {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(name.to_owned());
        if let Ok(mut slot) = self.bar.lock()
            && let Some(old) = slot.replace(bar)
        {
            old.finish_and_clear();
        }
    }

    fn advance(&self, bytes: u64) {
        if let Ok(slot) = self.bar.lock()
            && let Some(bar) = slot.as_ref()
        {
            bar.inc(bytes);
        }
    }

    fn finish(&self) {
        if let Ok(mut slot) = self.bar.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }
}

/// Passes everything to the report, and also names each skipped entry on
/// stderr as it happens, so no input is dropped silently whatever the format.
struct WarnSkipped<'a>(&'a mut dyn Sink);

impl Sink for WarnSkipped<'_> {
    fn finding(&mut self, finding: &Located) -> io::Result<()> {
        self.0.finding(finding)
    }

    fn skipped(&mut self, skipped: &Skipped) -> io::Result<()> {
        eprintln!("candor: skipped {skipped}");
        self.0.skipped(skipped)
    }

    fn finish(&mut self, summary: &Summary) -> io::Result<()> {
        self.0.finish(summary)
    }
}
