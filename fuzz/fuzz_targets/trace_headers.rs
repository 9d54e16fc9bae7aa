//! Any bytes as the trace context headers a request carries (W3C and B3).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_proxy::fuzzing::trace_headers(data);
});
