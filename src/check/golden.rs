//! `golden`: a step's responses against a reviewed snapshot, after
//! identity-preserving normalisation ([`super::normalize::Normalizer`]).
//!
//! A case opts in with `golden = true` (every step) or a step with
//! `expect.golden = true` (`false` leaves a step out). One normaliser serves
//! the whole case, in exchange order, so `[watermark#3]` in one snapshot is
//! the same value as `[watermark#3]` in another; the case folder becomes
//! `[folder#case]`, the users' addresses `[user]`/`[user2]`, the case's
//! `${unique}` `[unique]`. What servers legitimately vary in is left out
//! before normalising: the `soap:Header` (the `structure` check judges
//! ServerVersionInfo), `m:MessageText` and `m:DescriptiveLinkKey`, and a
//! fault's wording (`faultstring`, `faultactor`, `e:Message`). Prefixes
//! are canonical, so a server with other prefixes or a default namespace
//! produces the same snapshot.
//!
//! Snapshots are insta files: `golden/<profile>/<case id, "/" as "__">@<step>.snap`
//! (`default` when no profile is selected). On a difference the check fails
//! with a line diff and writes the new text beside the old one as
//! `….snap.new`, so `cargo insta review` (or `cargo insta accept`) updates
//! it like any insta snapshot. A missing snapshot is reported as a note
//! (and written as `.snap.new` when the profile's folder exists: a new golden
//! step awaiting review). `ews-conformance record` runs the golden cases in
//! [`GoldenMode::Record`], which writes the `.snap` files directly from a
//! trusted target.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use insta::Snapshot;
use insta::internals::{SnapshotContents, TextSnapshotContents};

use super::finding::Finding;
use super::input::CaseInput;
use super::input::StepInput;
use super::kind::Check;
use super::normalize::Normalizer;
use super::wire::{documents, received};
use crate::client::excerpt::excerpt;
use ews_proto::xml::{ns, parse_document};

const NAME: &str = "golden";

/// Lines of diff quoted in a finding.
const MAX_DIFF_LINES: usize = 80;

/// Compare with the snapshots, or write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoldenMode {
    /// Compare; on a difference (or a new golden step) write `.snap.new`
    /// beside the snapshot for review.
    Compare,
    /// Compare and write nothing (the self-test runs deliberately broken
    /// servers; their answers are not snapshots to review).
    Verify,
    /// Write the `.snap` files from the answers (`ews-conformance record`).
    Record,
}

/// The `golden` check kind, bound to a snapshot folder, a mode and the
/// profile whose snapshots it uses.
#[derive(Debug, Clone)]
pub struct Golden {
    dir: PathBuf,
    mode: GoldenMode,
    profile: Option<String>,
}

impl Default for Golden {
    /// `golden/`, compare, no profile.
    fn default() -> Self {
        Golden::new("golden", GoldenMode::Compare, None)
    }
}

impl Golden {
    pub fn new(dir: impl Into<PathBuf>, mode: GoldenMode, profile: Option<String>) -> Self {
        Golden {
            dir: dir.into(),
            mode,
            profile,
        }
    }

    /// The folder holding this profile's snapshots.
    pub fn folder(&self) -> PathBuf {
        self.dir.join(self.profile.as_deref().unwrap_or("default"))
    }

    /// The snapshot file of one step of a case.
    pub fn path(&self, case_id: &str, step: &str) -> PathBuf {
        self.folder().join(snapshot_file_name(case_id, step))
    }
}

/// `getevents__idle-status-event@poll.snap`.
pub fn snapshot_file_name(case_id: &str, step: &str) -> String {
    let slug: String = step
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let slug = slug
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    format!("{}@{slug}.snap", case_id.replace('/', "__"))
}

impl Check for Golden {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(&self, _input: &StepInput<'_>) -> Vec<Finding> {
        Vec::new()
    }

    fn check_case(&self, input: &CaseInput<'_>) -> Vec<Finding> {
        if !input.case.uses_golden() {
            return Vec::new();
        }
        let texts = normalized_steps(input);
        let mut out = Vec::new();
        for step in input
            .case
            .steps
            .iter()
            .filter(|s| input.case.golden_step(s))
        {
            let Some((first, content)) = texts.get(step.name.as_str()) else {
                continue; // the step sent nothing (the case stopped before it)
            };
            let path = self.path(&input.case.id, &step.name);
            out.extend(self.judge(input, *first, &step.name, &path, content));
        }
        out
    }
}

impl Golden {
    fn judge(
        &self,
        input: &CaseInput<'_>,
        exchange: usize,
        step: &str,
        path: &Path,
        content: &str,
    ) -> Vec<Finding> {
        let file = path.display();
        let header = snapshot_header(&input.case.file, &input.case.id, step);
        if self.mode == GoldenMode::Record {
            let written = write(path, &header, content);
            let _ = std::fs::remove_file(pending_path(path));
            return vec![match written {
                Ok(()) => {
                    input.note_at(NAME, exchange, format!("step \"{step}\": recorded {file}"))
                }
                Err(e) => input.fail_at(
                    NAME,
                    exchange,
                    format!("step \"{step}\": cannot write the golden snapshot {file}: {e}"),
                ),
            }];
        }
        let expected = match std::fs::metadata(path) {
            Err(_) => {
                let pending = pending_path(path);
                // No folder for this profile: nothing was ever recorded for it,
                // so no pending files are scattered (a live target's first run).
                let how = if self.mode == GoldenMode::Verify {
                    "nothing was written (verify mode)".to_string()
                } else if !self.folder().is_dir() {
                    format!(
                        "no snapshots are recorded for this profile ({} does not exist)",
                        self.folder().display()
                    )
                } else {
                    match write(&pending, &header, content) {
                        Ok(()) => format!("the new snapshot is in {}", pending.display()),
                        Err(e) => format!("{} could not be written: {e}", pending.display()),
                    }
                };
                return vec![input.note_at(
                    NAME,
                    exchange,
                    format!(
                        "step \"{step}\": no golden snapshot {file} yet; {how} (review with `cargo insta review`, or bless a trusted target with `ews-conformance record`)"
                    ),
                )];
            }
            Ok(_) => match read(path) {
                Ok(text) => text,
                Err(e) => {
                    return vec![input.fail_at(
                        NAME,
                        exchange,
                        format!("step \"{step}\": cannot read the golden snapshot {file}: {e}"),
                    )];
                }
            },
        };
        let actual = canonical(content);
        if expected == actual {
            if self.mode == GoldenMode::Compare {
                let _ = std::fs::remove_file(pending_path(path));
            }
            return Vec::new();
        }
        let pending = pending_path(path);
        let written = match self.mode {
            GoldenMode::Verify => Err(std::io::Error::other("verify mode")),
            _ => write(&pending, &header, content),
        };
        let mut f = input.fail_at(
            NAME,
            exchange,
            format!(
                "step \"{step}\": the normalised responses differ from the golden snapshot {file}{} (`cargo insta review` accepts or rejects it; `ews-conformance record` re-blesses from a trusted target)",
                match written {
                    Ok(()) => format!("; the new text is in {}", pending.display()),
                    Err(_) => String::new(),
                }
            ),
        );
        f.evidence = Some(diff(&expected, &actual));
        vec![f]
    }
}

/// The normalised responses of every case step, by step name: the first
/// exchange index of the step and the snapshot text.
fn normalized_steps<'a>(input: &CaseInput<'a>) -> BTreeMap<&'a str, (usize, String)> {
    let mut norm = Normalizer::new();
    if let Some(folder) = input.vars.get("folder") {
        norm.known(folder, "folder#case");
    }
    for (var, alias) in [("user", "user"), ("user2", "user2")] {
        if let Some(v) = input.vars.get(var) {
            norm.known(v, alias);
        }
    }
    let unique = input.vars.get("unique").filter(|u| !u.is_empty());
    let users: Vec<(&str, &str)> = [("user", "[user]"), ("user2", "[user2]")]
        .into_iter()
        .filter_map(|(v, a)| input.vars.get(v).map(|s| (s, a)))
        .filter(|(s, _)| !s.is_empty())
        .collect();

    let mut per_step: BTreeMap<&str, Vec<(usize, String)>> = BTreeMap::new();
    for (i, ex) in input.exchanges.iter().enumerate() {
        if !input.is_case_step(i) {
            continue;
        }
        let mut block = match received(ex) {
            Some(status) => format!("# HTTP {status}\n"),
            None => format!(
                "# no response: {}\n",
                ex.error.as_deref().unwrap_or("(unknown)")
            ),
        };
        if received(ex).is_some() && !ex.response_text.trim().is_empty() {
            for doc in documents(&ex.response_text) {
                let mut text = doc;
                if let Some(u) = unique {
                    text = text.replace(u, "[unique]");
                }
                for (smtp, alias) in &users {
                    text = text.replace(smtp, alias);
                }
                let text = tolerant(&text);
                match norm.normalize(&text) {
                    Ok(n) => block.push_str(&n),
                    Err(e) => {
                        block.push_str(&format!("# not XML ({e}):\n{}\n", excerpt(&text, 400)))
                    }
                }
            }
        }
        per_step
            .entry(input.exchanges[i].step.as_str())
            .or_default()
            .push((i, block));
    }
    per_step
        .into_iter()
        .map(|(step, blocks)| {
            let first = blocks[0].0;
            let blocks = timing_free(blocks);
            let n = blocks.len();
            let text = blocks
                .into_iter()
                .enumerate()
                .map(|(k, (_, b))| {
                    if n > 1 {
                        format!("# response {} of {n}\n{b}", k + 1)
                    } else {
                        b
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            (step, (first, text))
        })
        .collect()
}

/// The blocks of a step that does not depend on timing. A waiting step
/// (a stream, pushes, a polling pull step) receives as many "nothing
/// happened" documents as its wait lasts: heartbeats, status-only
/// notifications, status-only polls. When the step got anything else, those
/// are left out; runs of identical blocks (heartbeats before the first
/// event) show once. A single document is always kept.
fn timing_free(blocks: Vec<(usize, String)>) -> Vec<(usize, String)> {
    if blocks.len() < 2 {
        return blocks;
    }
    let quiet = |b: &str| {
        !b.contains("ResponseClass=\"Error\"")
            && !b.contains(">Closed<")
            && !b.contains(":Fault")
            && !b.lines().any(|l| {
                let t = l.trim_start();
                t.starts_with("<t:") && t.contains("Event>") && !t.starts_with("<t:StatusEvent")
            })
    };
    let eventful = blocks.iter().any(|(_, b)| !quiet(b));
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, b) in blocks {
        if eventful && quiet(&b) {
            continue;
        }
        if out.last().is_some_and(|(_, last)| *last == b) {
            continue;
        }
        out.push((i, b));
    }
    out
}

/// The document without what servers legitimately vary in (each a choice
/// Exchange versions make differently, or the schema leaves open):
/// - the SOAP header (ServerVersionInfo), MessageText, DescriptiveLinkKey;
/// - a fault's wording (`faultstring`, `faultactor`, `e:Message`) and any
///   detail but `e:ResponseCode` (Exchange adds MessageXml with positions);
/// - an empty `m:Notifications` (its Notification is minOccurs="0");
/// - inside a streaming response, the Notification's PreviousWatermark and
///   MoreEvents and the events' Watermark (optional; absent in Exchange's
///   streaming samples);
/// - the value of a StatusEvent's Watermark, which the server may refresh
///   or repeat (digest G3): it becomes `[watermark#status]`;
/// - ChangeKey values (versions of objects that other activity changes
///   too): they become `[changekey]`.
pub fn tolerant(text: &str) -> String {
    let Ok(doc) = parse_document(text) else {
        return text.to_string();
    };
    let parent_is = |n: roxmltree::Node<'_, '_>, name: &str| {
        n.parent_element()
            .is_some_and(|p| p.tag_name().name() == name)
    };
    let in_stream = |n: roxmltree::Node<'_, '_>| {
        n.ancestors()
            .any(|a| a.tag_name().name() == "GetStreamingEventsResponse")
    };
    let mut edits: Vec<(std::ops::Range<usize>, &str)> = Vec::new();
    for n in doc.descendants().filter(|n| n.is_element()) {
        // A ChangeKey names an object's version, which changes with every
        // change, also ones that other cases make at the same time (a
        // folder's counts): which value comes is not the protocol's.
        if let Some(a) = n.attributes().find(|a| a.name() == "ChangeKey") {
            edits.push((a.range_value(), "[changekey]"));
        }
        let drop = match (
            n.tag_name().namespace().filter(|u| !u.is_empty()),
            n.tag_name().name(),
        ) {
            (Some(ns::SOAP), "Header")
            | (Some(ns::MESSAGES), "MessageText" | "DescriptiveLinkKey")
            | (None, "faultstring" | "faultactor") => true,
            (Some(ns::ERRORS), "ResponseCode") => false,
            _ if parent_is(n, "detail") => true,
            (Some(ns::MESSAGES), "Notifications") => !n.children().any(|c| c.is_element()),
            (Some(ns::TYPES), "PreviousWatermark" | "MoreEvents") => in_stream(n),
            (Some(ns::TYPES), "Watermark") if parent_is(n, "StatusEvent") => {
                if let Some(t) = n.first_child().filter(|t| t.is_text()) {
                    edits.push((t.range(), "[watermark#status]"));
                }
                false
            }
            (Some(ns::TYPES), "Watermark") => in_stream(n),
            _ => false,
        };
        if drop {
            edits.push((n.range(), ""));
        }
    }
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (r, with) in edits {
        if r.start < at {
            continue; // inside a range already dropped
        }
        out.push_str(&text[at..r.start]);
        out.push_str(with);
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
}

fn pending_path(path: &Path) -> PathBuf {
    path.with_extension("snap.new")
}

fn snapshot_header(file: &Path, case_id: &str, step: &str) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    format!(
        "---\nsource: {}\nexpression: {}\n---\n",
        quote(&file.display().to_string().replace('\\', "/")),
        quote(&format!("case {case_id}, step {step}"))
    )
}

fn write(path: &Path, header: &str, content: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = header.to_string();
    text.push_str(content.trim_end());
    text.push('\n');
    std::fs::write(path, text)
}

/// A snapshot's contents as insta compares them.
fn read(path: &Path) -> Result<String, String> {
    let snap = Snapshot::from_file(path).map_err(|e| e.to_string())?;
    match snap.contents() {
        SnapshotContents::Text(t) => Ok(t.to_string()),
        SnapshotContents::Binary(_) => Err("it is a binary snapshot".into()),
    }
}

/// Text as insta normalises it (line endings, trailing blank lines).
fn canonical(content: &str) -> String {
    TextSnapshotContents::new(content.to_string(), insta::TextSnapshotKind::File).to_string()
}

/// A line diff (`-` golden, `+` received) with two lines of context, cut
/// at [`MAX_DIFF_LINES`].
pub fn diff(expected: &str, actual: &str) -> String {
    let text = similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Myers)
        .timeout(std::time::Duration::from_secs(1))
        .diff_lines(expected, actual);
    let mut out = String::from("--- golden\n+++ received\n");
    let mut lines = 0;
    for (k, group) in text.grouped_ops(2).iter().enumerate() {
        if k > 0 {
            out.push_str("  …\n");
        }
        for op in group {
            for change in text.iter_changes(op) {
                if lines == MAX_DIFF_LINES {
                    out.push_str("  … (diff cut)\n");
                    return out;
                }
                let tag = match change.tag() {
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                    similar::ChangeTag::Equal => ' ',
                };
                out.push_str(&format!(
                    "{tag} {}\n",
                    change.value().trim_end_matches('\n')
                ));
                lines += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_stable_slugs() {
        assert_eq!(
            snapshot_file_name("getevents/idle-status-event", "poll the idle subscription"),
            "getevents__idle-status-event@poll-the-idle-subscription.snap"
        );
        assert_eq!(
            snapshot_file_name("a/b", "Step 2: (x)"),
            "a__b@step-2-x.snap"
        );
    }

    #[test]
    fn tolerant_drops_header_and_server_wording() {
        let t = tolerant(crate::check::testing::NOT_FOUND);
        assert!(
            !t.contains("MessageText") && !t.contains("DescriptiveLinkKey"),
            "{t}"
        );
        assert!(t.contains("ErrorSubscriptionNotFound"));
    }

    /// Two legal forms of the same answer give the same snapshot.
    fn same_snapshot(a: &str, b: &str) {
        let norm = |t: &str| {
            Normalizer::new()
                .normalize(&tolerant(t))
                .expect("well-formed")
        };
        assert_eq!(norm(a), norm(b));
    }

    #[test]
    fn legal_variations_give_one_snapshot() {
        let soap = ns::SOAP;
        let (m, t, e) = (ns::MESSAGES, ns::TYPES, ns::ERRORS);
        // Exchange's fault (xml:lang, another prefix for the code, MessageXml in the detail).
        same_snapshot(
            &format!(
                r#"<s:Envelope xmlns:s="{soap}"><s:Body><s:Fault><faultcode xmlns:a="{t}">a:ErrorSchemaValidation</faultcode><faultstring xml:lang="en-US">x</faultstring><faultactor>y</faultactor><detail><e:ResponseCode xmlns:e="{e}">ErrorSchemaValidation</e:ResponseCode><e:Message xmlns:e="{e}">z</e:Message><t:MessageXml xmlns:t="{t}"><t:LineNumber>1</t:LineNumber></t:MessageXml></detail></s:Fault></s:Body></s:Envelope>"#
            ),
            &format!(
                r#"<soap:Envelope xmlns:soap="{soap}"><soap:Body><soap:Fault><faultcode xmlns:q="{t}">q:ErrorSchemaValidation</faultcode><faultstring>other words</faultstring><detail><e:ResponseCode xmlns:e="{e}">ErrorSchemaValidation</e:ResponseCode></detail></soap:Fault></soap:Body></soap:Envelope>"#
            ),
        );
        // A streaming notification: m: or t:, with or without the optional watermarks.
        let stream = |n: &str, extra: &str, wm: &str| {
            format!(
                r#"<s:Envelope xmlns:s="{soap}"><s:Body><m:GetStreamingEventsResponse xmlns:m="{m}" xmlns:t="{t}"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notifications><{n}><t:SubscriptionId>S</t:SubscriptionId>{extra}<t:CreatedEvent>{wm}<t:TimeStamp>2026-01-01T00:00:00Z</t:TimeStamp><t:ItemId Id="I"/><t:ParentFolderId Id="F"/></t:CreatedEvent></{n}></m:Notifications></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></s:Body></s:Envelope>"#
            )
        };
        same_snapshot(
            &stream("m:Notification", "", ""),
            &stream(
                "t:Notification",
                "<t:PreviousWatermark>P</t:PreviousWatermark><t:MoreEvents>false</t:MoreEvents>",
                "<t:Watermark>W</t:Watermark>",
            ),
        );
        // A heartbeat with or without an empty m:Notifications.
        let beat = |n: &str| {
            format!(
                r#"<s:Envelope xmlns:s="{soap}"><s:Body><m:GetStreamingEventsResponse xmlns:m="{m}"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>{n}<m:ConnectionStatus>OK</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></s:Body></s:Envelope>"#
            )
        };
        same_snapshot(&beat(""), &beat("<m:Notifications/>"));
        // An idle StatusEvent's watermark repeated or refreshed.
        let status = |w: &str| {
            format!(
                r#"<s:Envelope xmlns:s="{soap}"><s:Body><m:GetEventsResponse xmlns:m="{m}" xmlns:t="{t}"><m:ResponseMessages><m:GetEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notification><t:SubscriptionId>S</t:SubscriptionId><t:PreviousWatermark>W1</t:PreviousWatermark><t:MoreEvents>false</t:MoreEvents><t:StatusEvent><t:Watermark>{w}</t:Watermark></t:StatusEvent></m:Notification></m:GetEventsResponseMessage></m:ResponseMessages></m:GetEventsResponse></s:Body></s:Envelope>"#
            )
        };
        same_snapshot(&status("W1"), &status("W2"));
        // What the protocol fixes still shows: pull watermarks stay.
        let pull_wm = tolerant(&status("W1"));
        assert!(pull_wm.contains("PreviousWatermark>W1<"), "{pull_wm}");
    }

    #[test]
    fn timing_dependent_documents_are_left_out() {
        let beat = "<m:ConnectionStatus>OK</m:ConnectionStatus>\n".to_string();
        let status =
            "<t:StatusEvent>\n<t:Watermark>[watermark#status]</t:Watermark>\n</t:StatusEvent>\n"
                .to_string();
        let created = "<t:CreatedEvent>\n</t:CreatedEvent>\n".to_string();
        let closed = "<m:ConnectionStatus>Closed</m:ConnectionStatus>\n".to_string();
        let texts = |v: Vec<(usize, String)>| v.into_iter().map(|(_, b)| b).collect::<Vec<_>>();
        // Heartbeats and status pushes around an event: only the event.
        let got = timing_free(vec![
            (0, beat.clone()),
            (1, status.clone()),
            (2, created.clone()),
            (3, beat.clone()),
        ]);
        assert_eq!(texts(got), [created]);
        // Any number of heartbeats before Closed: just Closed.
        let got = timing_free(vec![
            (0, beat.clone()),
            (1, beat.clone()),
            (2, closed.clone()),
        ]);
        assert_eq!(texts(got), [closed]);
        // Only heartbeats: one of them.
        let got = timing_free(vec![(0, beat.clone()), (1, beat.clone())]);
        assert_eq!(texts(got), [beat]);
        // A single document stays, even a status-only one.
        assert_eq!(texts(timing_free(vec![(0, status.clone())])), [status]);
    }

    #[test]
    fn diff_marks_changed_lines() {
        let d = diff("a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(d, "--- golden\n+++ received\n  a\n- b\n+ B\n  c\n");
    }
}
