use super::*;

#[test]
fn the_table_is_in_enum_order_with_unique_kebab_names_and_sources() {
    let mut seen = std::collections::HashSet::new();
    for (i, info) in DIALECTS.iter().enumerate() {
        assert_eq!(info.dialect as usize, i, "{} is out of order", info.name);
        assert!(seen.insert(info.name), "{} is listed twice", info.name);
        assert!(
            crate::testing::is_kebab_name(info.name) && info.name != "all" && info.name != "list",
            "{} is not a usable kebab-case name",
            info.name
        );
        assert!(!info.description.is_empty() && !info.description.contains('\n'));
        assert!(!info.source.is_empty(), "{} has no source", info.name);
        assert!(!info.excludes.contains(&info.dialect), "{}", info.name);
        assert_eq!(Dialect::from_name(info.name), Some(info.dialect));
    }
    assert!(DIALECTS.len() >= 15);
    assert!(DIALECTS.len() <= 64, "DialectSet is a 64-bit set");
}

#[test]
fn all_is_compatible_and_skips_profile_bound_dialects() {
    let all = DialectSet::all_compatible();
    assert!(all.check().is_ok());
    assert!(!all.has(SoftDeleteAsDeleted));
    assert!(all.has(FaultLang) && all.has(LateDelivery) && all.has(Gzip));
    // One of each exclusive pair.
    assert!(all.has(StreamChunksSplit) != all.has(StreamChunksJoined));
    assert!(!all.has(DefaultNamespace));
    assert!(all.len() >= 20, "{all:?}");
    assert_eq!(DialectSet::parse(&["all"]), Ok(all));
}

#[test]
fn names_parse_and_conflicts_are_refused() {
    let s = DialectSet::parse(&["fault-lang", "gzip"]).expect("known names");
    assert!(s.has(FaultLang) && s.has(Gzip) && !s.has(FaultActor));
    assert_eq!(format!("{s:?}"), r#"{"fault-lang", "gzip"}"#);
    assert_eq!(s.to_string(), "fault-lang+gzip");
    let e = DialectSet::parse(&["gzipp"]).expect_err("unknown");
    assert!(e.to_string().contains("unknown dialect `gzipp`"), "{e}");
    let e = DialectSet::parse(&["soap-prefix", "default-namespace"]).expect_err("conflict");
    assert!(e.to_string().contains("exclude each other"), "{e}");
    let s = DialectSet::parse(&["soft-delete-as-deleted"]).expect("known");
    assert_eq!(s.profile(), Some("exchange2010"));
    assert_eq!(s.version(), Some("Exchange2010_SP1"));
    assert_eq!(DialectSet::none().profile(), None);
}

/// The server asks about each dialect at exactly one place.
#[test]
fn each_dialect_is_asked_about_at_exactly_one_place() {
    let counts = crate::testing::asks(r"\.has\(Dialect::(\w+)\)");
    for dialect in Dialect::all() {
        let variant = format!("{dialect:?}");
        assert_eq!(
            counts.get(&variant).copied().unwrap_or(0),
            1,
            "Dialect::{variant} ({dialect}) must be asked about at exactly one place"
        );
    }
}
