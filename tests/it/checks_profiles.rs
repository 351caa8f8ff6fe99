//! Profiles against the embedded reference server: a case the baseline
//! lists that fails is an expected failure (not a CI failure), a listed case
//! that passes is an unexpected pass (a CI failure), unlisted failures fail,
//! a listed skip is skipped with its reason; JSON and JUnit keep the grade
//! and the reason. The repository's own profiles load and list real cases.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ews_conformance::check::CheckRegistry;
use ews_conformance::report::Reporter;
use ews_conformance::report::junit;
use ews_conformance::settings::Settings;
use ews_conformance::suite::operation::OpRegistry;
use ews_conformance::suite::target::start_embedded;
use ews_conformance::suite::{
    Executor, ExitStatus, Loader, Outcome, Profile, RunOptions, Summary, Target, Verdict, run_suite,
};

const PASSES: &str = r#"
title = "passes"
requirements = ["R61"]
isolate = false
[[step]]
name = "unknown id"
op = "Unsubscribe"
with = { subscription = "no-such-subscription" }
expect = { class = "Error", code = "ErrorSubscriptionNotFound" }
"#;

const FAILS: &str = r#"
title = "fails"
requirements = ["R61"]
isolate = false
[[step]]
name = "unknown id"
op = "Unsubscribe"
with = { subscription = "no-such-subscription" }
expect = { class = "Success", code = "NoError" }
"#;

const PROFILE: &str = r#"
title = "test baseline"
[[expected_failure]]
case = "p/known-failure"
reason = "tracked as TICKET-1"
[[expected_failure]]
case = "p/fixed-since"
reason = "tracked as TICKET-2"
[[skip]]
case = "p/skipped"
reason = "the mailbox lacks the folder"
"#;

struct Sink;

impl Reporter for Sink {
    fn case_finished(&mut self, _o: &Outcome) {}
    fn finished(&mut self, _o: &[Outcome], _s: &Summary) -> std::io::Result<()> {
        Ok(())
    }
}

fn write_cases() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ews-conformance-profile-test-{}-{:x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(dir.join("p")).expect("case folder");
    std::fs::create_dir_all(dir.join("profiles")).expect("profile folder");
    for (name, text) in [
        ("known-failure", FAILS),
        ("fixed-since", PASSES),
        ("unlisted-failure", FAILS),
        ("skipped", FAILS),
        ("plain", PASSES),
    ] {
        std::fs::write(dir.join("p").join(format!("{name}.toml")), text).expect("write case");
    }
    std::fs::write(dir.join("profiles").join("baseline.toml"), PROFILE).expect("write profile");
    dir
}

fn verdict<'a>(outcomes: &'a [Outcome], id: &str) -> &'a Verdict {
    &outcomes
        .iter()
        .find(|o| o.id == id)
        .unwrap_or_else(|| panic!("{id} ran"))
        .verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_baseline_turns_known_failures_into_expected_ones_and_flags_fixed_ones() {
    let dir = write_cases();
    let settings = Settings {
        profile: Some("baseline".into()),
        ..Settings::default()
    };
    let target = start_embedded(&settings).await.expect("embedded target");
    let profile = Profile::for_target(&dir, target.config())
        .expect("the profile loads")
        .expect("the target names it");
    assert_eq!(profile.title, "test baseline");
    let executor = Executor::new(Arc::new(target.config().clone()))
        .expect("executor")
        .with_profile(Some(profile));
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let suite = Loader::new(&ops, &checks).load_dir(&dir);
    assert!(suite.errors.is_empty(), "{:?}", suite.errors);
    let result = run_suite(
        Arc::new(executor),
        suite.cases,
        &[],
        &RunOptions::default(),
        &mut Sink,
    )
    .await;
    let o = &result.outcomes;
    assert!(
        matches!(verdict(o, "p/known-failure"), Verdict::ExpectedFailure { reason } if reason.contains("TICKET-1")),
        "{:?}",
        verdict(o, "p/known-failure")
    );
    assert!(
        matches!(verdict(o, "p/fixed-since"), Verdict::UnexpectedPass { reason } if reason.contains("update the baseline")),
        "{:?}",
        verdict(o, "p/fixed-since")
    );
    assert_eq!(verdict(o, "p/unlisted-failure"), &Verdict::Fail);
    assert!(
        matches!(verdict(o, "p/skipped"), Verdict::Skipped { reason } if reason.contains("the mailbox lacks the folder")),
        "{:?}",
        verdict(o, "p/skipped")
    );
    assert_eq!(verdict(o, "p/plain"), &Verdict::Pass);
    let s = &result.summary;
    assert_eq!(
        (s.expected_failures, s.unexpected_passes, s.failed),
        (1, 1, 1)
    );
    assert_eq!(s.exit_status(), ExitStatus::Failed);

    // Without the unlisted failure and the fixed case, the run passes.
    let only_known: Vec<Outcome> = o
        .iter()
        .filter(|x| matches!(x.id.as_str(), "p/known-failure" | "p/plain" | "p/skipped"))
        .cloned()
        .collect();
    let summary = Summary::of(&only_known, std::time::Duration::ZERO);
    assert_eq!(summary.exit_status(), ExitStatus::Passed);

    // The reports keep grade and reason.
    let xml = junit::render(o, s);
    assert!(
        xml.contains("expected failure: listed by profile `baseline`: tracked as TICKET-1"),
        "{xml}"
    );
    assert!(
        xml.contains("unexpected pass: profile `baseline` lists it"),
        "{xml}"
    );
    assert!(xml.contains(r#"value="expected-failure""#), "{xml}");
    assert!(
        xml.contains(
            r#"<property name="reason" value="listed by profile `baseline`: tracked as TICKET-1"/>"#
        ),
        "{xml}"
    );
    let json = ews_conformance::report::json::render("t", o, s).expect("json");
    assert!(json.contains(r#""verdict": "unexpected-pass""#), "{json}");
    assert!(json.contains(r#""verdict": "expected-failure""#), "{json}");
    assert!(json.contains("TICKET-2"), "{json}");

    target.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_repository_profiles_load_and_name_real_cases() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cases");
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let suite = Loader::new(&ops, &checks).load_dir(&root);
    let ids: Vec<&str> = suite.cases.iter().map(|c| c.id.as_str()).collect();
    for name in ["reference", "exchange2010", "exchange2013-and-online"] {
        let p = Profile::load(&root, name).unwrap_or_else(|e| panic!("{e}"));
        assert!(!p.title.is_empty());
        assert!(
            p.unknown_cases(&ids).is_empty(),
            "{name}: {:?}",
            p.unknown_cases(&ids)
        );
    }
    // The version-dependent soft delete has one case per profile family
    // and delivery mode (pull, streaming, push).
    let soft: Vec<_> = suite
        .cases
        .iter()
        .filter(|c| c.requirements.iter().any(|r| r == "R76"))
        .collect();
    assert_eq!(soft.len(), 6);
    for profile in ["reference", "exchange2010", "exchange2013-and-online"] {
        let runnable = soft
            .iter()
            .filter(|c| c.profile_exclusion(Some(profile)).is_none())
            .count();
        assert_eq!(
            runnable, 3,
            "exactly one soft-delete case per delivery mode under {profile}"
        );
    }
    assert!(Path::new(&Profile::file(&root, "reference")).exists());
}
