//! The per-app engine: admission, the queue, dispatch to workers, policies, the pool and its
//! workers' lifecycles, and the app's health. It is a state machine like the node around it:
//! methods take `now` and inputs, [`Engine::poll_output`] yields what to do, and
//! [`Engine::poll_timeout`] says when it next needs time.
//!
//! The engine does not know what a reply means to its submitter: each job carries a reply
//! token `R` chosen by the node (a client address, a pubsub field), handed back with every
//! reply event.

pub mod config;
mod dispatch;
mod failure_log;
mod handover;
mod info;
mod job;
mod lifecycle;
pub mod output;
pub mod pool;
mod queue;
mod timeouts;
mod worker;
mod worker_messages;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::arena::Arena;
pub use crate::arena::Key as JobId;
use crate::ids::{AppId, IdMap, WorkerId};
use crate::stats::TaskStats;
use crate::status::{self, Failure};
use crate::time::after;
use crate::timers::{TimerHandle, Timers};
pub use config::{Backend, BusynessConfig, EngineConfig, PoolPolicyConfig};
pub use failure_log::{REPEAT_BURST, REPEAT_WINDOW};

pub use handover::QueuedJob;
pub use info::{EngineInfo, WorkerCounts};
pub use job::{JobPolicy, JobRequest, Origin, ReplyMode};
pub use output::{EngineEvent, EngineOutput, ReplyEvent, WorkerEvent};
pub use pool::{PoolPolicy, PoolSample};
pub use worker::WorkerState;

use job::{Chunks, Job, JobState};
use queue::JobQueue;
use worker::Worker;

/// How long the first back-off after an app breaks lasts; each consecutive break doubles it.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The longest back-off between attempts to bring a broken app back.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// The app's health as its engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppState {
    Running,
    /// Workers failed more than `restart-intensity` times within `restart-period`; new jobs
    /// are refused until the back-off ends.
    Broken {
        reason: String,
        retry_at: Instant,
    },
    /// `stop` was called; workers are finishing.
    Stopping,
    /// Every worker is gone.
    Stopped,
}

impl AppState {
    pub fn name(&self) -> &'static str {
        match self {
            AppState::Running => "running",
            AppState::Broken { .. } => "broken",
            AppState::Stopping => "stopping",
            AppState::Stopped => "stopped",
        }
    }
}

/// What an engine timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EngineTimer {
    /// The job's timeout or deadline, or, once abandoned, the wait for its worker to let go.
    Job(JobId),
    /// Startup timeout while starting, heartbeat timeout after.
    Liveness(WorkerId),
    /// Time to send a heartbeat.
    Heartbeat(WorkerId),
    Idle(WorkerId),
    /// Escalate a leaving worker: SIGTERM, then SIGKILL.
    Termination(WorkerId),
    /// End of a broken app's back-off.
    Recover,
}

/// Running totals of workers that count towards the pool, kept in step with every change
/// (see `Engine::reindex`) so each decision is O(1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    starting: usize,
    accepting: usize,
    busy_slots: usize,
    busy_workers: usize,
}

/// One app's engine. `R` is the node's reply token.
#[derive(Debug)]
pub struct Engine<R> {
    app_id: AppId,
    app: Arc<str>,
    config: EngineConfig,
    tasks: Vec<Arc<str>>,
    state: AppState,
    jobs: Arena<Job<R>>,
    queue: JobQueue,
    workers: IdMap<WorkerId, Worker>,
    /// Workers that take jobs and have a free slot, by (jobs held, id): the first is the
    /// least loaded, ties going to the oldest.
    free: BTreeSet<(usize, WorkerId)>,
    tally: Tally,
    next_worker: u32,
    timers: Timers<EngineTimer>,
    recover_timer: Option<TimerHandle>,
    policy: Box<dyn PoolPolicy>,
    failures: VecDeque<Instant>,
    consecutive_breaks: u32,
    recovered_at: Option<Instant>,
    last_error: Option<Failure>,
    /// Whether any worker of this engine ever finished its handshake: until one has, a
    /// worker failure means the app's code cannot start at all.
    ever_ready: bool,
    /// What the log has said of worker failures, to log repeats short and few.
    failure_log: failure_log::FailureLog,
    /// What a caller is told while the app is broken: the failure in one line, or the whole
    /// report with `expose-errors`.
    broken_message: Option<String>,
    stats: Vec<TaskStats>,
    out: VecDeque<EngineOutput<R>>,
}

impl<R: Clone> Engine<R> {
    /// An engine for `app`, whose jobs come from `tasks` (job requests name a task by its
    /// index here). Workers up to `pool-min` are asked for at once.
    pub fn new(
        now: Instant,
        app_id: AppId,
        app: Arc<str>,
        config: EngineConfig,
        tasks: Vec<Arc<str>>,
    ) -> Self {
        let policy = pool::from_config(&config);
        let stats = tasks.iter().map(|_| TaskStats::default()).collect();
        let mut engine = Self {
            app_id,
            app,
            config,
            tasks,
            state: AppState::Running,
            jobs: Arena::new(),
            queue: JobQueue::default(),
            workers: IdMap::default(),
            free: BTreeSet::new(),
            tally: Tally::default(),
            next_worker: 0,
            timers: Timers::new(),
            recover_timer: None,
            policy,
            failures: VecDeque::new(),
            consecutive_breaks: 0,
            recovered_at: None,
            last_error: None,
            ever_ready: false,
            failure_log: failure_log::FailureLog::default(),
            broken_message: None,
            stats,
            out: VecDeque::new(),
        };
        engine.rebalance(now);
        engine
    }

    /// New pool bounds (`pool-min` ≤ `pool-limit`, the limit at least 1; the caller checks):
    /// workers are started or idle ones retired to fit at once, busy ones above the limit
    /// leave once idle.
    pub fn scale(&mut self, now: Instant, pool_min: usize, pool_limit: usize) {
        self.config.pool_min = pool_min;
        self.config.pool_limit = pool_limit.max(1);
        self.rebalance(now);
    }

    /// Replaces the pool policy (the manifest's choice is the default).
    pub fn set_pool_policy(&mut self, policy: Box<dyn PoolPolicy>) {
        self.policy = policy;
    }

    pub fn app(&self) -> &Arc<str> {
        &self.app
    }

    pub fn app_id(&self) -> AppId {
        self.app_id
    }

    /// Whether the app's code cannot start: it is broken, or every worker it ever started
    /// failed before its handshake. The reason, cut to one line, for listings.
    pub fn failing(&self) -> Option<String> {
        match &self.state {
            AppState::Broken { reason, .. } => Some(one_line(reason)),
            AppState::Running if !self.ever_ready => {
                self.last_error.as_ref().map(|f| one_line(&f.message))
            }
            _ => None,
        }
    }

    /// Whether any worker of this engine ever finished its handshake.
    pub fn ever_ready(&self) -> bool {
        self.ever_ready
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn tasks(&self) -> &[Arc<str>] {
        &self.tasks
    }

    /// Jobs waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Jobs the engine knows of: queued, running, or abandoned but still held by a worker.
    pub fn jobs_in_flight(&self) -> usize {
        self.jobs.len()
    }

    /// Workers that exist (any state), which `pool-limit` bounds.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Jobs each live worker holds, by worker.
    pub fn worker_loads(&self) -> Vec<(WorkerId, WorkerState, usize)> {
        let mut loads: Vec<_> = self
            .workers
            .values()
            .map(|w| (w.id, w.state, w.jobs.len()))
            .collect();
        loads.sort_unstable_by_key(|(id, _, _)| *id);
        loads
    }

    /// Every worker's id, oldest first.
    fn worker_ids(&self) -> Vec<WorkerId> {
        let mut ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Admits a job, or says why not. An admitted job gets exactly one terminal
    /// `ReplyEvent` later; a refused one gets none (the caller answers with the failure).
    pub fn submit(&mut self, now: Instant, request: JobRequest<R>) -> Result<JobId, Failure> {
        let task = request.task.min(self.stats.len().saturating_sub(1));
        if let Err(failure) = self.admission() {
            if let Some(stats) = self.stats.get_mut(task) {
                stats.rejected(failure.code);
            }
            return Err(failure);
        }
        let (chunks, request_ended) = match request.body {
            Some(chunks) => (Chunks::from_vec(chunks), true),
            None => (Chunks::Empty, false),
        };
        let job = Job {
            task: task as u32,
            urgent: request.policy.urgent,
            request_ended,
            state: JobState::Queued,
            event: request.event,
            reply: request.reply,
            mode: request.mode,
            timeout: request.policy.timeout,
            deadline_at: request.policy.deadline.map(|d| after(now, d)),
            arrived: now,
            chunks,
            collected_len: 0,
            timer: None,
            origin: request.origin,
        };
        let deadline = job.deadline_at;
        let urgent = job.urgent;
        let id = self.jobs.insert(job);
        self.enqueue(now, id, task, deadline, urgent);
        Ok(id)
    }

    /// Counts an admitted job, arms its deadline, queues it and lets it run if it can.
    fn enqueue(
        &mut self,
        now: Instant,
        id: JobId,
        task: usize,
        deadline: Option<Instant>,
        front: bool,
    ) {
        if let Some(stats) = self.stats.get_mut(task) {
            stats.accepted();
        }
        if let Some(at) = deadline {
            let handle = self.timers.arm(at, EngineTimer::Job(id));
            if let Some(job) = self.jobs.get_mut(id) {
                job.timer = Some(handle);
            }
        }
        self.queue.push(id, front);
        self.dispatch(now);
        self.rebalance(now);
    }

    fn admission(&self) -> Result<(), Failure> {
        match &self.state {
            AppState::Running => {}
            AppState::Broken { reason, .. } => {
                let told = self.broken_message.as_deref().unwrap_or(reason);
                return Err(Failure::new(
                    status::UNAVAILABLE,
                    format!("app is broken: {told}"),
                ));
            }
            AppState::Stopping | AppState::Stopped => {
                return Err(Failure::new(status::UNAVAILABLE, "app is stopping"))
            }
        }
        if self.queue.len() >= self.config.queue_limit {
            return Err(Failure::new(status::UNAVAILABLE, "queue is full"));
        }
        Ok(())
    }

    /// One more request chunk for a streaming job. Chunks for a job that already ended are
    /// dropped (the submitter learns of the end through its reply).
    pub fn push_chunk(&mut self, job: JobId, data: Bytes) {
        let Some(j) = self.jobs.get_mut(job) else {
            return;
        };
        if j.request_ended {
            return;
        }
        match j.state {
            JobState::Queued => j.chunks.push(data),
            JobState::Running { worker, .. } => {
                let mut buf = bytes::BytesMut::new();
                crate::codec::worker::encode_chunk(&mut buf, job.to_u64(), &data);
                self.out.push_back(EngineOutput::ToWorker {
                    worker,
                    bytes: buf.freeze(),
                });
            }
            JobState::Abandoned { .. } => {}
        }
    }

    /// The end of a streaming job's request.
    pub fn end_request(&mut self, job: JobId) {
        let Some(j) = self.jobs.get_mut(job) else {
            return;
        };
        if j.request_ended {
            return;
        }
        j.request_ended = true;
        if let JobState::Running { worker, .. } = j.state {
            let mut buf = bytes::BytesMut::new();
            crate::codec::worker::encode_choke(&mut buf, job.to_u64());
            self.out.push_back(EngineOutput::ToWorker {
                worker,
                bytes: buf.freeze(),
            });
        }
    }

    /// The submitter gave up on a job: it ends with 499 at once, and its worker, if any, is
    /// asked to stop it.
    pub fn cancel(&mut self, now: Instant, job: JobId) {
        if self
            .jobs
            .get(job)
            .is_some_and(|j| !matches!(j.state, JobState::Abandoned { .. }))
        {
            self.end_early(now, job, Failure::new(status::CANCELLED, "cancelled"));
        }
    }

    /// Whether a job is still owed its terminal reply.
    pub fn is_open(&self, job: JobId) -> bool {
        self.jobs
            .get(job)
            .is_some_and(|j| !matches!(j.state, JobState::Abandoned { .. }))
    }

    pub fn poll_output(&mut self) -> Option<EngineOutput<R>> {
        self.out.pop_front()
    }

    /// When the engine next needs `handle_timeout`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.timers.next_due(), self.policy.next_wake()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn log(&mut self, level: crate::process::LogLevel, message: String) {
        self.out.push_back(EngineOutput::Log { level, message });
    }

    fn publish(&mut self, event: EngineEvent) {
        self.out.push_back(EngineOutput::Event(event));
    }
}

/// A multi-line report (a failure and the worker's stderr, often a traceback) as one line:
/// its first line and, if there are more, its last non-empty one (a traceback's exception).
pub fn one_line(report: &str) -> String {
    let mut lines = report.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default();
    match lines.next_back() {
        Some(last) => format!("{first}: {last}"),
        None => first.to_owned(),
    }
}
