//! Counters and latency histograms for one task of an app.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Histogram, Percentiles};

/// What happened to the jobs of one task, cumulative over the app's life.
///
/// Every job the engine sees ends up in exactly one of two paths: refused at admission
/// ([`rejected`](Self::rejected)), or admitted ([`accepted`](Self::accepted)) and later
/// [`finished`](Self::finished). So `accepted - completed - failed` is the number of jobs
/// still queued or running.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskStats {
    accepted: u64,
    rejected: u64,
    completed: u64,
    failed: u64,
    by_code: BTreeMap<u32, u64>,
    // Boxed so that a `TaskStats` stays small to move and to keep in maps: the two histograms
    // are 7.3 KiB together, allocated once here and never again.
    wait: Box<Histogram>,
    run: Box<Histogram>,
}

impl TaskStats {
    /// Empty counters and histograms.
    pub fn new() -> Self {
        Self::default()
    }

    /// A job was admitted to the queue.
    pub fn accepted(&mut self) {
        self.accepted = self.accepted.saturating_add(1);
    }

    /// A job was refused at admission (for example 503, queue full) with error `code`. It was
    /// never accepted and will not be finished.
    pub fn rejected(&mut self, code: u32) {
        self.rejected = self.rejected.saturating_add(1);
        self.count_code(code);
    }

    /// An accepted job ended: with a choke when `error_code` is `None`, with that error
    /// otherwise.
    ///
    /// `wait` is from arrival to dispatch (or to the end, for a job that never left the queue);
    /// `run` is from dispatch to the end, `None` when the job never started (for example its
    /// deadline expired in the queue), in which case only `wait` is recorded.
    pub fn finished(&mut self, error_code: Option<u32>, wait: Duration, run: Option<Duration>) {
        match error_code {
            None => self.completed = self.completed.saturating_add(1),
            Some(code) => {
                self.failed = self.failed.saturating_add(1);
                self.count_code(code);
            }
        }
        self.wait.record(wait);
        if let Some(run) = run {
            self.run.record(run);
        }
    }

    /// Time from arrival to dispatch of finished jobs.
    pub fn wait(&self) -> &Histogram {
        &self.wait
    }

    /// Time from dispatch to end of finished jobs that started.
    pub fn run(&self) -> &Histogram {
        &self.run
    }

    /// The numbers as published: counters, error codes, wait and run percentiles.
    pub fn snapshot(&self) -> TaskStatsSnapshot {
        TaskStatsSnapshot {
            accepted: self.accepted,
            rejected: self.rejected,
            completed: self.completed,
            failed: self.failed,
            by_code: self
                .by_code
                .iter()
                .map(|(code, n)| (code.to_string(), *n))
                .collect(),
            wait: self.wait.percentiles(),
            run: self.run.percentiles(),
        }
    }

    fn count_code(&mut self, code: u32) {
        let n = self.by_code.entry(code).or_insert(0);
        *n = n.saturating_add(1);
    }
}

/// A task's stats as published in the app's `stats` (see `docs/stats.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatsSnapshot {
    /// Jobs admitted to the queue.
    pub accepted: u64,
    /// Jobs refused at admission; never accepted.
    pub rejected: u64,
    /// Accepted jobs that ended with a choke.
    pub completed: u64,
    /// Accepted jobs that ended with an error.
    pub failed: u64,
    /// Terminal error codes, rejections included, keyed by the code in decimal: JSON object
    /// keys are strings.
    pub by_code: BTreeMap<String, u64>,
    /// Arrival to dispatch, for every finished job.
    pub wait: Percentiles,
    /// Dispatch to end, for finished jobs that started.
    pub run: Percentiles,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeSet;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn counters() {
        let mut t = TaskStats::new();
        for _ in 0..4 {
            t.accepted();
        }
        t.rejected(503);
        t.rejected(503);
        t.finished(None, ms(1), Some(ms(10)));
        t.finished(None, ms(2), Some(ms(20)));
        t.finished(Some(500), ms(3), Some(ms(30)));
        // Deadline expired in the queue: wait is recorded, run is not.
        t.finished(Some(504), ms(4), None);

        let s = t.snapshot();
        assert_eq!(
            (s.accepted, s.rejected, s.completed, s.failed),
            (4, 2, 2, 2)
        );
        let codes: Vec<(&str, u64)> = s.by_code.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(codes, [("500", 1), ("503", 2), ("504", 1)]);
        assert_eq!(s.wait.count, 4);
        assert_eq!(s.wait.max_us, 4_000);
        assert_eq!(s.run.count, 3);
        assert_eq!(s.run.max_us, 30_000);
        assert_eq!(t.wait().count(), 4);
        assert_eq!(t.run().count(), 3);
    }

    #[test]
    fn task_stats_stay_small() {
        assert!(std::mem::size_of::<TaskStats>() <= 128);
    }

    #[test]
    fn empty_snapshot_json() {
        let json = serde_json::to_value(TaskStats::new().snapshot()).unwrap();
        let zero = json!({"count": 0, "p50_us": 0, "p90_us": 0, "p99_us": 0, "max_us": 0});
        assert_eq!(
            json,
            json!({
                "accepted": 0, "rejected": 0, "completed": 0, "failed": 0,
                "by_code": {}, "wait": zero, "run": zero,
            })
        );
    }

    #[test]
    fn snapshot_json_shape_and_round_trip() {
        let mut t = TaskStats::new();
        t.accepted();
        t.rejected(503);
        t.finished(
            Some(500),
            Duration::from_micros(10),
            Some(Duration::from_micros(20)),
        );
        let snapshot = t.snapshot();
        let json = serde_json::to_value(&snapshot).unwrap();

        let keys: BTreeSet<&str> = json
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        let want = [
            "accepted",
            "rejected",
            "completed",
            "failed",
            "by_code",
            "wait",
            "run",
        ];
        assert_eq!(keys, want.into_iter().collect());
        assert_eq!(json["by_code"], json!({"500": 1, "503": 1}));
        assert_eq!(
            json["wait"],
            json!({"count": 1, "p50_us": 10, "p90_us": 10, "p99_us": 10, "max_us": 10})
        );
        assert_eq!(json["run"]["p99_us"], json!(20));

        let back: TaskStatsSnapshot = serde_json::from_value(json).unwrap();
        assert_eq!(back, snapshot);
    }
}
