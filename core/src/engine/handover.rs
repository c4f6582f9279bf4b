//! Handing an app over to its next version (a redeploy): the old engine gives up its queue
//! and lets its workers finish what they run; the new engine adopts the queued jobs as they
//! were, arrival time, deadline and request chunks included. No accepted job is failed or run
//! twice on the way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::job::{Chunks, Job, JobState};
use super::{AppState, Engine, JobId, Origin, ReplyMode};

/// A job that left one engine's queue for another's.
#[derive(Debug)]
pub struct QueuedJob<R> {
    /// The task that made it, by name: task indices differ between versions.
    pub task: Arc<str>,
    pub event: Arc<str>,
    pub reply: R,
    urgent: bool,
    request_ended: bool,
    mode: ReplyMode,
    timeout: Option<Duration>,
    deadline_at: Option<Instant>,
    arrived: Instant,
    chunks: Chunks,
    origin: Option<Box<Origin>>,
}

impl<R: Clone> Engine<R> {
    /// Whether a worker is up and taking jobs: a new version takes over only then, so that
    /// code that cannot start never gets the queue.
    pub fn has_ready_worker(&self) -> bool {
        self.tally.accepting > 0
    }

    /// Starts one worker if there is none, whatever the pool policy says (a version that
    /// must prove it can start before it takes over, with `pool-min` 0).
    pub fn warm_up(&mut self, now: Instant) {
        if self.workers.is_empty() && self.state == AppState::Running {
            self.spawn(now);
        }
    }

    /// Steps down for a new version: takes every queued job out (front first, for
    /// [`Engine::adopt`]), lets running jobs finish on their workers, which then leave, and
    /// stops (`EngineOutput::Stopped`) once the last one is gone. Unlike [`Engine::stop`],
    /// nothing is failed and no worker is hurried.
    pub fn step_down(&mut self, now: Instant) -> Vec<(JobId, QueuedJob<R>)> {
        let jobs = &self.jobs;
        let keys = self
            .queue
            .drain(|k| jobs.get(k).is_some_and(|j| j.state == JobState::Queued));
        let mut handed = Vec::with_capacity(keys.len());
        for id in keys {
            let Some(mut job) = self.jobs.remove(id) else {
                continue;
            };
            self.timers.cancel_slot(&mut job.timer);
            let task = self
                .tasks
                .get(job.task as usize)
                .cloned()
                .unwrap_or_else(|| job.event.clone());
            handed.push((
                id,
                QueuedJob {
                    task,
                    event: job.event,
                    reply: job.reply,
                    urgent: job.urgent,
                    request_ended: job.request_ended,
                    mode: job.mode,
                    timeout: job.timeout,
                    deadline_at: job.deadline_at,
                    arrived: job.arrived,
                    chunks: job.chunks,
                    origin: job.origin,
                },
            ));
        }
        if !matches!(self.state, AppState::Stopping | AppState::Stopped) {
            let why = "replaced by a new version";
            self.wind_down(now, Some(why), why, false);
        }
        handed
    }

    /// Takes a job another engine stepped down with, as it was: it skips admission (it was
    /// admitted once, and must not be refused now) and keeps its place relative to the other
    /// adopted jobs when they are adopted in the order given. Its task is found by name; a
    /// task this version lacks counts under the first task.
    pub fn adopt(&mut self, now: Instant, job: QueuedJob<R>) -> JobId {
        let task = self.tasks.iter().position(|t| *t == job.task).unwrap_or(0);
        let deadline = job.deadline_at;
        let id = self.jobs.insert(Job {
            task: task as u32,
            urgent: job.urgent,
            request_ended: job.request_ended,
            state: JobState::Queued,
            event: job.event,
            reply: job.reply,
            mode: job.mode,
            timeout: job.timeout,
            deadline_at: deadline,
            arrived: job.arrived,
            chunks: job.chunks,
            collected_len: 0,
            timer: None,
            origin: job.origin,
        });
        // Urgent jobs were already at the front of the old queue: pushing them to the back
        // keeps the old order when the whole queue is adopted front first.
        self.enqueue(now, id, task, deadline, false);
        id
    }
}
