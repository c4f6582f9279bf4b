//! What happens when an engine timer fires.

use std::time::Instant;

use bytes::BytesMut;

use super::job::JobState;
use super::output::EngineOutput;
use super::worker::{Departure, Signalled, WorkerState};
use super::{AppState, Engine, EngineTimer, JobId};
use crate::codec::worker as wire;
use crate::ids::WorkerId;
use crate::process::{LogLevel, Signal};
use crate::status::{self, Failure};
use crate::time::after;

impl<R: Clone> Engine<R> {
    /// Fires every timer due at `now`, and lets the pool policy look at the pool if it asked
    /// to.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((handle, timer)) = self.timers.pop_due(now) {
            match timer {
                EngineTimer::Job(id) => {
                    if let Some(job) = self.jobs.get_mut(id) {
                        if job.timer == Some(handle) {
                            job.timer = None;
                            self.job_expired(now, id);
                        }
                    }
                }
                EngineTimer::Liveness(w) => self.liveness_check(now, w),
                EngineTimer::Heartbeat(w) => self.send_heartbeat(now, w),
                EngineTimer::Idle(w) => self.idle_expired(now, w),
                EngineTimer::Termination(w) => self.escalate(now, w),
                EngineTimer::Recover => self.recover(now),
            }
        }
        if self.policy.next_wake().is_some_and(|at| at <= now) {
            self.rebalance(now);
        }
    }

    fn job_expired(&mut self, now: Instant, id: JobId) {
        let Some(job) = self.jobs.get(id) else { return };
        match job.state {
            JobState::Queued => {
                let failure = Failure::new(status::DEADLINE, "deadline expired in the queue");
                self.end_early(now, id, failure);
            }
            JobState::Running { worker, .. } => {
                let deadline_passed = job.deadline_at.is_some_and(|d| d <= now);
                let failure = if deadline_passed {
                    Failure::new(status::DEADLINE, "deadline expired")
                } else {
                    let t = job.timeout.or(self.config.job_timeout).unwrap_or_default();
                    Failure::new(
                        status::TIMEOUT,
                        format!("timed out after {} ms", t.as_millis()),
                    )
                };
                let task = self
                    .tasks
                    .get(job.task as usize)
                    .cloned()
                    .unwrap_or_default();
                let message = format!(
                    "{}/{worker}: job {} ({task}) {}; cancelling it",
                    self.app,
                    id.to_u64(),
                    failure.message
                );
                self.log(LogLevel::Warn, message);
                self.end_early(now, id, failure);
            }
            JobState::Abandoned { worker } => {
                // The worker did not let go of a cancelled job in time.
                let message = format!(
                    "{}/{worker}: did not let go of cancelled job {} within {} ms; killing it",
                    self.app,
                    id.to_u64(),
                    self.config.termination_timeout.as_millis()
                );
                self.log(LogLevel::Warn, message);
                self.kill(now, worker, Departure::Overran);
            }
        }
    }

    fn liveness_check(&mut self, now: Instant, worker: WorkerId) {
        let Some(w) = self.workers.get_mut(&worker) else {
            return;
        };
        w.liveness = None;
        match w.state {
            WorkerState::Starting => {
                let mut reason = format!(
                    "no handshake within {} ms",
                    self.config.startup_timeout.as_millis()
                );
                let tail = w.stderr_tail();
                if !tail.is_empty() {
                    reason.push_str("; stderr:\n");
                    reason.push_str(&tail);
                }
                self.kill(now, worker, Departure::Fault(reason));
            }
            WorkerState::Ready | WorkerState::Draining => {
                let due = after(w.last_heard, self.config.heartbeat_timeout);
                if due <= now {
                    let reason = format!(
                        "silent for {} ms (heartbeat timeout)",
                        self.config.heartbeat_timeout.as_millis()
                    );
                    self.kill(now, worker, Departure::Fault(reason));
                } else {
                    w.liveness = Some(self.timers.arm(due, EngineTimer::Liveness(worker)));
                }
            }
            WorkerState::Killed => {}
        }
    }

    fn send_heartbeat(&mut self, now: Instant, worker: WorkerId) {
        let Some(w) = self.workers.get_mut(&worker) else {
            return;
        };
        w.heartbeat = None;
        if !matches!(w.state, WorkerState::Ready | WorkerState::Draining) {
            return;
        }
        let at = after(now, self.config.heartbeat_interval);
        w.heartbeat = Some(self.timers.arm(at, EngineTimer::Heartbeat(worker)));
        let mut buf = BytesMut::new();
        wire::encode_heartbeat(&mut buf);
        self.out.push_back(EngineOutput::ToWorker {
            worker,
            bytes: buf.freeze(),
        });
    }

    fn idle_expired(&mut self, now: Instant, worker: WorkerId) {
        let Some(w) = self.workers.get_mut(&worker) else {
            return;
        };
        w.idle = None;
        if !w.accepts_jobs() || !w.jobs.is_empty() {
            return;
        }
        let active = self.tally.starting + self.tally.accepting;
        if active > self.config.pool_min {
            self.retire(now, worker, "idle", false);
        }
    }

    fn escalate(&mut self, now: Instant, worker: WorkerId) {
        let Some(w) = self.workers.get_mut(&worker) else {
            return;
        };
        w.termination = None;
        match w.signalled {
            Signalled::Nothing => {
                let at = after(now, self.config.termination_timeout);
                w.termination = Some(self.timers.arm(at, EngineTimer::Termination(worker)));
                self.signal_worker(worker, Signal::Term);
            }
            Signalled::Term => self.signal_worker(worker, Signal::Kill),
            Signalled::Kill => {}
        }
    }

    fn signal_worker(&mut self, worker: WorkerId, signal: Signal) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.signalled = match signal {
                Signal::Term => Signalled::Term,
                Signal::Kill => Signalled::Kill,
            };
            self.out.push_back(EngineOutput::Kill { worker, signal });
        }
    }

    /// Whether the engine is in the state `stop` leads to.
    pub fn is_stopped(&self) -> bool {
        self.state == AppState::Stopped
    }
}
