//! The HTML report: one self-contained page to share or attach to a CI run.
//!
//! Everything is inline (CSS, and charts drawn here as SVG), nothing runs
//! and nothing is fetched: a Content-Security-Policy forbids any load, and
//! every byte of input is escaped. The page reads top down as a person
//! asks: what was audited (base URL or files, the document's title and
//! version, the date, candor's version); the verdict, coloured by the exit
//! code `--fail-on` gives (not by the score); what failed, each failed
//! check linking to its evidence further down; for probe runs, a matrix of
//! operations by checks (passed, failed, skipped: a symbol and a word, not
//! colour alone); the findings grouped by rule with their evidence; every
//! check; charts; and a catalog of the rules the page names, which every
//! rule ID links to (in the page, so the file stays self-contained; each
//! entry names its section of docs/rules.md). Only the first
//! [`EXAMPLES_PER_RULE`] findings of each rule are kept, plus the evidence
//! of failed checks; the rest are counted.
//!
//! The score, from 0 to 100, is shown with its formula:
//! - when checks ran: `100 × passed ÷ (passed + failed + F)`, rounded,
//!   where F is the number of rules that fired with no check of their own
//!   (traffic linted beside a document); skipped checks do not count;
//! - otherwise: `100 − (10 × E + 3 × W + 1 × I)`, at least 0, where E, W and
//!   I are the numbers of rules whose worst finding is an error, a warning
//!   or an info. Each rule counts once however often it fired, so the score
//!   says how much of the contract is broken, not how much traffic was read.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use candor_contract::Severity;
use candor_contract::rules::Rule;

use super::{
    CaseCounts, RunInfo, STATUS_CLASSES, body_preview, escape, observed_status, place, rules_doc,
    status_class,
};
use crate::http::{RecordedRequest, RecordedResponse};
use crate::{Case, CaseOutcome, Located, Sink, Skipped, Summary};

/// Findings shown per rule; the rest are counted.
pub const EXAMPLES_PER_RULE: usize = 50;
/// Bytes of a request or response body shown.
const BODY_SHOWN: usize = 2048;
/// Headers of a request or response shown.
const HEADERS_SHOWN: usize = 50;
/// Checks listed one by one.
const CHECKS_LISTED: usize = 500;
/// Failed checks listed one by one, each with its evidence.
const FAILED_LISTED: usize = 500;
/// Operations (rows) the matrix shows.
const MATRIX_ROWS: usize = 1000;
/// Unreadable entries listed one by one.
const SKIPPED_LISTED: usize = 100;
/// Longest label in a chart, in characters.
const LABEL_SHOWN: usize = 40;

/// Penalty per rule whose worst finding is an error, a warning, an info.
const PENALTY: [u64; 3] = [10, 3, 1];

/// Aggregates findings and checks and writes one HTML page at the end.
pub struct HtmlSink<W: Write> {
    out: BufWriter<W>,
    info: RunInfo,
    groups: Vec<Group>,
    by_rule: HashMap<&'static str, usize>,
    /// Findings per [`STATUS_CLASSES`] entry.
    by_class: [u64; 7],
    cases: CaseCounts,
    /// The rules checks ran for.
    case_rules: HashSet<&'static str>,
    checks: Vec<Check>,
    /// Failed checks, in the order they ended.
    failed: Vec<Failed>,
    matrix: Matrix,
    /// Probe findings since the last check: the evidence of the next one.
    pending: Vec<Pending>,
    /// The anchor number of the next example (`ev-N`).
    next_example: usize,
    skipped: Vec<String>,
}

/// One rule's findings.
struct Group {
    rule: &'static Rule,
    /// Findings per severity: error, warn, info.
    counts: [u64; 3],
    examples: Vec<Example>,
}

struct Example {
    /// Its anchor: `ev-{id}`.
    id: usize,
    severity: Severity,
    place: String,
    message: String,
    evidence: String,
    /// `GET https://… -> 401`, for a finding on traffic.
    exchange: Option<String>,
    probe: Option<ProbeShown>,
}

/// A probe's evidence, rendered and bounded.
struct ProbeShown {
    expected: String,
    got: String,
    request: String,
    response: String,
    curl: String,
}

struct Check {
    rule: &'static Rule,
    subject: String,
    outcome: CaseOutcome,
}

/// A check that failed, and the anchors of its evidence.
struct Failed {
    rule: &'static Rule,
    subject: String,
    severity: Severity,
    evidence: Vec<usize>,
}

/// A probe finding waiting for the check it belongs to.
struct Pending {
    group: usize,
    /// The operation the probe ran on.
    operation: String,
    /// Its anchor when kept among the rule's examples.
    id: Option<usize>,
    /// The example itself when the rule's examples were full: kept only if
    /// it turns out to be a failed check's evidence.
    extra: Option<Example>,
}

/// Operations by checks: which check ran where, and how it ended.
#[derive(Default)]
struct Matrix {
    rows: Vec<String>,
    row_of: HashMap<String, usize>,
    columns: Vec<&'static Rule>,
    column_of: HashMap<&'static str, usize>,
    cells: HashMap<(usize, usize), Cell>,
    /// Checks on operations past [`MATRIX_ROWS`].
    left_out: u64,
}

struct Cell {
    outcome: CellOutcome,
    /// Why it was skipped, or the severity it failed at.
    note: String,
    /// The anchor of its first piece of evidence.
    evidence: Option<usize>,
}

/// Ordered so that a worse outcome wins when two checks share a cell.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CellOutcome {
    Skipped,
    Passed,
    Failed,
}

impl CellOutcome {
    /// The CSS class, the symbol and the word a cell shows.
    fn look(self) -> (&'static str, &'static str, &'static str) {
        match self {
            CellOutcome::Passed => ("c-passed", "✓", "passed"),
            CellOutcome::Failed => ("c-failed", "✗", "failed"),
            CellOutcome::Skipped => ("c-skipped", "–", "skipped"),
        }
    }
}

impl Matrix {
    fn record(&mut self, case: &Case, evidence: Option<usize>) {
        let row = match self.row_of.get(&case.subject) {
            Some(&row) => row,
            None if self.rows.len() < MATRIX_ROWS => {
                self.rows.push(case.subject.clone());
                self.row_of
                    .insert(case.subject.clone(), self.rows.len() - 1);
                self.rows.len() - 1
            }
            None => {
                self.left_out += 1;
                return;
            }
        };
        let column = *self.column_of.entry(case.rule.id).or_insert_with(|| {
            self.columns.push(case.rule);
            self.columns.len() - 1
        });
        let (outcome, note) = match &case.outcome {
            CaseOutcome::Passed => (CellOutcome::Passed, String::new()),
            CaseOutcome::Failed(severity) => (CellOutcome::Failed, severity.to_string()),
            CaseOutcome::Skipped(reason) => (CellOutcome::Skipped, reason.clone()),
        };
        let cell = Cell {
            outcome,
            note,
            evidence,
        };
        match self.cells.get(&(row, column)) {
            Some(old) if old.outcome >= cell.outcome => {}
            _ => {
                self.cells.insert((row, column), cell);
            }
        }
    }
}

fn slot(severity: Severity) -> usize {
    match severity {
        Severity::Error => 0,
        Severity::Warn => 1,
        Severity::Info => 2,
    }
}

const SEVERITIES: [Severity; 3] = [Severity::Error, Severity::Warn, Severity::Info];

impl Group {
    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn worst(&self) -> Severity {
        SEVERITIES
            .into_iter()
            .find(|&severity| self.counts[slot(severity)] > 0)
            .unwrap_or(self.rule.severity)
    }
}

impl Example {
    fn new(id: usize, located: &Located) -> Self {
        let probe = located.probe.as_ref().map(|probe| ProbeShown {
            expected: probe.expected.clone(),
            got: observed_status(located).map_or("no response".to_owned(), |s| s.to_string()),
            request: request_text(&probe.request),
            response: probe
                .response
                .as_ref()
                .map_or("No response.".to_owned(), response_text),
            curl: probe.request.curl(),
        });
        let exchange = (located.probe.is_none() && located.pointer.is_none())
            .then(|| format!("{} {} -> {}", located.method, located.url, located.status));
        Example {
            id,
            severity: located.finding.severity,
            place: place(located),
            message: located.finding.message.clone(),
            evidence: located.finding.evidence.clone(),
            exchange,
            probe,
        }
    }
}
fn headers_text(text: &mut String, headers: &[(String, String)]) {
    for (name, value) in headers.iter().take(HEADERS_SHOWN) {
        let _ = writeln!(text, "{name}: {value}");
    }
    if headers.len() > HEADERS_SHOWN {
        let _ = writeln!(text, "… and {} more headers", headers.len() - HEADERS_SHOWN);
    }
}

/// The request as it went on the wire, roughly: request line, headers,
/// then the start of the body.
fn request_text(request: &RecordedRequest) -> String {
    let mut text = format!("{} {}\n", request.method, request.url);
    headers_text(&mut text, &request.headers);
    if let Some(body) = &request.body {
        let _ = write!(text, "\n{}", body_preview(body, BODY_SHOWN));
    }
    text
}

fn response_text(response: &RecordedResponse) -> String {
    let mut text = format!(
        "HTTP {} ({} ms)\n",
        response.status,
        response.elapsed.as_millis()
    );
    headers_text(&mut text, &response.headers);
    if !response.body.is_empty() {
        let _ = write!(text, "\n{}", body_preview(&response.body, BODY_SHOWN));
    }
    if response.body_cut {
        text.push_str("\n[more was sent than the auditor reads]");
    }
    if let Some(error) = &response.body_error {
        let _ = write!(text, "\n[reading the body failed: {error}]");
    }
    text
}

/// The score and how it was computed.
struct Score {
    /// `None` when there is nothing to score (every check skipped).
    value: Option<u64>,
    formula: String,
}

fn score(cases: &CaseCounts, groups: &[Group], case_rules: &HashSet<&str>) -> Score {
    if cases.total() > 0 {
        // Rules that fired where no check of theirs ran (traffic linted
        // beside a document): each counts as one failed check.
        let outside = groups
            .iter()
            .filter(|group| !case_rules.contains(group.rule.id))
            .count() as u64;
        let ran = cases.passed + cases.failed + outside;
        if ran == 0 {
            return Score {
                value: None,
                formula: format!(
                    "No check ran ({} skipped), so there is nothing to score.",
                    cases.skipped
                ),
            };
        }
        let value = (100 * cases.passed + ran / 2) / ran;
        let formula = if outside == 0 {
            format!(
                "100 × passed ÷ (passed + failed) = 100 × {} ÷ {ran} = {value}, rounded. \
                 Skipped checks do not count.",
                cases.passed
            )
        } else {
            format!(
                "100 × passed ÷ (passed + failed + rules that fired outside any check) = \
                 100 × {} ÷ ({} + {} + {outside}) = {value}, rounded. Skipped checks do not \
                 count.",
                cases.passed, cases.passed, cases.failed
            )
        };
        return Score {
            value: Some(value),
            formula,
        };
    }
    let mut rules = [0u64; 3];
    for group in groups {
        rules[slot(group.worst())] += 1;
    }
    let penalty: u64 = rules.iter().zip(PENALTY).map(|(n, p)| n * p).sum();
    let value = 100u64.saturating_sub(penalty);
    Score {
        value: Some(value),
        formula: format!(
            "100 − (10 × rules with errors + 3 × rules with warnings + 1 × rules with \
             infos) = 100 − (10 × {} + 3 × {} + 1 × {}) = {value}, at least 0. A rule \
             counts once, at its worst finding, however often it fired.",
            rules[0], rules[1], rules[2]
        ),
    }
}

/// One bar of a chart.
struct Bar {
    label: String,
    value: u64,
    /// CSS class that colours it.
    class: &'static str,
}

/// A horizontal bar chart as inline SVG.
fn bar_chart(html: &mut String, title: &str, bars: &[Bar]) {
    const WIDTH: u64 = 720;
    const LABEL: u64 = 300;
    const ROOM: u64 = 340;
    const ROW: u64 = 22;
    let height = ROW * bars.len().max(1) as u64 + 8;
    let _ = writeln!(
        html,
        "<svg class=\"chart\" role=\"img\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\"><title>{}</title>",
        escape(title, false)
    );
    let max = bars.iter().map(|bar| bar.value).max().unwrap_or(0).max(1);
    for (i, bar) in bars.iter().enumerate() {
        let y = ROW * i as u64 + 4;
        let width = match bar.value {
            0 => 0,
            value => (value * ROOM / max).max(2),
        };
        let label: String = if bar.label.chars().count() > LABEL_SHOWN {
            let cut: String = bar.label.chars().take(LABEL_SHOWN - 1).collect();
            format!("{cut}…")
        } else {
            bar.label.clone()
        };
        let _ = writeln!(
            html,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{LABEL}\" y=\"{}\" width=\"{width}\" height=\"14\" class=\"{}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            LABEL - 8,
            y + 12,
            escape(&label, false),
            y + 1,
            bar.class,
            LABEL + width + 6,
            y + 12,
            bar.value
        );
    }
    if bars.is_empty() {
        let _ = writeln!(html, "<text x=\"0\" y=\"16\">No findings.</text>");
    }
    html.push_str("</svg>\n");
}

/// `time` in UTC as `2026-01-31 13:05:09 UTC`.
fn utc(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date, in 400-year eras from March 1st.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

const STYLE: &str = "\
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#1b1b1b}
h1{margin-bottom:.3em}h2{margin-top:2em;border-bottom:1px solid #ddd}
a{color:#0b57d0}
code,pre{font-family:ui-monospace,monospace;font-size:12.5px}
pre{background:#f6f6f6;border:1px solid #e2e2e2;padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
td.n{text-align:right}
table.about th{background:#f6f6f6;font-weight:600}
.verdict{border-radius:.4em;padding:.8em 1.2em;margin:1.2em 0;border:2px solid}
.verdict p{margin:.2em 0}.verdict .word{font-size:2em;font-weight:700;letter-spacing:.05em}
.verdict-pass{background:#e8f5e9;border-color:#2e7d32;color:#1b5e20}
.verdict-fail{background:#ffebee;border-color:#c62828;color:#8e0000}
.score{font-size:1.6em;font-weight:700}
.formula{color:#555}
.sev{display:inline-block;padding:0 .5em;border-radius:.6em;color:#fff;font-size:.85em}
.sev-error{background:#c62828}.sev-warn{background:#ef6c00}.sev-info{background:#1565c0}
ol.failures li{margin-bottom:.4em}
.matrix-wrap{overflow-x:auto}
table.matrix td,table.matrix th{padding:.15em .35em}
table.matrix thead th{vertical-align:bottom;text-align:left}
table.matrix thead th.col{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;font-weight:500}
table.matrix tbody th{font-weight:400;white-space:nowrap}
table.matrix td{text-align:center;min-width:1.6em;font-weight:700}
table.matrix td a{color:inherit;text-decoration:none;display:block}
.c-passed{background:#c8e6c9;color:#1b5e20}.c-failed{background:#ffcdd2;color:#b71c1c}
.c-skipped{background:#eceff1;color:#546e7a}.c-none{background:#fff}
.legend span.cell{display:inline-block;min-width:1.6em;text-align:center;font-weight:700;border:1px solid #ddd;margin:0 .2em 0 .8em}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.chart text{font:12px ui-monospace,monospace;fill:#1b1b1b}
.bar-error{fill:#c62828}.bar-warn{fill:#ef6c00}.bar-info{fill:#1565c0}.bar-class{fill:#546e7a}
.rule{margin-top:1.5em}.meta{color:#444}.more{font-style:italic}
ol.examples>li{margin-bottom:1em}.outcome-failed{color:#c62828}.outcome-skipped{color:#777}.outcome-passed{color:#2e7d32}
dl.catalog dt{margin-top:.8em}dl.catalog dd{margin-left:1.5em}
";

/// A rule ID linked to its entry in the page's catalog.
fn rule_link(rule: &Rule) -> String {
    format!(
        "<a href=\"#catalog-{}\"><code>{}</code></a>",
        escape(rule.id, true),
        escape(rule.id, false)
    )
}

fn severity_badge(severity: Severity) -> String {
    format!("<span class=\"sev sev-{severity}\">{severity}</span>")
}

/// `n thing` or `n things`.
fn count(n: u64, thing: &str) -> String {
    format!("{n} {thing}{}", if n == 1 { "" } else { "s" })
}

impl<W: Write> HtmlSink<W> {
    pub fn new(writer: W) -> Self {
        HtmlSink::with_info(writer, RunInfo::new())
    }

    /// A page whose header names what `info` says was audited, and whose
    /// verdict follows `info.fail_on`.
    pub fn with_info(writer: W, info: RunInfo) -> Self {
        HtmlSink {
            out: BufWriter::new(writer),
            info,
            groups: Vec::new(),
            by_rule: HashMap::new(),
            by_class: [0; 7],
            cases: CaseCounts::default(),
            case_rules: HashSet::new(),
            checks: Vec::new(),
            failed: Vec::new(),
            matrix: Matrix::default(),
            pending: Vec::new(),
            next_example: 1,
            skipped: Vec::new(),
        }
    }

    /// Groups, worst severity first, then most frequent, then by ID.
    fn ranked(&self) -> Vec<&Group> {
        let mut ranked: Vec<&Group> = self.groups.iter().collect();
        ranked.sort_by(|a, b| {
            b.worst()
                .cmp(&a.worst())
                .then(b.total().cmp(&a.total()))
                .then(a.rule.id.cmp(b.rule.id))
        });
        ranked
    }

    /// True when the run's findings make the exit code 1.
    fn fails(&self, summary: &Summary) -> bool {
        self.info.fail_on.is_some_and(|t| summary.reaches(t))
    }

    fn render(&self, summary: &Summary) -> String {
        let ranked = self.ranked();
        let mut html = String::with_capacity(64 * 1024);
        html.push_str(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        );
        let title = match &self.info.title {
            Some(title) => format!("candor report: {title}"),
            None => "candor report".to_owned(),
        };
        let _ = writeln!(html, "<title>{}</title>\n<style>", escape(&title, false));
        html.push_str(STYLE);
        html.push_str("</style>\n</head>\n<body>\n");
        self.header(&mut html);
        self.verdict(&mut html, summary, &ranked);
        self.failures(&mut html, summary, &ranked);
        self.matrix_section(&mut html);
        findings_section(&mut html, &ranked);
        self.checks_section(&mut html);
        self.charts(&mut html, &ranked);
        self.skipped_section(&mut html, summary);
        self.catalog(&mut html);
        html.push_str(
            "<p class=\"formula\">This page is self-contained: it loads nothing and runs no \
             script.</p>\n</body>\n</html>\n",
        );
        html
    }

    /// What was audited, when, and by which candor.
    fn header(&self, html: &mut String) {
        html.push_str("<header id=\"about\">\n<h1>candor report</h1>\n<table class=\"about\">\n");
        let mut row = |label: &str, value: String| {
            let _ = writeln!(
                html,
                "<tr><th>{}</th><td>{value}</td></tr>",
                escape(label, false)
            );
        };
        for (label, value) in &self.info.audited {
            row(label, format!("<code>{}</code>", escape(value, false)));
        }
        match (&self.info.title, &self.info.version) {
            (Some(title), Some(version)) => row(
                "API",
                format!(
                    "{}, version {}",
                    escape(title, false),
                    escape(version, false)
                ),
            ),
            (Some(title), None) => row("API", escape(title, false)),
            (None, Some(version)) => row("API", format!("version {}", escape(version, false))),
            (None, None) => {}
        }
        row("Date", utc(self.info.started));
        row(
            "candor",
            format!(
                "{}: the HTTP status-code contract",
                env!("CARGO_PKG_VERSION")
            ),
        );
        html.push_str("</table>\n</header>\n");
    }

    /// Pass or fail as the exit code says, why, the counts and the score.
    fn verdict(&self, html: &mut String, summary: &Summary, ranked: &[&Group]) {
        let fails = self.fails(summary);
        let (class, word, code) = if fails {
            ("verdict-fail", "FAIL", 1)
        } else {
            ("verdict-pass", "PASS", 0)
        };
        let why = match self.info.fail_on {
            None => "--fail-on never: findings do not fail the run".to_owned(),
            Some(threshold) => {
                let reaching = match threshold {
                    Severity::Error => summary.errors,
                    Severity::Warn => summary.errors + summary.warnings,
                    Severity::Info => summary.errors + summary.warnings + summary.infos,
                };
                let at = match threshold {
                    Severity::Error => "an error".to_owned(),
                    other => format!("{other} or worse"),
                };
                if fails {
                    format!(
                        "{} at {at} (--fail-on {threshold})",
                        count(reaching, "finding")
                    )
                } else {
                    format!("no finding at {at} (--fail-on {threshold})")
                }
            }
        };
        let _ = writeln!(
            html,
            "<section id=\"verdict\" class=\"verdict {class}\">\n\
             <p><span class=\"word\">{word}</span> exit code {code}: {}</p>",
            escape(&why, false)
        );
        let mut counts = vec![
            count(summary.errors, "error"),
            count(summary.warnings, "warning"),
            count(summary.infos, "info"),
        ];
        if self.cases.total() > 0 {
            counts.insert(
                0,
                format!(
                    "{}: {} passed, {} failed, {} skipped",
                    count(self.cases.total(), "check"),
                    self.cases.passed,
                    self.cases.failed,
                    self.cases.skipped
                ),
            );
        }
        counts.push(count(summary.exchanges, "exchange"));
        counts.push(format!(
            "{} with findings",
            count(ranked.len() as u64, "rule")
        ));
        if summary.skipped > 0 {
            counts.push(match summary.skipped {
                1 => "1 entry could not be read".to_owned(),
                n => format!("{n} entries could not be read"),
            });
        }
        let _ = writeln!(html, "<p>{}</p>", escape(&counts.join(", "), false));
        let score = score(&self.cases, &self.groups, &self.case_rules);
        let value = score.value.map_or("n/a".to_owned(), |v| v.to_string());
        let _ = writeln!(
            html,
            "<p>Score: <span class=\"score\">{value}</span> / 100 \
             <span class=\"formula\">(a measure, not the verdict: {})</span></p>\n</section>",
            escape(&score.formula, false)
        );
    }

    /// Failed checks, each linking to its evidence, then the rules that
    /// fail the run outside any check, each linking to its findings.
    fn failures(&self, html: &mut String, summary: &Summary, ranked: &[&Group]) {
        html.push_str("<h2 id=\"failures\">Failures</h2>\n");
        let threshold = self.info.fail_on.unwrap_or(Severity::Error);
        let outside: Vec<&&Group> = ranked
            .iter()
            .filter(|g| !self.case_rules.contains(g.rule.id) && g.worst() >= threshold)
            .collect();
        if self.failed.is_empty() && outside.is_empty() {
            let _ = writeln!(
                html,
                "<p>Nothing failed{}.</p>",
                if summary.errors + summary.warnings + summary.infos > 0 {
                    " (the findings below are below --fail-on)"
                } else {
                    ""
                }
            );
            return;
        }
        if !self.failed.is_empty() {
            let _ = writeln!(
                html,
                "<p>{} failed:</p>\n<ol class=\"failures\">",
                count(self.cases.failed, "check")
            );
            for (i, failed) in self.failed.iter().enumerate() {
                let _ = write!(
                    html,
                    "<li id=\"fail-{}\">{} {} on <code>{}</code>: ",
                    i + 1,
                    severity_badge(failed.severity),
                    rule_link(failed.rule),
                    escape(&failed.subject, false)
                );
                let links: Vec<String> = failed
                    .evidence
                    .iter()
                    .enumerate()
                    .map(|(n, id)| format!("<a href=\"#ev-{id}\">{}</a>", n + 1))
                    .collect();
                match &failed.evidence[..] {
                    [] => html.push_str("no evidence kept"),
                    [id] => {
                        let _ = write!(html, "<a href=\"#ev-{id}\">evidence</a>");
                    }
                    _ => {
                        let _ = write!(html, "evidence {}", links.join(", "));
                    }
                }
                html.push_str("</li>\n");
            }
            html.push_str("</ol>\n");
            let unlisted = self.cases.failed.saturating_sub(self.failed.len() as u64);
            if unlisted > 0 {
                let _ = writeln!(
                    html,
                    "<p class=\"more\">… and {unlisted} more failed checks.</p>"
                );
            }
        }
        if !outside.is_empty() {
            let _ = writeln!(
                html,
                "<p>Rules with {}{}:</p>\n<ol class=\"failures\">",
                match threshold {
                    Severity::Error => "errors".to_owned(),
                    other => format!("findings at {other} or worse"),
                },
                if self.cases.total() > 0 {
                    ", outside any check"
                } else {
                    ""
                }
            );
            for group in outside {
                let _ = writeln!(
                    html,
                    "<li>{} {}: {}, <a href=\"#rule-{}\">evidence</a></li>",
                    severity_badge(group.worst()),
                    rule_link(group.rule),
                    count(group.total(), "finding"),
                    escape(group.rule.id, true)
                );
            }
            html.push_str("</ol>\n");
        }
    }

    /// Operations by checks, for runs that ran checks.
    fn matrix_section(&self, html: &mut String) {
        let matrix = &self.matrix;
        if matrix.rows.is_empty() {
            return;
        }
        // Rows of one path together (the wrong-method probe's `PATCH /x`
        // beside `GET /x`), paths in the order they first came.
        let path = |subject: &str| {
            subject
                .split_once(' ')
                .map_or(subject, |(_, p)| p)
                .to_owned()
        };
        let mut first: HashMap<String, usize> = HashMap::new();
        for (i, subject) in matrix.rows.iter().enumerate() {
            first.entry(path(subject)).or_insert(i);
        }
        let mut order: Vec<usize> = (0..matrix.rows.len()).collect();
        order.sort_by_key(|&i| (first[&path(&matrix.rows[i])], i));
        html.push_str(
            "<h2 id=\"matrix\">Operations × checks</h2>\n<p class=\"legend\">\
             <span class=\"cell c-passed\">✓</span>passed\
             <span class=\"cell c-failed\">✗</span>failed (links to its evidence)\
             <span class=\"cell c-skipped\">–</span>skipped (hover for why)\
             <span class=\"cell c-none\">&#160;</span>not applicable</p>\n\
             <div class=\"matrix-wrap\"><table class=\"matrix\">\n<thead><tr>\
             <th scope=\"col\">Operation</th>",
        );
        for rule in &matrix.columns {
            let short = rule.id.strip_prefix("probe.").unwrap_or(rule.id);
            let _ = write!(
                html,
                "<th scope=\"col\" class=\"col\"><a href=\"#catalog-{}\" title=\"{}\">{}</a></th>",
                escape(rule.id, true),
                escape(rule.id, true),
                escape(short, false)
            );
        }
        html.push_str("</tr></thead>\n<tbody>\n");
        for row in order {
            let subject = &matrix.rows[row];
            let _ = write!(
                html,
                "<tr><th scope=\"row\"><code>{}</code></th>",
                escape(subject, false)
            );
            for (column, rule) in matrix.columns.iter().enumerate() {
                let Some(cell) = matrix.cells.get(&(row, column)) else {
                    html.push_str("<td class=\"c-none\"></td>");
                    continue;
                };
                let (class, symbol, word) = cell.outcome.look();
                let title = if cell.note.is_empty() {
                    format!("{}: {word}", rule.id)
                } else {
                    format!("{}: {word} ({})", rule.id, cell.note)
                };
                let inner = format!("{symbol}<span class=\"sr\"> {word}</span>");
                match cell.evidence {
                    Some(id) => {
                        let _ = write!(
                            html,
                            "<td class=\"{class}\" title=\"{}\"><a href=\"#ev-{id}\">{inner}</a></td>",
                            escape(&title, true)
                        );
                    }
                    None => {
                        let _ = write!(
                            html,
                            "<td class=\"{class}\" title=\"{}\">{inner}</td>",
                            escape(&title, true)
                        );
                    }
                }
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</tbody></table></div>\n");
        if matrix.left_out > 0 {
            let _ = writeln!(
                html,
                "<p class=\"more\">… and {} on operations past the first {MATRIX_ROWS} (listed \
                 under Checks).</p>",
                count(matrix.left_out, "check")
            );
        }
    }

    fn charts(&self, html: &mut String, ranked: &[&Group]) {
        html.push_str("<h2 id=\"charts\">Findings per rule</h2>\n");
        let bars: Vec<Bar> = ranked
            .iter()
            .map(|group| Bar {
                label: group.rule.id.to_owned(),
                value: group.total(),
                class: match group.worst() {
                    Severity::Error => "bar-error",
                    Severity::Warn => "bar-warn",
                    Severity::Info => "bar-info",
                },
            })
            .collect();
        bar_chart(html, "Findings per rule", &bars);
        html.push_str("<h2>Findings per status class</h2>\n");
        let bars: Vec<Bar> = STATUS_CLASSES
            .iter()
            .zip(self.by_class)
            // 1xx and out-of-range statuses only when there are some.
            .filter(|&(class, count)| count > 0 || !matches!(*class, "1xx" | "other"))
            .map(|(class, count)| Bar {
                label: (*class).to_owned(),
                value: count,
                class: "bar-class",
            })
            .collect();
        bar_chart(html, "Findings per status class", &bars);
        html.push_str(
            "<p class=\"formula\">The status class is the response's (for a finding on a \
             document, the declared response's); <em>none</em> when no response arrived or no \
             status applies.</p>\n",
        );
    }

    fn checks_section(&self, html: &mut String) {
        if self.cases.total() == 0 {
            return;
        }
        html.push_str(
            "<h2 id=\"checks\">Checks</h2>\n<table>\n\
             <tr><th>Rule</th><th>Subject</th><th>Outcome</th></tr>\n",
        );
        for check in &self.checks {
            let (class, outcome) = match &check.outcome {
                CaseOutcome::Passed => ("passed", "passed".to_owned()),
                CaseOutcome::Failed(severity) => ("failed", format!("failed ({severity})")),
                CaseOutcome::Skipped(reason) => ("skipped", format!("skipped: {reason}")),
            };
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td><code>{}</code></td>\
                 <td class=\"outcome-{class}\">{}</td></tr>",
                rule_link(check.rule),
                escape(&check.subject, false),
                escape(&outcome, false)
            );
        }
        html.push_str("</table>\n");
        let unlisted = self.cases.total().saturating_sub(self.checks.len() as u64);
        if unlisted > 0 {
            let _ = writeln!(html, "<p class=\"more\">… and {unlisted} more checks.</p>");
        }
    }

    fn skipped_section(&self, html: &mut String, summary: &Summary) {
        if summary.skipped == 0 {
            return;
        }
        html.push_str("<h2 id=\"skipped\">Unreadable entries</h2>\n<ul>\n");
        for skipped in &self.skipped {
            let _ = writeln!(html, "<li><code>{}</code></li>", escape(skipped, false));
        }
        html.push_str("</ul>\n");
        let unlisted = summary.skipped.saturating_sub(self.skipped.len() as u64);
        if unlisted > 0 {
            let _ = writeln!(html, "<p class=\"more\">… and {unlisted} more.</p>");
        }
    }

    /// Every rule the page names, in catalog order: what it checks, what
    /// it expects, and its section of docs/rules.md.
    fn catalog(&self, html: &mut String) {
        let mut rules: Vec<&'static Rule> = self.groups.iter().map(|g| g.rule).collect();
        rules.extend(self.matrix.columns.iter().copied());
        rules.extend(self.checks.iter().map(|c| c.rule));
        rules.extend(self.failed.iter().map(|f| f.rule));
        rules.sort_by_key(|rule| (rule.section.number(), rule.id));
        rules.dedup_by_key(|rule| rule.id);
        html.push_str(
            "<h2 id=\"catalog\">Rule catalog</h2>\n<p class=\"formula\">The rules this page \
             names, as candor's catalog (docs/rules.md in its repository, \
             <code>candor rules</code>) describes them.</p>\n",
        );
        if rules.is_empty() {
            html.push_str("<p>No rule is named above.</p>\n");
            return;
        }
        html.push_str("<dl class=\"catalog\">\n");
        for rule in rules {
            let _ = writeln!(
                html,
                "<dt id=\"catalog-{}\"><code>{}</code> default {}</dt>\n<dd>{}<br>Expects: {}<br>\
                 Reference: {}<br>Catalog: <code>{}</code></dd>",
                escape(rule.id, true),
                escape(rule.id, false),
                severity_badge(rule.severity),
                escape(rule.summary, false),
                escape(rule.expects, false),
                escape(rule.reference, false),
                escape(&rules_doc(rule), false)
            );
        }
        html.push_str("</dl>\n");
    }
}

fn findings_section(html: &mut String, ranked: &[&Group]) {
    html.push_str("<h2 id=\"findings\">Findings by rule</h2>\n");
    if ranked.is_empty() {
        html.push_str("<p>No findings.</p>\n");
        return;
    }
    for group in ranked {
        let rule = group.rule;
        let total = group.total();
        let _ = writeln!(
            html,
            "<section class=\"rule\" id=\"rule-{}\">\n<h3>{} {} {}</h3>",
            escape(rule.id, true),
            rule_link(rule),
            severity_badge(group.worst()),
            count(total, "finding")
        );
        let _ = writeln!(
            html,
            "<p>{}</p>\n<p class=\"meta\">Expects: {}</p>",
            escape(rule.summary, false),
            escape(rule.expects, false),
        );
        html.push_str("<ol class=\"examples\">\n");
        for example in &group.examples {
            example_item(html, example);
        }
        html.push_str("</ol>\n");
        let unlisted = total.saturating_sub(group.examples.len() as u64);
        if unlisted > 0 {
            let _ = writeln!(
                html,
                "<p class=\"more\">… and {unlisted} more not shown.</p>"
            );
        }
        html.push_str("</section>\n");
    }
}

/// One finding: where, what, and its evidence; each part a line of its own.
fn example_item(html: &mut String, example: &Example) {
    let _ = writeln!(
        html,
        "<li id=\"ev-{}\"><p>{} <code>{}</code></p>\n<p>{}</p>",
        example.id,
        severity_badge(example.severity),
        escape(&example.place, false),
        escape(&example.message, false)
    );
    if let Some(exchange) = &example.exchange {
        let _ = writeln!(html, "<p><code>{}</code></p>", escape(exchange, false));
    }
    if !example.evidence.is_empty() {
        let _ = writeln!(
            html,
            "<p>Evidence:</p><pre>{}</pre>",
            escape(&example.evidence, false)
        );
    }
    if let Some(probe) = &example.probe {
        let _ = writeln!(
            html,
            "<p>Expected {}, got <strong>{}</strong>.</p>\n\
             <p>Request:</p><pre>{}</pre>\n<p>Response:</p><pre>{}</pre>\n\
             <p>Reproduce:</p><pre>{}</pre>",
            escape(&probe.expected, false),
            escape(&probe.got, false),
            escape(&probe.request, false),
            escape(&probe.response, false),
            escape(&probe.curl, false)
        );
    }
    html.push_str("</li>\n");
}

impl<W: Write> Sink for HtmlSink<W> {
    fn finding(&mut self, located: &Located) -> io::Result<()> {
        let rule = located.finding.rule;
        let index = *self.by_rule.entry(rule.id).or_insert_with(|| {
            self.groups.push(Group {
                rule,
                counts: [0; 3],
                examples: Vec::new(),
            });
            self.groups.len() - 1
        });
        let id = self.next_example;
        self.next_example += 1;
        let group = &mut self.groups[index];
        group.counts[slot(located.finding.severity)] += 1;
        let kept = group.examples.len() < EXAMPLES_PER_RULE;
        if kept {
            group.examples.push(Example::new(id, located));
        }
        if let Some(probe) = &located.probe {
            self.pending.push(Pending {
                group: index,
                operation: probe.operation.clone(),
                id: kept.then_some(id),
                extra: (!kept).then(|| Example::new(id, located)),
            });
        }
        self.by_class[status_class(observed_status(located))] += 1;
        Ok(())
    }

    fn skipped(&mut self, skipped: &Skipped) -> io::Result<()> {
        if self.skipped.len() < SKIPPED_LISTED {
            self.skipped.push(skipped.to_string());
        }
        Ok(())
    }

    fn case(&mut self, case: &Case) -> io::Result<()> {
        self.cases.count(&case.outcome);
        self.case_rules.insert(case.rule.id);
        let pending = std::mem::take(&mut self.pending);
        let mut evidence = Vec::new();
        if let CaseOutcome::Failed(severity) = case.outcome
            && self.failed.len() < FAILED_LISTED
        {
            // The findings of the probe on this check's operation; any
            // pending one when none names it.
            let mine = pending.iter().any(|p| p.operation == case.subject);
            for p in pending {
                if mine && p.operation != case.subject {
                    continue;
                }
                let id = match (p.id, p.extra) {
                    (Some(id), _) => id,
                    (None, Some(example)) => {
                        let id = example.id;
                        self.groups[p.group].examples.push(example);
                        id
                    }
                    (None, None) => continue,
                };
                evidence.push(id);
            }
            self.failed.push(Failed {
                rule: case.rule,
                subject: case.subject.clone(),
                severity,
                evidence: evidence.clone(),
            });
        }
        self.matrix.record(case, evidence.first().copied());
        if self.checks.len() < CHECKS_LISTED {
            self.checks.push(Check {
                rule: case.rule,
                subject: case.subject.clone(),
                outcome: case.outcome.clone(),
            });
        }
        Ok(())
    }

    fn finish(&mut self, summary: &Summary) -> io::Result<()> {
        let html = self.render(summary);
        self.out.write_all(html.as_bytes())?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use candor_contract::Finding;
    use candor_contract::rules::{
        AUTH_401_WITHOUT_CHALLENGE, CREATED_201_WITHOUT_LOCATION, PROBE_NO_CREDENTIALS,
    };

    use super::*;
    use crate::report::testing::{feed, feed_probes, located, output};

    fn run(feed_it: impl FnOnce(&mut dyn Sink)) -> String {
        output(HtmlSink::new, feed_it)
    }

    /// Every value of `attr="…"` in the page.
    fn attribute_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
        let needle = format!(" {attr}=\"");
        html.match_indices(&needle)
            .map(|(i, _)| {
                let start = i + needle.len();
                let end = html[start..].find('"').unwrap() + start;
                &html[start..end]
            })
            .collect()
    }

    /// Nothing in the page can make a browser fetch or run anything.
    fn assert_self_contained(html: &str) {
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"));
        for attr in ["src", "srcset", "action", "data", "poster", "background"] {
            assert_eq!(attribute_values(html, attr), Vec::<&str>::new(), "{attr}=");
        }
        for href in attribute_values(html, "href") {
            assert!(href.starts_with('#'), "only links within the page: {href}");
        }
        for tag in [
            "<script", "<img", "<link", "<iframe", "<object", "<embed", "@import", "url(",
        ] {
            assert!(!html.contains(tag), "{tag} in the page");
        }
    }

    #[test]
    fn probe_report_is_self_contained_with_score_charts_and_escaped_evidence() {
        let html = run(|sink| {
            feed_probes(sink);
        });
        assert_self_contained(&html);
        // 1 passed, 2 failed, and created.201_without_location fired with
        // no check of its own: 100 × 1 ÷ (1 + 2 + 1) = 25.
        assert!(
            html.contains("<span class=\"score\">25</span> / 100"),
            "{html}"
        );
        assert!(html.contains(
            "100 × passed ÷ (passed + failed + rules that fired outside any check) = \
             100 × 1 ÷ (1 + 2 + 1) = 25, rounded"
        ));
        assert_eq!(html.matches("<svg ").count(), 2);
        assert!(html.contains(">probe.wrong_media_type</text>"));
        assert!(html.contains(">5xx</text>"));
        assert!(html.contains(">none</text>"));
        // Evidence, bodies and reasons are text, never markup.
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
        assert!(html.contains("&lt;img src=&quot;https://evil.example/x.png&quot;&gt;&amp;\\u{1}"));
        assert!(html.contains("skipped: no credentials for role &lt;admin&gt; &amp;"));
        // Where, what and how to reproduce.
        assert!(html.contains("<code>openapi.yaml:42 /paths/~1users/post/responses/201</code>"));
        assert!(html.contains("Expected 415 (400 accepted as warn), got <strong>500</strong>."));
        assert!(html.contains(
            "<pre>POST http://127.0.0.1:8080/users?a=1&amp;b=2\nContent-Type: text/plain\n\n{"
        ));
        assert!(html.contains("<pre>HTTP 500 (12 ms)\ncontent-type: text/html\n"));
        assert!(html.contains("<pre>curl -i -X POST -H &apos;Content-Type: text/plain&apos;"));
        assert!(html.contains("got <strong>no response</strong>"));
        assert!(html.contains("<pre>No response.</pre>"));
        assert!(html.contains("PUT http://127.0.0.1:8080/users\nContent-Type: application/octet-stream\n\n(4 bytes, not UTF-8)"));
        assert!(
            html.contains("Catalog: <code>docs/rules.md#3-active-probes-against-a-live-api</code>")
        );
        assert!(html.contains("<td class=\"outcome-passed\">passed</td>"));
    }

    #[test]
    fn lint_report_scores_rules_by_worst_severity() {
        let html = run(|sink| {
            feed(sink);
        });
        assert_self_contained(&html);
        // One rule with errors, two whose worst finding is an info.
        assert!(html.contains("<span class=\"score\">88</span>"), "{html}");
        assert!(html.contains("= 100 − (10 × 1 + 3 × 0 + 1 × 2) = 88"));
        assert!(
            !html.contains("id=\"checks\""),
            "no checks section for lint"
        );
        assert!(html.contains("<code>traffic.jsonl:1 (entry 0)</code>"));
        assert!(
            html.contains("<code>GET https://api.example/items/0?q=&quot;x&quot; -&gt; 401</code>")
        );
        assert!(html.contains("Unreadable entries"));
        // Every finding had a 401.
        assert!(
            html.contains(">4xx</text><rect x=\"300\" y=\"49\" width=\"340\""),
            "{html}"
        );
        // Rules are ranked worst first in the chart and in the sections.
        let auth = html.find("id=\"rule-auth.401_without_challenge\"").unwrap();
        let delete = html.find("id=\"rule-delete.200_empty\"").unwrap();
        assert!(auth < delete);
    }

    #[test]
    fn examples_are_bounded_per_rule() {
        let html = run(|sink| {
            for entry in 0..1000 {
                let finding = Finding::new(&AUTH_401_WITHOUT_CHALLENGE, "m", "e");
                sink.finding(&located("t.jsonl", entry, Some(entry + 1), finding))
                    .unwrap();
            }
            let summary = Summary {
                exchanges: 1000,
                errors: 1000,
                ..Summary::default()
            };
            sink.finish(&summary).unwrap();
        });
        assert_eq!(html.matches("<li id=\"ev-").count(), EXAMPLES_PER_RULE);
        assert!(html.contains("… and 950 more not shown."));
        assert!(html.contains("1000 findings</h3>"));
    }

    #[test]
    fn an_empty_run_scores_100_and_still_draws_its_charts() {
        let html = run(|sink| sink.finish(&Summary::default()).unwrap());
        assert_self_contained(&html);
        assert!(html.contains("<span class=\"score\">100</span>"));
        assert!(html.contains("<p>Nothing failed.</p>"));
        assert!(html.contains("class=\"verdict verdict-pass\""));
        assert!(html.contains("<p>No findings.</p>"));
        assert_eq!(html.matches("<svg ").count(), 2);
    }

    fn run_with(info: RunInfo, feed_it: impl FnOnce(&mut dyn Sink)) -> String {
        output(|out| HtmlSink::with_info(out, info), feed_it)
    }

    /// Where `needle` is in the page; panics when it is not.
    fn at(html: &str, needle: &str) -> usize {
        html.find(needle)
            .unwrap_or_else(|| panic!("{needle} missing:\n{html}"))
    }

    /// The `<li>` or `<td>` element that holds position `i`, as text.
    fn element_around<'a>(html: &'a str, i: usize, open: &str, close: &str) -> &'a str {
        let start = html[..i].rfind(open).unwrap();
        let end = html[i..].find(close).unwrap() + i + close.len();
        &html[start..end]
    }

    #[test]
    fn the_page_reads_in_order_failures_first() {
        let info = RunInfo::new()
            .audited("Base URL", "http://127.0.0.1:8080")
            .audited("Document", "openapi.yaml");
        let html = run_with(info, |sink| {
            feed_probes(sink);
        });
        assert_self_contained(&html);
        let order = [
            "<header id=\"about\">",
            "id=\"verdict\"",
            "<h2 id=\"failures\">",
            "<h2 id=\"matrix\">",
            "<h2 id=\"findings\">",
            "<h2 id=\"checks\">",
            "<h2 id=\"charts\">",
            "<h2 id=\"catalog\">",
        ];
        let places: Vec<usize> = order.iter().map(|n| at(&html, n)).collect();
        assert!(
            places.windows(2).all(|w| w[0] < w[1]),
            "{order:?} {places:?}"
        );
        // The header names what was audited, when, and by which candor.
        assert!(
            html.contains("<tr><th>Base URL</th><td><code>http://127.0.0.1:8080</code></td></tr>")
        );
        assert!(html.contains("<tr><th>Document</th><td><code>openapi.yaml</code></td></tr>"));
        assert!(html.contains("<tr><th>Date</th><td>"));
        assert!(html.contains(concat!(
            "<tr><th>candor</th><td>",
            env!("CARGO_PKG_VERSION")
        )));
        // Errors fail the run by default: exit code 1, in red.
        assert!(html.contains(
            "class=\"verdict verdict-fail\">\n<p><span class=\"word\">FAIL</span> exit code 1: \
             2 findings at an error (--fail-on error)"
        ));
        assert!(html.contains("4 checks: 1 passed, 2 failed, 1 skipped, 2 errors, 1 warning"));
    }

    #[test]
    fn every_failed_check_links_to_its_evidence_and_every_link_lands() {
        let html = run(|sink| {
            feed_probes(sink);
        });
        // Every in-page link has its target.
        for href in attribute_values(&html, "href") {
            let id = format!(" id=\"{}\"", &href[1..]);
            assert!(html.contains(&id), "{href} leads nowhere");
        }
        let failures = &html[at(&html, "<h2 id=\"failures\">")..at(&html, "<h2 id=\"matrix\">")];
        assert!(failures.contains("2 checks failed:"), "{failures}");
        let checks = [
            (
                "probe.wrong_media_type",
                "POST /users",
                "got <strong>500</strong>",
            ),
            (
                "probe.oversize_body",
                "PUT /users",
                "got <strong>no response</strong>",
            ),
        ];
        for (rule, subject, got) in checks {
            let item = element_around(
                failures,
                at(failures, &format!(">{rule}</code>")),
                "<li",
                "</li>",
            );
            assert!(
                item.contains(&format!("href=\"#catalog-{rule}\"")),
                "{item}"
            );
            assert!(
                item.contains(&format!("on <code>{subject}</code>")),
                "{item}"
            );
            // Its evidence is the probe's own finding, with the exchange.
            let id = item
                .split("href=\"#ev-")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let evidence = element_around(
                &html,
                at(&html, &format!("<li id=\"ev-{id}\">")) + 1,
                "<li",
                "</li>",
            );
            assert!(
                evidence.contains(&format!("<code>{subject}</code>")),
                "{evidence}"
            );
            assert!(evidence.contains(got), "{evidence}");
        }
        // The spec finding fired outside any check: listed, linked to its rule.
        assert!(
            failures.contains("href=\"#rule-created.201_without_location\">evidence</a>")
                == (CREATED_201_WITHOUT_LOCATION.severity == Severity::Error)
        );
        // Every rule ID on the page has its catalog entry.
        for rule in [
            "probe.wrong_media_type",
            "probe.no_credentials",
            "probe.insufficient_role",
            "created.201_without_location",
        ] {
            assert!(
                html.contains(&format!("<dt id=\"catalog-{rule}\">")),
                "{rule}"
            );
        }
    }

    #[test]
    fn matrix_cells_say_their_outcome_in_words_not_colour_alone() {
        let html = run(|sink| {
            feed_probes(sink);
        });
        let matrix = &html[at(&html, "<h2 id=\"matrix\">")..at(&html, "<h2 id=\"findings\">")];
        // Columns: the probes, in the order they ran, linked to the catalog.
        let columns: Vec<&str> = matrix
            .split("<th scope=\"col\" class=\"col\"><a href=\"#catalog-")
            .skip(1)
            .map(|c| c.split('"').next().unwrap())
            .collect();
        assert_eq!(
            columns,
            [
                "probe.wrong_media_type",
                "probe.oversize_body",
                "probe.no_credentials",
                "probe.insufficient_role"
            ]
        );
        let row = |subject: &str| -> Vec<String> {
            let start = at(
                matrix,
                &format!("<th scope=\"row\"><code>{subject}</code></th>"),
            );
            let end = start + matrix[start..].find("</tr>").unwrap();
            matrix[start..end]
                .split("<td")
                .skip(1)
                .map(|c| format!("<td{c}"))
                .collect()
        };
        let post = row("POST /users");
        assert!(post[0].starts_with("<td class=\"c-failed\" title=\"probe.wrong_media_type: failed (error)\"><a href=\"#ev-"), "{}", post[0]);
        assert!(post[0].contains("✗<span class=\"sr\"> failed</span>"));
        assert_eq!(post[1], "<td class=\"c-none\"></td>");
        let get = row("GET /users");
        assert_eq!(
            get[2],
            "<td class=\"c-passed\" title=\"probe.no_credentials: passed\">✓<span class=\"sr\"> passed</span></td>"
        );
        // A skipped cell says why, escaped inside the attribute.
        let delete = row("DELETE /users/{id}");
        assert_eq!(
            delete[3],
            "<td class=\"c-skipped\" title=\"probe.insufficient_role: skipped (no credentials for role \
             &lt;admin&gt; &amp; &quot;ops&quot; &apos;x&apos; \\u{7})\">–<span class=\"sr\"> skipped</span></td>"
        );
        // The legend names every state.
        for word in [
            "passed",
            "failed (links to its evidence)",
            "skipped (hover for why)",
            "not applicable",
        ] {
            assert!(matrix.contains(&format!("</span>{word}")), "{word}");
        }
        // A lint run has no checks, so no matrix.
        let lint = run(|sink| {
            feed(sink);
        });
        assert!(!lint.contains("id=\"matrix\""));
    }

    #[test]
    fn the_verdict_follows_the_exit_code_not_the_score() {
        let warning_only = |sink: &mut dyn Sink| {
            let finding =
                Finding::new(&AUTH_401_WITHOUT_CHALLENGE, "m", "e").with_severity(Severity::Warn);
            sink.finding(&located("t.jsonl", 0, Some(1), finding))
                .unwrap();
            let summary = Summary {
                exchanges: 1,
                warnings: 1,
                ..Summary::default()
            };
            sink.finish(&summary).unwrap();
        };
        // Score 97 either way; only --fail-on decides the colour.
        let mut info = RunInfo::new();
        info.fail_on = Some(Severity::Warn);
        let html = run_with(info, warning_only);
        assert!(html.contains("<span class=\"score\">97</span>"));
        assert!(
            html.contains(
                "verdict-fail\">\n<p><span class=\"word\">FAIL</span> exit code 1: \
                               1 finding at warn or worse (--fail-on warn)"
            ),
            "{html}"
        );
        assert!(
            html.contains("1 finding, <a href=\"#rule-auth.401_without_challenge\">evidence</a>")
        );
        let html = run_with(RunInfo::new(), warning_only);
        assert!(
            html.contains(
                "verdict-pass\">\n<p><span class=\"word\">PASS</span> exit code 0: \
                               no finding at an error (--fail-on error)"
            ),
            "{html}"
        );
        assert!(html.contains("<p>Nothing failed (the findings below are below --fail-on).</p>"));
        // Errors with --fail-on never pass.
        let mut info = RunInfo::new();
        info.fail_on = None;
        let html = run_with(info, |sink| {
            feed(sink);
        });
        assert!(html.contains("<span class=\"word\">PASS</span> exit code 0: --fail-on never"));
    }

    #[test]
    fn a_hostile_server_cannot_inject_markup_through_the_header() {
        let mut info = RunInfo::new()
            .audited("Base URL", "http://h/\"><script>alert(1)</script>")
            .audited("Document", "http://h/openapi.yaml?a=1&b=<b>");
        info.title = Some("</title><img src=x onerror=alert(1)>".to_owned());
        info.version = Some("1<br>".to_owned());
        let html = run_with(info, |sink| {
            feed_probes(sink);
        });
        assert_self_contained(&html);
        assert!(html.contains(
            "<title>candor report: &lt;/title&gt;&lt;img src=x onerror=alert(1)&gt;</title>"
        ));
        assert!(
            html.contains("<code>http://h/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</code>")
        );
        assert!(html.contains("<code>http://h/openapi.yaml?a=1&amp;b=&lt;b&gt;</code>"));
        assert!(
            html.contains("&lt;/title&gt;&lt;img src=x onerror=alert(1)&gt;, version 1&lt;br&gt;")
        );
        assert!(!html.contains("version 1<br>"));
    }

    #[test]
    fn failed_checks_keep_their_evidence_past_the_examples_bound() {
        let total = EXAMPLES_PER_RULE + 10;
        let html = run(|sink| {
            let mut summary = Summary::default();
            for i in 0..total {
                let mut finding = located(
                    "openapi.yaml",
                    i,
                    None,
                    Finding::new(&PROBE_NO_CREDENTIALS, "200 without credentials", "200 OK"),
                );
                finding.probe = Some(Box::new(crate::ProbeEvidence {
                    operation: format!("GET /items/{i}"),
                    expected: "401".to_owned(),
                    request: RecordedRequest::new("GET", format!("http://h/items/{i}")),
                    response: None,
                }));
                summary.count(Severity::Error);
                sink.finding(&finding).unwrap();
                sink.case(&Case {
                    rule: &PROBE_NO_CREDENTIALS,
                    subject: format!("GET /items/{i}"),
                    outcome: CaseOutcome::Failed(Severity::Error),
                })
                .unwrap();
            }
            sink.finish(&summary).unwrap();
        });
        let links = html.matches(">evidence</a></li>").count();
        assert_eq!(links, total);
        for href in attribute_values(&html, "href") {
            let id = format!(" id=\"{}\"", &href[1..]);
            assert!(html.contains(&id), "{href} leads nowhere");
        }
        // The last one is kept, in its rule's section.
        let last = format!("<code>GET /items/{}</code>", total - 1);
        assert!(html[at(&html, "<h2 id=\"findings\">")..].contains(&last));
        assert_eq!(html.matches("<li id=\"ev-").count(), total);
    }

    #[test]
    fn dates_are_utc_civil_dates() {
        let at = |secs: u64| utc(UNIX_EPOCH + std::time::Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(at(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(at(1_796_684_380), "2026-12-07 22:59:40 UTC");
        assert_eq!(at(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }

    #[test]
    fn every_check_skipped_has_no_score() {
        let cases = CaseCounts {
            skipped: 2,
            ..CaseCounts::default()
        };
        let score = score(&cases, &[], &HashSet::new());
        assert_eq!(score.value, None);
        assert!(score.formula.contains("2 skipped"));
    }

    #[test]
    fn checks_score_is_the_share_that_passed() {
        let cases = CaseCounts {
            passed: 1,
            failed: 2,
            skipped: 5,
        };
        let score = score(&cases, &[], &HashSet::new());
        assert_eq!(score.value, Some(33));
        assert_eq!(
            score.formula,
            "100 × passed ÷ (passed + failed) = 100 × 1 ÷ 3 = 33, rounded. Skipped checks do \
             not count."
        );
    }
}
