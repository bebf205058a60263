//! Build-then-parse round trips for the header fields candor renders, and a guarantee
//! that the WWW-Authenticate parser survives any input.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use candor_contract::{
    AuthParam, Challenge, RateLimit, RateLimitPolicy, RetryAfter, parse_challenges,
};
use proptest::prelude::*;

const TCHARS: &str = "!#$%&'*+.^_`|~0-9A-Za-z-";

/// The largest integer a Structured Field can carry.
const SF_INTEGER_MAX: u64 = 999_999_999_999_999;

/// Last whole second an HTTP-date can express: Fri, 31 Dec 9999 23:59:59 GMT.
const LAST_HTTP_DATE_SECS: u64 = 253_402_300_799;

fn token() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[{TCHARS}]{{1,12}}")).expect("valid regex")
}

/// Visible ASCII and spaces, with quotes and backslashes well represented.
fn param_value() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r#"([ -~]|"|\\){0,24}"#).expect("valid regex")
}

fn token68() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[A-Za-z0-9._~+/-]{1,24}={0,2}").expect("valid regex")
}

fn params() -> impl Strategy<Value = Vec<AuthParam>> {
    proptest::collection::vec((token(), param_value()), 0..5).prop_map(|pairs| {
        let mut seen = HashSet::new();
        pairs
            .into_iter()
            .filter(|(name, _)| seen.insert(name.to_ascii_lowercase()))
            .map(|(name, value)| AuthParam { name, value })
            .collect()
    })
}

fn challenge() -> impl Strategy<Value = Challenge> {
    (token(), prop::option::of(token68()), params()).prop_map(|(scheme, t68, params)| match t68 {
        Some(t) => Challenge::new(scheme).token68(t),
        None => Challenge {
            scheme,
            token68: None,
            params,
        },
    })
}

/// Printable ASCII, the characters an sf-string can hold.
fn sf_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r#"([ -~]|"|\\){0,20}"#).expect("valid regex")
}

fn partition_key() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(proptest::collection::vec(any::<u8>(), 0..24))
}

fn policy() -> impl Strategy<Value = RateLimitPolicy> {
    (
        sf_text(),
        0..=SF_INTEGER_MAX,
        prop::option::of(sf_text()),
        prop::option::of(1..=SF_INTEGER_MAX),
        partition_key(),
    )
        .prop_map(
            |(name, quota, quota_unit, window, partition_key)| RateLimitPolicy {
                name,
                quota,
                quota_unit,
                window,
                partition_key,
            },
        )
}

fn limit() -> impl Strategy<Value = RateLimit> {
    (
        sf_text(),
        0..=SF_INTEGER_MAX,
        prop::option::of(0..=SF_INTEGER_MAX),
        partition_key(),
    )
        .prop_map(|(name, remaining, reset, partition_key)| RateLimit {
            name,
            remaining,
            reset,
            partition_key,
        })
}

proptest! {
    #[test]
    fn one_challenge_round_trips(c in challenge()) {
        let rendered = c.to_string();
        prop_assert_eq!(parse_challenges(&rendered), Ok(vec![c]), "rendered: {}", rendered);
    }

    #[test]
    fn several_challenges_round_trip(all in proptest::collection::vec(challenge(), 1..5)) {
        let rendered = all.iter().map(Challenge::to_string).collect::<Vec<_>>().join(", ");
        prop_assert_eq!(parse_challenges(&rendered), Ok(all), "rendered: {}", rendered);
    }

    #[test]
    fn parse_challenges_never_panics(input in any::<String>()) {
        if let Err(e) = parse_challenges(&input) {
            prop_assert!(e.position <= input.len());
        }
    }

    #[test]
    fn parse_challenges_never_panics_on_header_like_text(
        input in proptest::string::string_regex(r#"([A-Za-z=," \\\t]|[!-~]){0,64}"#).expect("valid regex")
    ) {
        if let Err(e) = parse_challenges(&input) {
            prop_assert!(e.position <= input.len());
        }
    }

    #[test]
    fn retry_after_delay_round_trips(secs in any::<u64>()) {
        let value = RetryAfter::Delay(secs);
        prop_assert_eq!(RetryAfter::parse(&value.to_string()), Ok(value));
    }

    #[test]
    fn retry_after_date_round_trips(secs in 0..=LAST_HTTP_DATE_SECS) {
        let value = RetryAfter::Date(UNIX_EPOCH + Duration::from_secs(secs));
        prop_assert_eq!(RetryAfter::parse(&value.to_string()), Ok(value));
    }

    #[test]
    fn retry_after_after_never_comes_back_early(nanos in any::<u64>()) {
        let d = Duration::from_nanos(nanos);
        let RetryAfter::Delay(secs) = RetryAfter::after(d) else {
            return Err(TestCaseError::fail("after() must give a delay"));
        };
        prop_assert!(secs >= 1);
        prop_assert!(Duration::from_secs(secs) >= d);
        prop_assert!(Duration::from_secs(secs) < d + Duration::from_secs(1) || secs == 1);
    }

    #[test]
    fn retry_after_parse_never_panics(input in any::<String>()) {
        let _ = RetryAfter::parse(&input);
    }

    #[test]
    fn ratelimit_policy_round_trips(all in proptest::collection::vec(policy(), 1..4)) {
        let rendered = RateLimitPolicy::to_header_value(&all);
        prop_assert_eq!(RateLimitPolicy::parse_list(&rendered), Ok(all), "rendered: {}", rendered);
    }

    #[test]
    fn ratelimit_round_trips(all in proptest::collection::vec(limit(), 0..4)) {
        let rendered = RateLimit::to_header_value(&all);
        prop_assert_eq!(RateLimit::parse_list(&rendered), Ok(all), "rendered: {}", rendered);
    }

    #[test]
    fn ratelimit_single_item_display_round_trips(p in policy(), l in limit()) {
        prop_assert_eq!(RateLimitPolicy::parse_list(&p.to_string()), Ok(vec![p]));
        prop_assert_eq!(RateLimit::parse_list(&l.to_string()), Ok(vec![l]));
    }

    #[test]
    fn ratelimit_parsers_never_panic(input in any::<String>()) {
        let _ = RateLimit::parse_list(&input);
        let _ = RateLimitPolicy::parse_list(&input);
    }
}

#[test]
fn retry_after_date_keeps_whole_seconds_only() {
    let at = UNIX_EPOCH + Duration::new(1_700_000_000, 750_000_000);
    let parsed = RetryAfter::parse(&RetryAfter::Date(at).to_string());
    assert_eq!(
        parsed,
        Ok(RetryAfter::Date(
            UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        ))
    );
    let now: SystemTime = UNIX_EPOCH + Duration::from_secs(1_699_999_990);
    assert_eq!(
        parsed.map(|r| r.delay_from(now)),
        Ok(Duration::from_secs(10))
    );
}
