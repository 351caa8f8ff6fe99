//! Fuzz target `server_request`: see `ews_conformance::fuzzing::server_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ews_conformance::fuzzing::server_request(data);
});
