//! Any bytes as an authorization policy (JSON) followed by the attributes of one request or
//! connection, evaluated as the proxy does on every request.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_proxy::fuzzing::authz(data);
});
