//! Any bytes through the manifest loader: it must never panic, and every diagnostic it
//! reports must point inside the input.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_api::fuzzing::load_bytes(data);
});
