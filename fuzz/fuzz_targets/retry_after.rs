//! Retry-After parsing must never panic; a parsed value must render and parse back.
#![no_main]

use std::time::UNIX_EPOCH;

use candor_contract::RetryAfter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = RetryAfter::parse(value) else {
        return;
    };
    let rendered = parsed.to_string();
    assert_eq!(
        RetryAfter::parse(&rendered),
        Ok(parsed),
        "rendered: {rendered:?}"
    );
    let _ = parsed.delay_from(UNIX_EPOCH);
});
