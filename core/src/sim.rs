//! Simulated workers: an [`Engine`] driven by in-memory workers that speak the real worker
//! protocol (every byte goes through the codecs), with time moved by hand. For tests,
//! property tests, benchmarks and fuzzing; no IO, no threads, no clock.
//!
//! The harness applies the engine's outputs as a runtime would and records what a client
//! would see: replies by reply token, kills, published events and logs.
//!
//! [`SimWorker`] is the one simulated worker of the code base: this engine harness, the node
//! tests' harness, the node fuzzer and the `simulate` example all drive it. Behind the `sim`
//! feature: not part of the core's normal build.

mod worker;

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use worker::{encode, handshake_of, Answer, Breach, Script, SimJob, SimWorker};

use crate::codec::worker::WorkerMessage;
use crate::engine::{
    Engine, EngineConfig, EngineEvent, EngineOutput, JobId, JobPolicy, JobRequest, ReplyEvent,
    ReplyMode,
};
use crate::ids::{AppId, WorkerId};
use crate::process::{ExitStatus, LogLevel};
use crate::status::Failure;

/// What a pool's simulated workers do on their own (the engine tests' shorthand for a
/// [`Script`]: `echo` answers with the whole request as one chunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    /// Handshake as soon as spawned.
    pub handshake: bool,
    /// Answer each job whose request ended with its request as one chunk, then a choke.
    pub echo: bool,
    /// Exit as soon as a signal (or, when idle, a terminate message) arrives.
    pub obey: bool,
    /// Answer every heartbeat from the node with one.
    pub heartbeat: bool,
}

impl Behaviour {
    /// Handshakes, echoes and obeys: a well-behaved worker.
    pub const ECHO: Behaviour = Behaviour {
        handshake: true,
        echo: true,
        obey: true,
        heartbeat: true,
    };
    /// Does nothing by itself; the test speaks for it.
    pub const MANUAL: Behaviour = Behaviour {
        handshake: false,
        echo: false,
        obey: false,
        heartbeat: false,
    };

    pub fn script(self) -> Script {
        Script {
            handshake: self.handshake,
            answer: if self.echo {
                Answer::EchoJoined
            } else {
                Answer::Manual
            },
            obey: self.obey,
            heartbeat: self.heartbeat,
        }
    }
}

/// A pool's simulated worker, with when each job started on it.
#[derive(Debug)]
pub struct PoolWorker {
    pub worker: SimWorker,
    /// When each job was started on this worker, by sid.
    pub invoked_at: BTreeMap<u64, Instant>,
}

impl Deref for PoolWorker {
    type Target = SimWorker;
    fn deref(&self) -> &SimWorker {
        &self.worker
    }
}

impl DerefMut for PoolWorker {
    fn deref_mut(&mut self) -> &mut SimWorker {
        &mut self.worker
    }
}

/// An engine with simulated workers. `R` is the reply token; tests often use a number.
#[derive(Debug)]
pub struct SimPool<R> {
    pub engine: Engine<R>,
    pub now: Instant,
    pub behaviour: Behaviour,
    pub workers: BTreeMap<WorkerId, PoolWorker>,
    pub replies: Vec<(R, ReplyEvent)>,
    pub events: Vec<EngineEvent>,
    pub logs: Vec<(LogLevel, String)>,
    /// Every worker ever spawned, in order.
    pub spawned: Vec<WorkerId>,
    pub stopped: bool,
}

impl<R: Clone> SimPool<R> {
    /// An engine for app `sim` with one task per name in `tasks`.
    pub fn new(now: Instant, config: EngineConfig, tasks: &[&str], behaviour: Behaviour) -> Self {
        let tasks = tasks.iter().map(|t| Arc::from(*t)).collect();
        let engine = Engine::new(now, AppId(1), Arc::from("sim"), config, tasks);
        let mut pool = Self {
            engine,
            now,
            behaviour,
            workers: BTreeMap::new(),
            replies: Vec::new(),
            events: Vec::new(),
            logs: Vec::new(),
            spawned: Vec::new(),
            stopped: false,
        };
        pool.pump();
        pool
    }

    /// Submits a job with a whole body on task 0.
    pub fn submit(&mut self, reply: R, body: &[u8], policy: JobPolicy) -> Result<JobId, Failure> {
        let event = self
            .engine
            .tasks()
            .first()
            .cloned()
            .unwrap_or_else(|| Arc::from("event"));
        let request = JobRequest {
            task: 0,
            event,
            policy,
            reply,
            mode: ReplyMode::Stream,
            origin: None,
            body: Some(vec![Bytes::copy_from_slice(body)]),
        };
        self.submit_request(request)
    }

    pub fn submit_request(&mut self, request: JobRequest<R>) -> Result<JobId, Failure> {
        let result = self.engine.submit(self.now, request);
        self.pump();
        result
    }

    /// Moves time forward, waking at every timer on the way as a runtime would, so that
    /// simulated workers answer (heartbeats, cancels) in between.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(at) = self.engine.poll_timeout().filter(|at| *at <= target) {
            self.now = self.now.max(at);
            self.engine.handle_timeout(self.now);
            self.pump();
        }
        self.now = target;
        self.engine.handle_timeout(self.now);
        self.pump();
    }

    /// Moves time to the engine's next wake-up, if any; returns whether there was one.
    pub fn advance_to_next(&mut self) -> bool {
        match self.engine.poll_timeout() {
            Some(at) => {
                self.now = self.now.max(at);
                self.engine.handle_timeout(self.now);
                self.pump();
                true
            }
            None => false,
        }
    }

    /// The worker says something.
    pub fn send(&mut self, worker: WorkerId, message: &WorkerMessage) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.said(message);
        }
        self.send_bytes(worker, &encode(std::slice::from_ref(message)));
    }

    /// The worker writes raw bytes to its channel.
    pub fn send_bytes(&mut self, worker: WorkerId, bytes: &[u8]) {
        self.engine.worker_data(self.now, worker, bytes);
        self.pump();
    }

    pub fn handshake(&mut self, worker: WorkerId) {
        self.send(worker, &handshake_of(worker));
    }

    /// The worker process ends.
    pub fn exit(&mut self, worker: WorkerId, status: ExitStatus) {
        if self.workers.remove(&worker).is_some() {
            self.engine.worker_exited(self.now, worker, status);
            self.pump();
        }
    }

    /// Replies a token received, in order.
    pub fn replies_for(&self, token: &R) -> Vec<ReplyEvent>
    where
        R: PartialEq,
    {
        self.replies
            .iter()
            .filter(|(r, _)| r == token)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Sids of jobs started on a worker and not answered yet.
    pub fn running_on(&self, worker: WorkerId) -> Vec<u64> {
        self.workers
            .get(&worker)
            .map(|w| w.jobs.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Live simulated workers that handshaked.
    pub fn ready_workers(&self) -> Vec<WorkerId> {
        self.workers
            .iter()
            .filter(|(_, w)| w.handshaked)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Applies every pending engine output, as a runtime would, until none is left.
    pub fn pump(&mut self) {
        loop {
            let mut acted = false;
            while let Some(output) = self.engine.poll_output() {
                acted = true;
                self.apply(output);
            }
            if !self.react() && !acted {
                break;
            }
        }
    }

    fn apply(&mut self, output: EngineOutput<R>) {
        match output {
            EngineOutput::Reply { reply, event } => self.replies.push((reply, event)),
            EngineOutput::Spawn { worker } => {
                self.spawned.push(worker);
                let pool_worker = PoolWorker {
                    worker: SimWorker::new(worker, self.behaviour.script()),
                    invoked_at: BTreeMap::new(),
                };
                self.workers.insert(worker, pool_worker);
            }
            EngineOutput::Kill { worker, signal } => {
                if let Some(w) = self.workers.get_mut(&worker) {
                    w.signal(signal);
                }
            }
            EngineOutput::ToWorker { worker, bytes } => {
                let Some(w) = self.workers.get_mut(&worker) else {
                    return;
                };
                // The engine tests check the engine's replies, not its channel: a breach
                // ends what this worker reads of the batch, as a real worker would.
                let messages = w.worker.receive(&bytes).unwrap_or_default();
                for message in messages {
                    if let WorkerMessage::Invoke { sid, .. } = message {
                        w.invoked_at.insert(sid, self.now);
                    }
                }
            }
            EngineOutput::Event(event) => self.events.push(event),
            EngineOutput::Log { level, message } => self.logs.push((level, message)),
            EngineOutput::Stopped => self.stopped = true,
        }
    }

    /// Lets automatic workers act on what they received; true if any did.
    fn react(&mut self) -> bool {
        let mut to_send: Vec<(WorkerId, Vec<WorkerMessage>)> = Vec::new();
        let mut to_exit = Vec::new();
        // A test may change `behaviour` mid-run: every worker follows it from then on.
        let script = self.behaviour.script();
        for (id, w) in self.workers.iter_mut() {
            w.script = script.clone();
            let mut messages: Vec<WorkerMessage> = w.greet().into_iter().collect();
            messages.extend(w.beat());
            messages.extend(w.answer());
            if w.leaving() {
                to_exit.push((*id, w.exit()));
            }
            if !messages.is_empty() {
                to_send.push((*id, messages));
            }
        }
        let acted = !to_send.is_empty() || !to_exit.is_empty();
        for (id, messages) in to_send {
            self.engine.worker_data(self.now, id, &encode(&messages));
        }
        for (id, status) in to_exit {
            if self.workers.remove(&id).is_some() {
                self.engine.worker_exited(self.now, id, status);
            }
        }
        acted
    }
}
