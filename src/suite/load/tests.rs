use std::path::Path;

use super::*;
use crate::case::*;
use crate::check::CheckRegistry;
use crate::suite::operation::OpRegistry;
use ews_proto::ews::EventKind;

fn load(text: &str) -> Result<Case, LoadError> {
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    Loader::new(&ops, &checks).parse(text, Path::new("cases/x/y.toml"), "x/y")
}

const HEAD: &str = "title = \"t\"\nrequirements = [\"R29\"]\n";

/// Asserts the error's line, column and problem, and that it renders rustc-style.
fn fails_at(text: &str, line: usize, col: usize, problem: &str) -> LoadError {
    let err = load(text).expect_err("the case is malformed");
    assert_eq!((err.line, err.col), (line, col), "position of: {err}");
    assert!(
        err.problem.contains(problem),
        "problem {:?} lacks {problem:?}",
        err.problem
    );
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("cases/x/y.toml:{line}:{col}: ")),
        "{shown}"
    );
    let snippet = err.snippet.as_deref().expect("a snippet");
    let source_line = text.lines().nth(line - 1).expect("line exists");
    assert!(
        snippet.contains(&format!("{line} | {source_line}")),
        "{snippet}"
    );
    let caret_line = snippet.lines().last().expect("caret line");
    let caret_at = caret_line.find('^').expect("a caret");
    let bar_at = caret_line.find('|').expect("a gutter");
    assert_eq!(
        caret_at - bar_at - 2,
        col - 1,
        "caret under column {col}: {snippet}"
    );
    err
}

#[test]
fn toml_syntax_error() {
    fails_at(
        &format!("{HEAD}[[step]]\nop = \"GetEvents\n"),
        4,
        16,
        "invalid basic string",
    );
}

#[test]
fn unknown_keys_everywhere() {
    fails_at(
        &format!("{HEAD}colour = 1\n[[step]]\nop = \"Unsubscribe\"\n"),
        3,
        1,
        "unknown field `colour`",
    );
    fails_at(
        &format!(
            "{HEAD}[[step]]\nop = \"Unsubscribe\"\nwith = {{ subscription = \"s\" }}\n[step.expect]\ncodes = \"NoError\"\n"
        ),
        7,
        1,
        "unknown field `codes`",
    );
    fails_at(
        &format!(
            "{HEAD}[[step]]\nop = \"Unsubscribe\"\nwith = {{ subscription = \"s\", bogus = 1 }}\n"
        ),
        5,
        8,
        "Unsubscribe has no parameter `bogus` (it takes: subscription)",
    );
}

#[test]
fn missing_and_conflicting_actions() {
    fails_at(
        &format!("{HEAD}\n[[step]]\nname = \"nothing\"\n"),
        5,
        8,
        "the step has no `op`, `send` or `sleep_minutes`",
    );
    fails_at(
        &format!("{HEAD}[[step]]\nop = \"GetEvents\"\nsend = \"<x/>\"\n"),
        5,
        8,
        "only one of `op`, `send` and `sleep_minutes` (this one has op and send)",
    );
    fails_at(
        &format!("{HEAD}[[step]]\nop = \"Subscrib\"\n"),
        4,
        6,
        "unknown operation `Subscrib` (known: AwaitDelivery, AwaitPush,",
    );
    fails_at(HEAD, 1, 1, "at least one [[step]]");
}

#[test]
fn bad_values() {
    fails_at(
        "title = \"t\"\nrequirements = [\"R29\", \"R79\"]\n[[step]]\nsend = \"x\"\n",
        2,
        24,
        "unknown requirement id `R79` (known: R1..R78, GS6)",
    );
    fails_at(
        &format!("{HEAD}checks = [\"codes\", \"oracle\"]\n[[step]]\nsend = \"x\"\n"),
        3,
        20,
        "unknown check `oracle` (known: codes, asserts, events, notify, structure, shape, batching, watermark, golden)",
    );
    fails_at(
        &format!(
            "{HEAD}[[step]]\nsend = \"x\"\n[[step.assert]]\npath = \"//m:Foo[0]\"\ncount = 1\n"
        ),
        6,
        8,
        "invalid path `//m:Foo[0]`",
    );
    fails_at(
        &format!("{HEAD}[[step]]\nsend = \"x\"\n[step.capture]\nsub = \"//q:SubscriptionId\"\n"),
        6,
        7,
        "unknown prefix `q`",
    );
    fails_at(
        &format!("{HEAD}needs = [\"pushh\"]\n[[step]]\nsend = \"x\"\n"),
        3,
        10,
        "unknown capability `pushh`",
    );
    fails_at(
        &format!("{HEAD}[[step]]\nsend = \"x\"\n[step.expect]\nclass = \"Sucess\"\n"),
        6,
        9,
        "`Sucess` is not a ResponseClass",
    );
    fails_at(
        &format!("{HEAD}[[step]]\nsend = \"x\"\n[[step.expect.event]]\nkind = \"CreateEvent\"\n"),
        6,
        8,
        "`CreateEvent` is not an event kind",
    );
    fails_at(
        &format!("{HEAD}grade = \"strict\"\n[[step]]\nsend = \"x\"\n"),
        3,
        9,
        "unknown variant `strict`",
    );
    fails_at(
        &format!("{HEAD}[[step]]\nsleep_minutes = 0\n"),
        4,
        17,
        "sleep_minutes must be more than 0",
    );
    fails_at(
        &format!("{HEAD}[[step]]\nsend = \"x\"\n[[step.assert]]\npath = \"//m:X\"\n"),
        5,
        1,
        "the assert tests nothing",
    );
}

#[test]
fn variables_are_checked_statically() {
    fails_at(
        &format!("{HEAD}[[step]]\nsend = \"${{sub}}\"\n"),
        4,
        8,
        "unknown variable `${sub}`",
    );
    fails_at(
        &format!(
            "{HEAD}isolate = false\n[[step]]\nop = \"CreateItem\"\nwith = {{ folder = \"${{folder}}\" }}\n"
        ),
        6,
        8,
        "there is no case folder",
    );
    fails_at(
        &format!("{HEAD}[[step]]\nsend = \"${{unclosed\"\n"),
        4,
        8,
        "never closed",
    );
    // A capture is visible to later steps (with .count and .N), not to its own step.
    let ok = format!(
        "{HEAD}[[step]]\nname = \"make\"\nop = \"CreateItem\"\nwith = {{ count = 2 }}\n[step.capture]\nitems = \"//t:ItemId/@Id\"\n\
         [[step]]\nop = \"DeleteItem\"\nwith = {{ item = \"${{items.2}}\" }}\n[[step.assert]]\npath = \"//m:ResponseCode\"\none_of = [\"${{items.count}}\", \"${{unique}}\"]\n"
    );
    load(&ok).expect("captures of earlier steps are known");
    fails_at(
        &format!(
            "{HEAD}[[step]]\nsend = \"x\"\n[[step.assert]]\npath = \"//m:X\"\nequals = \"${{own}}\"\n[step.capture]\nown = \"//m:X\"\n"
        ),
        5,
        1,
        "unknown variable `${own}`",
    );
    // DrainEvents binds `<step>.watermark` for later steps.
    let drain = format!(
        "{HEAD}[[step]]\nname = \"drain\"\nop = \"DrainEvents\"\nwith = {{ subscription = \"s\", watermark = \"w\" }}\n\
         [[step]]\nop = \"GetEvents\"\nwith = {{ subscription = \"s\", watermark = \"${{drain.watermark}}\" }}\n"
    );
    load(&drain).expect("drain output is known");
}

#[test]
fn step_rules() {
    fails_at(
        &format!(
            "{HEAD}[[step]]\nname = \"a\"\nsend = \"x\"\n[[step]]\nname = \"a\"\nsend = \"y\"\n"
        ),
        7,
        8,
        "two steps are named \"a\"",
    );
    fails_at(
        &format!("{HEAD}[[step]]\nas = \"user2\"\nsend = \"x\"\n"),
        5,
        8,
        "needs = [\"second-user\"]",
    );
    fails_at(
        &format!("{HEAD}[[step]]\nsend = \"x\"\nheaders = {{ Authorization = \"Basic x\" }}\n"),
        4,
        8,
        "credentials come from the target settings",
    );
}

#[test]
fn a_full_case_loads_with_lines() {
    let text = r#"title = "GetEvents on an idle subscription returns exactly one StatusEvent"
requirements = ["R29", "R31"]
serial = true
needs = ["second-user"]
source = "seed 003, lines 18-27"
profiles = ["!exchange2010"]
checks = ["codes", "events"]

[vars]
subject = "hello"
n = 3

[[step]]
name = "subscribe"
op = "Subscribe"
with = { mode = "pull", folders = ["${folder}"], event_types = ["CreatedEvent"], timeout = 10 }
[step.capture]
sub = "//m:SubscriptionId"
wm = "//m:Watermark"

[[step]]
name = "poll"
as = "user2"
op = "GetEvents"
with = { subscription = "${sub}", watermark = "${wm}" }
[step.expect]
code = ["ErrorSubscriptionAccessDenied", "NoError"]
events = "exact"
no_events = ["ModifiedEvent"]
more_events = false
[[step.expect.event]]
kind = "StatusEvent"
[[step.assert]]
path = "//t:PreviousWatermark"
equals = "${wm}"
matches = "^.+$"

[[step]]
sleep_minutes = 1.5
"#;
    let case = load(text).expect("valid case");
    assert_eq!(case.id, "x/y");
    assert_eq!(case.requirements, ["R29", "R31"]);
    assert!(case.serial && case.isolate);
    assert_eq!(case.needs, [Capability::SecondUser]);
    assert_eq!(
        case.vars,
        [
            ("n".to_string(), "3".to_string()),
            ("subject".to_string(), "hello".to_string())
        ]
    );
    assert!(case.runs_check("events") && !case.runs_check("asserts"));
    assert_eq!(case.steps.len(), 3);
    let lines: Vec<usize> = case.steps.iter().map(|s| s.line).collect();
    assert_eq!(lines, [13, 21, 38]);
    let poll = &case.steps[1];
    assert_eq!(poll.user, UserRole::User2);
    assert_eq!(poll.expect.codes.len(), 2);
    assert_eq!(poll.expect.events_mode, EventsMode::Exact);
    assert_eq!(poll.expect.events[0].kind, EventKind::Status);
    assert_eq!(poll.expect.events[0].line, 31);
    assert_eq!(poll.asserts[0].line, 33);
    assert_eq!(poll.asserts[0].predicates.len(), 2);
    assert_eq!(case.steps[2].name, "step 3");
    assert!(matches!(case.steps[2].action, Action::Sleep { minutes } if minutes == 1.5));
    assert_eq!(
        case.profile_exclusion(Some("exchange2010")).as_deref(),
        Some("the case never runs under profile `exchange2010`")
    );
    assert_eq!(case.profile_exclusion(None), None);
}

#[test]
fn a_folder_of_cases_keeps_going_past_bad_files() {
    let dir = std::env::temp_dir().join(format!("ews-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("getevents")).expect("mkdir");
    std::fs::create_dir_all(dir.join("profiles")).expect("mkdir");
    std::fs::write(
        dir.join("getevents/good.toml"),
        format!("{HEAD}[[step]]\nsend = \"x\"\n"),
    )
    .expect("write");
    std::fs::write(dir.join("getevents/bad.toml"), "title = 1\n").expect("write");
    std::fs::write(dir.join("profiles/exchange2013.toml"), "not a case").expect("write");
    std::fs::write(dir.join("README.md"), "not a case").expect("write");
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let suite = Loader::new(&ops, &checks).load_dir(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(suite.cases.len(), 1);
    assert_eq!(suite.cases[0].id, "getevents/good");
    assert_eq!(suite.errors.len(), 1);
    assert_eq!(suite.errors[0].case_id, "getevents/bad");
    assert_eq!(suite.errors[0].line, 1);
}

#[test]
fn record_code_is_checked_and_stands_alone() {
    fails_at(
        &format!(
            "{HEAD}[[step]]\nop = \"Unsubscribe\"\nwith = {{ subscription = \"s\" }}\nexpect = {{ code = \"NoError\", record_code = \"ErrorX\" }}\n"
        ),
        6,
        44,
        "`record_code` goes instead of `code`",
    );
    fails_at(
        &format!(
            "{HEAD}[[step]]\nop = \"Unsubscribe\"\nwith = {{ subscription = \"s\" }}\nexpect = {{ record_code = [\"NotACode\"] }}\n"
        ),
        6,
        26,
        "`NotACode` is not a ResponseCode",
    );
}
