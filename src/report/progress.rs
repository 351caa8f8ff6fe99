//! Progress on long work (a run, the self-test, explore): on a terminal,
//! one line on stderr rewritten in place with what is done of the total and
//! what is running now; elsewhere (CI logs, pipes) a plain line per
//! finished unit, so logs stay readable and nothing is overwritten.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Reporter, escape_controls};
use crate::suite::outcome::Outcome;
use crate::suite::run::Summary;

/// Where progress goes and how.
pub struct Progress {
    state: Mutex<State>,
}

struct State {
    out: Box<dyn Write + Send>,
    /// Rewrite one line (a terminal) or print a line per finished unit.
    in_place: bool,
    what: &'static str,
    /// 0: open-ended (a time budget, not a count, ends the work).
    total: usize,
    done: usize,
    /// The time the work may take, shown beside the time it has taken.
    budget: Option<Duration>,
    /// Plain lines (not a terminal) come at most this often.
    min_gap: Duration,
    last_line: Option<Instant>,
    running: Vec<String>,
    started: Instant,
    /// Length of the line last drawn in place, to blank what is left of it.
    drawn: usize,
}

impl Progress {
    /// Progress on stderr, in place when stderr is a terminal. `what` names
    /// the units ("cases", "servers", "sequences"); a `total` of 0 means
    /// the count is open (a time budget ends the work).
    pub fn stderr(what: &'static str, total: usize) -> Self {
        let in_place = std::io::stderr().is_terminal();
        Self::to(Box::new(std::io::stderr()), in_place, what, total)
    }

    /// Progress to any writer (tests use a buffer).
    pub fn to(
        out: Box<dyn Write + Send>,
        in_place: bool,
        what: &'static str,
        total: usize,
    ) -> Self {
        Progress {
            state: Mutex::new(State {
                out,
                in_place,
                what,
                total,
                done: 0,
                budget: None,
                min_gap: Duration::ZERO,
                last_line: None,
                running: Vec::new(),
                started: Instant::now(),
                drawn: 0,
            }),
        }
    }

    /// Shows `budget` beside the elapsed time (`14/60 s`).
    pub fn with_budget(self, budget: Option<Duration>) -> Self {
        self.with(|s| s.budget = budget);
        self
    }

    /// Plain lines (not a terminal) at most every `gap`: for work made of
    /// many short units.
    pub fn with_min_gap(self, gap: Duration) -> Self {
        self.with(|s| s.min_gap = gap);
        self
    }

    /// What is going on now, in place of the running units, without
    /// finishing one (a terminal only: a log gets the finished units).
    pub fn status(&self, text: &str) {
        self.with(|s| {
            s.running = vec![escape_controls(text).into_owned()];
            if s.in_place {
                s.draw();
            }
        });
    }

    fn with(&self, f: impl FnOnce(&mut State)) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s);
    }

    /// A unit began.
    pub fn started(&self, name: &str) {
        self.with(|s| {
            s.running.push(escape_controls(name).into_owned());
            if s.in_place {
                s.draw();
            }
        });
    }

    /// A unit ended; `note` says how (a verdict).
    pub fn finished(&self, name: &str, note: &str) {
        self.with(|s| {
            let name = escape_controls(name).into_owned();
            if let Some(i) = s.running.iter().position(|r| *r == name) {
                s.running.remove(i);
            }
            s.done += 1;
            if s.in_place {
                s.draw();
            } else if s.last_line.is_none_or(|t| t.elapsed() >= s.min_gap) {
                s.last_line = Some(Instant::now());
                let line = format!(
                    "{} {name}: {} ({})\n",
                    s.count(),
                    escape_controls(note),
                    s.clock()
                );
                let _ = s.out.write_all(line.as_bytes());
                let _ = s.out.flush();
            }
        });
    }

    /// Clears the in-place line (before the final report is printed).
    pub fn clear(&self) {
        self.with(|s| {
            if s.in_place && s.drawn > 0 {
                let blank = format!("\r{}\r", " ".repeat(s.drawn));
                let _ = s.out.write_all(blank.as_bytes());
                let _ = s.out.flush();
                s.drawn = 0;
            }
        });
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

impl State {
    /// `[3/10 cases]`, or `[3 sequences]` when the count is open.
    fn count(&self) -> String {
        if self.total == 0 {
            format!("[{} {}]", self.done, self.what)
        } else {
            format!("[{}/{} {}]", self.done, self.total, self.what)
        }
    }

    /// `14 s`, or `14/60 s` with a budget.
    fn clock(&self) -> String {
        let spent = self.started.elapsed().as_secs_f64();
        match self.budget {
            Some(b) => format!("{spent:.0}/{:.0} s", b.as_secs_f64()),
            None => format!("{spent:.0} s"),
        }
    }

    fn draw(&mut self) {
        let now = match self.running.as_slice() {
            [] => String::new(),
            [one] => format!(" · {one}"),
            [first, rest @ ..] => format!(" · {first} (+{} more)", rest.len()),
        };
        let mut line = format!("{} {}{now}", self.count(), self.clock());
        // One terminal line: never wrap, or `\r` cannot rewrite it.
        if line.chars().count() > 100 {
            line = line.chars().take(99).collect::<String>() + "…";
        }
        let width = line.chars().count();
        let pad = self.drawn.saturating_sub(width);
        let text = format!("\r{line}{}", " ".repeat(pad));
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
        self.drawn = width;
    }
}

/// A run's progress as a reporter: started and finished cases.
pub struct RunProgress(pub Progress);

impl Reporter for RunProgress {
    fn case_started(&mut self, id: &str, _title: &str) {
        self.0.started(id);
    }

    fn case_finished(&mut self, outcome: &Outcome) {
        self.0.finished(&outcome.id, outcome.verdict.label());
    }

    fn finished(&mut self, _outcomes: &[Outcome], _summary: &Summary) -> std::io::Result<()> {
        self.0.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A writer tests can read back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
        }
    }

    #[test]
    fn not_a_terminal_gets_a_plain_line_per_finished_unit() {
        let buf = Buffer::default();
        let p = Progress::to(Box::new(buf.clone()), false, "cases", 3);
        p.started("a/one");
        p.started("b/two");
        p.finished("a/one", "passed");
        p.finished("b/\u{1b}[2Jtwo", "failed");
        let text = buf.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with("[1/3 cases] a/one: passed (0 s)"),
            "{text}"
        );
        assert!(lines[1].starts_with("[2/3 cases] b/"), "{text}");
        assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
    }

    #[test]
    fn a_terminal_gets_one_line_rewritten_in_place() {
        let buf = Buffer::default();
        let p = Progress::to(Box::new(buf.clone()), true, "servers", 2);
        p.started("fault batch-51");
        p.started("fault drop-event");
        p.finished("fault batch-51", "caught");
        let text = buf.text();
        assert!(!text.contains('\n'), "{text:?}");
        let last = text.rsplit('\r').next().unwrap_or_default();
        assert!(last.starts_with("[1/2 servers]"), "{last:?}");
        assert!(last.contains("fault drop-event"), "{last:?}");
        p.clear();
        let cleared = buf.text();
        assert!(cleared.ends_with('\r'), "{cleared:?}");
        assert!(
            cleared
                .rsplit('\r')
                .nth(1)
                .is_some_and(|s| s.trim().is_empty())
        );
    }

    #[test]
    fn open_ended_work_shows_its_budget_and_thins_its_log_lines() {
        let buf = Buffer::default();
        let p = Progress::to(Box::new(buf.clone()), false, "sequences", 0)
            .with_budget(Some(Duration::from_secs(60)))
            .with_min_gap(Duration::from_secs(3600));
        for i in 0..5 {
            p.started(&format!("sequence {i}"));
            p.status("shrinking: 12 operations"); // a terminal only
            p.finished(&format!("sequence {i}"), "passed");
        }
        let text = buf.text();
        assert_eq!(
            text, "[1 sequences] sequence 0: passed (0/60 s)\n",
            "{text:?}"
        );

        let buf = Buffer::default();
        let p = Progress::to(Box::new(buf.clone()), true, "sequences", 0)
            .with_budget(Some(Duration::from_secs(60)));
        p.started("sequence 1");
        p.status("shrinking: 12 operations after 3 runs");
        let last = buf
            .text()
            .rsplit('\r')
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(
            last.starts_with("[0 sequences] 0/60 s · shrinking: 12 operations after 3 runs"),
            "{last:?}"
        );
    }
}
