//! The gateway's direct HTTP/1.1 path, response side: any bytes after a
//! split point (the first two bytes, big-endian). A head it takes gives the
//! client one response head without hop-by-hop fields, and a chunked body
//! is scanned alike whole and split.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let [a, b, rest @ ..] = data {
        candor_gateway::fuzzing::response(rest, usize::from(u16::from_be_bytes([*a, *b])));
    }
});
