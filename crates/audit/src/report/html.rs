//! The HTML report: one self-contained page to share or attach to a CI run.
//!
//! Everything is inline (CSS, and charts drawn here as SVG), nothing runs
//! and nothing is fetched: a Content-Security-Policy forbids any load, and
//! every byte of input is escaped. The page holds a score, counts by
//! severity, a chart of findings per rule and one per status class, then
//! the findings grouped by rule with their evidence. Only the first
//! [`EXAMPLES_PER_RULE`] findings of each rule are kept; the rest are
//! counted.
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

use candor_contract::Severity;
use candor_contract::rules::Rule;

use super::{
    CaseCounts, STATUS_CLASSES, body_preview, escape, observed_status, place, rules_doc,
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
/// Unreadable entries listed one by one.
const SKIPPED_LISTED: usize = 100;
/// Longest label in a chart, in characters.
const LABEL_SHOWN: usize = 40;

/// Penalty per rule whose worst finding is an error, a warning, an info.
const PENALTY: [u64; 3] = [10, 3, 1];

/// Aggregates findings and checks and writes one HTML page at the end.
pub struct HtmlSink<W: Write> {
    out: BufWriter<W>,
    groups: Vec<Group>,
    by_rule: HashMap<&'static str, usize>,
    /// Findings per [`STATUS_CLASSES`] entry.
    by_class: [u64; 7],
    cases: CaseCounts,
    /// The rules checks ran for.
    case_rules: HashSet<&'static str>,
    checks: Vec<Check>,
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
    rule: &'static str,
    subject: String,
    outcome: CaseOutcome,
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
    fn new(located: &Located) -> Self {
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

const STYLE: &str = "\
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#1b1b1b}
h1{margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd}
code,pre{font-family:ui-monospace,monospace;font-size:12.5px}
pre{background:#f6f6f6;border:1px solid #e2e2e2;padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
td.n{text-align:right}
.score{font-size:3em;font-weight:700}.good{color:#2e7d32}.fair{color:#ef6c00}.poor{color:#c62828}
.formula{color:#555}
.sev{display:inline-block;padding:0 .5em;border-radius:.6em;color:#fff;font-size:.85em}
.sev-error{background:#c62828}.sev-warn{background:#ef6c00}.sev-info{background:#1565c0}
.chart text{font:12px ui-monospace,monospace;fill:#1b1b1b}
.bar-error{fill:#c62828}.bar-warn{fill:#ef6c00}.bar-info{fill:#1565c0}.bar-class{fill:#546e7a}
.rule{margin-top:1.5em}.meta{color:#444}.more{font-style:italic}
li{margin-bottom:1em}.outcome-failed{color:#c62828}.outcome-skipped{color:#777}.outcome-passed{color:#2e7d32}
";

impl<W: Write> HtmlSink<W> {
    pub fn new(writer: W) -> Self {
        HtmlSink {
            out: BufWriter::new(writer),
            groups: Vec::new(),
            by_rule: HashMap::new(),
            by_class: [0; 7],
            cases: CaseCounts::default(),
            case_rules: HashSet::new(),
            checks: Vec::new(),
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

    fn render(&self, summary: &Summary) -> String {
        let ranked = self.ranked();
        let mut html = String::with_capacity(64 * 1024);
        html.push_str(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>candor report</title>\n<style>\n",
        );
        html.push_str(STYLE);
        html.push_str("</style>\n</head>\n<body>\n<h1>candor report</h1>\n");
        let _ = writeln!(
            html,
            "<p class=\"formula\">The HTTP status-code contract, checked by candor {}.</p>",
            env!("CARGO_PKG_VERSION")
        );
        self.summary_section(&mut html, summary, &ranked);
        self.charts(&mut html, &ranked);
        self.checks_section(&mut html);
        findings_section(&mut html, &ranked);
        self.skipped_section(&mut html, summary);
        html.push_str(
            "<p class=\"formula\">This page is self-contained: it loads nothing and runs no \
             script.</p>\n</body>\n</html>\n",
        );
        html
    }

    fn summary_section(&self, html: &mut String, summary: &Summary, ranked: &[&Group]) {
        let score = score(&self.cases, &self.groups, &self.case_rules);
        html.push_str("<h2 id=\"summary\">Summary</h2>\n");
        match score.value {
            Some(value) => {
                let class = match value {
                    90.. => "good",
                    50.. => "fair",
                    _ => "poor",
                };
                let _ = writeln!(
                    html,
                    "<p>Score: <span class=\"score {class}\">{value}</span> / 100</p>"
                );
            }
            None => html.push_str("<p>Score: <span class=\"score\">n/a</span></p>\n"),
        }
        let _ = writeln!(
            html,
            "<p class=\"formula\">Score = {}</p>",
            escape(&score.formula, false)
        );
        html.push_str("<table>\n");
        let mut row = |label: &str, value: u64| {
            let _ = writeln!(
                html,
                "<tr><th>{label}</th><td class=\"n\">{value}</td></tr>"
            );
        };
        row("Exchanges", summary.exchanges);
        if self.cases.total() > 0 {
            row("Checks passed", self.cases.passed);
            row("Checks failed", self.cases.failed);
            row("Checks skipped", self.cases.skipped);
        }
        row("Rules with findings", ranked.len() as u64);
        row(
            "<span class=\"sev sev-error\">error</span> findings",
            summary.errors,
        );
        row(
            "<span class=\"sev sev-warn\">warn</span> findings",
            summary.warnings,
        );
        row(
            "<span class=\"sev sev-info\">info</span> findings",
            summary.infos,
        );
        row("Unreadable entries skipped", summary.skipped);
        html.push_str("</table>\n");
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
                "<tr><td><code>{}</code></td><td><code>{}</code></td>\
                 <td class=\"outcome-{class}\">{}</td></tr>",
                escape(check.rule, false),
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
}

fn severity_badge(severity: Severity) -> String {
    format!("<span class=\"sev sev-{severity}\">{severity}</span>")
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
            "<section class=\"rule\" id=\"rule-{}\">\n<h3><code>{}</code> {} {} finding{}</h3>",
            escape(rule.id, true),
            escape(rule.id, false),
            severity_badge(group.worst()),
            total,
            if total == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            html,
            "<p>{}</p>\n<p class=\"meta\">Expects: {}<br>Reference: {}<br>\
             Catalog: <code>{}</code></p>",
            escape(rule.summary, false),
            escape(rule.expects, false),
            escape(rule.reference, false),
            escape(&rules_doc(rule), false)
        );
        html.push_str("<ol>\n");
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

fn example_item(html: &mut String, example: &Example) {
    let _ = writeln!(
        html,
        "<li><p>{} <code>{}</code></p>\n<p>{}</p>",
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
        let group = &mut self.groups[index];
        group.counts[slot(located.finding.severity)] += 1;
        if group.examples.len() < EXAMPLES_PER_RULE {
            group.examples.push(Example::new(located));
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
        if self.checks.len() < CHECKS_LISTED {
            self.checks.push(Check {
                rule: case.rule.id,
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
    use candor_contract::rules::AUTH_401_WITHOUT_CHALLENGE;

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
            html.contains("<span class=\"score poor\">25</span> / 100"),
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
        assert!(
            html.contains("<span class=\"score fair\">88</span>"),
            "{html}"
        );
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
        assert_eq!(html.matches("<li>").count(), EXAMPLES_PER_RULE);
        assert!(html.contains("… and 950 more not shown."));
        assert!(html.contains("1000 findings</h3>"));
    }

    #[test]
    fn an_empty_run_scores_100_and_still_draws_its_charts() {
        let html = run(|sink| sink.finish(&Summary::default()).unwrap());
        assert_self_contained(&html);
        assert!(html.contains("<span class=\"score good\">100</span>"));
        assert!(html.contains("<p>No findings.</p>"));
        assert_eq!(html.matches("<svg ").count(), 2);
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
