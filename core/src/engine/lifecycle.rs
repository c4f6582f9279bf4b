//! Workers' lives (spawn, retire, kill, exit) and the app's health (crash loops, back-off,
//! stop).

use std::time::Instant;

use bytes::BytesMut;

use super::job::JobState;
use super::output::{EngineEvent, EngineOutput, ReplyEvent, WorkerEvent};
use super::worker::{Departure, Signalled, Worker, WorkerState};
use super::{one_line, AppState, Engine, EngineTimer, BACKOFF_BASE, BACKOFF_MAX};
use crate::codec::worker as wire;
use crate::ids::WorkerId;
use crate::process::{ExitStatus, LogLevel, Signal};
use crate::status::{self, Failure};
use crate::time::after;

impl<R: Clone> Engine<R> {
    pub(super) fn spawn(&mut self, now: Instant) {
        let id = WorkerId::new(self.app_id, self.next_worker);
        self.next_worker = self.next_worker.wrapping_add(1);
        let mut worker = Worker::new(id, now, self.config.max_message);
        let at = after(now, self.config.startup_timeout);
        worker.liveness = Some(self.timers.arm(at, EngineTimer::Liveness(id)));
        self.workers.insert(id, worker);
        self.reindex(id, None);
        self.out.push_back(EngineOutput::Spawn { worker: id });
        self.publish(EngineEvent::Worker {
            id,
            pid: None,
            event: WorkerEvent::Spawned,
            status: None,
            stderr: None,
        });
    }

    /// Asks a worker to leave gracefully: no new jobs; it finishes what it holds and exits.
    /// With `hurry`, the escalation (SIGTERM, then SIGKILL) starts now rather than once it
    /// is idle.
    pub(super) fn retire(&mut self, now: Instant, worker: WorkerId, reason: &str, hurry: bool) {
        let before = self.standing(worker);
        let Some(w) = self.workers.get_mut(&worker) else {
            return;
        };
        if w.departure.is_none() {
            w.departure = Some(Departure::Retired);
        }
        self.timers.cancel_slot(&mut w.idle);
        let starting = w.state == WorkerState::Starting;
        if w.state == WorkerState::Ready {
            w.state = WorkerState::Draining;
            let mut buf = BytesMut::new();
            wire::encode_terminate(&mut buf, reason);
            self.out.push_back(EngineOutput::ToWorker {
                worker,
                bytes: buf.freeze(),
            });
        }
        let escalate = hurry || starting || w.jobs.is_empty();
        if escalate && w.termination.is_none() {
            let at = after(now, self.config.termination_timeout);
            w.termination = Some(self.timers.arm(at, EngineTimer::Termination(worker)));
        }
        if starting {
            // It cannot hear a terminate message before its handshake.
            self.signal(worker, Signal::Term);
        }
        self.reindex(worker, before);
    }

    /// Kills a worker at once. Jobs it holds fail with 500 now, not at its exit.
    pub(super) fn kill(&mut self, now: Instant, worker: WorkerId, departure: Departure) {
        let before = self.standing(worker);
        let Some(w) = self.workers.get_mut(&worker) else {
            return;
        };
        if w.departure.is_none() || departure != Departure::Retired {
            w.departure = Some(departure.clone());
        }
        w.state = WorkerState::Killed;
        for slot in w.timer_slots() {
            self.timers.cancel_slot(slot);
        }
        let jobs = std::mem::take(&mut w.jobs);
        self.reindex(worker, before);
        self.signal(worker, Signal::Kill);
        let why = match &departure {
            Departure::Fault(reason) => format!("worker died: {reason}"),
            Departure::Overran => "worker killed: a job ignored its cancel".to_owned(),
            Departure::Retired => "worker stopped".to_owned(),
        };
        self.fail_held(now, jobs, &why);
    }

    fn signal(&mut self, worker: WorkerId, signal: Signal) {
        if let Some(w) = self.workers.get_mut(&worker) {
            let level = match signal {
                Signal::Term => Signalled::Term,
                Signal::Kill => Signalled::Kill,
            };
            if w.signalled < level {
                w.signalled = level;
                self.out.push_back(EngineOutput::Kill { worker, signal });
            }
        }
    }

    /// Fails the jobs a dying worker held: 500 for those still owed an outcome.
    fn fail_held(&mut self, now: Instant, jobs: Vec<super::JobId>, why: &str) {
        for id in jobs {
            if matches!(
                self.jobs.get(id).map(|j| j.state),
                Some(JobState::Running { .. })
            ) {
                self.deliver(
                    now,
                    id,
                    ReplyEvent::Error(Failure::new(status::WORKER_FAILED, why)),
                );
            }
            self.remove_job(id);
        }
    }

    /// A worker with no jobs left: it waits for work, or, when leaving, is pushed on.
    pub(super) fn worker_became_idle(&mut self, now: Instant, worker: WorkerId) {
        let Some(w) = self.workers.get_mut(&worker) else {
            return;
        };
        if w.departure.is_some() {
            if w.termination.is_none() && w.state != WorkerState::Killed {
                let at = after(now, self.config.termination_timeout);
                w.termination = Some(self.timers.arm(at, EngineTimer::Termination(worker)));
            }
        } else if w.state == WorkerState::Ready && w.idle.is_none() {
            let at = after(now, self.config.idle_timeout);
            w.idle = Some(self.timers.arm(at, EngineTimer::Idle(worker)));
        }
    }

    /// A line the worker wrote to stderr (the runtime splits lines).
    pub fn worker_stderr(&mut self, worker: WorkerId, line: &str) {
        let Some(w) = self.workers.get_mut(&worker) else {
            return;
        };
        w.push_stderr(line);
        if w.state == WorkerState::Starting {
            // Held until the handshake: a worker that cannot start (a traceback at import)
            // is reported once, whole, by `worker_gone`, not line by line at each retry.
            w.unlogged = (w.unlogged + 1).min(w.stderr.len());
            return;
        }
        let message = format!("{}/{worker}: {}", self.app, line.trim_end());
        self.log(LogLevel::Info, message);
    }

    /// The worker said hello: the stderr lines it wrote while starting are logged now.
    pub(super) fn log_held_stderr(&mut self, worker: WorkerId) {
        let Some(w) = self.workers.get_mut(&worker) else {
            return;
        };
        let held = std::mem::take(&mut w.unlogged);
        let skip = w.stderr.len().saturating_sub(held);
        let lines: Vec<String> = w
            .stderr
            .iter()
            .skip(skip)
            .map(|line| format!("{}/{worker}: {line}", self.app))
            .collect();
        for line in lines {
            self.log(LogLevel::Info, line);
        }
    }

    /// The runtime could not start the worker at all.
    pub fn spawn_failed(&mut self, now: Instant, worker: WorkerId, error: &str) {
        // A departure changes what the worker counts for: keep the tallies and the free-slot
        // index in step, or `worker_gone` would leave its old standing behind.
        let before = self.standing(worker);
        if let Some(w) = self.workers.get_mut(&worker) {
            if w.departure.is_none() {
                w.departure = Some(Departure::Fault(format!("could not spawn: {error}")));
            }
        }
        self.reindex(worker, before);
        self.worker_gone(now, worker, None);
    }

    /// The worker's process (or thread) ended.
    pub fn worker_exited(&mut self, now: Instant, worker: WorkerId, status: ExitStatus) {
        self.worker_gone(now, worker, Some(status));
    }

    fn worker_gone(&mut self, now: Instant, worker: WorkerId, status: Option<ExitStatus>) {
        let before = self.standing(worker);
        let Some(mut w) = self.workers.remove(&worker) else {
            return;
        };
        self.reindex(worker, before);
        for slot in w.timer_slots() {
            self.timers.cancel_slot(slot);
        }
        let status_text = status.map(|s| s.to_string());
        let departure = w.departure.clone().unwrap_or_else(|| {
            let how = status_text.clone().unwrap_or_else(|| "vanished".to_owned());
            if w.state == WorkerState::Starting {
                Departure::Fault(format!("exited before its handshake ({how})"))
            } else {
                Departure::Fault(format!("exited unexpectedly ({how})"))
            }
        });
        let stderr = w.stderr_tail();
        let why = match &departure {
            Departure::Fault(reason) => format!("worker died: {}", for_callers(reason)),
            _ => format!(
                "worker died: {}",
                status_text.as_deref().unwrap_or("vanished")
            ),
        };
        let jobs = std::mem::take(&mut w.jobs);
        self.fail_held(now, jobs, &why);
        self.publish(EngineEvent::Worker {
            id: worker,
            pid: w.pid,
            event: WorkerEvent::Exited,
            status: status_text,
            stderr: (!stderr.is_empty()).then(|| stderr.clone()),
        });
        if let Departure::Fault(reason) = departure {
            let mut report = format!("worker {worker} failed: {reason}");
            if !stderr.is_empty() {
                report.push('\n');
                report.push_str(&stderr);
            }
            // Keyed by the reason and stderr's last line: earlier lines may name the worker.
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
            let key = format!("{reason}\n{}", last.unwrap_or_default());
            if let Some(line) = self.failure_log.line(now, &self.app, key, &report) {
                self.log(LogLevel::Error, line);
            }
            let told = if self.config.expose_errors {
                report.clone()
            } else {
                format!("worker {worker} failed: {}", for_callers(&reason))
            };
            self.record_failure(now, report, told);
        }
        if self.state == AppState::Stopping && self.workers.is_empty() {
            self.state = AppState::Stopped;
            self.publish(EngineEvent::State {
                state: "stopped",
                reason: None,
            });
            self.out.push_back(EngineOutput::Stopped);
            return;
        }
        self.dispatch(now);
        self.rebalance(now);
    }

    /// Counts a worker fault; too many within `restart-period` break the app.
    /// `told` is what callers hear of it (see `broken_message`).
    fn record_failure(&mut self, now: Instant, report: String, told: String) {
        self.last_error = Some(Failure::new(status::WORKER_FAILED, report.clone()));
        if self.state != AppState::Running {
            return;
        }
        self.failures.push_back(now);
        while let Some(&first) = self.failures.front() {
            if now.saturating_duration_since(first) > self.config.restart_period {
                self.failures.pop_front();
            } else {
                break;
            }
        }
        if self.failures.len() > self.config.restart_intensity as usize {
            self.break_app(now, report, told);
        }
    }

    /// The app is in a crash loop: refuse work, fail what waits, and try again after a
    /// back-off that doubles with each consecutive break.
    fn break_app(&mut self, now: Instant, reason: String, told: String) {
        // A run as long as a restart period since the last recovery makes this break a new
        // episode rather than a continuation.
        let healthy_since_recovery = self
            .recovered_at
            .is_some_and(|t| now.saturating_duration_since(t) >= self.config.restart_period);
        if healthy_since_recovery {
            self.consecutive_breaks = 0;
        }
        let factor = 1u32 << self.consecutive_breaks.min(16);
        let backoff = (BACKOFF_BASE * factor).min(BACKOFF_MAX);
        self.consecutive_breaks = self.consecutive_breaks.saturating_add(1);
        let retry_at = after(now, backoff);
        self.state = AppState::Broken {
            reason: reason.clone(),
            retry_at,
        };
        self.failures.clear();
        self.log(
            LogLevel::Error,
            // The whole report was logged with the failure itself.
            format!(
                "{}: app is broken, retrying in {backoff:?}: {}",
                self.app,
                one_line(&reason)
            ),
        );
        self.publish(EngineEvent::State {
            state: "broken",
            reason: Some(reason.clone()),
        });
        let message = format!("app is broken: {told}");
        self.broken_message = Some(told);
        self.fail_queue(now, Failure::new(status::WORKER_FAILED, message));
        for worker in self.worker_ids() {
            self.retire(now, worker, "app is broken", false);
        }
        self.recover_timer = Some(self.timers.arm(retry_at, EngineTimer::Recover));
    }

    pub(super) fn recover(&mut self, now: Instant) {
        self.recover_timer = None;
        if !matches!(self.state, AppState::Broken { .. }) {
            return;
        }
        self.state = AppState::Running;
        self.recovered_at = Some(now);
        self.log(LogLevel::Info, format!("{}: retrying the app", self.app));
        self.publish(EngineEvent::State {
            state: "running",
            reason: None,
        });
        self.rebalance(now);
    }

    fn fail_queue(&mut self, now: Instant, failure: Failure) {
        let jobs = &self.jobs;
        let queued = self
            .queue
            .drain(|k| jobs.get(k).is_some_and(|j| j.state == JobState::Queued));
        for id in queued {
            self.deliver(now, id, ReplyEvent::Error(failure.clone()));
            self.remove_job(id);
        }
    }

    /// Stops the app: queued jobs fail with 503, running ones get `termination-timeout` to
    /// finish, then their workers are terminated and killed. `EngineOutput::Stopped` follows
    /// once every worker is gone.
    pub fn stop(&mut self, now: Instant) {
        if matches!(self.state, AppState::Stopping | AppState::Stopped) {
            return;
        }
        self.fail_queue(now, Failure::new(status::UNAVAILABLE, "app is stopping"));
        self.wind_down(now, None, "app is stopping", true);
    }

    /// Enters `Stopping` (with `reason` published, if any) and asks every worker to leave,
    /// at once if `hurry`, else once idle; `Stopped` follows when the last one is gone.
    pub(super) fn wind_down(&mut self, now: Instant, reason: Option<&str>, why: &str, hurry: bool) {
        self.state = AppState::Stopping;
        self.timers.cancel_slot(&mut self.recover_timer);
        self.publish(EngineEvent::State {
            state: "stopping",
            reason: reason.map(str::to_owned),
        });
        for worker in self.worker_ids() {
            self.retire(now, worker, why, hurry);
        }
        if self.workers.is_empty() {
            self.state = AppState::Stopped;
            self.publish(EngineEvent::State {
                state: "stopped",
                reason: None,
            });
            self.out.push_back(EngineOutput::Stopped);
        }
    }
}

/// A worker's failure as a remote caller may see it: the engine's own words, without what the
/// operating system said when a spawn failed (it names the node's paths).
fn for_callers(reason: &str) -> &str {
    const SPAWN: &str = "could not spawn";
    if reason.starts_with(SPAWN) {
        SPAWN
    } else {
        reason
    }
}
