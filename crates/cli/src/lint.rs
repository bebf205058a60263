//! `candor lint`: recorded traffic in, findings out.

use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;

use anyhow::{Context, Result};
use candor_audit::lint::{self, LintOptions, Progress};
use candor_audit::report;
use candor_contract::CheckOptions;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Outcome;
use crate::report_args::{ReportArgs, WarnSkipped};

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files to lint: HAR 1.2 or JSON lines (one exchange per line), plain
    /// or gzip; `-` reads stdin. The format is detected from the content.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,

    #[command(flatten)]
    report: ReportArgs,

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
}

pub fn run(args: LintArgs) -> Result<Outcome> {
    let format = args.report.format.format();
    let options = LintOptions {
        threads: args.threads,
        check: CheckOptions {
            max_body_bytes: args.max_body_bytes,
            assume_json_api: args.assume_json_api,
        },
    };
    let stdout = io::stdout();
    let mut sink = report::sink(format, Box::new(stdout));
    let bar = TerminalProgress::new(!args.report.no_progress && io::stderr().is_terminal());
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
    Ok(args.report.outcome(&summary))
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
