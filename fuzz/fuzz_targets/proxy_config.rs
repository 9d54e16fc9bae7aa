//! Any bytes as a configuration update from the control plane: applying and validating it
//! must reject or accept, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_proxy::fuzzing::config_update(data);
});
