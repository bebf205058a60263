//! The gateway's direct HTTP/1.1 path, request side: any bytes. A head it
//! takes is one hyper's types take too, and what it forwards reads back as
//! one request head with its body's one length and no hop-by-hop or
//! identity field.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    candor_gateway::fuzzing::request_head(data);
});
