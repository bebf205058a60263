//! The human report: findings counted per rule, with a few examples each.
//!
//! Nothing is printed until the end, and only per-rule tallies and the
//! first examples are kept, so memory is bounded by the size of the rule
//! catalog, not by the number of findings. An example shows where the
//! finding is (file and line, JSON pointer, or probed operation) and, for a
//! probe, the status expected and received and a `curl` line to reproduce
//! it; checks that ran are counted on one line.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};

use candor_contract::Severity;
use candor_contract::rules::Rule;
use candor_contract::words::count;
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use super::{CaseCounts, place, printable};
use crate::{Case, CaseOutcome, Located, Sink, Skipped, Summary};

/// Examples kept and shown per rule.
pub const EXAMPLES_PER_RULE: usize = 3;
/// Skipped entries shown one by one; the summary line counts them all.
pub const SKIPPED_SHOWN: usize = 10;
/// Width the report is laid out for.
pub const WIDTH: u16 = 100;
/// Longest URL shown in an example, in characters.
const URL_SHOWN: usize = 80;
/// Operations named for a finding that affects many; the rest are counted.
pub const OCCURRENCES_SHOWN: usize = 3;

/// Aggregates findings per rule and prints them as a table at the end.
pub struct TableSink<W: Write> {
    out: BufWriter<W>,
    tallies: Vec<Tally>,
    by_rule: HashMap<&'static str, usize>,
    skipped: Vec<String>,
    cases: CaseCounts,
    /// The first skipped checks, as `rule on subject: reason`.
    skipped_cases: Vec<String>,
}

/// Everything the report keeps about one rule.
struct Tally {
    rule: &'static Rule,
    /// Findings per severity, worst first: error, warn, info.
    counts: [u64; 3],
    /// Operations the findings affect (a finding with no occurrences
    /// counts as one).
    affected: u64,
    examples: Vec<Example>,
}

struct Example {
    /// `file:line (entry N)`, `file entry N` when there are no lines,
    /// `file:line /json/pointer` in an OpenAPI file, or the probed
    /// operation.
    place: String,
    /// `GET https://… -> 401` for an exchange, `expected 415, got 500` for a
    /// probe; nothing for a spec finding.
    exchange: Option<String>,
    message: String,
    evidence: String,
    /// `affects 468 operations: GET /a, POST /b, PUT /c and 465 more`, for
    /// a finding whose one cause affects several operations.
    affects: Option<String>,
    /// The probe's request as a `curl` line, kept whole so it can be
    /// copied (so it may be wider than the report).
    curl: Option<String>,
}

const SEVERITIES: [Severity; 3] = [Severity::Error, Severity::Warn, Severity::Info];

fn slot(severity: Severity) -> usize {
    match severity {
        Severity::Error => 0,
        Severity::Warn => 1,
        Severity::Info => 2,
    }
}

impl Tally {
    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The worst severity found under this rule.
    fn worst(&self) -> Severity {
        SEVERITIES
            .into_iter()
            .find(|&severity| self.counts[slot(severity)] > 0)
            .unwrap_or(self.rule.severity)
    }

    /// The total, broken down by severity when findings of one rule were
    /// reported at different severities.
    fn count_cell(&self) -> String {
        let total = self.total();
        let nonzero: Vec<_> = SEVERITIES
            .into_iter()
            .filter(|&severity| self.counts[slot(severity)] > 0)
            .collect();
        if nonzero.len() <= 1 {
            return total.to_string();
        }
        let parts: Vec<_> = nonzero
            .into_iter()
            .map(|severity| format!("{} {severity}", self.counts[slot(severity)]))
            .collect();
        format!("{total}\n({})", parts.join(", "))
    }
}

impl Example {
    fn new(located: &Located) -> Self {
        let (exchange, curl) = match (&located.probe, &located.pointer) {
            (Some(probe), _) => {
                let got = match &probe.response {
                    Some(response) => response.status.to_string(),
                    None => "no response".to_owned(),
                };
                let curl = probe.request.curl();
                let curl = if curl.chars().any(char::is_control) {
                    format!(
                        "{} (control characters escaped; the JSON report has the exact line)",
                        printable(&curl)
                    )
                } else {
                    curl
                };
                (
                    Some(printable(&format!(
                        "expected {}, got {got}",
                        probe.expected
                    ))),
                    Some(curl),
                )
            }
            (None, Some(_)) => (None, None),
            (None, None) => (
                Some(format!(
                    "{} {} -> {}",
                    located.method,
                    shorten(&located.url, URL_SHOWN),
                    located.status
                )),
                None,
            ),
        };
        Example {
            place: printable(&place(located)),
            exchange,
            message: printable(&located.finding.message),
            evidence: printable(&located.finding.evidence),
            affects: affects(located).map(|a| printable(&a)),
            curl,
        }
    }
}

/// `affects 468 operations: GET /a, POST /b, PUT /c and 465 more`, when a
/// finding affects more than one operation.
fn affects(located: &Located) -> Option<String> {
    let all = &located.occurrences;
    if all.len() < 2 {
        return None;
    }
    let shown: Vec<String> = all
        .iter()
        .take(OCCURRENCES_SHOWN)
        .map(|o| o.label())
        .collect();
    let more = all.len() - shown.len();
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Some(format!(
        "affects {}: {}{tail}",
        count(all.len(), "operation", "operations"),
        shown.join(", ")
    ))
}

impl<W: Write> TableSink<W> {
    pub fn new(writer: W) -> Self {
        TableSink {
            out: BufWriter::new(writer),
            tallies: Vec::new(),
            by_rule: HashMap::new(),
            skipped: Vec::new(),
            cases: CaseCounts::default(),
            skipped_cases: Vec::new(),
        }
    }

    /// Tallies, worst severity first, then most frequent, then by ID.
    fn ranked(&self) -> Vec<&Tally> {
        let mut ranked: Vec<&Tally> = self.tallies.iter().collect();
        ranked.sort_by(|a, b| {
            b.worst()
                .cmp(&a.worst())
                .then(b.total().cmp(&a.total()))
                .then(a.rule.id.cmp(b.rule.id))
        });
        ranked
    }

    fn render(&self, summary: &Summary) -> String {
        let mut text = String::new();
        let ranked = self.ranked();
        if ranked.is_empty() {
            text.push_str("No findings.\n");
        } else {
            text.push_str(&overview(&ranked).to_string());
            text.push('\n');
            for tally in &ranked {
                examples(&mut text, tally);
            }
        }
        if summary.skipped > 0 {
            let entries = count(summary.skipped, "unreadable entry", "unreadable entries");
            let _ = writeln!(text, "\nSkipped {entries}:");
            for skipped in &self.skipped {
                let _ = writeln!(text, "  {skipped}");
            }
            let unlisted = summary.skipped.saturating_sub(self.skipped.len() as u64);
            if unlisted > 0 {
                let _ = writeln!(text, "  ... and {unlisted} more");
            }
        }
        if self.cases.total() > 0 {
            let CaseCounts {
                passed,
                failed,
                skipped,
            } = self.cases;
            let checks = count(self.cases.total(), "check", "checks");
            let _ = writeln!(
                text,
                "\n{checks}: {passed} passed, {failed} failed, {skipped} skipped"
            );
            for skipped in &self.skipped_cases {
                wrap(&mut text, "  ", &format!("skipped {skipped}"));
            }
            let unlisted = skipped.saturating_sub(self.skipped_cases.len() as u64);
            if unlisted > 0 {
                let _ = writeln!(text, "  ... and {unlisted} more skipped");
            }
        }
        // `unreadable`, not `skipped`: the checks line above counts skipped
        // checks, and the two must not read as one count that disagrees.
        let _ = writeln!(
            text,
            "\n{}, {}, {}, {}, {} unreadable",
            count(summary.exchanges, "exchange", "exchanges"),
            count(summary.errors, "error", "errors"),
            count(summary.warnings, "warning", "warnings"),
            count(summary.infos, "info", "infos"),
            summary.skipped
        );
        text
    }
}

/// One row per rule: ID, severity, count and what the rule is about.
fn overview(ranked: &[&Tally]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(WIDTH)
        .set_header(["Rule", "Severity", "Count", "Summary"]);
    for tally in ranked {
        table.add_row([
            tally.rule.id.to_owned(),
            tally.worst().to_string(),
            tally.count_cell(),
            tally.rule.summary.to_owned(),
        ]);
    }
    if let Some(count) = table.column_mut(2) {
        count.set_cell_alignment(CellAlignment::Right);
    }
    table
}

/// The examples kept for one rule, indented under its ID.
fn examples(text: &mut String, tally: &Tally) {
    let total = tally.total();
    let affected = if tally.affected > total {
        format!(", {}", count(tally.affected, "operation", "operations"))
    } else {
        String::new()
    };
    let _ = writeln!(
        text,
        "\n{} ({}, {}{affected})",
        tally.rule.id,
        tally.worst(),
        count(total, "finding", "findings")
    );
    for example in &tally.examples {
        wrap(text, "  ", &example.place);
        if let Some(exchange) = &example.exchange {
            wrap(text, "    ", exchange);
        }
        wrap(text, "    ", &example.message);
        if let Some(affects) = &example.affects {
            wrap(text, "    ", affects);
        }
        if !example.evidence.is_empty() {
            wrap(text, "    ", &format!("evidence: {}", example.evidence));
        }
        if let Some(curl) = &example.curl {
            let _ = writeln!(text, "    {curl}");
        }
    }
    let unlisted = total.saturating_sub(tally.examples.len() as u64);
    if unlisted > 0 {
        let _ = writeln!(text, "  ... and {unlisted} more");
    }
}

/// Appends `words` as lines that start with `indent` and fit in [`WIDTH`],
/// breaking between words, or inside a word too long for a line.
fn wrap(text: &mut String, indent: &str, words: &str) {
    let room = usize::from(WIDTH) - indent.len();
    let mut line = String::new();
    let mut line_chars = 0;
    for word in words.split(' ') {
        let mut word = word;
        loop {
            let word_chars = word.chars().count();
            let needed = if line_chars == 0 {
                word_chars
            } else {
                line_chars + 1 + word_chars
            };
            if needed <= room {
                if line_chars > 0 {
                    line.push(' ');
                }
                line.push_str(word);
                line_chars = needed;
                break;
            }
            if line_chars > 0 {
                let _ = writeln!(text, "{indent}{line}");
                line.clear();
                line_chars = 0;
                continue;
            }
            // A word longer than a whole line: cut it.
            let cut = word.char_indices().nth(room).map_or(word.len(), |(i, _)| i);
            let _ = writeln!(text, "{indent}{}", &word[..cut]);
            word = &word[cut..];
        }
    }
    if line_chars > 0 {
        let _ = writeln!(text, "{indent}{line}");
    }
}

/// Cuts `s` to `max` characters, marking the cut.
fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

impl<W: Write> Sink for TableSink<W> {
    fn finding(&mut self, located: &Located) -> io::Result<()> {
        let rule = located.finding.rule;
        let index = *self.by_rule.entry(rule.id).or_insert_with(|| {
            self.tallies.push(Tally {
                rule,
                counts: [0; 3],
                affected: 0,
                examples: Vec::with_capacity(EXAMPLES_PER_RULE),
            });
            self.tallies.len() - 1
        });
        let tally = &mut self.tallies[index];
        tally.counts[slot(located.finding.severity)] += 1;
        tally.affected += located.occurrences.len().max(1) as u64;
        if tally.examples.len() < EXAMPLES_PER_RULE {
            tally.examples.push(Example::new(located));
        }
        Ok(())
    }

    fn skipped(&mut self, skipped: &Skipped) -> io::Result<()> {
        if self.skipped.len() < SKIPPED_SHOWN {
            self.skipped.push(printable(&skipped.to_string()));
        }
        Ok(())
    }

    fn case(&mut self, case: &Case) -> io::Result<()> {
        self.cases.count(&case.outcome);
        if let CaseOutcome::Skipped(reason) = &case.outcome
            && self.skipped_cases.len() < SKIPPED_SHOWN
        {
            self.skipped_cases.push(printable(&format!(
                "{} on {}: {reason}",
                case.rule.id, case.subject
            )));
        }
        Ok(())
    }

    fn finish(&mut self, summary: &Summary) -> io::Result<()> {
        let text = self.render(summary);
        self.out.write_all(text.as_bytes())?;
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
        output(TableSink::new, feed_it)
    }

    #[test]
    fn rules_are_listed_errors_first_with_counts_examples_and_summary() {
        let text = run(|sink| {
            feed(sink);
        });
        let auth = text.find("auth.401_without_challenge").unwrap();
        let created = text.find("created.201_without_location").unwrap();
        let delete = text.find("delete.200_empty").unwrap();
        assert!(
            auth < created && auth < delete,
            "errors come first:\n{text}"
        );
        assert!(
            text.contains("auth.401_without_challenge (error, 3 findings)"),
            "{text}"
        );
        assert!(text.contains("  traffic.jsonl:1 (entry 0)\n    GET https://api.example/items/0"));
        assert!(text.contains("evidence: evidence\\nline"), "{text}");
        assert!(text.contains("capture.har entry 5"), "{text}");
        assert!(text.contains("Skipped 1 unreadable entry:"), "{text}");
        assert!(text.contains("traffic.jsonl:3: expected value"), "{text}");
        assert!(
            text.trim_end()
                .ends_with("10 exchanges, 3 errors, 0 warnings, 2 infos, 1 unreadable"),
            "{text}"
        );
        for line in text.lines() {
            assert!(
                line.chars().count() <= usize::from(WIDTH),
                "too wide: {line}"
            );
        }
    }

    #[test]
    fn probe_and_spec_findings_show_where_what_and_how_to_reproduce() {
        let text = run(|sink| {
            feed_probes(sink);
        });
        // A spec finding: file, line and pointer; no exchange line.
        assert!(
            text.contains(
                "  openapi.yaml:42 /paths/~1users/post/responses/201\n    201 declares no Location"
            ),
            "{text}"
        );
        // A probe: operation, expected and actual status, then curl.
        assert!(
            text.contains("  POST /users\n    expected 415 (400 accepted as warn), got 500\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "    curl -i -X POST -H 'Content-Type: text/plain' --data-binary '{\"name\""
            ),
            "{text}"
        );
        assert!(
            text.contains("expected 413 (5xx fail), got no response"),
            "{text}"
        );
        assert!(
            text.contains("4 checks: 1 passed, 2 failed, 1 skipped"),
            "{text}"
        );
        assert!(
            text.contains(
                "  skipped probe.insufficient_role on DELETE /users/{id}: no credentials"
            ),
            "{text}"
        );
        assert!(
            text.contains("\\u{7}"),
            "control characters are escaped: {text}"
        );
        for line in text.lines().filter(|l| !l.starts_with("    curl ")) {
            assert!(
                line.chars().count() <= usize::from(WIDTH),
                "too wide: {line}"
            );
        }
    }

    #[test]
    fn a_lint_run_has_no_checks_line() {
        let text = run(|sink| {
            feed(sink);
        });
        assert!(!text.contains("checks"), "{text}");
    }

    #[test]
    fn only_the_first_examples_are_kept() {
        let text = run(|sink| {
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
        assert!(text.contains("1000 findings"), "{text}");
        assert!(text.contains("t.jsonl:3 (entry 2)"));
        assert!(!text.contains("t.jsonl:4 (entry 3)"));
        assert!(text.contains("... and 997 more"), "{text}");
    }

    #[test]
    fn no_findings_says_so() {
        let text = run(|sink| {
            let summary = Summary {
                exchanges: 42,
                ..Summary::default()
            };
            sink.finish(&summary).unwrap();
        });
        assert_eq!(
            text,
            "No findings.\n\n42 exchanges, 0 errors, 0 warnings, 0 infos, 0 unreadable\n"
        );
    }

    #[test]
    fn long_text_wraps_within_the_width() {
        let mut text = String::new();
        let long = format!("{} {}", "word ".repeat(40), "x".repeat(250));
        wrap(&mut text, "    ", &long);
        for line in text.lines() {
            assert!(
                line.chars().count() <= usize::from(WIDTH),
                "too wide: {line}"
            );
            assert!(
                line.starts_with("    ") && !line[4..].starts_with(' '),
                "{line:?}"
            );
        }
        let rejoined: String = text.lines().map(|l| &l[4..]).collect::<Vec<_>>().join(" ");
        assert_eq!(rejoined.split_whitespace().count(), 40 + 3);
    }

    #[test]
    fn long_urls_are_shortened_on_a_char_boundary() {
        let url = "é".repeat(100);
        let short = shorten(&url, URL_SHOWN);
        assert_eq!(short.chars().count(), URL_SHOWN + 1);
        assert!(short.ends_with('…'));
    }
}
