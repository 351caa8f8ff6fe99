//! Fuzz target `response`: see `ews_conformance::fuzzing::response`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ews_conformance::fuzzing::response(data);
});
