//! Per-task counters and latency histograms.
//!
//! The engine keeps one [`TaskStats`] per task of an app and calls it as jobs are admitted,
//! refused and finished; every stats interval it publishes [`TaskStats::snapshot`] for each
//! task inside the app's `stats` publication (shape in `docs/stats.md`). Durations are
//! measured by the engine from the `now` it is given, so nothing here reads a clock.

mod histogram;
pub mod prometheus;
mod task;

use serde::{Deserialize, Serialize};

pub use histogram::{Histogram, MAX_TRACKED_US};
pub use task::{TaskStats, TaskStatsSnapshot};

/// A latency summary as published: how many durations, and where they lie, in microseconds.
///
/// Quantiles are nearest-rank and within 1/33 (about 3.03%) of the exact value; `max_us` is
/// exact. All fields are 0 when `count` is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of durations recorded.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest duration recorded.
    pub max_us: u64,
}

impl From<&Histogram> for Percentiles {
    fn from(h: &Histogram) -> Self {
        h.percentiles()
    }
}
