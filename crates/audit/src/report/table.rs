//! The human report: findings counted per rule, with a few examples each.
//!
//! Nothing is printed until the end, and only per-rule tallies and the
//! first examples are kept, so memory is bounded by the size of the rule
//! catalog, not by the number of findings.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};

use candor_contract::Severity;
use candor_contract::rules::Rule;
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use crate::{Located, Sink, Skipped, Summary};

/// Examples kept and shown per rule.
pub const EXAMPLES_PER_RULE: usize = 3;
/// Skipped entries shown one by one; the summary line counts them all.
pub const SKIPPED_SHOWN: usize = 10;
/// Width the report is laid out for.
pub const WIDTH: u16 = 100;
/// Longest URL shown in an example, in characters.
const URL_SHOWN: usize = 80;

/// Aggregates findings per rule and prints them as a table at the end.
pub struct TableSink<W: Write> {
    out: BufWriter<W>,
    tallies: Vec<Tally>,
    by_rule: HashMap<&'static str, usize>,
    skipped: Vec<String>,
}

/// Everything the report keeps about one rule.
struct Tally {
    rule: &'static Rule,
    /// Findings per severity, worst first: error, warn, info.
    counts: [u64; 3],
    examples: Vec<Example>,
}

struct Example {
    /// `file:line (entry N)`, or `file entry N` when there are no lines.
    place: String,
    /// `GET https://… -> 401`.
    exchange: String,
    message: String,
    evidence: String,
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
        let place = match located.line {
            Some(line) => format!("{}:{line} (entry {})", located.file, located.entry),
            None => format!("{} entry {}", located.file, located.entry),
        };
        Example {
            place,
            exchange: format!(
                "{} {} -> {}",
                located.method,
                shorten(&located.url, URL_SHOWN),
                located.status
            ),
            message: printable(&located.finding.message),
            evidence: printable(&located.finding.evidence),
        }
    }
}

impl<W: Write> TableSink<W> {
    pub fn new(writer: W) -> Self {
        TableSink {
            out: BufWriter::new(writer),
            tallies: Vec::new(),
            by_rule: HashMap::new(),
            skipped: Vec::new(),
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
            let count = plural(summary.skipped, "unreadable entry", "unreadable entries");
            let _ = writeln!(text, "\nSkipped {count}:");
            for skipped in &self.skipped {
                let _ = writeln!(text, "  {skipped}");
            }
            let unlisted = summary.skipped.saturating_sub(self.skipped.len() as u64);
            if unlisted > 0 {
                let _ = writeln!(text, "  ... and {unlisted} more");
            }
        }
        let _ = writeln!(
            text,
            "\n{} exchanges, {} errors, {} warnings, {} infos, {} skipped",
            summary.exchanges, summary.errors, summary.warnings, summary.infos, summary.skipped
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
    let _ = writeln!(
        text,
        "\n{} ({}, {})",
        tally.rule.id,
        tally.worst(),
        plural(total, "finding", "findings")
    );
    for example in &tally.examples {
        let _ = writeln!(text, "  {}", example.place);
        let _ = writeln!(text, "    {}", example.exchange);
        wrap(text, "    ", &example.message);
        if !example.evidence.is_empty() {
            wrap(text, "    ", &format!("evidence: {}", example.evidence));
        }
    }
    let unlisted = total.saturating_sub(tally.examples.len() as u64);
    if unlisted > 0 {
        let _ = writeln!(text, "  ... and {unlisted} more");
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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

/// `s` with control characters escaped, so one example stays on its lines.
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl<W: Write> Sink for TableSink<W> {
    fn finding(&mut self, located: &Located) -> io::Result<()> {
        let rule = located.finding.rule;
        let index = *self.by_rule.entry(rule.id).or_insert_with(|| {
            self.tallies.push(Tally {
                rule,
                counts: [0; 3],
                examples: Vec::with_capacity(EXAMPLES_PER_RULE),
            });
            self.tallies.len() - 1
        });
        let tally = &mut self.tallies[index];
        tally.counts[slot(located.finding.severity)] += 1;
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
    use crate::report::testing::{Shared, feed, located};

    fn run(feed_it: impl FnOnce(&mut dyn Sink)) -> String {
        let out = Shared::default();
        let mut sink = TableSink::new(out.clone());
        feed_it(&mut sink);
        out.text()
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
                .ends_with("10 exchanges, 3 errors, 0 warnings, 2 infos, 1 skipped"),
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
            "No findings.\n\n42 exchanges, 0 errors, 0 warnings, 0 infos, 0 skipped\n"
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
