//! The protocol versions a request can name.

/// The `RequestServerVersion` values the schema knows (digest 0.1), oldest first.
pub const SERVER_VERSIONS: &[&str] = &[
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2009",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2012",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2016",
    "V2015_10_05",
    "V2016_01_06",
    "V2016_04_13",
    "V2016_07_13",
    "V2016_10_10",
];

/// Whether `version` is at least Exchange2010_SP1 (streaming, FreeBusyChangedEvent).
pub fn at_least_2010_sp1(version: &str) -> bool {
    let rank = |v: &str| SERVER_VERSIONS.iter().position(|x| *x == v);
    match (rank(version), rank("Exchange2010_SP1")) {
        (Some(v), Some(min)) => v >= min,
        _ => false,
    }
}
