//! One duration grammar, for the gateway's config file and every command-line flag.
//!
//! `250ms`, `10s`, `1.5m`, `2h`: a decimal number and a unit with nothing else around or between.

use std::fmt;
use std::time::Duration;

/// A duration that does not follow the grammar, or does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Not a number and a unit (nor, where taken, a bare number of seconds).
    Invalid { text: String, bare_seconds: bool },
    /// More seconds than a `u64` holds.
    TooLarge { text: String },
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Invalid {
                text,
                bare_seconds: false,
            } => write!(
                f,
                "invalid duration {text:?}: expected a number followed by ms, s, m or h"
            ),
            DurationError::Invalid {
                text,
                bare_seconds: true,
            } => write!(
                f,
                "invalid duration {text:?}: expected a number of seconds, or a number \
                 followed by ms, s, m or h"
            ),
            DurationError::TooLarge { text } => write!(f, "duration {text:?} is too large"),
        }
    }
}

impl std::error::Error for DurationError {}

/// Parses `250ms`, `5s`, `1.5m` or `2h`: a decimal number (digits, then
/// optionally a `.` and more digits) and one of the units `ms`, `s`, `m`,
/// `h`. Signs, spaces, exponents and other units are refused; digits below
/// a nanosecond are dropped. The gateway's config takes durations so.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    parse(text, false)
}

/// [`parse_duration`], and a bare number is seconds (`30`, `1.5`): for
/// flags that have always taken a number of seconds.
pub fn parse_duration_or_seconds(text: &str) -> Result<Duration, DurationError> {
    parse(text, true)
}

fn parse(text: &str, bare_seconds: bool) -> Result<Duration, DurationError> {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let invalid = || DurationError::Invalid {
        text: text.to_owned(),
        bare_seconds,
    };
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_nanos: u128 = match unit {
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "" if bare_seconds => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3600 * NANOS_PER_SEC,
        _ => return Err(invalid()),
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) if !fraction.is_empty() && !fraction.contains('.') => {
            (whole, fraction)
        }
        Some(_) => return Err(invalid()),
        None => (number, ""),
    };
    if whole.is_empty() {
        return Err(invalid());
    }
    let too_large = || DurationError::TooLarge {
        text: text.to_owned(),
    };
    if whole.len() > 20 {
        return Err(too_large());
    }
    let whole: u128 = whole.parse().map_err(|_| invalid())?;
    let mut nanos = whole * unit_nanos;
    // Digits beyond the 18th are below a nanosecond for every unit.
    let fraction = &fraction[..fraction.len().min(18)];
    if !fraction.is_empty() {
        let digits: u128 = fraction.parse().map_err(|_| invalid())?;
        nanos += digits * unit_nanos / 10u128.pow(fraction.len() as u32);
    }
    let secs = u64::try_from(nanos / NANOS_PER_SEC).map_err(|_| too_large())?;
    let subsec = (nanos % NANOS_PER_SEC) as u32;
    Ok(Duration::new(secs, subsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_number_and_a_unit() {
        for parse in [parse_duration, parse_duration_or_seconds] {
            let ok = |text: &str| parse(text).unwrap();
            assert_eq!(ok("250ms"), Duration::from_millis(250));
            assert_eq!(ok("5s"), Duration::from_secs(5));
            assert_eq!(ok("10s"), Duration::from_secs(10));
            assert_eq!(ok("1m"), Duration::from_secs(60));
            assert_eq!(ok("1.5m"), Duration::from_secs(90));
            assert_eq!(ok("2h"), Duration::from_secs(7200));
            assert_eq!(ok("1.5s"), Duration::from_millis(1500));
            assert_eq!(ok("0.25m"), Duration::from_secs(15));
            assert_eq!(ok("0.5ms"), Duration::from_micros(500));
            assert_eq!(ok("0.000000001s"), Duration::from_nanos(1));
            assert_eq!(ok("0.0000000001s"), Duration::ZERO);
            assert_eq!(ok("0s"), Duration::ZERO);
            assert_eq!(ok("007s"), Duration::from_secs(7));
        }
    }

    #[test]
    fn durations_refuse_everything_else() {
        for text in [
            "", "s", "5 sec", "5 s", " 5s", "5s ", "5S", "5sec", "-5s", "+5s", "1.s", ".5s",
            "1..5s", "1.2.3s", "5d", "1e3ms", "1_000ms", "5s5", "5ms5s", " 5", "5.", "-5",
        ] {
            assert_eq!(
                parse_duration(text).unwrap_err().to_string(),
                format!("invalid duration {text:?}: expected a number followed by ms, s, m or h"),
            );
            assert_eq!(
                parse_duration_or_seconds(text).unwrap_err().to_string(),
                format!(
                    "invalid duration {text:?}: expected a number of seconds, or a number \
                     followed by ms, s, m or h"
                ),
            );
        }
    }

    #[test]
    fn a_bare_number_is_seconds_only_where_asked() {
        assert!(parse_duration("30").is_err());
        assert_eq!(parse_duration_or_seconds("30"), Ok(Duration::from_secs(30)));
        assert_eq!(
            parse_duration_or_seconds("1.5"),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(parse_duration_or_seconds("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn huge_durations_are_too_large_not_wrapped() {
        for text in [
            "99999999999999999999999h",
            "9999999999999999999h",
            "18446744073709551616",
        ] {
            assert_eq!(
                parse_duration_or_seconds(text),
                Err(DurationError::TooLarge { text: text.into() })
            );
        }
        assert_eq!(
            parse_duration("18446744073709551615s").unwrap(),
            Duration::from_secs(u64::MAX)
        );
    }
}
