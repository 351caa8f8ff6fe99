//! The server's own code, for the tests that check where it asks about a
//! fault or a dialect: one list of every file, so a new file is not missed
//! by one scan and seen by the other.

use std::collections::HashMap;

use regex::Regex;

const SOURCES: &[&str] = &[
    include_str!("auth.rs"),
    include_str!("config.rs"),
    include_str!("destinations.rs"),
    include_str!("dialects.rs"),
    include_str!("faults.rs"),
    include_str!("front.rs"),
    include_str!("http.rs"),
    include_str!("ids.rs"),
    include_str!("items.rs"),
    include_str!("lib.rs"),
    include_str!("listen.rs"),
    include_str!("log.rs"),
    include_str!("pull.rs"),
    include_str!("push.rs"),
    include_str!("reply.rs"),
    include_str!("resolve.rs"),
    include_str!("rewrite.rs"),
    include_str!("state.rs"),
    include_str!("store.rs"),
    include_str!("streaming.rs"),
    include_str!("subscriptions.rs"),
    include_str!("sync.rs"),
    include_str!("transport.rs"),
    include_str!("validate.rs"),
];

/// How many times each name the first group of `pattern` captures is asked
/// about in the server's code (its tests, which ask too, are left out).
pub(crate) fn asks(pattern: &str) -> HashMap<String, usize> {
    let asks = Regex::new(pattern).expect("valid pattern");
    let mut counts: HashMap<String, usize> = HashMap::new();
    for text in SOURCES {
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default();
        for c in asks.captures_iter(code) {
            *counts.entry(c[1].to_string()).or_default() += 1;
        }
    }
    counts
}
