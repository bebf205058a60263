//! The gateway's configuration loader: any text is a configuration or an
//! error naming a line, never a panic. Files it names are looked up under a
//! directory that does not exist, and no environment variable is set.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let origin = std::path::Path::new("/nonexistent-candor-fuzz/gateway.toml");
        let _ = candor_gateway::config::load_str(text, origin, &|_| None);
    }
});
