//! What a check reports: a rule, a message, and the evidence for it.

use crate::rules::{Rule, Severity};

/// Longest evidence string a finding keeps; longer fragments are cut at a
/// character boundary and end with an ellipsis.
pub const MAX_EVIDENCE: usize = 240;

/// One violation of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static Rule,
    /// The severity; normally the rule's own, but a probe may lower it (for
    /// example 400 where 415 is expected is only a warning).
    pub severity: Severity,
    /// What is wrong, in one sentence.
    pub message: String,
    /// The offending header or body fragment, as received (bounded).
    pub evidence: String,
    /// The passive rule that sees the same fact, when this is a probe's
    /// finding on it: a report shows the fact once, as this finding.
    pub same_as: Option<&'static Rule>,
}

impl Finding {
    /// A finding at the rule's own severity.
    pub fn new(rule: &'static Rule, message: impl Into<String>, evidence: impl AsRef<str>) -> Self {
        Finding {
            rule,
            severity: rule.severity,
            message: message.into(),
            evidence: bounded(evidence.as_ref()),
            same_as: None,
        }
    }

    /// A probe's finding on the fact the passive rule `passive` also sees:
    /// at that rule's severity (one fact, one severity), and in its place.
    pub fn same_fact_as(mut self, passive: &'static Rule) -> Self {
        self.severity = passive.severity;
        self.same_as = Some(passive);
        self
    }

    /// Whether `other` (a passive finding) reports the fact this one does.
    pub fn covers(&self, other: &Finding) -> bool {
        self.same_as.is_some_and(|rule| rule.id == other.rule.id)
    }

    /// The same finding at another severity.
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }
}

/// Cuts `s` to at most [`MAX_EVIDENCE`] bytes on a character boundary.
pub fn bounded(s: &str) -> String {
    if s.len() <= MAX_EVIDENCE {
        return s.to_owned();
    }
    let mut end = MAX_EVIDENCE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_is_bounded_on_a_char_boundary() {
        let long = "é".repeat(300);
        let b = bounded(&long);
        assert!(b.len() <= MAX_EVIDENCE + '…'.len_utf8());
        assert!(b.ends_with('…'));
        assert_eq!(bounded("short"), "short");
    }
}
