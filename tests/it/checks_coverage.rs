//! The requirement catalogue and `ews-conformance list --coverage`: every
//! requirement is listed with its level and covering cases; no MUST
//! requirement is left uncovered unless it is marked untestable; the exit
//! code says whether any remain.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use ews_conformance::check::CheckRegistry;
use ews_conformance::suite::Loader;
use ews_conformance::suite::operation::OpRegistry;
use ews_conformance::suite::requirements::{Catalogue, Coverage, Level};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn coverage_lists_every_requirement_and_the_uncovered_ones() {
    let cases_dir = root().join("cases");
    let catalogue = Catalogue::load(&cases_dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        catalogue.requirements.len(),
        78 + ews_conformance::suite::load::NOTE_REQUIREMENTS.len()
    );
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let suite = Loader::new(&ops, &checks).load_dir(&cases_dir);
    assert!(suite.errors.is_empty(), "{:?}", suite.errors);
    let coverage = Coverage::of(&catalogue, &suite.cases);
    let text = coverage.render();
    for r in &catalogue.requirements {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{:<4} ", r.id))),
            "{} is listed",
            r.id
        );
    }
    assert!(coverage.unknown.is_empty(), "{:?}", coverage.unknown);

    let uncovered: Vec<&str> = coverage
        .uncovered_must()
        .iter()
        .map(|r| r.requirement.id.as_str())
        .collect();
    println!(
        "uncovered MUST requirements ({}): {}",
        uncovered.len(),
        uncovered.join(", ")
    );
    assert!(
        uncovered.is_empty(),
        "every MUST requirement is covered or marked untestable: {uncovered:?}"
    );
    // Untestable ones carry their reason; none of them is also covered.
    for row in &coverage.rows {
        if let Some(why) = &row.requirement.untestable {
            assert!(!why.trim().is_empty());
            assert!(text.contains(why.as_str()));
        }
        if row.requirement.level == Level::Must && row.covered() {
            assert!(!text.contains(&format!("  {} — ", row.requirement.id)));
        }
    }
    // Pending cases are listed apart and do not cover.
    let pending: BTreeSet<&str> = coverage
        .rows
        .iter()
        .flat_map(|r| r.pending.iter().copied())
        .collect();
    for row in coverage.rows.iter().filter(|r| !r.pending.is_empty()) {
        assert!(row.pending.iter().all(|p| !row.cases.contains(p)));
    }
    println!("pending cases: {pending:?}");
}

#[test]
fn list_coverage_exits_zero_when_every_must_requirement_is_covered() {
    let out = Command::new(env!("CARGO_BIN_EXE_ews-conformance"))
        .args(["list", "--coverage"])
        .current_dir(root())
        .env_remove("EWS_CASES")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("uncovered MUST requirements ("), "{stdout}");
    assert!(stdout.contains("untestable (3):"), "{stdout}");
    assert!(
        stdout.contains("uncovered MUST requirements (0)"),
        "{stdout}"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
