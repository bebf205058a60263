//! The JSON report: one document, streamed finding by finding.
//!
//! Findings are written as they arrive and the summary is only known at the
//! end, so the members come in this order (the shape is the same whatever
//! the order, as JSON objects are unordered):
//!
//! ```text
//! {"findings":[
//! {"rule":"…","severity":"error|warn|info","file":"…","entry":N,"line":N,
//!  "method":"…","url":"…","status":N,"message":"…","evidence":"…"},
//! …
//! ],"skipped":[{"file":"…","line":N,"entry":N,"message":"…"}],
//! "summary":{"exchanges":N,"errors":N,"warnings":N,"infos":N,"skipped":N}}
//! ```
//!
//! `line` (and `entry` of a skipped entry) is present only when known. Only
//! the first [`MAX_SKIPPED_LISTED`] skipped entries are listed;
//! `summary.skipped` is the exact count.

use std::io::{self, BufWriter, Write};

use candor_contract::Severity;
use serde::Serialize;

use super::MAX_SKIPPED_LISTED;
use crate::{Located, Sink, Skipped, Summary};

/// Streams findings as one JSON document.
pub struct JsonSink<W: Write> {
    out: BufWriter<W>,
    started: bool,
    findings: u64,
    skipped: Vec<Skipped>,
}

#[derive(Serialize)]
struct FindingRecord<'a> {
    rule: &'a str,
    severity: Severity,
    file: &'a str,
    entry: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    method: &'a str,
    url: &'a str,
    status: u16,
    message: &'a str,
    evidence: &'a str,
}

#[derive(Serialize)]
struct SkippedRecord<'a> {
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry: Option<usize>,
    message: &'a str,
}

impl<'a> From<&'a Skipped> for SkippedRecord<'a> {
    fn from(s: &'a Skipped) -> Self {
        SkippedRecord {
            file: &s.file,
            line: s.line,
            entry: s.entry,
            message: &s.message,
        }
    }
}

impl<W: Write> JsonSink<W> {
    pub fn new(writer: W) -> Self {
        JsonSink {
            out: BufWriter::with_capacity(64 * 1024, writer),
            started: false,
            findings: 0,
            skipped: Vec::new(),
        }
    }

    fn start(&mut self) -> io::Result<()> {
        if !self.started {
            self.out.write_all(b"{\"findings\":[")?;
            self.started = true;
        }
        Ok(())
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn finding(&mut self, located: &Located) -> io::Result<()> {
        self.start()?;
        self.out
            .write_all(if self.findings == 0 { b"\n" } else { b",\n" })?;
        let finding = &located.finding;
        let record = FindingRecord {
            rule: finding.rule.id,
            severity: finding.severity,
            file: &located.file,
            entry: located.entry,
            line: located.line,
            method: &located.method,
            url: &located.url,
            status: located.status,
            message: &finding.message,
            evidence: &finding.evidence,
        };
        serde_json::to_writer(&mut self.out, &record)?;
        self.findings += 1;
        Ok(())
    }

    fn skipped(&mut self, skipped: &Skipped) -> io::Result<()> {
        if self.skipped.len() < MAX_SKIPPED_LISTED {
            self.skipped.push(skipped.clone());
        }
        Ok(())
    }

    fn finish(&mut self, summary: &Summary) -> io::Result<()> {
        self.start()?;
        if self.findings > 0 {
            self.out.write_all(b"\n")?;
        }
        self.out.write_all(b"],\"skipped\":[")?;
        for (i, skipped) in self.skipped.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            serde_json::to_writer(&mut self.out, &SkippedRecord::from(skipped))?;
        }
        self.out.write_all(b"],\n\"summary\":")?;
        serde_json::to_writer(&mut self.out, summary)?;
        self.out.write_all(b"}\n")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::report::testing::{Shared, feed};

    fn run(feed_it: impl FnOnce(&mut dyn Sink)) -> Value {
        let out = Shared::default();
        let mut sink = JsonSink::new(out.clone());
        feed_it(&mut sink);
        serde_json::from_str(&out.text()).expect("the report is one valid JSON document")
    }

    #[test]
    fn findings_stream_with_the_documented_shape() {
        let doc = run(|sink| {
            feed(sink);
        });
        let keys: Vec<_> = doc.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 3, "{keys:?}");
        assert_eq!(
            doc["summary"],
            json!({"exchanges": 10, "errors": 3, "warnings": 0, "infos": 2, "skipped": 1})
        );
        let findings = doc["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 5);
        assert_eq!(
            findings[0],
            json!({
                "rule": "auth.401_without_challenge",
                "severity": "error",
                "file": "traffic.jsonl",
                "entry": 0,
                "line": 1,
                "method": "GET",
                "url": "https://api.example/items/0?q=\"x\"",
                "status": 401,
                "message": "msg \"quoted\"",
                "evidence": "evidence\nline",
            })
        );
        // A HAR entry has no line; a lowered severity is the finding's own.
        assert!(findings[2].get("line").is_none());
        assert_eq!(findings[2]["severity"], "info");
        assert_eq!(
            doc["skipped"],
            json!([{"file": "traffic.jsonl", "line": 3, "entry": 2,
                    "message": "expected value at line 1 column 1"}])
        );
    }

    #[test]
    fn no_findings_is_still_a_valid_document() {
        let doc = run(|sink| sink.finish(&Summary::default()).unwrap());
        assert_eq!(doc["findings"], json!([]));
        assert_eq!(doc["skipped"], json!([]));
        assert_eq!(doc["summary"]["exchanges"], 0);
    }

    #[test]
    fn skipped_entries_are_listed_up_to_the_cap_and_counted_exactly() {
        let total = MAX_SKIPPED_LISTED + 5;
        let doc = run(|sink| {
            for line in 1..=total {
                let skipped = Skipped {
                    file: "t.jsonl".into(),
                    line: Some(line),
                    entry: None,
                    message: "bad".into(),
                };
                sink.skipped(&skipped).unwrap();
            }
            let summary = Summary {
                skipped: total as u64,
                ..Summary::default()
            };
            sink.finish(&summary).unwrap();
        });
        assert_eq!(doc["skipped"].as_array().unwrap().len(), MAX_SKIPPED_LISTED);
        assert!(doc["skipped"][0].get("entry").is_none());
        assert_eq!(doc["summary"]["skipped"], total);
    }
}
