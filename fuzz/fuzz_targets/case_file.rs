//! Fuzz target `case_file`: see `ews_conformance::fuzzing::case_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ews_conformance::fuzzing::case_file(data);
});
