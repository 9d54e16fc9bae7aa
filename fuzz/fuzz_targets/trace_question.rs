//! Any bytes as a question to a proxy's `/debug/trace` admin endpoint.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_proxy::fuzzing::trace_question(data);
});
