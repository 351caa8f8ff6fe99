//! Reporters: where outcomes go. Several formats, each in its own module,
//! behind the one trait the run calls ([`Reporter`], defined with the run
//! so that the run never reaches up into the reports); a run feeds them
//! all through [`Fanout`].
//!
//! No reporter ever sees credentials: exchanges hold request bodies only,
//! and the target's Authorization travels in headers that are not recorded.

pub mod compare;
pub mod console;
pub mod html;
pub mod json;
pub mod junit;
pub mod progress;

use std::io;

use crate::check::exchange::Exchange;
use crate::check::{Finding, Severity};
use crate::suite::depend::SKIPPED_STEP;
use crate::suite::outcome::{Outcome, Verdict};
pub use crate::suite::run::Reporter;
use crate::suite::run::Summary;

/// Sends everything to several reporters.
#[derive(Default)]
pub struct Fanout {
    reporters: Vec<Box<dyn Reporter>>,
}

impl Fanout {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, reporter: Box<dyn Reporter>) -> Self {
        self.reporters.push(reporter);
        self
    }

    pub fn push(&mut self, reporter: Box<dyn Reporter>) {
        self.reporters.push(reporter);
    }
}

impl Reporter for Fanout {
    fn case_started(&mut self, id: &str, title: &str) {
        for r in &mut self.reporters {
            r.case_started(id, title);
        }
    }

    fn case_finished(&mut self, outcome: &Outcome) {
        for r in &mut self.reporters {
            r.case_finished(outcome);
        }
    }

    /// Every reporter gets to finish; the first error is returned.
    fn finished(&mut self, outcomes: &[Outcome], summary: &Summary) -> io::Result<()> {
        let mut first = Ok(());
        for r in &mut self.reporters {
            let result = r.finished(outcomes, summary);
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}

/// What the target said it is: the ServerVersionInfo of the first
/// response that carries one.
pub fn server_version(outcomes: &[Outcome]) -> Option<ews_proto::ews::ServerVersionInfo> {
    outcomes
        .iter()
        .flat_map(|o| o.exchanges.iter())
        .filter(|e| e.response_text.contains("ServerVersionInfo"))
        .find_map(|e| ews_proto::ews::ServerVersionInfo::read(&e.response_text))
}

/// Target-provided text made safe to show: every control character but
/// newline and tab (C0, DEL, C1, so ESC and CR too) and the XML
/// non-characters U+FFFE/U+FFFF become a visible `\u{..}`. The result
/// cannot drive a terminal and is legal in an XML 1.0 document.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{fffe}' | '\u{ffff}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Bytes of a stored body kept at each end in reports (the middle is cut).
pub const REPORT_BODY_KEEP: usize = 64 * 1024;

/// `text` whole when it is short; else its first and last
/// [`REPORT_BODY_KEEP`] bytes around `… [N bytes cut] …`.
pub fn cap_body(text: &str) -> std::borrow::Cow<'_, str> {
    cap_text(text, REPORT_BODY_KEEP)
}

fn cap_text(text: &str, keep: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= 2 * keep {
        return std::borrow::Cow::Borrowed(text);
    }
    let head = text.floor_char_boundary(keep);
    let tail = text.ceil_char_boundary(text.len() - keep);
    std::borrow::Cow::Owned(format!(
        "{}… [{} bytes cut] …{}",
        &text[..head],
        tail - head,
        &text[tail..]
    ))
}

fn cap_in_place(text: &mut String) {
    if let std::borrow::Cow::Owned(cut) = cap_body(text) {
        *text = cut;
    }
}

/// A copy of `o` fit for a report file: every request, response, error,
/// finding message and evidence capped by [`cap_body`]. Checks judged the
/// whole bodies before; only what is written is cut.
pub fn capped_outcome(o: &Outcome) -> Outcome {
    let mut c = o.clone();
    let findings = c
        .exchanges
        .iter_mut()
        .flat_map(|e| e.findings.iter_mut())
        .chain(c.findings.iter_mut());
    for f in findings {
        cap_in_place(&mut f.message);
        if let Some(ev) = &mut f.evidence {
            cap_in_place(ev);
        }
    }
    for e in &mut c.exchanges {
        cap_in_place(&mut e.request);
        cap_in_place(&mut e.response_text);
        if let Some(err) = &mut e.error {
            cap_in_place(err);
        }
    }
    c
}

/// The reason line of a verdict that carries one.
pub fn verdict_reason(v: &Verdict) -> Option<&str> {
    match v {
        Verdict::Skipped { reason }
        | Verdict::Unreachable { reason }
        | Verdict::Error { reason }
        | Verdict::ExpectedFailure { reason }
        | Verdict::UnexpectedPass { reason } => Some(reason),
        _ => None,
    }
}

/// The exchange a finding is attached to, if any.
pub fn exchange_of<'a>(outcome: &'a Outcome, finding: &Finding) -> Option<&'a Exchange> {
    outcome
        .exchanges
        .iter()
        .find(|e| e.findings.iter().any(|f| std::ptr::eq(f, finding)))
}

/// A readable account of one outcome's findings: for each, the place
/// (`file:line`, step), the check and requirement ids, the message, the
/// evidence and an excerpt of the response it is about.
pub fn describe_findings(outcome: &Outcome, severity: Severity) -> String {
    let mut out = String::new();
    for f in outcome.all_findings().filter(|f| f.severity == severity) {
        out.push_str(&format!(
            "  --> {}:{}{}\n",
            outcome.file.display(),
            f.line,
            if f.step.is_empty() {
                String::new()
            } else {
                format!(" (step \"{}\")", f.step)
            }
        ));
        out.push_str(&format!("   [{}] {}\n", f.check, f.headline()));
        if let Some(ev) = &f.evidence {
            out.push_str(&indent(&format!("evidence: {ev}"), 5));
        }
        if let Some(ex) = exchange_of(outcome, f) {
            match (ex.status, &ex.error) {
                (Some(status), _) => {
                    out.push_str(&format!(
                        "     response (HTTP {status}, {} ms):\n",
                        ex.duration.as_millis()
                    ));
                    out.push_str(&indent(
                        &excerpt_lines(&pretty_xml(&ex.response_text), 60),
                        7,
                    ));
                }
                (None, Some(err)) => out.push_str(&format!("     no response: {err}\n")),
                (None, None) => {}
            }
        }
    }
    out
}

/// The full account of a case that did not pass: title, requirement ids,
/// the verdict's reason and every failing finding with its evidence.
pub fn explain(o: &Outcome) -> String {
    let mut out = format!(
        "---- {} [{}]{} ----\n",
        o.id,
        o.verdict.label(),
        if o.title.is_empty() {
            String::new()
        } else {
            format!(": {}", o.title)
        }
    );
    if !o.requirements.is_empty() {
        out.push_str(&format!("  requirements: {}\n", o.requirements.join(", ")));
    }
    if let Some(d) = &o.defect {
        out.push_str(&format!("  documented defect: {d}\n"));
    }
    if let Some(reason) = verdict_reason(&o.verdict) {
        out.push_str(&indent(reason, 2));
    }
    out.push_str(&describe_findings(o, Severity::Fail));
    out.push_str(&skipped_steps(o));
    out
}

/// The steps a failed step made the case skip, one line each with the
/// reason (empty when none was skipped).
pub fn skipped_steps(o: &Outcome) -> String {
    let mut out = String::new();
    for f in o.all_findings().filter(|f| f.check == SKIPPED_STEP) {
        if out.is_empty() {
            out.push_str(
                "  steps not run, because they need what a failed step should have provided:\n",
            );
        }
        out.push_str(&format!(
            "  --> {}:{}: {}\n",
            o.file.display(),
            f.line,
            f.message
        ));
    }
    out
}

/// What a recorded case observed: failed expectations and notes.
pub fn observations(o: &Outcome) -> String {
    let notes = describe_findings(o, Severity::Fail) + &describe_findings(o, Severity::Note);
    if notes.is_empty() {
        "  every expectation held\n".to_string()
    } else {
        notes
    }
}

/// An XML body re-indented for reading; anything that is not XML comes back as it was.
///
/// Bounded for hostile input: indentation stops growing below
/// [`PRETTY_MAX_INDENT`] levels (100,000 nested elements would otherwise
/// make gigabytes of spaces), and the output ends after about
/// [`PRETTY_MAX_BYTES`] with a `…` line.
pub fn pretty_xml(text: &str) -> String {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text.trim());
    let mut out = String::new();
    let mut depth = 0usize;
    // Whether the last thing written leaves an end tag on the same line
    // (`<a>text</a>`, `<a></a>`).
    let mut inline_end = false;
    let newline = |out: &mut String, depth: usize| {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&"  ".repeat(depth.min(PRETTY_MAX_INDENT)));
    };
    loop {
        if out.len() > PRETTY_MAX_BYTES {
            out.push_str("\n…");
            break;
        }
        let event = match reader.read_event() {
            Ok(Event::Eof) => break,
            // Indentation between elements is replaced by ours.
            Ok(Event::Text(t)) if t.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(e) => e,
            Err(_) => return text.to_string(),
        };
        let mut raw = quick_xml::Writer::new(Vec::new());
        if raw.write_event(event.borrow()).is_err() {
            return text.to_string();
        }
        let raw = String::from_utf8_lossy(&raw.into_inner()).into_owned();
        match event {
            Event::Start(_) => {
                newline(&mut out, depth);
                depth += 1;
                inline_end = true;
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if !inline_end {
                    newline(&mut out, depth);
                }
                inline_end = false;
            }
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) if inline_end => {}
            _ => {
                newline(&mut out, depth);
                inline_end = false;
            }
        }
        out.push_str(&raw);
    }
    out
}

/// Nesting levels [`pretty_xml`] indents; deeper ones stay at this indentation.
pub const PRETTY_MAX_INDENT: usize = 32;
/// About how much text [`pretty_xml`] produces at most.
pub const PRETTY_MAX_BYTES: usize = 256 * 1024;

/// At most `max` lines, saying how many were left out.
fn excerpt_lines(text: &str, max: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= max {
        return crate::client::excerpt::excerpt(text, 8000);
    }
    let mut s = lines[..max].join("\n");
    s.push_str(&format!("\n… ({} more lines)", lines.len() - max));
    crate::client::excerpt::excerpt(&s, 8000)
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    let mut s = String::new();
    for line in text.lines() {
        s.push_str(&pad);
        s.push_str(line);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_controls_shows_what_a_terminal_or_xml_cannot_take() {
        assert_eq!(escape_controls("plain\ttext\nline"), "plain\ttext\nline");
        assert!(matches!(
            escape_controls("é ✓"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("a\0b\x1b[2Jc\rd\u{7f}\u{9b}e\u{fffe}"),
            "a\\u{0}b\\u{1b}[2Jc\\u{d}d\\u{7f}\\u{9b}e\\u{fffe}"
        );
    }

    #[test]
    fn cap_text_keeps_both_ends_and_says_how_much_was_cut() {
        assert_eq!(cap_text("short", 4), "short");
        assert_eq!(cap_text("12345678", 4), "12345678");
        assert_eq!(cap_text("123456789", 4), "1234… [1 bytes cut] …6789");
        // Cuts fall on character boundaries.
        let shown = cap_text("ééééé", 3);
        assert_eq!(shown, "é… [6 bytes cut] …é");
        let big = "x".repeat(1_000_000);
        let shown = cap_body(&big);
        assert!(shown.len() < 2 * REPORT_BODY_KEEP + 64);
        assert!(shown.contains(&format!("[{} bytes cut]", 1_000_000 - 2 * REPORT_BODY_KEEP)));
    }

    #[test]
    fn pretty_xml_indents_and_keeps_text_inline() {
        let shown = pretty_xml("<a><b>text</b><c/><d x=\"1\">t &amp; u</d><e></e></a>");
        assert_eq!(
            shown,
            "<a>\n  <b>text</b>\n  <c/>\n  <d x=\"1\">t &amp; u</d>\n  <e></e>\n</a>"
        );
        assert_eq!(pretty_xml("not <xml"), "not <xml");
    }

    #[test]
    fn pretty_xml_is_bounded_on_deep_nesting() {
        let n = 100_000;
        let deep = format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        let started = std::time::Instant::now();
        let shown = pretty_xml(&deep);
        assert!(shown.len() < PRETTY_MAX_BYTES + 4096, "{}", shown.len());
        assert!(shown.ends_with('…'));
        let widest = shown.lines().map(str::len).max().unwrap_or(0);
        assert!(widest <= 2 * PRETTY_MAX_INDENT + 8, "{widest}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
