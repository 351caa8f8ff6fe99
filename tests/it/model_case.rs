//! `to_case_toml` renders a sequence as a case file that parses, uses only
//! the case format's keys and operation parameters, defines every variable
//! before using it, and drains each poll expecting the predicted events.

use std::collections::{BTreeMap, BTreeSet};

use ews_conformance::model::{
    DeleteHow, FolderHandle, GenConfig, ItemHandle, Latitude, Mode, Op, Scope, SubHandle,
    WatermarkHandle, describe_sequence, ops_strategy, predict, predict_for, to_case_toml,
};
use ews_proto::ews::EventKind;
use proptest::prelude::*;
use serde::Deserialize;
use toml::Value;

// A mirror of the case format's keys (deny_unknown_fields catches typos).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    title: String,
    requirements: Vec<String>,
    #[serde(default)]
    serial: bool,
    /// `["second-user"]` when the sequence has the second user's decoys.
    #[serde(default)]
    needs: Vec<String>,
    #[serde(rename = "step")]
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    name: String,
    op: String,
    /// `user2` for the second user's decoys.
    #[serde(rename = "as")]
    as_user: Option<String>,
    #[serde(default)]
    with: BTreeMap<String, Value>,
    expect: Option<Expect>,
    #[serde(default)]
    capture: BTreeMap<String, String>,
    #[serde(rename = "assert", default)]
    asserts: Vec<BTreeMap<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    code: Option<String>,
    events: Option<String>,
    #[serde(default)]
    no_events: Vec<String>,
    batches: Option<Vec<usize>>,
    #[serde(default)]
    event: Vec<Pattern>,
}

#[derive(Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
struct Pattern {
    kind: String,
    item: Option<String>,
    folder: Option<String>,
    parent: Option<String>,
    old_parent: Option<String>,
    old_item: Option<String>,
    old_folder: Option<String>,
    unread_count: Option<i64>,
}

/// Each operation's `with` parameters (the runner's parameter lists).
fn params(op: &str) -> &'static [&'static str] {
    match op {
        "Subscribe" => &[
            "mode",
            "folders",
            "all_folders",
            "event_types",
            "watermark",
            "timeout",
            "status_frequency",
            "url",
        ],
        "DrainEvents" => &["subscription", "watermark", "max_calls"],
        "Unsubscribe" => &["subscription"],
        "CreateItem" => &["folder", "subject", "count", "disposition", "to", "is_read"],
        "UpdateItem" => &["item", "is_read", "subject"],
        "MoveItem" | "CopyItem" => &["item", "to"],
        "DeleteItem" => &["item", "delete_type"],
        "CreateFolder" => &["parent", "name"],
        "DeleteFolder" => &["folder", "delete_type"],
        "GetFolder" => &["folder"],
        "AwaitDelivery" => &["folder", "subject", "within_minutes", "within_seconds"],
        other => panic!("unknown operation {other}"),
    }
}

fn parse(text: &str) -> CaseFile {
    toml::from_str(text).unwrap_or_else(|e| panic!("not a valid case file: {e}\n{text}"))
}

/// `${name}` references in a string.
fn references(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        let inner = &rest[at + 2..];
        match inner.find('}') {
            Some(end) => {
                out.push(inner[..end].to_string());
                rest = &inner[end + 1..];
            }
            None => break,
        }
    }
    out
}

fn strings_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings_in(i, out)),
        Value::Table(t) => t.values().for_each(|i| strings_in(i, out)),
        _ => {}
    }
}

/// Checks the structural promises of a rendered case; returns the parsed file.
fn check_case(text: &str, ops: &[Op]) -> Result<CaseFile, String> {
    let case = parse(text);
    if case.requirements.is_empty() {
        return Err("no requirements".into());
    }
    for r in &case.requirements {
        let n: u32 = r
            .strip_prefix('R')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("bad requirement {r}"))?;
        if !(1..=78).contains(&n) {
            return Err(format!("requirement {r} out of range"));
        }
    }
    let mut defined: BTreeSet<String> = ["user", "folder", "unique"]
        .into_iter()
        .map(String::from)
        .collect();
    // The second user exists only where the case says it needs one.
    let second_user = case.needs.iter().any(|n| n == "second-user");
    if second_user {
        defined.insert("user2".into());
    }
    let mut names = BTreeSet::new();
    for step in &case.steps {
        match step.as_user.as_deref() {
            None => {}
            Some("user2") if second_user => {}
            Some(other) => {
                return Err(format!(
                    "{}: acts as `{other}` without needs = [\"second-user\"]",
                    step.name
                ));
            }
        }
        if let Some(k) = step
            .expect
            .iter()
            .flat_map(|e| e.no_events.iter())
            .find(|k| EventKind::from_element_name(k).is_none())
        {
            return Err(format!("{}: unknown kind {k} in no_events", step.name));
        }
        if !names.insert(step.name.clone()) {
            return Err(format!("duplicate step name {}", step.name));
        }
        let allowed = params(&step.op);
        if let Some(k) = step.with.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!(
                "{}: `with.{k}` is not a {} parameter",
                step.name, step.op
            ));
        }
        let mut texts = Vec::new();
        step.with.values().for_each(|v| strings_in(v, &mut texts));
        for a in &step.asserts {
            a.values().for_each(|v| strings_in(v, &mut texts));
        }
        if let Some(e) = &step.expect {
            for p in &e.event {
                texts.extend(
                    [
                        &p.item,
                        &p.folder,
                        &p.parent,
                        &p.old_parent,
                        &p.old_item,
                        &p.old_folder,
                    ]
                    .into_iter()
                    .flatten()
                    .cloned(),
                );
                if EventKind::from_element_name(&p.kind).is_none() {
                    return Err(format!("{}: unknown kind {}", step.name, p.kind));
                }
            }
        }
        for t in &texts {
            for r in references(t) {
                if !defined.contains(&r) {
                    return Err(format!(
                        "{}: ${{{r}}} is used before it is defined",
                        step.name
                    ));
                }
            }
        }
        defined.extend(step.capture.keys().cloned());
        if step.op == "DrainEvents" {
            defined.insert(format!("{}.watermark", step.name));
        }
    }
    let polls = ops
        .iter()
        .filter(|op| matches!(op, Op::Poll { .. }))
        .count();
    let drains = case.steps.iter().filter(|s| s.op == "DrainEvents").count();
    if polls != drains {
        return Err(format!("{polls} polls but {drains} DrainEvents steps"));
    }
    Ok(case)
}

fn all_but_newmail() -> BTreeSet<EventKind> {
    [
        EventKind::Copied,
        EventKind::Created,
        EventKind::Deleted,
        EventKind::Modified,
        EventKind::Moved,
    ]
    .into_iter()
    .collect()
}

const F1: FolderHandle = FolderHandle::User(1);
const CASE: FolderHandle = FolderHandle::Case;

fn sample() -> Vec<Op> {
    vec![
        Op::CreateFolder {
            folder: F1,
            parent: CASE,
        },
        Op::Subscribe {
            sub: SubHandle(1),
            mode: Mode::Pull,
            scope: Scope::Folders([CASE, F1].into_iter().collect()),
            event_types: all_but_newmail(),
        },
        Op::CreateItem {
            item: ItemHandle(1),
            folder: CASE,
            read: false,
        },
        Op::Poll { sub: SubHandle(1) },
        Op::Remember {
            sub: SubHandle(1),
            watermark: WatermarkHandle(1),
        },
        Op::MoveItem {
            item: ItemHandle(1),
            to: F1,
            new: ItemHandle(2),
        },
        Op::DeleteItem {
            item: ItemHandle(2),
            how: DeleteHow::SoftDelete,
        },
        Op::Poll { sub: SubHandle(1) },
        Op::Resubscribe {
            sub: SubHandle(2),
            from: WatermarkHandle(1),
        },
        Op::Poll { sub: SubHandle(2) },
        Op::Subscribe {
            sub: SubHandle(3),
            mode: Mode::Streaming,
            scope: Scope::AllFolders,
            event_types: [EventKind::NewMail].into_iter().collect(),
        },
        Op::Deliver {
            item: ItemHandle(3),
        },
        Op::Poll { sub: SubHandle(3) },
        Op::Unsubscribe { sub: SubHandle(1) },
    ]
}

fn step<'a>(case: &'a CaseFile, name: &str) -> &'a Step {
    case.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

fn pattern(kind: &str) -> Pattern {
    Pattern {
        kind: kind.to_string(),
        ..Pattern::default()
    }
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn a_sequence_renders_as_a_replayable_case() {
    let ops = sample();
    let prediction = predict(&ops).expect("valid");
    let text = to_case_toml(
        "generated sample",
        &ops,
        &prediction,
        &Latitude::reference(),
    );
    let case = check_case(&text, &ops).unwrap_or_else(|e| panic!("{e}\n{text}"));

    assert_eq!(case.title, "generated sample");
    for r in ["R21", "R32", "R42", "R43", "R44", "R71", "R73", "R76"] {
        assert!(
            case.requirements.iter().any(|x| x == r),
            "{r} in {:?}",
            case.requirements
        );
    }
    assert!(
        case.serial,
        "delivery and all-folders subscriptions make the case serial"
    );

    let ops_in_file: Vec<&str> = case.steps.iter().map(|s| s.op.as_str()).collect();
    assert_eq!(
        ops_in_file,
        vec![
            "GetFolder", // msgfolderroot, the case folder's parent in its ModifiedEvents
            "GetFolder", // inbox
            "GetFolder", // the dumpster
            "CreateFolder",
            "Subscribe",
            "CreateItem",
            "DrainEvents",
            "MoveItem",
            "DeleteItem",
            "DrainEvents",
            "Subscribe",
            "DrainEvents",
            "Subscribe",
            "CreateItem",
            "DrainEvents",
            "Unsubscribe",
            "Unsubscribe",
            "Unsubscribe",
        ],
        "{text}"
    );
    let lookups: Vec<&Value> = case.steps[..3].iter().map(|s| &s.with["folder"]).collect();
    assert_eq!(
        lookups,
        vec![
            &Value::from("msgfolderroot"),
            &Value::from("inbox"),
            &Value::from("recoverableitemsdeletions")
        ]
    );

    let first = step(&case, "s1-poll1");
    assert_eq!(first.with["watermark"], Value::from("${s1_wm}"));
    let expect = first.expect.as_ref().expect("expectations");
    assert_eq!(expect.events.as_deref(), Some("exact"));
    assert_eq!(expect.batches, Some(vec![2]));
    assert_eq!(
        first.asserts[0]["path"],
        Value::from("//t:PreviousWatermark"),
        "one predicted call: its PreviousWatermark is the watermark sent (R31)"
    );
    assert_eq!(first.asserts[0]["equals"], Value::from("${s1_wm}"));
    assert_eq!(
        expect.event,
        vec![
            Pattern {
                item: s("${i1}"),
                parent: s("${folder}"),
                ..pattern("CreatedEvent")
            },
            Pattern {
                folder: s("${folder}"),
                parent: s("${root}"),
                unread_count: Some(1),
                ..pattern("ModifiedEvent")
            },
        ]
    );

    let second = step(&case, "s1-poll2");
    assert_eq!(
        second.with["watermark"],
        Value::from("${s1-poll1.watermark}")
    );
    let events = &second.expect.as_ref().expect("expectations").event;
    assert_eq!(
        events[0],
        Pattern {
            item: s("${i2}"),
            parent: s("${f1}"),
            old_item: s("${i1}"),
            old_parent: s("${folder}"),
            ..pattern("MovedEvent")
        }
    );
    let soft_delete = events
        .iter()
        .find(|p| p.parent.as_deref() == Some("${recoverableitemsdeletions}"));
    assert!(
        soft_delete.is_none(),
        "the dumpster's variable is `dumpster`"
    );
    let soft_delete = events
        .iter()
        .find(|p| p.parent.as_deref() == Some("${dumpster}"))
        .expect("the soft delete's MovedEvent");
    assert_eq!(
        soft_delete.item, None,
        "no response names the moved item's new id"
    );
    assert_eq!(soft_delete.old_item, s("${i2}"));

    let resume = case
        .steps
        .iter()
        .find(|s| s.op == "Subscribe" && s.with.contains_key("watermark"))
        .expect("the resume");
    assert_eq!(
        resume.with["watermark"],
        Value::from("${s1-poll1.watermark}")
    );
    assert_eq!(resume.asserts[0]["not_equals"], Value::from("${s1}"));
    assert_eq!(
        step(&case, "s2-poll1")
            .expect
            .as_ref()
            .map(|e| e.event.len()),
        Some(5),
        "the resume replays the move and the soft delete (Moved + 2 Modified, Moved + 1 Modified)"
    );

    let streaming = case
        .steps
        .iter()
        .find(|s| s.op == "Subscribe" && s.with.contains_key("all_folders"))
        .expect("the all-folders subscription");
    assert_eq!(
        streaming.with["mode"],
        Value::from("pull"),
        "replayed as pull"
    );
    assert!(text.contains("# s3 was a streaming subscription"));
    let delivered = &step(&case, "s3-poll1").expect.as_ref().expect("x").event;
    assert_eq!(
        delivered,
        &vec![Pattern {
            parent: s("${inbox}"),
            ..pattern("NewMailEvent")
        }],
        "the delivered item's id is unknown, so the pattern leaves it open"
    );
    let send = case
        .steps
        .iter()
        .find(|s| s.with.get("disposition") == Some(&Value::from("SendOnly")))
        .expect("the delivery");
    assert_eq!(send.with["to"], Value::Array(vec![Value::from("${user}")]));
}

#[test]
fn lenient_profiles_match_in_order_and_skip_copy_events() {
    let ops = vec![
        Op::Subscribe {
            sub: SubHandle(1),
            mode: Mode::Pull,
            scope: Scope::Folders([CASE].into_iter().collect()),
            event_types: all_but_newmail(),
        },
        Op::CreateItem {
            item: ItemHandle(1),
            folder: CASE,
            read: true,
        },
        Op::CopyItem {
            item: ItemHandle(1),
            to: CASE,
            new: ItemHandle(2),
        },
        Op::Poll { sub: SubHandle(1) },
        Op::Poll { sub: SubHandle(1) },
    ];
    let prediction = predict(&ops).expect("valid");
    // A profile that holds copies to CopiedEvent renders every event exactly.
    let copied_only = Latitude {
        copy_as_created: false,
        ..Latitude::reference()
    };
    let exact = predict_for(&copied_only, &ops).expect("valid");
    let strict = parse(&to_case_toml("t", &ops, &exact, &copied_only));
    // The reference profile accepts either event for a copy (R77): the copy's
    // pattern is left out and the poll matched in order.
    let reference = parse(&to_case_toml(
        "t",
        &ops,
        &prediction,
        &Latitude::reference(),
    ));
    let lenient_text = to_case_toml("t", &ops, &prediction, &Latitude::exchange2013());
    let lenient = check_case(&lenient_text, &ops).unwrap_or_else(|e| panic!("{e}"));
    let kinds = |c: &CaseFile| -> Vec<String> {
        step(c, "s1-poll1")
            .expect
            .as_ref()
            .map(|e| e.event.iter().map(|p| p.kind.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        kinds(&strict),
        [
            "CreatedEvent",
            "ModifiedEvent",
            "CopiedEvent",
            "ModifiedEvent"
        ]
    );
    assert_eq!(
        kinds(&lenient),
        ["CreatedEvent", "ModifiedEvent", "ModifiedEvent"]
    );
    assert_eq!(
        kinds(&reference),
        ["CreatedEvent", "ModifiedEvent", "ModifiedEvent"]
    );
    let e = step(&reference, "s1-poll1").expect.as_ref().expect("x");
    assert_eq!(e.events.as_deref(), Some("in-order"));
    let e = step(&lenient, "s1-poll1").expect.as_ref().expect("x");
    assert_eq!(e.events.as_deref(), Some("in-order"));
    assert_eq!(e.batches, None);
    let idle = step(&strict, "s1-poll2").expect.as_ref().expect("x");
    assert_eq!(idle.event, vec![pattern("StatusEvent")]);
    assert_eq!(idle.batches, Some(vec![1]));
    assert_eq!(idle.code.as_deref(), Some("NoError"));
}

#[test]
fn strings_are_escaped() {
    let ops = sample();
    let prediction = predict(&ops).expect("valid");
    let title = "a \"quoted\" \\ title\nwith a newline";
    let case = parse(&to_case_toml(
        title,
        &ops,
        &prediction,
        &Latitude::reference(),
    ));
    assert_eq!(case.title, title);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn every_generated_sequence_renders_as_a_valid_case(ops in ops_strategy(GenConfig::default())) {
        let prediction = predict(&ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for profile in [Latitude::reference(), Latitude::exchange2013()] {
            let text = to_case_toml("generated", &ops, &prediction, &profile);
            if let Err(why) = check_case(&text, &ops) {
                prop_assert!(false, "{why}\n{}\n{text}", describe_sequence(&ops));
            }
        }
    }
}
