//! Any bytes as the body of a request to the sidecar injector: it must never panic, an answer
//! must echo the request's uid, and a patch must decode.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_kube::inject::fuzzing::review_bytes(data);
});
