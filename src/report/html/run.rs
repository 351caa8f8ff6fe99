//! The run page: summary, the verdict table with its filters, the
//! requirement coverage matrix, and for each case that did not simply pass
//! (and each waiting case) its findings, exchanges and timeline.

use std::collections::BTreeMap;

use maud::{Markup, html};

use super::page::{filters, page, shown};
use super::timeline;
use crate::check::exchange::Exchange;
use crate::check::{Finding, Severity};
use crate::report::{capped_outcome, pretty_xml, server_version, verdict_reason};
use crate::suite::outcome::Outcome;
use crate::suite::run::Summary;

/// The verdicts in the order the page lists them.
const ORDER: [&str; 8] = [
    "fail",
    "unexpected-pass",
    "error",
    "unreachable",
    "expected-failure",
    "recorded",
    "skipped",
    "pass",
];

/// The whole page.
pub fn render(target: &str, outcomes: &[Outcome], summary: &Summary) -> String {
    let outcomes: Vec<Outcome> = outcomes.iter().map(capped_outcome).collect();
    let version = server_version(&outcomes);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &outcomes {
        *counts.entry(o.verdict.label()).or_insert(0) += 1;
    }
    let present: Vec<(String, usize)> = ORDER
        .iter()
        .filter_map(|v| counts.get(v).map(|n| (v.to_string(), *n)))
        .collect();
    let body = html! {
        h1 { "ews-conformance report" }
        p.meta {
            "target " code { (shown(target)) }
            @if let Some(v) = &version { " · server " code { (shown(&v.display())) } }
            " · ews-conformance " (env!("CARGO_PKG_VERSION"))
            " · " (format!("{:.1}", summary.duration.as_secs_f64())) " s"
            " · exit code " (summary.exit_status().code())
        }
        @if let Some(signal) = &summary.interrupted {
            p.banner { "The run was interrupted (" (signal.name()) "): cases that had not finished are reported as skipped." }
        }
        div.tiles {
            (tile("total", summary.total, ""))
            (tile("passed", summary.passed, "v-pass"))
            (tile("failed", summary.failed, "v-fail"))
            (tile("recorded", summary.recorded, "v-recorded"))
            (tile("skipped", summary.skipped, "v-skipped"))
            @if summary.errors > 0 { (tile("errors", summary.errors, "v-error")) }
            @if summary.unreachable > 0 { (tile("unreachable", summary.unreachable, "v-unreachable")) }
            @if summary.expected_failures > 0 { (tile("expected failures", summary.expected_failures, "v-expected-failure")) }
            @if summary.unexpected_passes > 0 { (tile("unexpected passes", summary.unexpected_passes, "v-unexpected-pass")) }
        }
        @if let Some(longest) = &summary.longest_case {
            p.meta { "longest case: " code { (longest) } " (" (summary.longest_case_duration.as_millis()) " ms)" }
        }
        (filters(&present, "filter by id, title or requirement"))
        h2 { "Cases" }
        (case_table(&outcomes))
        h2 { "Requirement coverage" }
        p.meta { "Each requirement the cases name, against the verdicts of those cases (hover a number for the cases)." }
        (coverage(&outcomes))
        h2 { "Details" }
        p.meta { "Every case that did not simply pass, and every case that waited for documents (with its timeline)." }
        @for o in outcomes.iter().filter(|o| has_detail(o)) {
            (detail(o))
        }
    };
    page("ews-conformance report", body)
}

fn tile(name: &str, n: usize, class: &str) -> Markup {
    html! { div class={ "tile " (class) } { b { (n) } (name) } }
}

/// The `id` attribute of a case's detail section.
pub(super) fn anchor(id: &str) -> String {
    let mut s = String::from("case-");
    s.extend(
        id.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }),
    );
    s
}

fn search_text(o: &Outcome) -> String {
    format!("{} {} {}", o.id, o.title, o.requirements.join(" ")).to_lowercase()
}

fn has_detail(o: &Outcome) -> bool {
    o.verdict.label() != "pass" || timeline::applies(o)
}

fn case_table(outcomes: &[Outcome]) -> Markup {
    html! {
        table #cases {
            thead { tr { th { "case" } th { "verdict" } th { "title" } th { "requirements" } th { "ms" } th { "failures" } } }
            tbody {
                @for o in outcomes {
                    @let v = o.verdict.label();
                    tr data-verdict=(v) data-search=(search_text(o)) {
                        td {
                            @if has_detail(o) { a href={ "#" (anchor(&o.id)) } { code { (o.id) } } }
                            @else { code { (o.id) } }
                        }
                        td { span class={ "verdict v-" (v) } { (v) } }
                        td { (o.title) }
                        td { (o.requirements.join(", ")) }
                        td.num { (o.duration.as_millis()) }
                        td.num { (o.failures().count()) }
                    }
                }
            }
        }
    }
}

/// `R12` before `R7` would read badly: letters first, then the number.
fn requirement_key(id: &str) -> (String, u64, String) {
    let letters: String = id.chars().take_while(|c| !c.is_ascii_digit()).collect();
    let rest = &id[letters.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let n = digits.parse().unwrap_or(u64::MAX);
    (letters, n, rest[digits.len()..].to_string())
}

fn coverage(outcomes: &[Outcome]) -> Markup {
    const COLUMNS: [&str; 5] = ["pass", "fail", "recorded", "skipped", "other"];
    let column = |v: &str| match v {
        "pass" | "expected-failure" => "pass",
        "fail" | "unexpected-pass" => "fail",
        "recorded" => "recorded",
        "skipped" => "skipped",
        _ => "other",
    };
    // Sort key → (requirement id, column → case ids).
    type Row<'a> = (String, BTreeMap<&'a str, Vec<&'a str>>);
    let mut matrix: BTreeMap<(String, u64, String), Row<'_>> = BTreeMap::new();
    for o in outcomes {
        for r in &o.requirements {
            let entry = matrix
                .entry(requirement_key(r))
                .or_insert_with(|| (r.clone(), BTreeMap::new()));
            entry
                .1
                .entry(column(o.verdict.label()))
                .or_default()
                .push(&o.id);
        }
    }
    html! {
        table #coverage {
            thead { tr { th { "requirement" } @for c in COLUMNS { th { (c) } } } }
            tbody {
                @for (id, cells) in matrix.values() {
                    tr {
                        th { (id) }
                        @for c in COLUMNS {
                            @match cells.get(c) {
                                Some(ids) => td class={ "num cell-" (c) } title=(ids.join("\n")) { (ids.len()) },
                                None => td.num {},
                            }
                        }
                    }
                }
            }
        }
    }
}

fn detail(o: &Outcome) -> Markup {
    let v = o.verdict.label();
    let unattached: Vec<&Finding> = o.findings.iter().collect();
    html! {
        section.case-detail id=(anchor(&o.id)) data-verdict=(v) data-search=(search_text(o)) {
            h3 { code { (o.id) } " " span class={ "verdict v-" (v) } { (v) } }
            @if !o.title.is_empty() { p { (o.title) } }
            p.meta {
                (o.file.display())
                @if !o.requirements.is_empty() { " · requirements " (o.requirements.join(", ")) }
                @if let Some(s) = &o.source { " · source " (s) }
                " · " (o.duration.as_millis()) " ms"
            }
            @if let Some(d) = &o.defect { p.meta { "documented defect: " (d) } }
            @if let Some(reason) = verdict_reason(&o.verdict) { pre { (shown(reason)) } }
            @if o.all_findings().next().is_some() {
                h4 { "Findings" }
                @for f in o.all_findings() {
                    (finding(o, f))
                }
            }
            @if timeline::applies(o) {
                h4 { "Timeline" }
                (timeline::render(o))
            }
            @if !o.exchanges.is_empty() {
                h4 { "Exchanges" }
                @for (i, ex) in o.exchanges.iter().enumerate() {
                    (exchange(i, ex))
                }
            }
            @if o.exchanges.is_empty() && unattached.is_empty() && verdict_reason(&o.verdict).is_none() {
                p.meta { "Nothing was exchanged." }
            }
        }
    }
}

fn finding(o: &Outcome, f: &Finding) -> Markup {
    let class = if f.severity == Severity::Fail {
        "finding"
    } else {
        "finding note"
    };
    html! {
        div class=(class) {
            span.check { "[" (f.check) "]" }
            " " (format!("{:?}", f.severity).to_lowercase())
            " · " (o.file.display()) ":" (f.line)
            @if !f.step.is_empty() { " · step " code { (f.step) } }
            @if !f.requirements.is_empty() { " · " (f.requirements.join(", ")) }
            pre { (shown(&f.message)) }
            @if let Some(ev) = &f.evidence {
                @if f.check == "golden" { (diff(ev)) } @else { pre { (shown(ev)) } }
            }
        }
    }
}

/// A golden snapshot's diff: removed and added lines coloured.
fn diff(text: &str) -> Markup {
    html! {
        pre.diff {
            @for line in text.lines() {
                @let class = if line.starts_with("+++") || line.starts_with("---") { "line meta" }
                    else { match line.chars().next() { Some('+') => "line add", Some('-') => "line del", _ => "line" } };
                span class=(class) { (shown(line)) }
            }
        }
    }
}

fn exchange(i: usize, ex: &Exchange) -> Markup {
    let failing: Vec<&Finding> = ex
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Fail)
        .collect();
    let needles = needles(&failing);
    let response = pretty_xml(&ex.response_text);
    html! {
        details open[!failing.is_empty()] {
            summary {
                "#" (i + 1) " step " code { (ex.step) } " (line " (ex.line) ")"
                @match ex.status { Some(s) => { " · HTTP " (s) }, None => { " · no response" } }
                " · " (ex.duration.as_millis()) " ms · at " (ex.at.as_millis()) " ms"
                @if !failing.is_empty() { " · " span.v-fail { (failing.len()) " failing" } }
            }
            @if let Some(err) = &ex.error { pre { (shown(err)) } }
            @if !ex.request.is_empty() {
                div.meta { "request" }
                pre { (shown(&pretty_xml(&ex.request))) }
            }
            @if !ex.response_text.is_empty() {
                div.meta { "response" @if !needles.is_empty() { " (lines a finding names are marked)" } }
                pre.response {
                    @for line in response.lines() {
                        @let hit = needles.iter().any(|n| line.contains(n.as_str()));
                        span class=(if hit { "line hl" } else { "line" }) { (shown(line)) }
                    }
                }
            }
        }
    }
}

/// What the failing findings name: the lines of their evidence and the
/// `quoted`, `m:Element` (of a path, its last step) and `Error…` words of
/// their messages.
fn needles(findings: &[&Finding]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        let s = s.trim();
        if s.len() >= 4 && !out.iter().any(|o| o == s) && out.len() < 64 {
            out.push(s.to_string());
        }
    };
    for f in findings {
        for (k, part) in f.message.split('`').enumerate() {
            if k % 2 == 1 {
                add(part);
            }
        }
        // A path names its last step; the steps above it are only the way there.
        let last_steps = f.message.split_whitespace().map(|token| {
            let token = token.rsplit('/').next().unwrap_or(token);
            token.split('[').next().unwrap_or(token)
        });
        for word in last_steps
            .flat_map(|t| t.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '_')))
        {
            let word = word.trim_end_matches(':');
            let prefixed = word.len() > 2
                && (word.starts_with("m:") || word.starts_with("t:") || word.starts_with("s:"));
            if prefixed {
                // `m:ResponseCode` is written as `<m:ResponseCode>` or with another prefix.
                add(&format!(":{}>", &word[2..]));
                add(&format!(":{} ", &word[2..]));
            } else if word.starts_with("Error") && word.len() > 8 {
                add(word);
            }
        }
        if let Some(ev) = &f.evidence {
            for line in ev.lines().take(16) {
                add(line.trim_start_matches(['+', '-']));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_sort_by_letters_then_number() {
        let mut ids = vec!["R12", "R7", "GS6", "R7a", "X"];
        ids.sort_by_key(|r| requirement_key(r));
        assert_eq!(ids, ["GS6", "R7", "R7a", "R12", "X"]);
    }

    #[test]
    fn anchors_are_plain() {
        assert_eq!(anchor("push/a b\"<x>"), "case-push-a-b--x-");
    }
}
