//! One JSON-lines exchange: any bytes give an exchange or an error, never a
//! panic; an exchange that parses goes through every passive rule.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(exchange) = candor_audit::input::jsonl::parse_line(data) {
        let _ =
            candor_contract::check_exchange(&exchange, &candor_contract::CheckOptions::default());
        let _ = candor_contract::History::default().observe(&exchange);
    }
});
