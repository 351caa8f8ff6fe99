//! The `golden` check: recording and comparing insta snapshots of
//! normalised responses. Values may change between runs and servers
//! (other ids, watermarks, prefixes) as long as their relations hold; a
//! changed relation fails with a diff and leaves a `.snap.new` for
//! `cargo insta review`. And every golden step of the suite has its
//! reviewed snapshot for the reference profile.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ews_conformance::case::Case;
use ews_conformance::case::template::Vars;
use ews_conformance::check::exchange::Exchange;
use ews_conformance::check::golden::{Golden, GoldenMode, snapshot_file_name};
use ews_conformance::check::{CaseInput, Check, CheckRegistry, Finding, Severity};
use ews_conformance::suite::Loader;
use ews_conformance::suite::operation::OpRegistry;

const CASE: &str = r#"
title = "golden round trip"
requirements = ["R29"]
golden = true
isolate = false

[[step]]
name = "subscribe"
op = "Subscribe"

[[step]]
name = "poll"
op = "GetEvents"
with = { subscription = "x", watermark = "y" }
"#;

fn case() -> Case {
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    Loader::new(&ops, &checks)
        .parse(CASE, Path::new("cases/g/round-trip.toml"), "g/round-trip")
        .expect("the case loads")
}

fn exchange(step: &str, body: String) -> Exchange {
    Exchange {
        step: step.into(),
        line: 7,
        request: String::new(),
        status: Some(200),
        response_text: body,
        duration: Duration::from_millis(1),
        error: None,
        findings: vec![],
        asked: None,
        at: std::time::Duration::ZERO,
        deadline: None,
    }
}

/// A Subscribe answer and a GetEvents answer, with the given values and prefixes.
fn answers(
    sub: &str,
    w0: &str,
    prev: &str,
    w1: &str,
    item: &str,
    m: &str,
    t: &str,
) -> Vec<Exchange> {
    let ns = format!(
        r#"xmlns:{m}="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:{t}="http://schemas.microsoft.com/exchange/services/2006/types""#
    );
    let subscribe = format!(
        r#"<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><{t}:ServerVersionInfo {ns} MajorVersion="15"/></s:Header><s:Body><{m}:SubscribeResponse {ns}><{m}:ResponseMessages><{m}:SubscribeResponseMessage ResponseClass="Success"><{m}:ResponseCode>NoError</{m}:ResponseCode><{m}:SubscriptionId>{sub}</{m}:SubscriptionId><{m}:Watermark>{w0}</{m}:Watermark></{m}:SubscribeResponseMessage></{m}:ResponseMessages></{m}:SubscribeResponse></s:Body></s:Envelope>"#
    );
    let poll = format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><{m}:GetEventsResponse {ns}><{m}:ResponseMessages><{m}:GetEventsResponseMessage ResponseClass="Success"><{m}:MessageText>server words</{m}:MessageText><{m}:ResponseCode>NoError</{m}:ResponseCode><{m}:Notification><{t}:SubscriptionId>{sub}</{t}:SubscriptionId><{t}:PreviousWatermark>{prev}</{t}:PreviousWatermark><{t}:MoreEvents>false</{t}:MoreEvents><{t}:CreatedEvent><{t}:Watermark>{w1}</{t}:Watermark><{t}:TimeStamp>2026-05-01T10:00:00Z</{t}:TimeStamp><{t}:ItemId Id="{item}"/><{t}:ParentFolderId Id="FOLDER"/></{t}:CreatedEvent></{m}:Notification></{m}:GetEventsResponseMessage></{m}:ResponseMessages></{m}:GetEventsResponse></s:Body></s:Envelope>"#
    );
    vec![exchange("subscribe", subscribe), exchange("poll", poll)]
}

fn judge(golden: &Golden, exchanges: &[Exchange]) -> Vec<Finding> {
    let c = case();
    let mut vars = Vars::new();
    vars.set("unique", "0123456789abcdef");
    golden.check_case(&CaseInput::new(&c, exchanges, &vars))
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "ews-conformance-golden-test-{tag}-{}-{:x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn record_then_compare_tolerates_new_values_and_prefixes_but_not_new_relations() {
    let dir = temp_dir("trip");
    let record = Golden::new(&dir, GoldenMode::Record, Some("p".into()));
    let compare = Golden::new(&dir, GoldenMode::Compare, Some("p".into()));
    let first = answers("S1", "W0", "W0", "W1", "I1", "m", "t");

    let recorded = judge(&record, &first);
    assert_eq!(recorded.len(), 2, "one note per golden step: {recorded:?}");
    assert!(recorded.iter().all(|f| f.severity == Severity::Note));
    let snap = dir
        .join("p")
        .join(snapshot_file_name("g/round-trip", "poll"));
    let text = std::fs::read_to_string(&snap).expect("the snapshot is written");
    assert!(text.starts_with("---\n"), "insta header: {text}");
    for alias in [
        "[subscription#1]",
        "<t:PreviousWatermark>[watermark#1]</t:PreviousWatermark>",
        "[watermark#2]",
        "[item#1]",
        "[time]",
    ] {
        assert!(text.contains(alias), "{alias} in {text}");
    }
    assert!(!text.contains("server words"), "MessageText is left out");

    assert!(
        judge(&compare, &first).is_empty(),
        "same answers compare equal"
    );
    let other_values = answers("S9", "V0", "V0", "V1", "J7", "msg", "typ");
    assert!(
        judge(&compare, &other_values).is_empty(),
        "other ids, watermarks and prefixes, same relations"
    );

    // PreviousWatermark no longer echoes the Subscribe watermark.
    let broken = answers("S1", "W0", "W1", "W1", "I1", "m", "t");
    let found = judge(&compare, &broken);
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f.severity, Severity::Fail);
    assert!(
        f.message.contains("differ from the golden snapshot"),
        "{}",
        f.message
    );
    let diff = f.evidence.as_deref().expect("a diff");
    assert!(
        diff.contains("-             <t:PreviousWatermark>[watermark#1]</t:PreviousWatermark>")
            && diff
                .contains("+             <t:PreviousWatermark>[watermark#2]</t:PreviousWatermark>"),
        "{diff}"
    );
    let pending = snap.with_extension("snap.new");
    assert!(pending.exists(), "a .snap.new for cargo insta review");
    // Once the answers agree again, the pending file is cleared.
    assert!(judge(&compare, &first).is_empty());
    assert!(!pending.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_snapshot_is_a_note_and_a_pending_file_only_where_the_profile_has_goldens() {
    let dir = temp_dir("missing");
    let compare = Golden::new(&dir, GoldenMode::Compare, Some("p".into()));
    let found = judge(&compare, &answers("S1", "W0", "W0", "W1", "I1", "m", "t"));
    assert_eq!(found.len(), 2);
    assert!(
        found.iter().all(|f| f.severity == Severity::Note),
        "{found:?}"
    );
    assert!(
        found[0]
            .message
            .contains("no snapshots are recorded for this profile"),
        "{}",
        found[0].message
    );
    assert!(
        !dir.join("p").exists(),
        "nothing written for an unknown profile"
    );

    std::fs::create_dir_all(dir.join("p")).expect("profile folder");
    let found = judge(&compare, &answers("S1", "W0", "W0", "W1", "I1", "m", "t"));
    assert!(found.iter().all(|f| f.severity == Severity::Note));
    let pending = dir
        .join("p")
        .join(snapshot_file_name("g/round-trip", "poll"))
        .with_extension("snap.new");
    assert!(pending.exists(), "a new golden step awaits review");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every step that opts in to golden comparison has its reviewed snapshot
/// for the reference profile (record them with `ews-conformance record`).
#[test]
fn every_golden_step_of_the_suite_has_a_reference_snapshot() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let suite = Loader::new(&ops, &checks).load_dir(&root.join("cases"));
    assert!(suite.errors.is_empty(), "{:?}", suite.errors);
    let golden = Golden::new(
        root.join("golden"),
        GoldenMode::Compare,
        Some("reference".into()),
    );
    let mut steps = 0;
    let mut missing = Vec::new();
    for case in suite
        .cases
        .iter()
        .filter(|c| c.uses_golden() && c.pending.is_none())
    {
        for step in case.steps.iter().filter(|s| case.golden_step(s)) {
            steps += 1;
            let path = golden.path(&case.id, &step.name);
            if !path.exists() {
                missing.push(path.display().to_string());
            }
        }
    }
    assert!(steps >= 6, "a handful of golden steps: {steps}");
    assert!(
        missing.is_empty(),
        "record them with `ews-conformance record`: {missing:#?}"
    );
}
