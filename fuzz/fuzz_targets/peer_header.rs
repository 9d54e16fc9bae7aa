//! Any bytes as the peer metadata header another proxy (or a plaintext client) sends.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_proxy::fuzzing::peer_header(data);
});
