//! One HAR entry: any text gives an exchange or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(exchange) = candor_audit::input::har::parse_entry(text)
    {
        let _ =
            candor_contract::check_exchange(&exchange, &candor_contract::CheckOptions::default());
    }
});
