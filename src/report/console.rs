//! The human-readable report: one line per case as it finishes, then the
//! details of every failure (and of recorded observations), then a summary.
//!
//! Everything printed goes through [`escape_controls`]: reasons and
//! excerpts quote the target, and a raw ESC or CR from it would drive the
//! reader's terminal.

use std::io::{self, Write};

use super::{Reporter, escape_controls, explain, observations};
use crate::client::push::PushStatsHandle;
use crate::suite::outcome::{Outcome, Verdict};
use crate::suite::run::Summary;

pub struct Console {
    out: Box<dyn Write + Send>,
    /// Print every finished case, not only the ones that did not pass.
    pub verbose: bool,
    push: Option<PushStatsHandle>,
}

impl Console {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Console {
            out,
            verbose: true,
            push: None,
        }
    }

    /// Prints the push listener's counters when it refused anything.
    pub fn with_push_stats(mut self, push: PushStatsHandle) -> Self {
        self.push = Some(push);
        self
    }

    pub fn stdout() -> Self {
        Self::new(Box::new(io::stdout()))
    }
}

fn tag(v: &Verdict) -> &'static str {
    match v {
        Verdict::Pass => "ok",
        Verdict::Fail => "FAIL",
        Verdict::Recorded => "recorded",
        Verdict::Skipped { .. } => "skipped",
        Verdict::Unreachable { .. } => "UNREACHABLE",
        Verdict::Error { .. } => "ERROR",
        Verdict::ExpectedFailure { .. } => "xfail",
        Verdict::UnexpectedPass { .. } => "XPASS",
    }
}

impl Reporter for Console {
    fn case_finished(&mut self, o: &Outcome) {
        if !self.verbose && matches!(o.verdict, Verdict::Pass) {
            return;
        }
        let reason = match &o.verdict {
            Verdict::Skipped { reason } | Verdict::ExpectedFailure { reason } => {
                format!(" ({reason})")
            }
            _ => String::new(),
        };
        let line = format!(
            "{:<11} {}{} [{} ms]",
            tag(&o.verdict),
            o.id,
            reason,
            o.duration.as_millis()
        );
        let _ = writeln!(self.out, "{}", escape_controls(&line));
    }

    fn finished(&mut self, outcomes: &[Outcome], s: &Summary) -> io::Result<()> {
        let troubled: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| {
                matches!(
                    o.verdict,
                    Verdict::Fail
                        | Verdict::Unreachable { .. }
                        | Verdict::Error { .. }
                        | Verdict::UnexpectedPass { .. }
                )
            })
            .collect();
        if !troubled.is_empty() {
            writeln!(self.out, "\nfailures:")?;
        }
        for o in troubled {
            writeln!(self.out)?;
            write!(self.out, "{}", escape_controls(&explain(o)))?;
        }
        let recorded: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| matches!(o.verdict, Verdict::Recorded))
            .collect();
        if !recorded.is_empty() {
            writeln!(self.out, "\nrecorded observations:")?;
        }
        for o in recorded {
            let head = format!("\n---- {}: {} ----", o.id, o.title);
            writeln!(self.out, "{}", escape_controls(&head))?;
            write!(self.out, "{}", escape_controls(&observations(o)))?;
        }
        if let Some(stats) = self.push.as_ref().map(PushStatsHandle::get)
            && stats.refused() > 0
        {
            writeln!(self.out, "\npush listener: {stats}")?;
        }
        writeln!(
            self.out,
            "\nresult: {} passed, {} failed, {} recorded, {} skipped, {} unreachable, {} errors{}; {} cases in {:.1} s",
            s.passed,
            s.failed,
            s.recorded,
            s.skipped,
            s.unreachable,
            s.errors,
            if s.expected_failures + s.unexpected_passes > 0 {
                format!(
                    ", {} expected failures, {} unexpected passes",
                    s.expected_failures, s.unexpected_passes
                )
            } else {
                String::new()
            },
            s.total,
            s.duration.as_secs_f64()
        )?;
        if let Some(signal) = s.interrupted {
            writeln!(
                self.out,
                "run stopped by {}: the cases not finished are reported as skipped",
                signal.name()
            )?;
        }
        // The critical path: the run cannot be shorter than its longest case.
        if let Some(id) = &s.longest_case {
            writeln!(
                self.out,
                "longest case: {} {:.1} s ({:.2} of the run)",
                escape_controls(id),
                s.longest_case_duration.as_secs_f64(),
                s.longest_case_duration.as_secs_f64() / s.duration.as_secs_f64().max(1e-9)
            )?;
        }
        self.out.flush()
    }
}
