//! Fuzz target `grammar`: see `ews_conformance::fuzzing::grammar`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ews_conformance::fuzzing::grammar(data);
});
