//! RateLimit and RateLimit-Policy parsing must never panic; what parses must
//! serialise and parse back to the same values.
#![no_main]

use candor_contract::{RateLimit, RateLimitPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(limits) = RateLimit::parse_list(value) {
        let rendered = RateLimit::to_header_value(&limits);
        assert_eq!(
            RateLimit::parse_list(&rendered),
            Ok(limits),
            "rendered: {rendered:?}"
        );
    }
    if let Ok(policies) = RateLimitPolicy::parse_list(value) {
        let rendered = RateLimitPolicy::to_header_value(&policies);
        assert_eq!(
            RateLimitPolicy::parse_list(&rendered),
            Ok(policies),
            "rendered: {rendered:?}"
        );
    }
});
