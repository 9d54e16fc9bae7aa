//! Any bytes as a JWT where RequestAuthentication looks for one (the `Authorization` header,
//! a custom header with a prefix, the query string), verified as the proxy does per request.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_proxy::fuzzing::jwt(data);
});
