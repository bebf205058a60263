//! `candor lint`: recorded traffic or OpenAPI documents in, findings out.
//!
//! Each file is told apart by its content: an OpenAPI document goes through
//! the static rules, HAR and JSON lines are traffic for the passive rules,
//! and anything else is refused before anything is printed.

use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;

use anyhow::{Context, Result};
use candor_audit::input::{self, InputError, Kind};
use candor_audit::lint::{self, LintOptions, Progress};
use candor_audit::openapi::lint::Grouping;
use candor_audit::openapi::{self, Document, LoadError};
use candor_audit::{Case, Located, Sink, Skipped, Summary, report};
use candor_contract::CheckOptions;
use candor_contract::words::{agree, count};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Outcome;
use crate::report_args::{ReportArgs, WarnSkipped};

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files to lint: HAR 1.2 or JSON lines (one exchange per line), plain
    /// or gzip, or OpenAPI 3.0/3.1 documents (YAML or JSON); `-` reads
    /// traffic from stdin. The format is detected from the content.
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

    /// OpenAPI documents: one finding per operation, instead of one per
    /// cause (a shared component, a security scheme, a pattern repeated
    /// across the document) listing the operations it affects.
    #[arg(long)]
    expand: bool,
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
    // Every file is recognised, and every document read, before anything
    // is written: a file that is none of the kinds, or a spec that does
    // not load, stops the run with its file and line, not half a report.
    let mut specs = Vec::new();
    let mut traffic = Vec::new();
    for file in &args.files {
        if file == input::STDIN {
            traffic.push(file.clone());
            continue;
        }
        match input::identify(file) {
            Ok(Kind::Traffic(_)) => traffic.push(file.clone()),
            Ok(Kind::Document) => specs.push(Document::load(file).map_err(|e| match e {
                // YAML that is no OpenAPI document might have been meant
                // as anything candor reads: say all three.
                LoadError::NotOpenApi { file, found } => {
                    anyhow::Error::new(InputError::Unrecognised { file, found })
                }
                other => anyhow::Error::new(other),
            })?),
            Err(e) => return Err(e.into()),
        }
    }
    let mut audited: Vec<(&str, &str)> = specs.iter().map(|d| ("Document", &d.file[..])).collect();
    audited.extend(traffic.iter().map(|f| ("Traffic", &f[..])));
    let mut info = args.report.run_info(&audited);
    if let [doc] = &specs[..] {
        info = info.document(doc);
    }
    let stdout = io::stdout();
    let mut sink = report::sink_with(format, Box::new(stdout), info);
    let bar = TerminalProgress::new(!args.report.no_progress && io::stderr().is_terminal());
    let mut sink = WarnSkipped(sink.as_mut());
    let grouping = if args.expand {
        Grouping::Expand
    } else {
        Grouping::ByCause
    };
    let linted = lint_specs(&specs, grouping, &mut sink).context("lint failed");
    // The documents are done with: freeing a large one node by node costs
    // more than reading it, and the process ends soon anyway.
    std::mem::forget(specs);
    let specs = linted?;
    // Traffic after the documents, all in one run, so that rules spanning
    // exchanges still see every traffic file as one sequence.
    let mut sink = WithSpecs {
        inner: &mut sink,
        specs,
    };
    let summary = lint::run(&traffic, &options, &bar, &mut sink).context("lint failed")?;
    let summary = merge(summary, &specs);
    io::stdout().flush()?;
    if summary.skipped > 0 {
        anyhow::bail!(
            "{} could not be read and {} skipped (reported above)",
            count(summary.skipped, "entry", "entries"),
            agree(summary.skipped, "was", "were")
        );
    }
    Ok(args.report.outcome(&summary))
}

/// The static rules over each document, into `sink`: every finding, then
/// one case per rule. Each operation counts as an exchange.
fn lint_specs(docs: &[Document], grouping: Grouping, sink: &mut dyn Sink) -> io::Result<Summary> {
    let mut summary = Summary::default();
    for doc in docs {
        let ops = openapi::operations(doc);
        summary.exchanges += ops.len() as u64;
        let linted = openapi::lint::lint_grouped(doc, &ops, grouping);
        for located in &linted.findings {
            summary.count(located.finding.severity);
            sink.finding(located)?;
        }
        for case in openapi::lint::cases(&doc.file, &linted.findings) {
            sink.case(&case)?;
        }
        // Checks a remote (or broken) `$ref` kept from judging.
        for case in &linted.skipped {
            sink.case(case)?;
        }
    }
    Ok(summary)
}

/// Counts of two parts of one run, added.
fn merge(a: Summary, b: &Summary) -> Summary {
    Summary {
        exchanges: a.exchanges + b.exchanges,
        errors: a.errors + b.errors,
        warnings: a.warnings + b.warnings,
        infos: a.infos + b.infos,
        skipped: a.skipped + b.skipped,
    }
}

/// Passes the traffic run through, and finishes the report with the
/// documents' counts added to the traffic's.
struct WithSpecs<'a> {
    inner: &'a mut dyn Sink,
    specs: Summary,
}

impl Sink for WithSpecs<'_> {
    fn finding(&mut self, finding: &Located) -> io::Result<()> {
        self.inner.finding(finding)
    }

    fn skipped(&mut self, skipped: &Skipped) -> io::Result<()> {
        self.inner.skipped(skipped)
    }

    fn case(&mut self, case: &Case) -> io::Result<()> {
        self.inner.case(case)
    }

    fn finish(&mut self, summary: &Summary) -> io::Result<()> {
        self.inner.finish(&merge(*summary, &self.specs))
    }
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
