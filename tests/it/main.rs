//! The integration tests, in one binary: each file is a module, so the
//! crate is linked once for all of them (the `cargo test` harness over the
//! case files, `tests/conformance.rs`, has its own `main` and stays apart).
//! Tests that need a process of their own start the CLI binary.

mod support {
    pub mod hostile_target;
    pub mod server;
}

mod checks_coverage;
mod checks_faults;
mod checks_golden;
mod checks_profiles;
mod checks_seeds;
mod checks_watermark;
mod checks_xsd;
mod ci_recipe;
mod client_push;
mod client_stream;
mod client_tls;
mod client_transport;
mod concurrency;
mod dead_target;
mod delivery_wait;
mod grammar;
mod grammar_paths;
mod hostile;
mod html_report;
mod interop;
mod live_parity;
mod model_case;
mod model_generate;
mod model_oracle;
mod model_shrink;
mod no_credentials_leak;
mod normalize;
mod ntlm;
mod properties;
mod runner_canned;
mod selftest;
mod server_dialects;
mod server_faults;
mod server_find_item;
mod server_front;
mod server_limits;
mod server_pull;
mod server_push;
mod server_streaming;
mod signals;
mod stream_ops;
mod stress;
mod xsd;
