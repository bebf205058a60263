//! The JUnit XML report, for CI systems that show test results.
//!
//! Each check that ran (a [`Case`]) is one test case: its class name is the
//! rule ID and its name the subject; a failed check carries its findings'
//! messages and `curl` lines, a skipped one its reason. Findings no check
//! claims (all of them, in a plain lint run) become one failing test case
//! per rule, so `candor lint --format junit` is useful too. When exchanges
//! were checked, every rule of section 2 is a test case named by its title,
//! failing when it fired and passing otherwise, so a CI dashboard sees the
//! same tests from run to run. Test cases are
//! grouped in one test suite per section of the rule catalog; unreadable
//! input is one test case in error. The format puts counts before the
//! cases, so the report is written at the end, keeping only the first
//! [`FINDINGS_LISTED`] findings of each case or rule.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};

use candor_contract::Severity;
use candor_contract::rules::{RULES, Rule, Section};
use candor_contract::words::{agree, count};

use super::{escape, observed_status, place};
use crate::{Case, CaseOutcome, Located, Sink, Skipped, Summary};

/// Findings listed in one test case's failure; the rest are counted.
pub const FINDINGS_LISTED: usize = 20;
/// Unreadable entries listed; the rest are counted.
const SKIPPED_LISTED: usize = 100;

/// Collects checks and findings and writes them as JUnit XML at the end.
pub struct JunitSink<W: Write> {
    out: BufWriter<W>,
    /// Findings not yet claimed by a check, by rule ID and subject (the
    /// probed operation, or the file).
    pending: HashMap<(&'static str, String), Failures>,
    cases: Vec<TestCase>,
    skipped: Vec<String>,
}

/// The findings of one check, or of one rule.
struct Failures {
    rule: &'static Rule,
    worst: Severity,
    count: u64,
    /// Message of the first finding.
    first: String,
    /// The first [`FINDINGS_LISTED`] findings, rendered.
    listed: Vec<String>,
}

struct TestCase {
    rule: &'static Rule,
    name: String,
    outcome: Outcome,
}

enum Outcome {
    Passed,
    Failed {
        severity: Severity,
        failures: Option<Failures>,
    },
    Skipped(String),
}

impl Failures {
    fn new(located: &Located) -> Self {
        Failures {
            rule: located.finding.rule,
            worst: located.finding.severity,
            count: 0,
            first: located.finding.message.clone(),
            listed: Vec::new(),
        }
    }

    fn add(&mut self, located: &Located) {
        self.worst = self.worst.max(located.finding.severity);
        self.count += 1;
        if self.listed.len() < FINDINGS_LISTED {
            self.listed.push(render(located));
        }
    }

    fn merge(&mut self, other: Failures) {
        self.worst = self.worst.max(other.worst);
        self.count += other.count;
        let room = FINDINGS_LISTED.saturating_sub(self.listed.len());
        self.listed.extend(other.listed.into_iter().take(room));
    }

    /// The failure's text: every listed finding, then how many were left
    /// out.
    fn text(&self) -> String {
        let mut text = self.listed.join("\n");
        let unlisted = self.count.saturating_sub(self.listed.len() as u64);
        if unlisted > 0 {
            let _ = write!(text, "\n... and {unlisted} more");
        }
        text
    }

    fn message(&self) -> String {
        if self.count == 1 {
            self.first.clone()
        } else {
            format!("{} findings; first: {}", self.count, self.first)
        }
    }
}

/// One finding as lines of a failure: where and what, then the evidence,
/// and for a probe the expectation, the status and the `curl` line.
fn render(located: &Located) -> String {
    let finding = &located.finding;
    let mut text = format!(
        "[{}] {}: {}",
        finding.severity,
        place(located),
        finding.message
    );
    if !finding.evidence.is_empty() {
        let _ = write!(text, "\n  evidence: {}", finding.evidence);
    }
    match &located.probe {
        Some(probe) => {
            let got = observed_status(located).map_or("no response".to_owned(), |s| s.to_string());
            let _ = write!(
                text,
                "\n  expected {}, got {got}\n  {}",
                probe.expected,
                probe.request.curl()
            );
        }
        None if located.pointer.is_none() => {
            let _ = write!(
                text,
                "\n  {} {} -> {}",
                located.method, located.url, located.status
            );
        }
        None => {}
    }
    text
}

impl<W: Write> JunitSink<W> {
    pub fn new(writer: W) -> Self {
        JunitSink {
            out: BufWriter::new(writer),
            pending: HashMap::new(),
            cases: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// The findings of a failed check: those of its rule on its subject,
    /// or else those of its rule on any subject (a check over a whole run,
    /// such as the fault suite's upstream identity).
    fn claim(&mut self, case: &Case) -> Option<Failures> {
        if let Some(failures) = self.pending.remove(&(case.rule.id, case.subject.clone())) {
            return Some(failures);
        }
        let mut keys: Vec<_> = self
            .pending
            .keys()
            .filter(|(rule, _)| *rule == case.rule.id)
            .cloned()
            .collect();
        keys.sort();
        let mut claimed: Option<Failures> = None;
        for key in keys {
            if let Some(failures) = self.pending.remove(&key) {
                match &mut claimed {
                    Some(claimed) => claimed.merge(failures),
                    None => claimed = Some(failures),
                }
            }
        }
        claimed
    }

    /// Findings no check claimed, as one failing test case per rule, in
    /// catalog order.
    fn unclaimed(&mut self) -> Vec<TestCase> {
        let mut pending: Vec<_> = self.pending.drain().collect();
        // By rule and subject, so the findings listed are in a stable order.
        pending.sort_by(|a, b| a.0.cmp(&b.0));
        let mut merged: Vec<Failures> = Vec::new();
        for (_, failures) in pending {
            match merged.last_mut() {
                Some(last) if last.rule.id == failures.rule.id => last.merge(failures),
                _ => merged.push(failures),
            }
        }
        merged.sort_by_key(|failures| (catalog_position(failures.rule), failures.rule.id));
        merged
            .into_iter()
            .map(|failures| TestCase {
                rule: failures.rule,
                name: failures.rule.title.to_owned(),
                outcome: Outcome::Failed {
                    severity: failures.worst,
                    failures: Some(failures),
                },
            })
            .collect()
    }

    fn render(&mut self, summary: &Summary) -> String {
        let mut cases = std::mem::take(&mut self.cases);
        let mut by_rule = self.unclaimed();
        if summary.exchanges > 0 {
            // Every passive rule ran on every exchange: the ones that did
            // not fire passed.
            for rule in RULES.iter().filter(|r| r.section == Section::Passive) {
                if !cases.iter().chain(&by_rule).any(|c| c.rule.id == rule.id) {
                    by_rule.push(TestCase {
                        rule,
                        name: rule.title.to_owned(),
                        outcome: Outcome::Passed,
                    });
                }
            }
            by_rule.sort_by_key(|case| catalog_position(case.rule));
        }
        cases.extend(by_rule);
        let mut suites: BTreeMap<u8, Vec<&TestCase>> = BTreeMap::new();
        for case in &cases {
            suites
                .entry(case.rule.section.number())
                .or_default()
                .push(case);
        }
        let mut body = String::new();
        let mut totals = Counts::default();
        for (number, cases) in &suites {
            let title = format!("{number}. {}", cases[0].rule.section.title());
            let counts = Counts::of(cases);
            totals.add(counts);
            suite_open(&mut body, &title, counts);
            for case in cases {
                test_case(&mut body, case);
            }
            body.push_str("  </testsuite>\n");
        }
        if summary.skipped > 0 {
            let counts = Counts {
                tests: 1,
                errors: 1,
                ..Counts::default()
            };
            totals.add(counts);
            suite_open(&mut body, "input", counts);
            let mut text = self.skipped.join("\n");
            let unlisted = summary.skipped.saturating_sub(self.skipped.len() as u64);
            if unlisted > 0 {
                let _ = write!(text, "\n... and {unlisted} more");
            }
            let message = format!(
                "{} could not be read and {} skipped",
                count(summary.skipped, "entry", "entries"),
                agree(summary.skipped, "was", "were")
            );
            let _ = write!(
                body,
                "    <testcase classname=\"input\" name=\"unreadable entries\">\n      \
                 <error type=\"unreadable\" message=\"{}\">{}</error>\n    </testcase>\n",
                escape(&message, true),
                escape(&text, false)
            );
            body.push_str("  </testsuite>\n");
        }
        if totals.tests == 0 {
            // No check ran and nothing was found: one passing case, so CI
            // sees a report rather than an empty one.
            let counts = Counts {
                tests: 1,
                ..Counts::default()
            };
            totals.add(counts);
            suite_open(&mut body, "candor", counts);
            let name = format!(
                "{}, no findings",
                count(summary.exchanges, "exchange", "exchanges")
            );
            let _ = writeln!(
                body,
                "    <testcase classname=\"candor\" name=\"{}\"/>",
                escape(&name, true)
            );
            body.push_str("  </testsuite>\n");
        }
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            xml,
            "<testsuites name=\"candor\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
            totals.tests, totals.failures, totals.errors, totals.skipped
        );
        xml.push_str(&body);
        xml.push_str("</testsuites>\n");
        xml
    }
}

fn catalog_position(rule: &Rule) -> usize {
    RULES
        .iter()
        .position(|r| r.id == rule.id)
        .unwrap_or(usize::MAX)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    tests: u64,
    failures: u64,
    errors: u64,
    skipped: u64,
}

impl Counts {
    fn of(cases: &[&TestCase]) -> Self {
        let mut counts = Counts::default();
        for case in cases {
            counts.tests += 1;
            match case.outcome {
                Outcome::Passed => {}
                Outcome::Failed { .. } => counts.failures += 1,
                Outcome::Skipped(_) => counts.skipped += 1,
            }
        }
        counts
    }

    fn add(&mut self, other: Counts) {
        self.tests += other.tests;
        self.failures += other.failures;
        self.errors += other.errors;
        self.skipped += other.skipped;
    }
}

fn suite_open(xml: &mut String, name: &str, counts: Counts) {
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
        escape(name, true),
        counts.tests,
        counts.failures,
        counts.errors,
        counts.skipped
    );
}

fn test_case(xml: &mut String, case: &TestCase) {
    let _ = write!(
        xml,
        "    <testcase classname=\"{}\" name=\"{}\"",
        escape(case.rule.id, true),
        escape(&case.name, true)
    );
    match &case.outcome {
        Outcome::Passed => xml.push_str("/>\n"),
        Outcome::Skipped(reason) => {
            let _ = write!(
                xml,
                ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                escape(reason, true)
            );
        }
        Outcome::Failed { severity, failures } => {
            let (message, text) = match failures {
                Some(failures) => (failures.message(), failures.text()),
                None => (format!("failed at severity {severity}"), String::new()),
            };
            let _ = write!(
                xml,
                ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>\n",
                severity,
                escape(&message, true),
                escape(&text, false)
            );
        }
    }
}

impl<W: Write> Sink for JunitSink<W> {
    fn finding(&mut self, located: &Located) -> io::Result<()> {
        let subject = match &located.probe {
            Some(probe) => probe.operation.clone(),
            None => located.file.clone(),
        };
        self.pending
            .entry((located.finding.rule.id, subject))
            .or_insert_with(|| Failures::new(located))
            .add(located);
        Ok(())
    }

    fn skipped(&mut self, skipped: &Skipped) -> io::Result<()> {
        if self.skipped.len() < SKIPPED_LISTED {
            self.skipped.push(skipped.to_string());
        }
        Ok(())
    }

    fn case(&mut self, case: &Case) -> io::Result<()> {
        let outcome = match &case.outcome {
            CaseOutcome::Passed => Outcome::Passed,
            CaseOutcome::Skipped(reason) => Outcome::Skipped(reason.clone()),
            CaseOutcome::Failed(severity) => Outcome::Failed {
                severity: *severity,
                failures: self.claim(case),
            },
        };
        self.cases.push(TestCase {
            rule: case.rule,
            name: case.subject.clone(),
            outcome,
        });
        Ok(())
    }

    fn finish(&mut self, summary: &Summary) -> io::Result<()> {
        let xml = self.render(summary);
        self.out.write_all(xml.as_bytes())?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candor_contract::Finding;
    use candor_contract::rules::AUTH_401_WITHOUT_CHALLENGE;

    use super::*;
    use crate::report::testing::{HOSTILE_REASON, feed, feed_probes, located, output};

    fn run(feed_it: impl FnOnce(&mut dyn Sink)) -> String {
        output(JunitSink::new, feed_it)
    }

    /// An element of the document, with its attributes and its own text
    /// (entities resolved), and the names of its ancestors.
    #[derive(Debug)]
    struct Element {
        path: Vec<String>,
        attrs: HashMap<String, String>,
        text: String,
    }

    impl Element {
        fn name(&self) -> &str {
            self.path.last().unwrap()
        }

        fn attr(&self, name: &str) -> &str {
            self.attrs
                .get(name)
                .map(String::as_str)
                .unwrap_or_else(|| panic!("no {name} on {self:?}"))
        }
    }

    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            let end = rest[amp..].find(';').expect("entity ends with ;") + amp;
            out.push(match &rest[amp + 1..end] {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                num => {
                    let code = num.strip_prefix('#').expect("known entity");
                    char::from_u32(code.parse().unwrap()).unwrap()
                }
            });
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        assert!(!out.is_empty() || s.is_empty());
        out
    }

    /// A small XML reader, enough to prove the report well-formed: one
    /// prolog, tags that nest, quoted attributes, only XML characters, no
    /// raw `<` or `&` in text; returns every element in document order.
    fn parse(xml: &str) -> Vec<Element> {
        for c in xml.chars() {
            assert!(
                matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
                    || c >= '\u{10000}',
                "not an XML character: {c:?}"
            );
        }
        let mut rest = xml
            .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
            .expect("prolog");
        let mut elements: Vec<Element> = Vec::new();
        let mut open: Vec<(String, usize)> = Vec::new();
        while let Some(lt) = rest.find('<') {
            let text = unescape(&rest[..lt]);
            match open.last() {
                Some(&(_, index)) => elements[index].text.push_str(&text),
                None => assert!(text.trim().is_empty(), "text outside the root"),
            }
            let gt = rest[lt..].find('>').expect("tag ends") + lt;
            let tag = &rest[lt + 1..gt];
            rest = &rest[gt + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let (opened, _) = open.pop().expect("a closing tag closes something");
                assert_eq!(opened, name, "tags nest");
                continue;
            }
            let (tag, closed) = match tag.strip_suffix('/') {
                Some(tag) => (tag, true),
                None => (tag, false),
            };
            let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
            let name = &tag[..name_end];
            let mut attrs = HashMap::new();
            let mut attr_rest = tag[name_end..].trim_start();
            while !attr_rest.is_empty() {
                let eq = attr_rest.find("=\"").expect("attribute values are quoted");
                let key = &attr_rest[..eq];
                let value_end = attr_rest[eq + 2..].find('"').expect("value ends") + eq + 2;
                let raw = &attr_rest[eq + 2..value_end];
                assert!(!raw.contains('<'), "raw < in an attribute");
                let value = unescape(raw);
                assert!(attrs.insert(key.to_owned(), value).is_none(), "unique");
                attr_rest = attr_rest[value_end + 1..].trim_start();
            }
            let mut path: Vec<String> = open.iter().map(|(n, _)| n.clone()).collect();
            path.push(name.to_owned());
            elements.push(Element {
                path,
                attrs,
                text: String::new(),
            });
            if !closed {
                open.push((name.to_owned(), elements.len() - 1));
            }
        }
        assert!(open.is_empty(), "every element is closed: {open:?}");
        assert!(rest.trim().is_empty());
        assert_eq!(elements[0].name(), "testsuites");
        elements
    }

    fn count(element: &Element, attr: &str) -> u64 {
        element.attr(attr).parse().unwrap()
    }

    /// The counts on every suite and on the root agree with the test cases
    /// under them.
    fn assert_counts_add_up(elements: &[Element]) {
        let root = &elements[0];
        let mut sum = [0u64; 4];
        for (i, suite) in elements.iter().enumerate() {
            if suite.name() != "testsuite" {
                continue;
            }
            let mut own = [0u64; 4];
            for element in elements[i + 1..]
                .iter()
                .take_while(|e| e.path.len() > suite.path.len())
            {
                match element.name() {
                    "testcase" => own[0] += 1,
                    "failure" => own[1] += 1,
                    "error" => own[2] += 1,
                    "skipped" => own[3] += 1,
                    _ => {}
                }
            }
            for (k, attr) in ["tests", "failures", "errors", "skipped"]
                .iter()
                .enumerate()
            {
                assert_eq!(count(suite, attr), own[k], "{attr} of {suite:?}");
                sum[k] += own[k];
            }
        }
        for (k, attr) in ["tests", "failures", "errors", "skipped"]
            .iter()
            .enumerate()
        {
            assert_eq!(count(root, attr), sum[k], "{attr} of the root");
        }
    }

    fn cases(elements: &[Element]) -> Vec<(&str, &str)> {
        elements
            .iter()
            .filter(|e| e.name() == "testcase")
            .map(|e| (e.attr("classname"), e.attr("name")))
            .collect()
    }

    /// The test cases with a `failure` or `error` in them.
    fn failing(elements: &[Element]) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        let mut current = None;
        for e in elements {
            match e.name() {
                "testcase" => current = Some((e.attr("classname"), e.attr("name"))),
                "failure" | "error" => out.extend(current.take()),
                _ => {}
            }
        }
        out
    }

    /// The classes of the passing passive-rule cases of a run that checked
    /// exchanges: every section-2 rule but `fired`.
    fn passive_rules_but(fired: &[&str]) -> Vec<&'static str> {
        RULES
            .iter()
            .filter(|r| r.section == Section::Passive && !fired.contains(&r.id))
            .map(|r| r.id)
            .collect()
    }

    #[test]
    fn checks_become_test_cases_and_unclaimed_findings_one_per_rule() {
        let xml = run(|sink| {
            feed_probes(sink);
        });
        let elements = parse(&xml);
        assert_counts_add_up(&elements);
        let root = &elements[0];
        assert_eq!(
            [
                count(root, "tests"),
                count(root, "failures"),
                count(root, "errors"),
                count(root, "skipped")
            ],
            [21, 3, 0, 1],
            "{xml}"
        );
        let all = cases(&elements);
        // Section 2: every passive rule, in catalog order; the one the spec
        // finding no check claimed fails.
        assert_eq!(all.len(), 21);
        assert!(all.contains(&("created.201_without_location", "201 without Location")));
        // Section 3: the checks, in the order they ran.
        assert_eq!(
            all[17..],
            [
                ("probe.wrong_media_type", "POST /users"),
                ("probe.oversize_body", "PUT /users"),
                ("probe.no_credentials", "GET /users"),
                ("probe.insufficient_role", "DELETE /users/{id}"),
            ]
        );
        assert_eq!(
            failing(&elements),
            [
                ("created.201_without_location", "201 without Location"),
                ("probe.wrong_media_type", "POST /users"),
                ("probe.oversize_body", "PUT /users"),
            ]
        );
        let suites: Vec<_> = elements
            .iter()
            .filter(|e| e.name() == "testsuite")
            .map(|e| e.attr("name"))
            .collect();
        assert_eq!(
            suites,
            [
                "2. Rules checked on any exchange",
                "3. Active probes against a live API"
            ]
        );

        let failures: Vec<_> = elements.iter().filter(|e| e.name() == "failure").collect();
        let media = failures[1];
        assert_eq!(media.attr("type"), "error");
        assert_eq!(media.attr("message"), "500 where 415 is expected");
        assert!(
            media
                .text
                .starts_with("[error] POST /users: 500 where 415 is expected\n"),
            "{}",
            media.text
        );
        assert!(
            media
                .text
                .contains("\n  evidence: <script>alert(\"x\")</script>")
        );
        assert!(
            media
                .text
                .contains("\n  expected 415 (400 accepted as warn), got 500")
        );
        assert!(
            media
                .text
                .contains("\n  curl -i -X POST -H 'Content-Type: text/plain'")
        );
        assert!(failures[2].text.contains("got no response"));
        assert!(
            failures[0]
                .text
                .contains("openapi.yaml:42 /paths/~1users/post")
        );

        // The reason of the skipped check: metacharacters as entities, the
        // control character (not allowed in XML 1.0) as a visible escape.
        let skipped = elements.iter().find(|e| e.name() == "skipped").unwrap();
        assert_eq!(
            skipped.attr("message"),
            HOSTILE_REASON.replace('\u{7}', "\\u{7}")
        );
        assert!(xml.contains("&lt;admin&gt; &amp; &quot;ops&quot; &apos;x&apos;"));
        assert!(!xml.contains("<script>"));
    }

    #[test]
    fn a_lint_run_gets_one_failing_case_per_rule_and_an_input_error() {
        let xml = run(|sink| {
            feed(sink);
        });
        let elements = parse(&xml);
        assert_counts_add_up(&elements);
        assert_eq!(
            failing(&elements),
            [
                ("auth.401_without_challenge", "401 without challenge"),
                ("created.201_without_location", "201 without Location"),
                ("delete.200_empty", "DELETE answered 200 with nothing"),
                ("input", "unreadable entries"),
            ]
        );
        let fired = [
            "auth.401_without_challenge",
            "created.201_without_location",
            "delete.200_empty",
        ];
        let passed: Vec<&str> = cases(&elements)
            .into_iter()
            .filter(|(class, _)| !fired.contains(class) && *class != "input")
            .map(|(class, _)| class)
            .collect();
        assert_eq!(passed, passive_rules_but(&fired));
        let root = &elements[0];
        assert_eq!(count(root, "tests"), 18);
        assert_eq!(count(root, "failures"), 3);
        assert_eq!(count(root, "errors"), 1);
        let auth = elements.iter().find(|e| e.name() == "failure").unwrap();
        assert_eq!(auth.attr("message"), "3 findings; first: msg \"quoted\"");
        assert!(
            auth.text
                .contains("[error] traffic.jsonl:1 (entry 0): msg \"quoted\"\n  evidence: evidence\nline\n  GET https://api.example/items/0?q=\"x\" -> 401"),
            "{}",
            auth.text
        );
        let created = elements
            .iter()
            .filter(|e| e.name() == "failure")
            .nth(1)
            .unwrap();
        assert_eq!(created.attr("type"), "info", "the finding's own severity");
        let error = elements.iter().find(|e| e.name() == "error").unwrap();
        assert!(error.text.contains("traffic.jsonl:3: expected value"));
    }

    #[test]
    fn a_check_claims_its_rules_findings_on_its_subject_or_else_on_any() {
        let xml = run(|sink| {
            // Two findings of a spec rule on one file, claimed by the
            // check of that rule over that file.
            for entry in [1, 2] {
                let mut spec = located(
                    "openapi.yaml",
                    entry,
                    Some(entry * 10),
                    Finding::new(&AUTH_401_WITHOUT_CHALLENGE, "spec", ""),
                );
                spec.pointer = Some(format!("/paths/~1p{entry}"));
                sink.finding(&spec).unwrap();
            }
            sink.case(&Case {
                rule: &AUTH_401_WITHOUT_CHALLENGE,
                subject: "openapi.yaml".to_owned(),
                outcome: CaseOutcome::Failed(Severity::Error),
            })
            .unwrap();
            // Findings on other subjects, claimed by a check over the run.
            for file in ["a.jsonl", "b.jsonl"] {
                let finding = Finding::new(&AUTH_401_WITHOUT_CHALLENGE, file, "");
                sink.finding(&located(file, 0, Some(1), finding)).unwrap();
            }
            sink.case(&Case {
                rule: &AUTH_401_WITHOUT_CHALLENGE,
                subject: "every scenario".to_owned(),
                outcome: CaseOutcome::Failed(Severity::Error),
            })
            .unwrap();
            sink.finish(&Summary::default()).unwrap();
        });
        let elements = parse(&xml);
        assert_counts_add_up(&elements);
        assert_eq!(
            cases(&elements),
            [
                ("auth.401_without_challenge", "openapi.yaml"),
                ("auth.401_without_challenge", "every scenario"),
            ]
        );
        let failures: Vec<_> = elements.iter().filter(|e| e.name() == "failure").collect();
        assert_eq!(failures[0].attr("message"), "2 findings; first: spec");
        assert!(
            failures[0]
                .text
                .contains("openapi.yaml:20 /paths/~1p2: spec")
        );
        assert_eq!(failures[1].attr("message"), "2 findings; first: a.jsonl");
        assert!(failures[1].text.contains("b.jsonl:1 (entry 0): b.jsonl"));
    }

    #[test]
    fn a_clean_run_passes_every_passive_rule_and_an_empty_one_is_one_case() {
        let xml = run(|sink| {
            let summary = Summary {
                exchanges: 7,
                ..Summary::default()
            };
            sink.finish(&summary).unwrap();
        });
        let elements = parse(&xml);
        assert_counts_add_up(&elements);
        let classes: Vec<&str> = cases(&elements).into_iter().map(|(c, _)| c).collect();
        assert_eq!(classes, passive_rules_but(&[]));
        assert_eq!(count(&elements[0], "failures"), 0);

        let xml = run(|sink| {
            sink.finish(&Summary::default()).unwrap();
        });
        let elements = parse(&xml);
        assert_counts_add_up(&elements);
        assert_eq!(cases(&elements), [("candor", "0 exchanges, no findings")]);
    }

    #[test]
    fn only_the_first_findings_of_a_rule_are_listed() {
        let xml = run(|sink| {
            for entry in 0..1000 {
                let finding = Finding::new(&AUTH_401_WITHOUT_CHALLENGE, "m", "e");
                sink.finding(&located("t.jsonl", entry, Some(entry + 1), finding))
                    .unwrap();
            }
            sink.finish(&Summary::default()).unwrap();
        });
        let elements = parse(&xml);
        let failure = elements.iter().find(|e| e.name() == "failure").unwrap();
        assert_eq!(failure.attr("message"), "1000 findings; first: m");
        assert_eq!(failure.text.matches("[error] ").count(), FINDINGS_LISTED);
        assert!(failure.text.ends_with("... and 980 more"));
    }

    #[test]
    fn escape_covers_metacharacters_breaks_and_control_characters() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>", false),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"
        );
        assert_eq!(escape("a\nb\tc\rd", false), "a\nb\tc&#13;d");
        assert_eq!(escape("a\nb\tc\rd", true), "a&#10;b&#9;c&#13;d");
        assert_eq!(
            escape("\u{0}\u{1b}\u{FFFE}é", false),
            "\\u{0}\\u{1b}\\u{fffe}é"
        );
    }
}
