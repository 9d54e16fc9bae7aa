//! Any bytes as the start of a TLS stream reaching the east-west gateway's ClientHello parser.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_proxy::fuzzing::client_hello(data);
});
