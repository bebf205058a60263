//! The OpenAPI reader and the static rules: any text is a document or an
//! error naming a line, and any document lints without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(doc) = candor_audit::openapi::Document::parse("fuzz.yaml", text) {
            let _ = candor_audit::openapi::operations(&doc);
            let _ = candor_audit::openapi::lint::lint(&doc);
        }
    }
});
