//! Report options shared by `candor lint` and `candor audit`.

use candor_audit::report::{Format, RunInfo};
use candor_audit::{Case, Located, Sink, Skipped, Summary};
use candor_contract::Severity;
use clap::{Args, ValueEnum};

use crate::Outcome;

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Report format.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,

    /// Exit 1 when a finding of this severity or worse is found.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,

    /// Never draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Findings grouped by rule, for people.
    Table,
    /// One JSON document, streamed.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// JUnit XML, one test case per check, for CI.
    Junit,
    /// One self-contained HTML page with a score and charts.
    Html,
}

impl FormatArg {
    pub fn format(self) -> Format {
        match self {
            FormatArg::Table => Format::Table,
            FormatArg::Json => Format::Json,
            FormatArg::Sarif => Format::Sarif,
            FormatArg::Junit => Format::Junit,
            FormatArg::Html => Format::Html,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Error,
    Warn,
    Info,
    /// Always exit 0 when the input could be read.
    Never,
}

impl ReportArgs {
    /// The severity that makes the exit code 1; `None` for `never`.
    pub fn threshold(&self) -> Option<Severity> {
        match self.fail_on {
            FailOn::Error => Some(Severity::Error),
            FailOn::Warn => Some(Severity::Warn),
            FailOn::Info => Some(Severity::Info),
            FailOn::Never => None,
        }
    }

    /// What the report says about the run: its verdict's threshold, and
    /// what was audited as `audited` names it.
    pub fn run_info(&self, audited: &[(&str, &str)]) -> RunInfo {
        let mut info = RunInfo::new();
        info.fail_on = self.threshold();
        for (label, value) in audited {
            info = info.audited(*label, *value);
        }
        info
    }

    /// The exit outcome for a run that ended with `summary`.
    pub fn outcome(&self, summary: &Summary) -> Outcome {
        match self.threshold() {
            Some(t) if summary.reaches(t) => Outcome::Findings,
            _ => Outcome::Clean,
        }
    }
}

/// Passes everything to the report, and also names each skipped entry on
/// stderr as it happens, so no input is dropped silently whatever the format.
pub struct WarnSkipped<'a>(pub &'a mut dyn Sink);

impl Sink for WarnSkipped<'_> {
    fn finding(&mut self, finding: &Located) -> std::io::Result<()> {
        self.0.finding(finding)
    }

    fn skipped(&mut self, skipped: &Skipped) -> std::io::Result<()> {
        eprintln!("candor: skipped {skipped}");
        self.0.skipped(skipped)
    }

    fn case(&mut self, case: &Case) -> std::io::Result<()> {
        self.0.case(case)
    }

    fn finish(&mut self, summary: &Summary) -> std::io::Result<()> {
        self.0.finish(summary)
    }
}
