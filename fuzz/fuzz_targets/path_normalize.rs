//! The request-path normaliser on any text: idempotent, and a normal path
//! keeps no dot, empty or parameter segment.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        candor_contract::fuzzing::normalize_path_properties(text);
        candor_contract::fuzzing::normalize_path_properties(&format!("/{text}"));
    }
});
