//! The human-readable report: one line per case as it finishes, then the
//! details of every failure (and of recorded observations), then a summary.

use std::io::{self, Write};

use super::{Reporter, explain, observations};
use crate::suite::exec::{Outcome, Verdict};
use crate::suite::run::Summary;

pub struct Console {
    out: Box<dyn Write + Send>,
    /// Print every finished case, not only the ones that did not pass.
    pub verbose: bool,
}

impl Console {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Console { out, verbose: true }
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
        let _ = writeln!(
            self.out,
            "{:<11} {}{} [{} ms]",
            tag(&o.verdict),
            o.id,
            reason,
            o.duration.as_millis()
        );
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
            write!(self.out, "{}", explain(o))?;
        }
        let recorded: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| matches!(o.verdict, Verdict::Recorded))
            .collect();
        if !recorded.is_empty() {
            writeln!(self.out, "\nrecorded observations:")?;
        }
        for o in recorded {
            writeln!(self.out, "\n---- {}: {} ----", o.id, o.title)?;
            write!(self.out, "{}", observations(o))?;
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
        self.out.flush()
    }
}
