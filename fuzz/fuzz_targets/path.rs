//! Any bytes as a request path, normalized under every `meshConfig.pathNormalization` mode
//! before policy and routing see it.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_proxy::fuzzing::path(data);
});
