//! What the fault and dialect tests share: the kebab-case rule for their
//! names, and the server's own code, scanned for where it asks about a
//! fault or a dialect (one list of every file, so a new file is not missed
//! by one scan and seen by the other).

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

/// A name usable on the command line: lowercase ASCII letters, digits and
/// inner hyphens.
pub(crate) fn is_kebab_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[test]
fn kebab_names_are_told_apart() {
    assert!(is_kebab_name("batch-51"));
    for bad in ["", "-x", "x-", "Batch", "a_b", "a b"] {
        assert!(!is_kebab_name(bad), "{bad:?}");
    }
}
