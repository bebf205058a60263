//! WWW-Authenticate parsing must never panic, and whatever parses must survive
//! a render-and-parse round trip unchanged in meaning.
#![no_main]

use candor_contract::parse_challenges;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(challenges) = parse_challenges(value) else {
        return;
    };
    let rendered = challenges
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let reparsed = parse_challenges(&rendered);
    assert_eq!(reparsed.as_ref(), Ok(&challenges), "rendered: {rendered:?}");
});
