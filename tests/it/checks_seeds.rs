//! The documented examples of the four seed pages as cases (cases/seeds/):
//! every example has a case citing it, documented responses are shape
//! expectations, defective requests are also sent as published, and the
//! streaming examples wait (`pending`) for the streaming operations. Also
//! the loader rules the seed cases rely on.

use std::path::{Path, PathBuf};

use ews_conformance::case::Case;
use ews_conformance::check::CheckRegistry;
use ews_conformance::suite::Loader;
use ews_conformance::suite::operation::OpRegistry;

fn cases() -> Vec<Case> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cases");
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let suite = Loader::new(&ops, &checks).load_dir(&root);
    assert!(suite.errors.is_empty(), "{:?}", suite.errors);
    suite.cases
}

fn citing<'a>(cases: &'a [Case], seed: &str) -> Vec<&'a Case> {
    cases
        .iter()
        .filter(|c| c.source.as_deref().is_some_and(|s| s.contains(seed)))
        .collect()
}

#[test]
fn every_documented_example_has_a_case() {
    let all = cases();
    // (seed, examples on the page: requests + responses, cases expected at least)
    for (seed, at_least) in [
        ("seed 000", 3),
        ("seed 001", 4),
        ("seed 002", 3),
        ("seed 003", 5),
    ] {
        let found = citing(&all, seed);
        assert!(
            found.len() >= at_least,
            "{seed}: {:?}",
            found.iter().map(|c| &c.id).collect::<Vec<_>>()
        );
    }
    let seeds: Vec<&Case> = all.iter().filter(|c| c.id.starts_with("seeds/")).collect();
    for c in &seeds {
        assert!(c.source.is_some(), "{} names its seed", c.id);
        assert!(
            c.defect.is_some(),
            "{} names the defect it corrects or keeps",
            c.id
        );
    }
    // Documented responses are shape expectations.
    let shapes = seeds
        .iter()
        .flat_map(|c| c.steps.iter())
        .filter(|s| s.expect.shape.is_some())
        .count();
    assert!(shapes >= 8, "{shapes} documented responses");
    // Defective requests are also sent as published, and must be rejected.
    let as_published: Vec<&&Case> = seeds
        .iter()
        .filter(|c| c.id.ends_with("-as-published"))
        .collect();
    assert!(as_published.len() >= 4);
    for c in as_published {
        assert!(
            c.steps.iter().any(|s| s.expect.rejected == Some(true)),
            "{} expects a rejection",
            c.id
        );
    }
    // The streaming examples run with the streaming operations (they were
    // `pending` until those existed); none is left waiting.
    let pending: Vec<&str> = seeds
        .iter()
        .filter(|c| c.pending.is_some())
        .map(|c| c.id.as_str())
        .collect();
    assert!(pending.is_empty(), "{pending:?}");
    for id in [
        "seeds/000-getstreamingevents-new-mail",
        "seeds/001-getstreamingevents-heartbeat",
    ] {
        assert!(seeds.iter().any(|c| c.id == id), "{id}");
    }
}

fn load(text: &str) -> Result<Case, String> {
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    Loader::new(&ops, &checks)
        .parse(text, Path::new("cases/x/y.toml"), "x/y")
        .map_err(|e| e.to_string())
}

#[test]
fn pending_cases_may_name_operations_that_do_not_exist_yet() {
    let body = "[[step]]\nname = \"open\"\nop = \"OpenFirehose\"\nwith = { hose = \"h1\" }\n";
    let head = "title = \"t\"\nrequirements = [\"R45\"]\n";
    let e = load(&format!("{head}{body}")).expect_err("unknown operation");
    assert!(e.contains("unknown operation `OpenFirehose`"), "{e}");
    let c = load(&format!("{head}pending = \"needs OpenFirehose\"\n{body}")).expect("loads");
    assert_eq!(c.pending.as_deref(), Some("needs OpenFirehose"));
    let e = load(&format!("{head}pending = \" \"\n{body}")).expect_err("an empty reason");
    assert!(e.contains("`pending` names why"), "{e}");
}

#[test]
fn a_shape_must_be_well_formed_and_golden_can_be_set_per_step() {
    let head = "title = \"t\"\nrequirements = [\"R7\"]\nisolate = false\n";
    let e = load(&format!(
        "{head}[[step]]\nop = \"Subscribe\"\nexpect.shape = \"<a><b></a>\"\n"
    ))
    .expect_err("not XML");
    assert!(e.starts_with("cases/x/y.toml:6:16:"), "{e}");
    assert!(
        e.contains("the documented shape is not well-formed XML"),
        "{e}"
    );

    let c = load(&format!(
        "{head}golden = true\n[[step]]\nname = \"a\"\nop = \"Subscribe\"\n[[step]]\nname = \"b\"\nop = \"Subscribe\"\nexpect.golden = false\nexpect.shape = \"<x/>\"\nexpect.shape_optional = [\"@Id\"]\n"
    ))
    .expect("loads");
    assert!(c.golden_step(&c.steps[0]));
    assert!(!c.golden_step(&c.steps[1]));
    assert_eq!(c.steps[1].expect.shape_optional, ["@Id"]);
}
