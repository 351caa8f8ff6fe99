//! A case's timeline as an inline SVG: one lane per step, each exchange a
//! line from when it began to a dot where its answer (or document)
//! arrived, and the end of each wait as a dashed line, so a late envelope
//! or push shows where it fell against its deadline.

use std::time::Duration;

use maud::{Markup, html};

use crate::check::Severity;
use crate::check::exchange::Exchange;
use crate::suite::outcome::Outcome;

const WIDTH: f64 = 960.0;
const LABEL: f64 = 200.0;
const LANE: f64 = 24.0;
const TOP: f64 = 8.0;
const AXIS: f64 = 28.0;

/// Whether the case waited for documents (streaming, push, or any step
/// with a deadline), so a timeline says something.
pub fn applies(o: &Outcome) -> bool {
    !o.exchanges.is_empty()
        && (o.exchanges.iter().any(|e| e.deadline.is_some())
            || o.id.starts_with("streaming/")
            || o.id.starts_with("push/"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A tick spacing of 1, 2 or 5 × 10^k ms giving at most ten ticks.
fn tick(span_ms: f64) -> f64 {
    let mut unit = 1.0;
    loop {
        for m in [1.0, 2.0, 5.0] {
            if span_ms / (unit * m) <= 10.0 {
                return unit * m;
            }
        }
        unit *= 10.0;
    }
}

fn seconds(t_ms: f64) -> String {
    if t_ms >= 1000.0 {
        format!("{:.1} s", t_ms / 1000.0)
    } else {
        format!("{t_ms:.0} ms")
    }
}

fn class_of(ex: &Exchange) -> &'static str {
    if ex.findings.iter().any(|f| f.severity == Severity::Fail) || ex.status.is_none() {
        "bad"
    } else if ex.deadline.is_some_and(|d| ex.at > d) {
        "late"
    } else if ex.findings.iter().any(|f| f.severity == Severity::Note) {
        "noted"
    } else {
        "ok"
    }
}

pub fn render(o: &Outcome) -> Markup {
    let mut lanes: Vec<&str> = Vec::new();
    for ex in &o.exchanges {
        if !lanes.contains(&ex.step.as_str()) {
            lanes.push(&ex.step);
        }
    }
    let end = o
        .exchanges
        .iter()
        .flat_map(|e| [Some(e.at), e.deadline])
        .flatten()
        .max()
        .unwrap_or_default();
    let span = (ms(end) * 1.05).max(1.0);
    let x = |t_ms: f64| LABEL + (t_ms / span).clamp(0.0, 1.0) * (WIDTH - LABEL - 12.0);
    let lane_y = |step: &str| {
        let i = lanes.iter().position(|l| *l == step).unwrap_or(0);
        TOP + LANE * i as f64 + LANE / 2.0
    };
    let height = TOP + LANE * lanes.len() as f64 + AXIS;
    let axis_y = TOP + LANE * lanes.len() as f64 + 4.0;
    let step_ms = tick(span);
    let ticks: Vec<f64> = (0..)
        .map(|k| k as f64 * step_ms)
        .take_while(|t| *t <= span)
        .collect();
    let mut deadlines: Vec<(&str, Duration)> = Vec::new();
    for ex in &o.exchanges {
        if let Some(d) = ex.deadline
            && !deadlines.contains(&(ex.step.as_str(), d))
        {
            deadlines.push((&ex.step, d));
        }
    }
    html! {
        svg.timeline xmlns="http://www.w3.org/2000/svg" width=(WIDTH) height=(height)
            viewBox={ "0 0 " (WIDTH) " " (height) } role="img" {
            title { "timeline of " (o.id) }
            @for l in &lanes {
                line.lane x1=(LABEL) x2=(WIDTH - 12.0) y1=(lane_y(l)) y2=(lane_y(l)) {}
                text x="4" y=(lane_y(l) + 4.0) { (super::page::shown(&truncate(l, 28))) }
            }
            line.axis x1=(LABEL) x2=(WIDTH - 12.0) y1=(axis_y) y2=(axis_y) {}
            @for t in &ticks {
                line.axis x1=(x(*t)) x2=(x(*t)) y1=(axis_y) y2=(axis_y + 4.0) {}
                text x=(x(*t) - 12.0) y=(axis_y + 16.0) { (seconds(*t)) }
            }
            @for (step, d) in &deadlines {
                @let y = lane_y(step);
                line.deadline x1=(x(ms(*d))) x2=(x(ms(*d))) y1=(y - LANE / 2.0 + 2.0) y2=(y + LANE / 2.0 - 2.0) {
                    title { "step " (super::page::shown(step)) ": the wait ends at " (seconds(ms(*d))) }
                }
            }
            @for (i, ex) in o.exchanges.iter().enumerate() {
                @let y = lane_y(&ex.step);
                @let at = ms(ex.at);
                @let began = ms(ex.at.saturating_sub(ex.duration));
                line.span x1=(x(began)) x2=(x(at)) y1=(y) y2=(y) {}
                circle class=(class_of(ex)) cx=(x(at)) cy=(y) r="5" data-exchange=(i + 1) {
                    title {
                        "#" (i + 1) " step " (super::page::shown(&ex.step)) ": "
                        @match ex.status { Some(s) => { "HTTP " (s) }, None => { "no response" } }
                        " at " (seconds(at))
                        @if let Some(d) = ex.deadline { " (wait ends at " (seconds(ms(d))) ")" }
                    }
                }
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_few() {
        assert_eq!(tick(9.0), 1.0);
        assert_eq!(tick(35.0), 5.0);
        assert_eq!(tick(1800.0), 200.0);
        assert_eq!(tick(95_000.0), 10_000.0);
    }
}
