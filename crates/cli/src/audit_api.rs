//! `candor audit --spec api.yaml --base-url URL`: the active probes of
//! contract section 3 against a live API.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use candor_audit::http::{self, Client, ClientOptions};
use candor_audit::openapi::Document;
use candor_audit::probe::{self, Credentials, MAX_BURST, ProbeOptions, Progress};
use candor_audit::report;
use candor_contract::words::count;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Outcome;
use crate::report_args::{ReportArgs, WarnSkipped};

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The API's OpenAPI 3.0 or 3.1 document (YAML or JSON): a file, or an
    /// http(s) URL the API serves it at (fetched once, at most 64 MiB
    /// within --timeout, no redirect followed).
    #[arg(long, value_name = "FILE|URL", required = true)]
    pub spec: Option<String>,

    /// Where the API answers, e.g. https://staging.example.com/v1 (default:
    /// the document's first server URL, when it is absolute).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// Credentials for a role, e.g. admin="Bearer eyJ...". The value is the
    /// whole Authorization header value, or `Header-Name: value` for
    /// another header. Repeatable. Role `expired` marks an expired token,
    /// `invalid` a garbage one (generated when not given).
    #[arg(long = "auth", value_name = "ROLE=VALUE")]
    pub auth: Vec<String>,

    /// Also send DELETE (only to resources the run created), writes to
    /// resources the run did not create, and the --burst.
    #[arg(long)]
    pub allow_destructive: bool,

    /// Opt in to probe.rate_burst: up to N requests to one GET operation
    /// (one that declares 429 first), stopping at the first 429 (needs
    /// --allow-destructive).
    #[arg(long, value_name = "N", requires = "allow_destructive",
          value_parser = clap::value_parser!(u32).range(1..=MAX_BURST as i64))]
    pub burst: Option<u32>,

    /// Requests the whole run may send.
    #[arg(long, value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub budget: u64,

    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,

    /// How long each request may take, connect to last byte: a duration
    /// (`10s`, `1.5m`, `250ms`; docs/config.md#values) or a number of
    /// seconds, at most 10 minutes.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Accept TLS certificates no trusted root vouches for (a staging
    /// server with a private CA).
    #[arg(long)]
    pub insecure: bool,

    /// Show --auth values in the reported requests and curl lines (by
    /// default they read `Bearer <ROLE credential>`).
    #[arg(long)]
    pub reveal_credentials: bool,

    #[command(flatten)]
    pub report: ReportArgs,
}

/// `--timeout`: at most the 600 s it has always been bounded by.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    crate::audit::timeout(text, Duration::from_secs(600))
}

pub fn run(args: ApiArgs) -> Result<Outcome> {
    let Some(spec) = args.spec.as_deref() else {
        bail!("--spec is required");
    };
    let runtime = crate::audit::runtime()?;
    // The error names the file or URL (and line) itself.
    let doc = if http::is_url(spec) {
        let text = runtime
            .block_on(http::fetch_document(
                spec,
                args.timeout,
                http::MAX_DOCUMENT,
                args.insecure,
            ))
            .map_err(|e| anyhow::anyhow!("cannot fetch the document: {e}"))?;
        // Relative `$ref`s in a fetched document are never fetched: they
        // stay unresolved, as remote ones do in a file.
        Document::parse(spec, &text)
    } else {
        Document::load(spec)
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let credentials = Credentials::parse(args.auth.iter().map(String::as_str))?;
    let base_url = match &args.base_url {
        Some(url) => url.clone(),
        None => {
            // A relative server URL is relative to where the document was
            // fetched from.
            let served_at = http::is_url(spec).then_some(spec);
            let url = doc.base_url(served_at).with_context(|| {
                format!("--base-url is required: {spec} declares no absolute server URL")
            })?;
            eprintln!(
                "candor: probing {url}, the first server of {spec} (--base-url chooses another)"
            );
            url
        }
    };
    probe::base_url(&base_url)?;
    let client = Client::new(ClientOptions {
        budget: args.budget,
        concurrency: args.concurrency as usize,
        timeout: args.timeout,
        insecure: args.insecure,
        ..ClientOptions::default()
    })?;
    let options = ProbeOptions {
        base_url: base_url.clone(),
        credentials,
        allow_destructive: args.allow_destructive,
        burst: args.burst,
        reveal_credentials: args.reveal_credentials,
    };
    let info = args
        .report
        .run_info(&[("Base URL", &base_url), ("Document", spec)])
        .document(&doc);
    let mut sink = report::sink_with(args.report.format.format(), Box::new(io::stdout()), info);
    let bar = TerminalProgress::new(!args.report.no_progress && io::stderr().is_terminal());
    let mut sink = WarnSkipped(sink.as_mut());
    let report = runtime
        .block_on(probe::run(&doc, &options, &client, &bar, &mut sink))
        .context("audit failed")?;
    io::stdout().flush()?;
    if report.budget_exhausted {
        eprintln!(
            "candor: the budget of {} ran out; the probes it did not cover are reported as skipped (raise --budget)",
            count(args.budget, "request", "requests")
        );
    }
    if report.responses == 0 && report.requests > 0 {
        bail!(
            "{base_url} answered no request: {}",
            report.first_error.as_deref().unwrap_or("no response")
        );
    }
    Ok(args.report.outcome(&report.summary))
}

/// A step-count progress bar on stderr, drawn only on a terminal.
struct TerminalProgress {
    bar: ProgressBar,
}

impl TerminalProgress {
    fn new(enabled: bool) -> Self {
        if !enabled {
            return TerminalProgress {
                bar: ProgressBar::hidden(),
            };
        }
        let bar = ProgressBar::new(0);
        bar.set_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("probing {wide_bar} {pos}/{len} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        TerminalProgress { bar }
    }
}

impl Progress for TerminalProgress {
    fn start(&self, total: u64) {
        self.bar.set_length(total);
    }

    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
