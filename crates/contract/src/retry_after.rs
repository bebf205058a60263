//! Retry-After (RFC 9110 §10.2.3): the gateway must send an accurate integer on 429/503, and
//! the auditor must tell a valid delay or HTTP-date from anything else (`retry_after.syntax`).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A Retry-After field value: a delay in whole seconds, or a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `delta-seconds`.
    Delay(u64),
    /// An `HTTP-date`, with whole-second precision on the wire.
    Date(SystemTime),
}

/// A Retry-After value that is neither delta-seconds nor an HTTP-date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Retry-After must be delta-seconds or an HTTP-date, got {value:?}")]
pub struct RetryAfterError {
    /// The offending value, cut to [`RetryAfterError::MAX_SHOWN`] characters.
    value: String,
}

impl RetryAfterError {
    /// How many characters of the offending value the error keeps.
    pub const MAX_SHOWN: usize = 64;

    fn new(value: &str) -> Self {
        let mut shown: String = value.chars().take(Self::MAX_SHOWN).collect();
        if shown.len() < value.len() {
            shown.push('…');
        }
        Self { value: shown }
    }

    /// The offending value as received (cut to [`RetryAfterError::MAX_SHOWN`] characters).
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// The last second httpdate can format: 9999-12-31T23:59:59Z.
const LAST_HTTP_DATE: Duration = Duration::from_secs(253_402_300_799);

impl RetryAfter {
    /// The delay to send for `d`: whole seconds rounded up, at least 1, so a client
    /// that waits exactly this long never comes back early (0 ms → 1, 1.001 s → 2).
    pub fn after(d: Duration) -> Self {
        let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
        Self::Delay(secs.max(1))
    }

    /// Parses `delta-seconds` (`1*DIGIT`) or an HTTP-date in any of its three forms
    /// (IMF-fixdate, obsolete RFC 850, asctime), after trimming surrounding SP/HTAB.
    ///
    /// A delay too large for `u64` saturates to `u64::MAX`, as RFC 9111 §1.2.2 asks
    /// of caches for delta-seconds they cannot represent. RFC 850 two-digit years map
    /// to 1970–2069. Signs, fractions, words and empty values are errors.
    pub fn parse(value: &str) -> Result<Self, RetryAfterError> {
        let trimmed = value.trim_matches([' ', '\t']);
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            let secs = trimmed.bytes().fold(0u64, |acc, digit| {
                acc.saturating_mul(10)
                    .saturating_add(u64::from(digit - b'0'))
            });
            return Ok(Self::Delay(secs));
        }
        // Dates start with a day name; this also keeps "+5" or " 5 " out of httpdate.
        if trimmed.starts_with(|c: char| c.is_ascii_alphabetic())
            && let Ok(date) = httpdate::parse_http_date(trimmed)
        {
            return Ok(Self::Date(date));
        }
        Err(RetryAfterError::new(value))
    }

    /// How long to wait from `now`; a date in the past means no wait.
    pub fn delay_from(&self, now: SystemTime) -> Duration {
        match *self {
            Self::Delay(secs) => Duration::from_secs(secs),
            Self::Date(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }
}

impl FromStr for RetryAfter {
    type Err = RetryAfterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for RetryAfter {
    /// A delay as its integer, a date as IMF-fixdate (sub-seconds dropped; dates
    /// outside 1970–9999, which the format cannot hold, are clamped to that range).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Delay(secs) => write!(f, "{secs}"),
            Self::Date(at) => {
                let since_epoch = at
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or(Duration::ZERO)
                    .min(LAST_HTTP_DATE);
                f.write_str(&httpdate::fmt_http_date(UNIX_EPOCH + since_epoch))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sun, 06 Nov 1994 08:49:37 GMT, the RFC 9110 example date.
    fn rfc_example() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    #[test]
    fn after_rounds_up_to_at_least_one_second() {
        assert_eq!(RetryAfter::after(Duration::ZERO), RetryAfter::Delay(1));
        assert_eq!(
            RetryAfter::after(Duration::from_millis(1)),
            RetryAfter::Delay(1)
        );
        assert_eq!(
            RetryAfter::after(Duration::from_millis(999)),
            RetryAfter::Delay(1)
        );
        assert_eq!(
            RetryAfter::after(Duration::from_secs(1)),
            RetryAfter::Delay(1)
        );
        assert_eq!(
            RetryAfter::after(Duration::from_millis(1001)),
            RetryAfter::Delay(2)
        );
        assert_eq!(
            RetryAfter::after(Duration::from_secs(3)),
            RetryAfter::Delay(3)
        );
        assert_eq!(RetryAfter::after(Duration::new(3, 1)), RetryAfter::Delay(4));
        assert_eq!(
            RetryAfter::after(Duration::MAX),
            RetryAfter::Delay(u64::MAX)
        );
    }

    #[test]
    fn parses_delta_seconds_with_surrounding_whitespace() {
        assert_eq!(RetryAfter::parse("120"), Ok(RetryAfter::Delay(120)));
        assert_eq!(RetryAfter::parse(" \t0 "), Ok(RetryAfter::Delay(0)));
        assert_eq!(RetryAfter::parse("007"), Ok(RetryAfter::Delay(7)));
    }

    #[test]
    fn huge_delay_saturates() {
        assert_eq!(
            RetryAfter::parse("18446744073709551615"),
            Ok(RetryAfter::Delay(u64::MAX))
        );
        assert_eq!(
            RetryAfter::parse("99999999999999999999999999"),
            Ok(RetryAfter::Delay(u64::MAX))
        );
    }

    #[test]
    fn parses_imf_fixdate() {
        assert_eq!(
            RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT"),
            Ok(RetryAfter::Date(rfc_example()))
        );
    }

    #[test]
    fn parses_obsolete_rfc850_date() {
        assert_eq!(
            RetryAfter::parse("Sunday, 06-Nov-94 08:49:37 GMT"),
            Ok(RetryAfter::Date(rfc_example()))
        );
    }

    #[test]
    fn parses_asctime_date() {
        assert_eq!(
            RetryAfter::parse("Sun Nov  6 08:49:37 1994"),
            Ok(RetryAfter::Date(rfc_example()))
        );
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "  ",
            "-1",
            "+5",
            "1.5",
            "1e3",
            "soon",
            "5 s",
            "0x10",
            "١٢",
            "Sun, 06 Nov 1994",
            // wrong weekday for the date
            "Mon, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
        ] {
            assert!(
                RetryAfter::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn error_names_the_value_and_stays_short() {
        let e = RetryAfter::parse("soon").err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some(r#"Retry-After must be delta-seconds or an HTTP-date, got "soon""#)
        );
        let long = "x".repeat(10_000);
        let e = RetryAfter::parse(&long).err();
        let shown = e.map(|e| e.value().to_owned()).unwrap_or_default();
        assert_eq!(shown.chars().count(), RetryAfterError::MAX_SHOWN + 1);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn delay_from_counts_down_to_zero() {
        let at = RetryAfter::Date(rfc_example());
        let before = rfc_example() - Duration::from_secs(30);
        assert_eq!(at.delay_from(before), Duration::from_secs(30));
        assert_eq!(
            at.delay_from(rfc_example() + Duration::from_secs(5)),
            Duration::ZERO
        );
        assert_eq!(
            RetryAfter::Delay(7).delay_from(before),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn displays_integer_or_imf_fixdate() {
        assert_eq!(RetryAfter::Delay(42).to_string(), "42");
        assert_eq!(
            RetryAfter::Date(rfc_example() + Duration::from_millis(900)).to_string(),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }

    #[test]
    fn display_clamps_unrepresentable_dates() {
        let early = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(
            RetryAfter::Date(early).to_string(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        let late = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(
            RetryAfter::Date(late).to_string(),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
    }

    #[test]
    fn from_str_matches_parse() {
        assert_eq!("3".parse::<RetryAfter>(), Ok(RetryAfter::Delay(3)));
    }
}
