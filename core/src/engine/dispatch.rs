//! Moving jobs: from the queue to workers, and from workers to their terminal outcome; and
//! keeping the pool's indexes (free slots, tallies) in step with every such move.

use std::time::Instant;

use bytes::BytesMut;

use super::job::{Chunks, JobState};
use super::output::{EngineOutput, ReplyEvent};
use super::worker::{Worker, WorkerState};
use super::{Engine, EngineTimer, JobId, PoolSample, ReplyMode, Tally};
use crate::codec::worker::{self as wire, MetaRef};
use crate::ids::WorkerId;
use crate::status::Failure;
use crate::time::after;

/// What a worker's state contributes to the pool's indexes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Standing {
    tally: Tally,
    free: Option<(usize, WorkerId)>,
}

impl Standing {
    fn of(worker: &Worker, concurrency: usize) -> Self {
        let mut tally = Tally::default();
        let mut free = None;
        if worker.departure.is_none() {
            match worker.state {
                WorkerState::Starting => tally.starting = 1,
                WorkerState::Ready => {
                    tally.accepting = 1;
                    tally.busy_slots = worker.jobs.len();
                    tally.busy_workers = usize::from(!worker.jobs.is_empty());
                    if worker.jobs.len() < concurrency {
                        free = Some((worker.jobs.len(), worker.id));
                    }
                }
                WorkerState::Draining | WorkerState::Killed => {}
            }
        }
        Standing { tally, free }
    }
}

impl<R: Clone> Engine<R> {
    /// What a worker counts for now; take it before changing the worker, then `reindex`.
    pub(super) fn standing(&self, worker: WorkerId) -> Option<Standing> {
        self.workers
            .get(&worker)
            .map(|w| Standing::of(w, self.config.concurrency))
    }

    /// Brings the tallies and the free-slot index in step after a worker changed (or left:
    /// then it is no longer in `workers`).
    pub(super) fn reindex(&mut self, worker: WorkerId, before: Option<Standing>) {
        let after = self.standing(worker);
        if let Some(b) = before {
            let t = &mut self.tally;
            t.starting -= b.tally.starting;
            t.accepting -= b.tally.accepting;
            t.busy_slots -= b.tally.busy_slots;
            t.busy_workers -= b.tally.busy_workers;
            if let Some(entry) = b.free {
                self.free.remove(&entry);
            }
        }
        if let Some(a) = after {
            let t = &mut self.tally;
            t.starting += a.tally.starting;
            t.accepting += a.tally.accepting;
            t.busy_slots += a.tally.busy_slots;
            t.busy_workers += a.tally.busy_workers;
            if let Some(entry) = a.free {
                self.free.insert(entry);
            }
        }
    }

    /// Hands queued jobs to free workers, least loaded first.
    pub(super) fn dispatch(&mut self, now: Instant) {
        while !self.queue.is_empty() {
            let Some(&(_, worker)) = self.free.first() else {
                return;
            };
            let jobs = &self.jobs;
            let Some(job) = self
                .queue
                .pop(|k| jobs.get(k).is_some_and(|j| j.state == JobState::Queued))
            else {
                return;
            };
            // Its deadline timer may be due at this very instant and not yet fired.
            if self
                .jobs
                .get(job)
                .and_then(|j| j.deadline_at)
                .is_some_and(|d| d <= now)
            {
                let failure =
                    Failure::new(crate::status::DEADLINE, "deadline expired in the queue");
                self.deliver(now, job, ReplyEvent::Error(failure));
                self.remove_job(job);
                continue;
            }
            self.start_job(now, job, worker);
        }
    }

    fn start_job(&mut self, now: Instant, id: JobId, worker: WorkerId) {
        let before = self.standing(worker);
        let Some(w) = self.workers.get_mut(&worker) else {
            // The free-slot index named a worker that is gone: a bookkeeping bug. Never lose
            // the job for it: drop the stale entry and put the job back at the front.
            debug_assert!(false, "dispatch chose {worker}, which is not in the pool");
            self.free.retain(|(_, w)| *w != worker);
            self.queue.push(id, true);
            return;
        };
        w.jobs.push(id);
        self.timers.cancel_slot(&mut w.idle);
        self.reindex(worker, before);

        let Some(job) = self.jobs.get_mut(id) else {
            return;
        };
        job.state = JobState::Running { worker, since: now };
        self.timers.cancel_slot(&mut job.timer);
        let timeout = job.timeout.or(self.config.job_timeout);
        let timeout_at = timeout.map(|t| after(now, t));
        let deadline_at = job.deadline_at;
        let expires = match (timeout_at, deadline_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(at) = expires {
            job.timer = Some(self.timers.arm(at, EngineTimer::Job(id)));
        }

        let origin = job.origin.as_deref();
        let meta = MetaRef {
            urgent: job.urgent,
            timeout_ms: timeout.map(|t| t.as_millis() as u64),
            deadline_ms: deadline_at.map(|d| d.saturating_duration_since(now).as_millis() as u64),
            user: origin.and_then(|o| o.user.as_deref()),
            peer: origin.and_then(|o| o.peer.as_deref()),
            task: self.tasks.get(job.task as usize).map(|t| &**t),
            http: origin.and_then(|o| o.http.as_ref()),
        };
        let sid = id.to_u64();
        let chunks = job.chunks.take();
        // One buffer, sized once, for the invoke, the request so far and its end.
        let payload: usize = chunks.iter().map(|c| c.len() + 24).sum();
        let mut buf = BytesMut::with_capacity(96 + job.event.len() + payload);
        wire::encode_invoke_ref(&mut buf, sid, &job.event, meta);
        for chunk in &chunks {
            wire::encode_chunk(&mut buf, sid, chunk);
        }
        if job.request_ended {
            wire::encode_choke(&mut buf, sid);
        }
        self.out.push_back(EngineOutput::ToWorker {
            worker,
            bytes: buf.freeze(),
        });
    }

    /// Asks the pool policy for a size and moves the pool towards it.
    pub(super) fn rebalance(&mut self, now: Instant) {
        if self.state != super::AppState::Running {
            return;
        }
        let t = self.tally;
        let active = t.starting + t.accepting;
        let sample = PoolSample {
            now,
            queued: self.queue.len(),
            busy_slots: t.busy_slots,
            busy_workers: t.busy_workers,
            ready: t.accepting,
            starting: t.starting,
            active,
            pool_min: self.config.pool_min,
            pool_limit: self.config.pool_limit,
            concurrency: self.config.concurrency,
        };
        let target = self.policy.target(&sample).min(self.config.pool_limit);
        if target > active {
            let room = self.config.pool_limit.saturating_sub(self.workers.len());
            for _ in 0..(target - active).min(room) {
                self.spawn(now);
            }
        } else if target < active {
            let floor = target.max(self.config.pool_min);
            let mut surplus = active.saturating_sub(floor);
            // Idle workers only, newest first, so load stays on the warm ones.
            let idle: Vec<WorkerId> = self
                .free
                .iter()
                .rev()
                .filter(|(load, _)| *load == 0)
                .map(|(_, w)| *w)
                .collect();
            for worker in idle {
                if surplus == 0 {
                    break;
                }
                self.retire(now, worker, "pool shrinks", false);
                surplus -= 1;
            }
        }
    }

    /// A reply step from a worker for a job it holds.
    pub(super) fn reply_from_worker(
        &mut self,
        now: Instant,
        worker: WorkerId,
        id: JobId,
        event: ReplyEvent,
    ) {
        let Some(job) = self.jobs.get_mut(id) else {
            return;
        };
        match job.state {
            JobState::Running { worker: holder, .. } if holder == worker => {}
            JobState::Abandoned { worker: holder } if holder == worker => {
                // The submitter already has its outcome; the worker letting go is all we need.
                if event.is_terminal() {
                    self.release(now, id, false);
                }
                return;
            }
            _ => return,
        }
        match event {
            ReplyEvent::Head(head) => {
                // Only a streamed reply has a place for it; a collected one has no head.
                if job.mode == ReplyMode::Stream {
                    let reply = job.reply.clone();
                    let event = ReplyEvent::Head(head);
                    self.out.push_back(EngineOutput::Reply { reply, event });
                }
            }
            ReplyEvent::Chunk(data) => match job.mode {
                ReplyMode::Stream => {
                    let reply = job.reply.clone();
                    self.out.push_back(EngineOutput::Reply {
                        reply,
                        event: ReplyEvent::Chunk(data),
                    });
                }
                ReplyMode::Collect { limit } => {
                    job.collected_len = job.collected_len.saturating_add(data.len());
                    job.chunks.push(data);
                    if job.collected_len > limit {
                        let message = format!("reply is larger than {limit} bytes");
                        self.end_early(now, id, Failure::new(crate::status::TOO_LARGE, message));
                    }
                }
            },
            ReplyEvent::End | ReplyEvent::Collected(_) => {
                let event = match job.mode {
                    ReplyMode::Stream => ReplyEvent::End,
                    ReplyMode::Collect { .. } => ReplyEvent::Collected(job.chunks.take()),
                };
                self.deliver(now, id, event);
                self.release(now, id, true);
            }
            ReplyEvent::Error(failure) => {
                self.deliver(now, id, ReplyEvent::Error(failure));
                self.release(now, id, true);
            }
        }
    }

    /// Ends a job for its submitter before its worker is done with it (timeout, deadline,
    /// cancel, reply too large). A queued job simply leaves; a running one is abandoned: its
    /// worker is told to cancel and must let go within `termination-timeout`.
    pub(super) fn end_early(&mut self, now: Instant, id: JobId, failure: Failure) {
        let Some(job) = self.jobs.get(id) else { return };
        match job.state {
            JobState::Queued => {
                self.deliver(now, id, ReplyEvent::Error(failure));
                self.remove_job(id);
                let jobs = &self.jobs;
                self.queue
                    .forget_one(|k| jobs.get(*k).is_some_and(|j| j.state == JobState::Queued));
            }
            JobState::Running { worker, .. } => {
                self.deliver(now, id, ReplyEvent::Error(failure));
                let at = after(now, self.config.termination_timeout);
                let Some(job) = self.jobs.get_mut(id) else {
                    return;
                };
                job.state = JobState::Abandoned { worker };
                job.chunks = Chunks::Empty;
                self.timers.cancel_slot(&mut job.timer);
                job.timer = Some(self.timers.arm(at, EngineTimer::Job(id)));
                let mut buf = BytesMut::new();
                wire::encode_cancel(&mut buf, id.to_u64());
                self.out.push_back(EngineOutput::ToWorker {
                    worker,
                    bytes: buf.freeze(),
                });
            }
            JobState::Abandoned { .. } => {}
        }
    }

    /// Hands a job's terminal (or streamed) reply to its submitter and records its stats.
    /// Only for jobs still owed their outcome.
    pub(super) fn deliver(&mut self, now: Instant, id: JobId, event: ReplyEvent) {
        let Some(job) = self.jobs.get(id) else { return };
        let (wait, run) = match job.state {
            JobState::Queued => (now.saturating_duration_since(job.arrived), None),
            JobState::Running { since, .. } => (
                since.saturating_duration_since(job.arrived),
                Some(now.saturating_duration_since(since)),
            ),
            JobState::Abandoned { .. } => return,
        };
        let code = match &event {
            ReplyEvent::Error(f) => Some(f.code),
            _ => None,
        };
        if let Some(stats) = self.stats.get_mut(job.task as usize) {
            stats.finished(code, wait, run);
        }
        let reply = job.reply.clone();
        self.out.push_back(EngineOutput::Reply { reply, event });
    }

    /// A worker lets go of a job it held; `served` counts it towards `max-requests`.
    pub(super) fn release(&mut self, now: Instant, id: JobId, served: bool) {
        let worker = match self.jobs.get(id).map(|j| j.state) {
            Some(JobState::Running { worker, .. }) | Some(JobState::Abandoned { worker }) => worker,
            _ => return,
        };
        self.remove_job(id);
        let before = self.standing(worker);
        let Some(w) = self.workers.get_mut(&worker) else {
            return;
        };
        w.jobs.retain(|j| *j != id);
        if served {
            w.served += 1;
        }
        let recycle = self.config.max_requests > 0 && w.served >= self.config.max_requests;
        let now_idle = w.jobs.is_empty();
        self.reindex(worker, before);
        if recycle {
            self.retire(now, worker, "max-requests reached", false);
        }
        // Queued work first: a worker that gets a job at once needs no idle timer.
        self.dispatch(now);
        if now_idle && !recycle && self.workers.get(&worker).is_some_and(|w| w.jobs.is_empty()) {
            self.worker_became_idle(now, worker);
        }
        self.rebalance(now);
    }

    /// Forgets a job entirely, with its timer.
    pub(super) fn remove_job(&mut self, id: JobId) {
        if let Some(mut job) = self.jobs.remove(id) {
            self.timers.cancel_slot(&mut job.timer);
        }
    }
}
