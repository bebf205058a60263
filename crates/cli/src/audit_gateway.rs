//! `candor audit gateway`: the gateway fault suite (contract.md section 4).
//!
//! The gateway under test routes `--faults-prefix` to `candor faults` and
//! `--dead-prefix` to a closed port, with an upstream timeout shorter than
//! `--slow-ms`. Each scenario's answer and expectation are printed (to
//! stdout before the table report, to stderr with a machine format), and
//! the findings go through the chosen report.

use std::io::{self, Write};
use std::time::Duration;

use anyhow::{Context, Result};
use candor_audit::http::{Client, ClientOptions};
use candor_audit::report;
use candor_audit::suite::{self, DEFAULT_SLOW_MS, SuiteError, SuiteOptions, SuiteReport};
use clap::Args;
use comfy_table::{ContentArrangement, Table, presets};

use crate::Outcome;
use crate::report_args::{FormatArg, ReportArgs};

/// Requests one run may send: a preflight and eight scenarios, with room.
const BUDGET: u64 = 16;

#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The gateway's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub url: String,

    /// The path prefix the gateway routes to `candor faults`.
    #[arg(long, value_name = "PATH", default_value = "/f")]
    pub faults_prefix: String,

    /// The path prefix the gateway routes to a closed port.
    #[arg(long, value_name = "PATH", default_value = "/dead")]
    pub dead_prefix: String,

    /// How long the slow upstream waits before answering, in milliseconds
    /// (at most 60000). The gateway's upstream timeout must be shorter.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_SLOW_MS)]
    pub slow_ms: u64,

    /// Limit per request, connect to last body byte: a duration (`10s`,
    /// `1500ms`, `1.5m`; docs/config.md#values) or a number of seconds.
    /// Must be longer than --slow-ms.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Accept a certificate no root vouches for (a gateway with a private CA).
    #[arg(long)]
    pub insecure: bool,

    #[command(flatten)]
    pub report: ReportArgs,
}

/// `--timeout`: no upper bound but the grammar's.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    crate::audit::timeout(text, Duration::MAX)
}

pub fn run(args: GatewayArgs) -> Result<Outcome> {
    let client = Client::new(ClientOptions {
        budget: BUDGET,
        concurrency: BUDGET as usize,
        timeout: args.timeout,
        insecure: args.insecure,
        ..ClientOptions::default()
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let options = SuiteOptions {
        base_url: args.url.clone(),
        faults_prefix: args.faults_prefix.clone(),
        dead_prefix: args.dead_prefix.clone(),
        slow_ms: args.slow_ms,
    };
    let runtime = crate::audit::runtime()?;

    let info = args.report.run_info(&[("Gateway", &args.url)]);
    let mut sink = report::sink_with(args.report.format.format(), Box::new(io::stdout()), info);
    let outcome = runtime.block_on(suite::run(&client, &options, sink.as_mut()));
    let report = match outcome {
        Ok(report) => report,
        Err(SuiteError::Report(e)) => return Err(e).context("cannot write the report"),
        Err(e) => anyhow::bail!("audit gateway: {e}"),
    };

    if args.report.format == FormatArg::Table {
        let mut out = io::stdout().lock();
        writeln!(out, "{}\n", scenario_table(&report))?;
        out.flush()?;
    } else {
        let mut err = io::stderr().lock();
        for line in scenario_lines(&report) {
            // A closed stderr must not hide the report on stdout.
            let _ = writeln!(err, "{line}");
        }
    }
    sink.finish(&report.summary)?;
    io::stdout().flush()?;
    Ok(args.report.outcome(&report.summary))
}

/// The scenario table of the human report, with the score under it.
fn scenario_table(report: &SuiteReport) -> String {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(100)
        .set_header(["Scenario", "Answered", "Expected", "Result"]);
    for scenario in &report.scenarios {
        table.add_row([
            scenario.scenario.name().to_owned(),
            scenario.answered(),
            scenario.expected.clone(),
            if scenario.passed { "pass" } else { "FAIL" }.to_owned(),
        ]);
    }
    if let Some(identity) = report.cases.last() {
        table.add_row([
            identity.subject.clone(),
            "X-Upstream-Service / X-Failure-Type on the 5xx above".to_owned(),
            identity.rule.expects.to_owned(),
            result_word(&identity.outcome),
        ]);
    }
    let (passed, ran) = report.score();
    let checks = candor_contract::words::agree(ran, "check", "checks");
    format!("{table}\nscore: {passed}/{ran} {checks} passed")
}

/// The same, one line per check, for stderr when stdout is JSON or SARIF:
/// `candor: scenario NAME: RESULT: SHORT: answered ...; expected ...`.
fn scenario_lines(report: &SuiteReport) -> Vec<String> {
    let mut lines: Vec<String> = report
        .scenarios
        .iter()
        .map(|scenario| {
            format!(
                "candor: scenario {}: {}: {}: answered {}; expected {}",
                scenario.scenario.name(),
                if scenario.passed { "pass" } else { "FAIL" },
                scenario.short(),
                scenario.answered(),
                scenario.expected
            )
        })
        .collect();
    if let Some(identity) = report.cases.last() {
        lines.push(format!(
            "candor: scenario {}: {}: -: expected {}",
            identity.subject,
            result_word(&identity.outcome),
            identity.rule.expects
        ));
    }
    let (passed, ran) = report.score();
    lines.push(format!("candor: score {passed}/{ran}"));
    lines
}

fn result_word(outcome: &candor_audit::CaseOutcome) -> String {
    match outcome {
        candor_audit::CaseOutcome::Passed => "pass".into(),
        candor_audit::CaseOutcome::Failed(severity) => format!("FAIL ({severity})"),
        candor_audit::CaseOutcome::Skipped(why) => format!("skipped ({why})"),
    }
}
