//! problem+json parsing and validation must never panic on any body or status.
//! The first two bytes pick the status (any u16, so out-of-range codes are covered).
#![no_main]

use candor_contract::Problem;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (status, body) = match data {
        [hi, lo, body @ ..] => (u16::from_be_bytes([*hi, *lo]), body),
        _ => (500, data),
    };
    if let Ok(problem) = Problem::from_slice(body) {
        let _ = problem.validate(status);
    }
});
