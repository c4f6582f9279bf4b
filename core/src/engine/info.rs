//! The engine's numbers for `info`, the stats publication and tests.

use std::collections::BTreeMap;

use serde::Serialize;

use super::worker::WorkerState;
use super::{AppState, Engine};
use crate::stats::TaskStatsSnapshot;
use crate::status::Failure;

/// Workers by state. `ready` is `idle + busy` (a busy worker holds at least one job), so
/// `starting + idle + busy + draining` is every worker there is (`total`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WorkerCounts {
    pub starting: usize,
    pub ready: usize,
    pub idle: usize,
    pub busy: usize,
    pub draining: usize,
    pub total: usize,
}

/// A snapshot of one app's engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineInfo {
    pub state: &'static str,
    pub reason: Option<String>,
    pub queue: usize,
    pub workers: WorkerCounts,
    pub jobs: JobCounts,
    pub tasks: BTreeMap<String, TaskStatsSnapshot>,
    pub last_error: Option<Failure>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    /// Jobs held by workers, including cancelled ones a worker has not let go of yet.
    pub running: usize,
}

impl<R: Clone> Engine<R> {
    pub fn info(&self) -> EngineInfo {
        let mut workers = WorkerCounts::default();
        for w in self.workers.values() {
            match w.state {
                WorkerState::Starting => workers.starting += 1,
                WorkerState::Ready if w.departure.is_none() => {
                    workers.ready += 1;
                    if w.jobs.is_empty() {
                        workers.idle += 1;
                    } else {
                        workers.busy += 1;
                    }
                }
                WorkerState::Ready | WorkerState::Draining | WorkerState::Killed => {
                    workers.draining += 1
                }
            }
            workers.total += 1;
        }
        let reason = match &self.state {
            AppState::Broken { reason, .. } => Some(reason.clone()),
            _ => None,
        };
        EngineInfo {
            state: self.state.name(),
            reason,
            queue: self.queue.len(),
            workers,
            jobs: JobCounts {
                running: self.jobs.len() - self.queue.len(),
            },
            tasks: self
                .tasks
                .iter()
                .zip(&self.stats)
                .map(|(name, stats)| (name.to_string(), stats.snapshot()))
                .collect(),
            last_error: self.last_error.clone(),
        }
    }
}
