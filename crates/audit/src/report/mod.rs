//! Reports: where located findings go, as a table for people or as JSON and
//! SARIF for machines.
//!
//! Every report is a [`Sink`]: JSON and SARIF stream each finding as it
//! arrives, the table aggregates per rule, so memory stays flat however
//! large the input is.

mod json;
mod sarif;
mod table;

use std::fmt;
use std::io::Write;
use std::str::FromStr;

pub use json::JsonSink;
pub use sarif::SarifSink;
pub use table::TableSink;

use crate::Sink;

/// How many skipped entries a machine-readable report lists one by one; the
/// summary always carries the exact count.
pub const MAX_SKIPPED_LISTED: usize = 1000;

/// The output formats of `candor lint`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// Findings grouped by rule, for people.
    #[default]
    Table,
    /// One JSON document, streamed.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Format; 3] = [Format::Table, Format::Json, Format::Sarif];

    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Sarif => "sarif",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name that is none of `table`, `json` or `sarif`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown report format {0:?}: expected table, json or sarif")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|format| format.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// The report for `format`, writing to `writer` (buffered internally).
pub fn sink(format: Format, writer: Box<dyn Write + Send>) -> Box<dyn Sink + Send> {
    match format {
        Format::Table => Box::new(TableSink::new(writer)),
        Format::Json => Box::new(JsonSink::new(writer)),
        Format::Sarif => Box::new(SarifSink::new(writer)),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A writer the test keeps a handle on after the sink has taken it, and
    //! synthetic findings.

    use std::io::{self, Write};
    use std::sync::{Arc, Mutex};

    use candor_contract::Finding;
    use candor_contract::rules::{
        AUTH_401_WITHOUT_CHALLENGE, CREATED_201_WITHOUT_LOCATION, DELETE_200_EMPTY,
    };

    use crate::{Located, Skipped, Summary};

    #[derive(Clone, Default)]
    pub struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Shared {
        pub fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    pub fn located(file: &str, entry: usize, line: Option<usize>, finding: Finding) -> Located {
        Located::traffic(
            file,
            entry,
            line,
            "GET",
            format!("https://api.example/items/{entry}?q=\"x\""),
            401,
            finding,
        )
    }

    /// Three 401s without a challenge, one 201 without Location (as info,
    /// to show a lowered severity), one DELETE 200 empty; one skipped line.
    pub fn feed(sink: &mut dyn crate::Sink) -> Summary {
        let mut summary = Summary {
            exchanges: 10,
            ..Summary::default()
        };
        let findings = [
            located(
                "traffic.jsonl",
                0,
                Some(1),
                Finding::new(
                    &AUTH_401_WITHOUT_CHALLENGE,
                    "msg \"quoted\"",
                    "evidence\nline",
                ),
            ),
            located(
                "traffic.jsonl",
                3,
                Some(4),
                Finding::new(&AUTH_401_WITHOUT_CHALLENGE, "msg", "evidence"),
            ),
            located(
                "capture.har",
                5,
                None,
                Finding::new(&CREATED_201_WITHOUT_LOCATION, "no Location", "")
                    .with_severity(candor_contract::Severity::Info),
            ),
            located(
                "traffic.jsonl",
                7,
                Some(8),
                Finding::new(&AUTH_401_WITHOUT_CHALLENGE, "msg", "evidence"),
            ),
            located(
                "traffic.jsonl",
                8,
                Some(9),
                Finding::new(&DELETE_200_EMPTY, "empty 200", "{}"),
            ),
        ];
        for located in &findings {
            summary.count(located.finding.severity);
            sink.finding(located).unwrap();
        }
        let skipped = Skipped {
            file: "traffic.jsonl".to_owned(),
            line: Some(3),
            entry: Some(2),
            message: "expected value at line 1 column 1".to_owned(),
        };
        summary.skipped += 1;
        sink.skipped(&skipped).unwrap();
        sink.finish(&summary).unwrap();
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_parses_its_three_names_and_rejects_others() {
        for format in Format::ALL {
            assert_eq!(format.as_str().parse::<Format>(), Ok(format));
        }
        assert_eq!("JSON".parse::<Format>(), Ok(Format::Json));
        let err = "xml".parse::<Format>().unwrap_err();
        assert!(err.to_string().contains("table, json or sarif"), "{err}");
    }

    #[test]
    fn sink_dispatches_on_format() {
        let out = testing::Shared::default();
        let mut sink = sink(Format::Json, Box::new(out.clone()));
        testing::feed(sink.as_mut());
        let doc: serde_json::Value = serde_json::from_str(&out.text()).unwrap();
        assert_eq!(doc["summary"]["errors"], 3);
    }
}
