//! Any bytes through the CSR parser, as PEM and as DER: it must never panic, and whatever
//! it accepts must be a key the CA can certify.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_ca::fuzzing::parse_csr_bytes(data);
});
