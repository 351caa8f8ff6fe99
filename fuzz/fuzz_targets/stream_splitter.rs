//! Fuzz target `stream_splitter`: see `ews_conformance::fuzzing::stream_splitter`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ews_conformance::fuzzing::stream_splitter(data);
});
