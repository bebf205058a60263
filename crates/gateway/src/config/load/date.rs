//! RFC 3339 instants (`until`, `from`, `since`, `sunset`): the `time` crate
//! reads them; this file only narrows what it takes and words what it refuses.

use std::time::{SystemTime, UNIX_EPOCH};

use time::error::{Parse, ParseFromDescription, TryFromParsed};
use time::format_description::well_known::Rfc3339;
use time::{Month, OffsetDateTime};

const LAYOUT: &str = "expected YYYY-MM-DDThh:mm:ss";
const MISSING_OFFSET: &str = "missing the offset: end with Z or +hh:mm";

/// Parses an RFC 3339 timestamp with a `Z` or `+hh:mm` offset, e.g.
/// `2026-12-01T06:00:00Z` or `2026-12-01T08:00:00.5+02:00`.
pub(super) fn parse_rfc3339(text: &str) -> Result<SystemTime, String> {
    // `time` takes any character between date and time, and a leap second
    // as 59.999999999; a config file gets neither.
    if !has_layout(text) {
        return Err(LAYOUT.to_owned());
    }
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| explain(text, &e))?;
    if &text[17..19] == "60" {
        return Err(leap_second("60"));
    }
    if parsed.year() == 0 {
        return Err("year 0000 is out of range".to_owned());
    }
    Ok(parsed.into())
}

/// Formats `time` as an RFC 3339 instant in UTC to the second, e.g.
/// `2026-12-01T06:00:00Z`: what [`parse_rfc3339`] reads. Instants before
/// 1970 print as the epoch, those past year 9999 as its last second.
pub fn format_rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(secs)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "9999-12-31T23:59:59Z".to_owned())
}

/// `YYYY-MM-DDThh:mm:ss` in ASCII digits, before any fraction and offset.
fn has_layout(text: &str) -> bool {
    let Some(head) = text.as_bytes().get(..19) else {
        return false;
    };
    head.iter()
        .zip(b"0000-00-00T00:00:00")
        .all(|(&c, &shape)| match shape {
            b'0' => c.is_ascii_digit(),
            b'T' => c.eq_ignore_ascii_case(&b'T'),
            _ => c == shape,
        })
}

/// What `time` refused, in the config's words: which field, and why.
fn explain(text: &str, error: &Parse) -> String {
    let field = |at: usize| &text[at..at + 2];
    match error {
        Parse::ParseFromDescription(ParseFromDescription::InvalidComponent("subsecond")) => {
            "the fraction of a second has no digits".to_owned()
        }
        Parse::ParseFromDescription(ParseFromDescription::InvalidComponent("month")) => {
            format!("month {} is out of range", field(5))
        }
        Parse::ParseFromDescription(ParseFromDescription::UnexpectedTrailingCharacters {
            ..
        }) => {
            let rest = offset(text);
            let after = if rest.starts_with(['Z', 'z']) { 1 } else { 6 };
            format!(
                "unexpected {:?} after the offset",
                rest.get(after..).unwrap_or(rest)
            )
        }
        // The date and time have the layout (checked first): the offset is wrong.
        Parse::ParseFromDescription(_) => offset_problem(text),
        Parse::TryFromParsed(TryFromParsed::ComponentRange(range)) => {
            match range.name() {
                "month" => format!("month {} is out of range", field(5)),
                "day" => {
                    let (year, month) = (&text[..4], field(5));
                    let days = year.parse().ok().zip(month.parse::<u8>().ok()).and_then(
                        |(year, month)| {
                            Some(time::util::days_in_month(
                                Month::try_from(month).ok()?,
                                year,
                            ))
                        },
                    );
                    match days {
                        Some(days) => format!(
                            "day {} is out of range: {year}-{month} has {days} days",
                            field(8)
                        ),
                        None => format!("day {} is out of range", field(8)),
                    }
                }
                "hour" | "minute" => format!("time {}:{} is out of range", field(11), field(14)),
                "second" => leap_second(field(17)),
                _ => offset_problem(text),
            }
        }
        other => other.to_string(),
    }
}

/// The text after the seconds and their fraction: where the offset is.
fn offset(text: &str) -> &str {
    let rest = &text[19..];
    match rest.strip_prefix('.') {
        Some(fraction) => fraction.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => rest,
    }
}

fn offset_problem(text: &str) -> String {
    let rest = offset(text);
    let b = rest.as_bytes();
    let shaped = b.len() >= 6
        && matches!(b[0], b'+' | b'-')
        && b[1..3].iter().all(u8::is_ascii_digit)
        && b[3] == b':'
        && b[4..6].iter().all(u8::is_ascii_digit);
    if shaped {
        format!("offset {} is out of range", &rest[1..6])
    } else {
        MISSING_OFFSET.to_owned()
    }
}

fn leap_second(second: &str) -> String {
    format!("second {second} is out of range (leap seconds are not supported)")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn secs(text: &str) -> Result<i64, String> {
        parse_rfc3339(text).map(|t| match t.duration_since(UNIX_EPOCH) {
            Ok(after) => after.as_secs() as i64,
            Err(before) => -(before.duration().as_secs() as i64),
        })
    }

    #[test]
    fn formatted_instants_parse_back() {
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        for secs in [0, 59, 86_399, 951_782_400, 1_795_000_000, 4_102_444_799] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(parse_rfc3339(&format_rfc3339(t)), Ok(t), "{secs}");
        }
        assert_eq!(
            format_rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_000_000)),
            "2026-11-18T11:06:40Z"
        );
    }

    #[test]
    fn dates_are_rfc3339_instants() {
        assert_eq!(secs("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(secs("2026-12-01T06:00:00Z"), Ok(1_796_104_800));
        assert_eq!(secs("2026-12-01t06:00:00z"), Ok(1_796_104_800));
        assert_eq!(secs("2026-12-01T08:30:00+02:30"), Ok(1_796_104_800));
        assert_eq!(secs("2026-12-01T01:00:00-05:00"), Ok(1_796_104_800));
        assert_eq!(secs("2026-12-01T06:00:00-00:00"), Ok(1_796_104_800));
        assert_eq!(secs("2027-06-30T00:00:00Z"), Ok(1_814_313_600));
        assert_eq!(secs("2000-02-29T23:59:59Z"), Ok(951_868_799));
        assert_eq!(secs("1969-12-31T23:59:59Z"), Ok(-1));
        assert_eq!(secs("9999-12-31T23:59:59Z"), Ok(253_402_300_799));
    }

    #[test]
    fn fractional_seconds_keep_nanoseconds() {
        let at = |text: &str| {
            parse_rfc3339(text)
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
        };
        assert_eq!(at("1970-01-01T00:00:01.5Z"), Duration::from_millis(1500));
        assert_eq!(
            at("1970-01-01T00:00:00.123456789Z"),
            Duration::from_nanos(123_456_789)
        );
        assert_eq!(
            at("1970-01-01T00:00:00.1234567891234Z"),
            Duration::from_nanos(123_456_789)
        );
        assert!(parse_rfc3339("1970-01-01T00:00:00.Z").is_err());
        let before = UNIX_EPOCH.duration_since(parse_rfc3339("1969-12-31T23:59:59.25Z").unwrap());
        assert_eq!(before.unwrap(), Duration::from_millis(750));
    }

    #[test]
    fn leap_years_follow_the_gregorian_rules() {
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_ok());
        assert!(parse_rfc3339("2000-02-29T00:00:00Z").is_ok());
        let err = parse_rfc3339("2023-02-29T00:00:00Z").unwrap_err();
        assert_eq!(err, "day 29 is out of range: 2023-02 has 28 days");
        assert!(parse_rfc3339("1900-02-29T00:00:00Z").is_err());
        assert!(parse_rfc3339("2100-02-29T00:00:00Z").is_err());
        assert!(parse_rfc3339("2026-04-31T00:00:00Z").is_err());
        assert!(parse_rfc3339("2026-12-31T00:00:00Z").is_ok());
    }

    #[test]
    fn dates_refuse_anything_loose() {
        for text in [
            "",
            "2026-12-01",
            "2026-12-01T06:00:00",
            "2026-12-01 06:00:00Z",
            "2026-12-01T06:00Z",
            "2026-12-1T06:00:00Z",
            "26-12-01T06:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-12-00T00:00:00Z",
            "2026-12-32T00:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T23:60:00Z",
            "2026-12-31T23:59:60Z",
            "2026-12-01T06:00:00+0200",
            "2026-12-01T06:00:00+02",
            "2026-12-01T06:00:00+24:00",
            "2026-12-01T06:00:00+02:60",
            "2026-12-01T06:00:00Z ",
            "2026-12-01T06:00:00ZZ",
            "0000-01-01T00:00:00Z",
            "２026-12-01T06:00:00Z",
            "Tue, 01 Dec 2026 06:00:00 GMT",
        ] {
            assert!(parse_rfc3339(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn refusals_say_which_field_and_why() {
        for (text, why) in [
            ("2026-12-01 06:00:00Z", "expected YYYY-MM-DDThh:mm:ss"),
            ("2026-12-01T06:00Z", "expected YYYY-MM-DDThh:mm:ss"),
            (
                "2026-12-01T06:00:00",
                "missing the offset: end with Z or +hh:mm",
            ),
            (
                "2026-12-01T06:00:00.5",
                "missing the offset: end with Z or +hh:mm",
            ),
            (
                "2026-12-01T06:00:00+0200",
                "missing the offset: end with Z or +hh:mm",
            ),
            (
                "2026-12-01T06:00:00+02",
                "missing the offset: end with Z or +hh:mm",
            ),
            ("2026-12-01T06:00:00+24:00", "offset 24:00 is out of range"),
            ("2026-12-01T06:00:00+02:60", "offset 02:60 is out of range"),
            ("2026-12-01T06:00:00ZZ", "unexpected \"Z\" after the offset"),
            (
                "2026-12-01T06:00:00+02:00 ",
                "unexpected \" \" after the offset",
            ),
            (
                "2026-12-01T06:00:00.Z",
                "the fraction of a second has no digits",
            ),
            ("2026-13-01T00:00:00Z", "month 13 is out of range"),
            ("2026-00-01T00:00:00Z", "month 00 is out of range"),
            (
                "2026-02-30T00:00:00Z",
                "day 30 is out of range: 2026-02 has 28 days",
            ),
            (
                "2026-12-00T00:00:00Z",
                "day 00 is out of range: 2026-12 has 31 days",
            ),
            ("2026-12-01T24:00:00Z", "time 24:00 is out of range"),
            ("2026-12-01T23:60:00Z", "time 23:60 is out of range"),
            (
                "2026-12-31T23:59:60Z",
                "second 60 is out of range (leap seconds are not supported)",
            ),
            (
                "2026-12-01T23:59:61Z",
                "second 61 is out of range (leap seconds are not supported)",
            ),
            ("0000-01-01T00:00:00Z", "year 0000 is out of range"),
        ] {
            assert_eq!(parse_rfc3339(text), Err(why.to_owned()), "{text:?}");
        }
    }
}
