//! RateLimit-Policy and RateLimit fields (draft-ietf-httpapi-ratelimit-headers-11): the gateway
//! states its quota with them on `rate.limited` answers and the auditor reads them back.
//!
//! Implemented from the draft: §3 (RateLimit-Policy, a non-empty List of Items whose value
//! MUST be a String), §3.1.1–§3.1.4 (`q` required non-negative Integer, `qu` String,
//! `w` non-zero Integer seconds, `pk` Byte Sequence), §4 and §4.1.1–§4.1.3 (RateLimit, a List
//! of Items: `r` required non-negative Integer, `t` non-negative Integer seconds, `pk` Byte
//! Sequence). Other parameters are "regarded as comments" (§3.1, §4.1) and ignored. Both are
//! Structured Fields (RFC 9651); a field split over several lines is parsed by joining the
//! lines with `", "` first (RFC 9651 §3.1).

use std::fmt;

use sfv::{
    BareItem, Integer, KeyRef, List, ListEntry, ListSerializer, Parameters, Parser, StringRef,
};

/// The quota unit when `qu` is absent (draft-11 §3.1).
pub const DEFAULT_QUOTA_UNIT: &str = "requests";

/// One quota policy of a RateLimit-Policy field: `"burst";q=100;w=60`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitPolicy {
    /// The policy's identifier, the Item's String value.
    pub name: String,
    /// `q`: the quota allocated by this policy, in quota units.
    pub quota: u64,
    /// `qu`: the quota unit; `None` means the default, `"requests"`.
    pub quota_unit: Option<String>,
    /// `w`: the time window in seconds.
    pub window: Option<u64>,
    /// `pk`: the partition key the quota is allocated to.
    pub partition_key: Option<Vec<u8>>,
}

/// One service limit of a RateLimit field: `"default";r=50;t=30`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// The name of the quota policy this limit belongs to.
    pub name: String,
    /// `r`: the quota still available under the policy.
    pub remaining: u64,
    /// `t`: the effective window, seconds within which at most `remaining` may be used.
    pub reset: Option<u64>,
    /// `pk`: the partition key of the request.
    pub partition_key: Option<Vec<u8>>,
}

/// A RateLimit-Policy or RateLimit field value that does not follow the draft.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} field: {message}")]
pub struct RateLimitError {
    field: &'static str,
    message: String,
}

impl RateLimitError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }

    /// The field the error is about: `"RateLimit-Policy"` or `"RateLimit"`.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

const POLICY_FIELD: &str = "RateLimit-Policy";
const LIMIT_FIELD: &str = "RateLimit";

impl RateLimitPolicy {
    /// A policy with quota `q` and nothing else set.
    pub fn new(name: impl Into<String>, quota: u64) -> Self {
        Self {
            name: name.into(),
            quota,
            quota_unit: None,
            window: None,
            partition_key: None,
        }
    }

    /// The quota unit, with the draft's default applied.
    pub fn unit(&self) -> &str {
        self.quota_unit.as_deref().unwrap_or(DEFAULT_QUOTA_UNIT)
    }

    /// Parses a RateLimit-Policy field value (draft-11 §3): a non-empty List whose members
    /// are String Items with a required `q`.
    pub fn parse_list(value: &str) -> Result<Vec<Self>, RateLimitError> {
        let list = parse_sf_list(POLICY_FIELD, value)?;
        if list.is_empty() {
            return Err(RateLimitError::new(
                POLICY_FIELD,
                "the list must not be empty (draft-11 §3)",
            ));
        }
        list.iter()
            .enumerate()
            .map(|(index, entry)| {
                let member = Member::new(POLICY_FIELD, index, entry)?;
                Ok(Self {
                    quota: member
                        .integer("q", 0)?
                        .ok_or_else(|| member.error("lacks the required parameter q"))?,
                    quota_unit: member.string("qu")?,
                    window: member.integer("w", 1)?,
                    partition_key: member.bytes("pk")?,
                    name: member.name,
                })
            })
            .collect()
    }

    /// Serialises policies as one RateLimit-Policy field value; empty input gives `""`
    /// (an empty List is never sent). See [`RateLimit::to_header_value`] for how values
    /// the syntax cannot carry are adjusted.
    pub fn to_header_value(items: &[Self]) -> String {
        let mut ser = ListSerializer::new();
        for policy in items {
            let name = sf_string(&policy.name);
            let params = ser
                .bare_item(StringRef::from_str(&name).unwrap_or_default())
                .parameter(KeyRef::constant("q"), sf_integer(policy.quota));
            let params = match &policy.quota_unit {
                Some(unit) => {
                    let unit = sf_string(unit);
                    params.parameter(
                        KeyRef::constant("qu"),
                        StringRef::from_str(&unit).unwrap_or_default(),
                    )
                }
                None => params,
            };
            let params = match policy.window {
                // The draft forbids w=0; the shortest expressible window is one second.
                Some(w) => params.parameter(KeyRef::constant("w"), sf_integer(w.max(1))),
                None => params,
            };
            if let Some(pk) = &policy.partition_key {
                params.parameter(KeyRef::constant("pk"), pk.as_slice());
            }
        }
        ser.finish().unwrap_or_default()
    }
}

impl RateLimit {
    /// A service limit with `r` and nothing else set.
    pub fn new(name: impl Into<String>, remaining: u64) -> Self {
        Self {
            name: name.into(),
            remaining,
            reset: None,
            partition_key: None,
        }
    }

    /// Parses a RateLimit field value (draft-11 §4): a List of String Items with a
    /// required `r`. An empty value is an empty list, as Structured Fields treat it.
    pub fn parse_list(value: &str) -> Result<Vec<Self>, RateLimitError> {
        let list = parse_sf_list(LIMIT_FIELD, value)?;
        list.iter()
            .enumerate()
            .map(|(index, entry)| {
                let member = Member::new(LIMIT_FIELD, index, entry)?;
                Ok(Self {
                    remaining: member
                        .integer("r", 0)?
                        .ok_or_else(|| member.error("lacks the required parameter r"))?,
                    reset: member.integer("t", 0)?,
                    partition_key: member.bytes("pk")?,
                    name: member.name,
                })
            })
            .collect()
    }

    /// Serialises limits as one RateLimit field value; empty input gives `""`.
    ///
    /// Structured Fields cannot carry everything a Rust value can: integers above
    /// 999,999,999,999,999 are sent as that maximum, and characters outside printable
    /// ASCII in names and units are sent as `?`.
    pub fn to_header_value(items: &[Self]) -> String {
        let mut ser = ListSerializer::new();
        for limit in items {
            let name = sf_string(&limit.name);
            let params = ser
                .bare_item(StringRef::from_str(&name).unwrap_or_default())
                .parameter(KeyRef::constant("r"), sf_integer(limit.remaining));
            let params = match limit.reset {
                Some(t) => params.parameter(KeyRef::constant("t"), sf_integer(t)),
                None => params,
            };
            if let Some(pk) = &limit.partition_key {
                params.parameter(KeyRef::constant("pk"), pk.as_slice());
            }
        }
        ser.finish().unwrap_or_default()
    }
}

impl fmt::Display for RateLimitPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Self::to_header_value(std::slice::from_ref(self)))
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Self::to_header_value(std::slice::from_ref(self)))
    }
}

fn parse_sf_list(field: &'static str, value: &str) -> Result<List, RateLimitError> {
    Parser::new(value)
        .parse::<List>()
        .map_err(|e| RateLimitError::new(field, format!("not a Structured Field List: {e}")))
}

/// Largest Structured Field Integer (RFC 9651 §3.3.1).
const SF_INTEGER_MAX: u64 = 999_999_999_999_999;

fn sf_integer(v: u64) -> Integer {
    Integer::try_from(v.min(SF_INTEGER_MAX)).unwrap_or(Integer::MAX)
}

/// `s` with every character an sf-string cannot hold (outside %x20-7E) replaced by `?`.
fn sf_string(s: &str) -> String {
    s.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

/// One list member being read: its position and name for error messages, and its params.
struct Member<'a> {
    field: &'static str,
    index: usize,
    name: String,
    params: &'a Parameters,
}

impl<'a> Member<'a> {
    fn new(
        field: &'static str,
        index: usize,
        entry: &'a ListEntry,
    ) -> Result<Self, RateLimitError> {
        let item = match entry {
            ListEntry::Item(item) => item,
            ListEntry::InnerList(_) => {
                return Err(RateLimitError::new(
                    field,
                    format!("member {} is an inner list, not an Item", index + 1),
                ));
            }
        };
        let Some(name) = item.bare_item.as_string() else {
            return Err(RateLimitError::new(
                field,
                format!(
                    "member {} must be a String naming the policy, found {}",
                    index + 1,
                    kind(&item.bare_item)
                ),
            ));
        };
        Ok(Self {
            field,
            index,
            name: name.as_str().to_owned(),
            params: &item.params,
        })
    }

    fn error(&self, what: impl fmt::Display) -> RateLimitError {
        RateLimitError::new(
            self.field,
            format!("member {} ({:?}) {what}", self.index + 1, self.name),
        )
    }

    fn param(&self, key: &str) -> Option<&'a BareItem> {
        self.params.get(key)
    }

    /// An Integer parameter that must be at least `min`.
    fn integer(&self, key: &str, min: u64) -> Result<Option<u64>, RateLimitError> {
        let Some(value) = self.param(key) else {
            return Ok(None);
        };
        let Some(int) = value.as_integer() else {
            return Err(self.error(format_args!(
                "has {key}={}, which must be an Integer",
                show(value)
            )));
        };
        match u64::try_from(int) {
            Ok(n) if n >= min => Ok(Some(n)),
            _ if min > 0 => Err(self.error(format_args!(
                "has {key}={int}, which must be at least {min}"
            ))),
            _ => Err(self.error(format_args!("has {key}={int}, which must not be negative"))),
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, RateLimitError> {
        match self.param(key) {
            None => Ok(None),
            Some(value) => match value.as_string() {
                Some(s) => Ok(Some(s.as_str().to_owned())),
                None => Err(self.error(format_args!(
                    "has {key}={}, which must be a String",
                    show(value)
                ))),
            },
        }
    }

    fn bytes(&self, key: &str) -> Result<Option<Vec<u8>>, RateLimitError> {
        match self.param(key) {
            None => Ok(None),
            Some(value) => match value.as_byte_sequence() {
                Some(b) => Ok(Some(b.to_vec())),
                None => Err(self.error(format_args!(
                    "has {key}={}, which must be a Byte Sequence",
                    show(value)
                ))),
            },
        }
    }
}

fn kind(item: &BareItem) -> &'static str {
    match item {
        BareItem::Decimal(_) => "a Decimal",
        BareItem::Integer(_) => "an Integer",
        BareItem::String(_) => "a String",
        BareItem::ByteSequence(_) => "a Byte Sequence",
        BareItem::Boolean(_) => "a Boolean",
        BareItem::Token(_) => "a Token",
        BareItem::Date(_) => "a Date",
        BareItem::DisplayString(_) => "a Display String",
    }
}

/// A parameter value as it appeared, for error messages (bounded in length).
fn show(item: &BareItem) -> String {
    let mut ser = ListSerializer::new();
    ser.bare_item(item);
    let text = ser.finish().unwrap_or_default();
    if text.chars().count() > 40 {
        let mut cut: String = text.chars().take(40).collect();
        cut.push('…');
        cut
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policies(value: &str) -> Vec<RateLimitPolicy> {
        match RateLimitPolicy::parse_list(value) {
            Ok(p) => p,
            Err(e) => panic!("{value:?} should parse: {e}"),
        }
    }

    fn limits(value: &str) -> Vec<RateLimit> {
        match RateLimit::parse_list(value) {
            Ok(l) => l,
            Err(e) => panic!("{value:?} should parse: {e}"),
        }
    }

    fn policy_error(value: &str) -> String {
        match RateLimitPolicy::parse_list(value) {
            Ok(p) => panic!("{value:?} should not parse, got {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn limit_error(value: &str) -> String {
        match RateLimit::parse_list(value) {
            Ok(l) => panic!("{value:?} should not parse, got {l:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn draft_policy_examples_parse() {
        assert_eq!(
            policies(r#""burst";q=100;w=60,"daily";q=1000;w=86400"#),
            vec![
                RateLimitPolicy {
                    window: Some(60),
                    ..RateLimitPolicy::new("burst", 100)
                },
                RateLimitPolicy {
                    window: Some(86400),
                    ..RateLimitPolicy::new("daily", 1000)
                },
            ]
        );
        assert_eq!(policies(r#""default";q=100;w=10"#)[0].window, Some(10));
        assert_eq!(
            policies(r#""permin";q=50;w=60,"perhr";q=1000;w=3600"#).len(),
            2
        );
        let with_unit = policies(r#""peruser";q=65535;qu="content-bytes";w=10;pk=:sdfjLJUOUH==:"#);
        assert_eq!(with_unit[0].quota, 65535);
        assert_eq!(with_unit[0].unit(), "content-bytes");
        assert!(with_unit[0].partition_key.is_some());
    }

    #[test]
    fn draft_limit_examples_parse() {
        assert_eq!(
            limits(r#""default";r=50;t=30"#),
            vec![RateLimit {
                reset: Some(30),
                ..RateLimit::new("default", 50)
            }]
        );
        assert_eq!(
            limits(r#""default";r=999;pk=:dHJpYWwxMjEzMjM=:"#)[0]
                .partition_key
                .as_deref(),
            Some(&b"trial121323"[..])
        );
        let big = limits(r#""default";r=300000000;t=60;pk=:QXBwLTk5OQ==:"#);
        assert_eq!(big[0].remaining, 300_000_000);
        assert_eq!(big[0].partition_key.as_deref(), Some(&b"App-999"[..]));
        assert_eq!(limits(r#""problemPolicy";r=0;t=10"#)[0].remaining, 0);
    }

    #[test]
    fn quota_unit_defaults_to_requests() {
        let p = policies(r#""a";q=1"#);
        assert_eq!(p[0].quota_unit, None);
        assert_eq!(p[0].unit(), "requests");
    }

    #[test]
    fn unknown_parameters_are_ignored() {
        let p = policies(r#""a";q=1;acme-burst=?1;comment="x""#);
        assert_eq!(p, vec![RateLimitPolicy::new("a", 1)]);
        let l = limits(r#""a";r=2;x=1.5"#);
        assert_eq!(l, vec![RateLimit::new("a", 2)]);
    }

    #[test]
    fn missing_required_parameters_are_errors() {
        assert!(policy_error(r#""a";w=60"#).contains("lacks the required parameter q"));
        assert!(limit_error(r#""a";t=60"#).contains("lacks the required parameter r"));
    }

    #[test]
    fn negative_and_zero_values_are_rejected_where_the_draft_says() {
        assert!(policy_error(r#""a";q=-1"#).contains("must not be negative"));
        assert!(policy_error(r#""a";q=1;w=0"#).contains("at least 1"));
        assert!(limit_error(r#""a";r=-5"#).contains("must not be negative"));
        assert!(limit_error(r#""a";r=1;t=-1"#).contains("must not be negative"));
        assert_eq!(limits(r#""a";r=0;t=0"#)[0].reset, Some(0));
        assert_eq!(policies(r#""a";q=0"#)[0].quota, 0);
    }

    #[test]
    fn wrong_types_are_errors() {
        let e = policy_error("burst;q=1");
        assert!(
            e.contains("must be a String") && e.contains("a Token"),
            "{e}"
        );
        assert!(limit_error("42;r=1").contains("an Integer"));
        assert!(policy_error(r#"("a" "b");q=1"#).contains("inner list"));
        assert!(policy_error(r#""a";q=1.5"#).contains("must be an Integer"));
        assert!(policy_error(r#""a";q="1""#).contains("must be an Integer"));
        assert!(policy_error(r#""a";q=1;qu=requests"#).contains("must be a String"));
        assert!(policy_error(r#""a";q=1;pk="x""#).contains("Byte Sequence"));
        assert!(limit_error(r#""a";r=1;t=?1"#).contains("must be an Integer"));
        assert!(limit_error(r#""a";r"#).contains("must be an Integer"));
    }

    #[test]
    fn structured_field_syntax_errors_are_errors() {
        for bad in [
            r#""a";q=1,"#,
            r#""a;q=1"#,
            "\"a\";q=1 junk",
            "\"a\";Q=1",
            "\"a\";q=1000000000000000",
        ] {
            let e = RateLimitPolicy::parse_list(bad);
            assert!(e.is_err(), "{bad:?}");
        }
        assert!(policy_error(r#""a";q=1,"#).contains("Structured Field"));
    }

    #[test]
    fn empty_policy_list_is_an_error_but_empty_ratelimit_is_nothing() {
        assert!(policy_error("").contains("must not be empty"));
        assert_eq!(limits("  "), vec![]);
    }

    #[test]
    fn error_names_field_and_member() {
        let e = RateLimit::parse_list(r#""ok";r=1, "bad";t=2"#).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some(r#"invalid RateLimit field: member 2 ("bad") lacks the required parameter r"#)
        );
    }

    #[test]
    fn serialises_like_the_draft() {
        let all = [
            RateLimitPolicy {
                window: Some(60),
                ..RateLimitPolicy::new("burst", 100)
            },
            RateLimitPolicy {
                window: Some(86400),
                ..RateLimitPolicy::new("daily", 1000)
            },
        ];
        assert_eq!(
            RateLimitPolicy::to_header_value(&all),
            r#""burst";q=100;w=60, "daily";q=1000;w=86400"#
        );
        let with_pk = RateLimitPolicy {
            quota_unit: Some("content-bytes".into()),
            window: Some(10),
            partition_key: Some(b"App-999".to_vec()),
            ..RateLimitPolicy::new("peruser", 65535)
        };
        assert_eq!(
            with_pk.to_string(),
            r#""peruser";q=65535;qu="content-bytes";w=10;pk=:QXBwLTk5OQ==:"#
        );
        let limit = RateLimit {
            reset: Some(30),
            ..RateLimit::new("default", 50)
        };
        assert_eq!(limit.to_string(), r#""default";r=50;t=30"#);
        assert_eq!(RateLimit::to_header_value(&[]), "");
    }

    #[test]
    fn serialising_adjusts_what_the_syntax_cannot_carry() {
        let odd = RateLimitPolicy {
            window: Some(0),
            ..RateLimitPolicy::new("caf\u{e9} \"q\"\n", u64::MAX)
        };
        assert_eq!(odd.to_string(), r#""caf? \"q\"?";q=999999999999999;w=1"#);
        assert!(RateLimitPolicy::parse_list(&odd.to_string()).is_ok());
    }

    #[test]
    fn round_trips_escapes_in_names() {
        let l = RateLimit::new(r#"a "quoted" \ name"#, 3);
        assert_eq!(limits(&l.to_string()), vec![l]);
    }
}
