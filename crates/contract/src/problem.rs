//! RFC 9457 Problem Details: the machine-readable "why" of an error.
//!
//! Built by the gateway for every error it makes; parsed tolerantly and
//! validated by the auditor for every problem body it meets.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::rules::Rule;
use crate::status;

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

const ABOUT_BLANK: &str = "about:blank";

/// A problem details object. Extension members sit at the top level of the
/// JSON document, beside the standard ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// The problem type URI; `about:blank` when absent.
    #[serde(rename = "type")]
    pub type_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Extension members (`errors`, `reason`, `upstream`, `failure`, ...).
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

/// Why a body could not be read as a problem document at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a JSON object")]
    NotAnObject,
}

impl Problem {
    /// A problem of `about:blank` type for `status`, titled with its reason phrase.
    pub fn blank(status: u16) -> Self {
        Problem {
            type_uri: ABOUT_BLANK.to_owned(),
            title: status::reason(status).map(str::to_owned),
            status: Some(status),
            detail: None,
            instance: None,
            extensions: Map::new(),
        }
    }

    /// The problem a contract rule produces, with the rule's type URI and title.
    pub fn for_rule(rule: &Rule, status: u16) -> Self {
        Problem {
            type_uri: rule.type_uri.to_owned(),
            title: Some(rule.title.to_owned()),
            status: Some(status),
            detail: None,
            instance: None,
            extensions: Map::new(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Adds an extension member. Names of standard members are ignored, so
    /// an extension can never shadow `type`, `status` and the rest.
    pub fn extension(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let name = name.into();
        if !is_standard_member(&name) {
            self.extensions.insert(name, value.into());
        }
        self
    }

    /// The serialized document.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings, integers and JSON values cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a problem document the way RFC 9457 section 3.1 asks consumers
    /// to: members of the wrong type are ignored (and remembered as such by
    /// [`Problem::validate`]), a missing `type` means `about:blank`.
    pub fn from_slice(body: &[u8]) -> Result<Self, ProblemError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ProblemError::NotJson(e.to_string()))?;
        Self::from_value(value)
    }

    /// As [`Problem::from_slice`], from an already parsed value.
    pub fn from_value(value: Value) -> Result<Self, ProblemError> {
        let Value::Object(mut members) = value else {
            return Err(ProblemError::NotAnObject);
        };
        let mut take_string = |name: &str| match members.get(name) {
            Some(Value::String(_)) => match members.remove(name) {
                Some(Value::String(s)) => Some(s),
                _ => None,
            },
            _ => None,
        };
        let type_uri = take_string("type").unwrap_or_else(|| ABOUT_BLANK.to_owned());
        let title = take_string("title");
        let detail = take_string("detail");
        let instance = take_string("instance");
        let status = match members.get("status") {
            Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            _ => None,
        };
        if status.is_some() {
            members.remove("status");
        }
        Ok(Problem {
            type_uri,
            title,
            status,
            detail,
            instance,
            extensions: members,
        })
    }

    /// What is wrong with this document as the body of a `status` response:
    /// a `status` member that differs from the real status, or standard
    /// members of the wrong type (which consumers must ignore). Empty when
    /// the document is sound.
    pub fn validate(&self, status: u16) -> Vec<String> {
        let mut issues = Vec::new();
        if let Some(member) = self.status
            && member != status
        {
            issues.push(format!(
                "problem status member is {member} but the response status is {status}"
            ));
        }
        for name in STANDARD_MEMBERS {
            if let Some(value) = self.extensions.get(*name) {
                let expected = if *name == "status" {
                    "an integer status code"
                } else {
                    "a string"
                };
                issues.push(format!(
                    "problem member `{name}` is {value}, not {expected}"
                ));
            }
        }
        issues
    }
}

const STANDARD_MEMBERS: &[&str] = &["type", "title", "status", "detail", "instance"];

fn is_standard_member(name: &str) -> bool {
    STANDARD_MEMBERS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules;
    use serde_json::json;

    #[test]
    fn rule_problem_serializes_with_extensions_at_top_level() {
        let p = Problem::for_rule(&rules::UPSTREAM_UNREACHABLE, 502)
            .detail("connection refused by accounts")
            .instance("req-1")
            .extension("upstream", "accounts")
            .extension("failure", "connect_refused")
            .extension("status", 200);
        let v: Value = serde_json::from_slice(&p.to_json()).unwrap();
        assert_eq!(
            v,
            json!({
                "type": "tag:candor.dev,2026:rule/upstream.unreachable",
                "title": "Upstream unreachable",
                "status": 502,
                "detail": "connection refused by accounts",
                "instance": "req-1",
                "upstream": "accounts",
                "failure": "connect_refused",
            })
        );
    }

    #[test]
    fn parse_round_trips_and_defaults_type_to_about_blank() {
        let p = Problem::blank(404).detail("no such user");
        assert_eq!(Problem::from_slice(&p.to_json()).unwrap(), p);
        let parsed = Problem::from_slice(br#"{"title":"Nope"}"#).unwrap();
        assert_eq!(parsed.type_uri, "about:blank");
        assert!(parsed.validate(400).is_empty());
    }

    #[test]
    fn validate_flags_status_mismatch_and_wrong_types() {
        let p = Problem::from_slice(br#"{"type":"x","status":500}"#).unwrap();
        assert_eq!(p.validate(404).len(), 1);
        let p = Problem::from_slice(br#"{"type":7,"status":"404","errors":[]}"#).unwrap();
        assert_eq!(p.type_uri, "about:blank");
        let issues = p.validate(404);
        assert_eq!(issues.len(), 2, "{issues:?}");
        assert!(p.extensions.contains_key("errors"));
    }

    #[test]
    fn non_objects_are_errors_not_panics() {
        assert_eq!(Problem::from_slice(b"[1]"), Err(ProblemError::NotAnObject));
        assert!(matches!(
            Problem::from_slice(b"{"),
            Err(ProblemError::NotJson(_))
        ));
    }
}
