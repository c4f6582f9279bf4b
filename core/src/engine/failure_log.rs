//! How worker failures reach the node's log: the whole report (often a traceback) once per
//! distinct failure, then one line per repeat, at most [`REPEAT_BURST`] of them per
//! [`REPEAT_WINDOW`]; repeats past that are counted and the next line logged says how many
//! were left out. A crash loop cannot flood the log.

use std::time::{Duration, Instant};

use super::one_line;

/// Repeats of one failure logged per window, at most.
pub const REPEAT_BURST: u32 = 5;
/// The window [`REPEAT_BURST`] counts over.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(60);

/// What was logged of the last failure.
#[derive(Debug, Default)]
pub(super) struct FailureLog {
    /// The last failure logged in full: its reason and stderr's last line (earlier lines may
    /// name the worker, which differs between repeats).
    key: Option<String>,
    window_start: Option<Instant>,
    lines_in_window: u32,
    /// Repeats not logged since the last line.
    left_out: u64,
}

impl FailureLog {
    /// The line to log for a failure `report` known by `key`, or none while repeats are being
    /// held back.
    pub fn line(&mut self, now: Instant, app: &str, key: String, report: &str) -> Option<String> {
        if self.key.as_deref() != Some(key.as_str()) {
            *self = FailureLog {
                key: Some(key),
                window_start: Some(now),
                ..FailureLog::default()
            };
            return Some(format!("{app}: {report}"));
        }
        let start = self.window_start.get_or_insert(now);
        if now.saturating_duration_since(*start) >= REPEAT_WINDOW {
            *start = now;
            self.lines_in_window = 0;
        }
        if self.lines_in_window >= REPEAT_BURST {
            self.left_out += 1;
            return None;
        }
        self.lines_in_window += 1;
        let summary = one_line(report);
        Some(match std::mem::take(&mut self.left_out) {
            0 => format!("{app}: {summary} (repeated)"),
            n => format!("{app}: {summary} (repeated; {n} more not logged)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_held_back_past_the_burst_and_counted() {
        let t0 = Instant::now();
        let mut log = FailureLog::default();
        let report = "worker 1 failed: boom\nTraceback\nError: x";
        let at = |log: &mut FailureLog, s: u64| {
            log.line(t0 + Duration::from_secs(s), "a", "k".into(), report)
        };
        assert_eq!(at(&mut log, 0).as_deref(), Some(&*format!("a: {report}")));
        for s in 1..=REPEAT_BURST as u64 {
            assert_eq!(
                at(&mut log, s).as_deref(),
                Some("a: worker 1 failed: boom: Error: x (repeated)")
            );
        }
        assert_eq!(at(&mut log, 10), None);
        assert_eq!(at(&mut log, 20), None);
        assert_eq!(
            at(&mut log, 61).as_deref(),
            Some("a: worker 1 failed: boom: Error: x (repeated; 2 more not logged)")
        );
        // Another failure is logged in full at once.
        let other = log.line(t0 + Duration::from_secs(62), "a", "j".into(), "other");
        assert_eq!(other.as_deref(), Some("a: other"));
    }
}
