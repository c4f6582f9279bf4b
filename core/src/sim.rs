//! Simulated workers: an [`Engine`] driven by in-memory workers that speak the real worker
//! protocol (every byte goes through the codecs), with time moved by hand. For tests,
//! property tests, benchmarks and fuzzing; no IO, no threads, no clock.
//!
//! The harness applies the engine's outputs as a runtime would and records what a client
//! would see: replies by reply token, kills, published events and logs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::codec::frame::FrameDecoder;
use crate::codec::worker::{WorkerMessage, PROTOCOL_VERSION};
use crate::engine::{
    Engine, EngineConfig, EngineEvent, EngineOutput, JobId, JobPolicy, JobRequest, ReplyEvent,
    ReplyMode,
};
use crate::ids::{AppId, WorkerId};
use crate::process::{ExitStatus, LogLevel, Signal};
use crate::status::Failure;

/// What a simulated worker does on its own.
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
}

/// One simulated worker's view of its channel.
#[derive(Debug)]
pub struct SimWorker {
    decoder: FrameDecoder,
    /// Every message the node sent, in order.
    pub received: Vec<WorkerMessage>,
    /// When each job was started on this worker, by sid.
    pub invoked_at: BTreeMap<u64, Instant>,
    /// Jobs started and not yet answered, by sid.
    pub jobs: BTreeMap<u64, SimJob>,
    pub handshaked: bool,
    /// Asked to terminate gracefully.
    pub terminating: bool,
    pub signals: Vec<Signal>,
    /// Heartbeats from the node not answered yet.
    pub heartbeats_owed: usize,
}

/// A job as a simulated worker holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimJob {
    pub event: String,
    pub chunks: Vec<Bytes>,
    pub request_ended: bool,
    pub cancelled: bool,
}

/// An engine with simulated workers. `R` is the reply token; tests often use a number.
#[derive(Debug)]
pub struct SimPool<R> {
    pub engine: Engine<R>,
    pub now: Instant,
    pub behaviour: Behaviour,
    pub workers: BTreeMap<WorkerId, SimWorker>,
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
        if let WorkerMessage::Choke { sid } | WorkerMessage::Error { sid, .. } = message {
            if let Some(w) = self.workers.get_mut(&worker) {
                w.jobs.remove(sid);
            }
        }
        let mut buf = BytesMut::new();
        message.encode_framed(&mut buf);
        self.send_bytes(worker, &buf);
    }

    /// The worker writes raw bytes to its channel.
    pub fn send_bytes(&mut self, worker: WorkerId, bytes: &[u8]) {
        self.engine.worker_data(self.now, worker, bytes);
        self.pump();
    }

    pub fn handshake(&mut self, worker: WorkerId) {
        let message = WorkerMessage::Handshake {
            worker_id: worker.to_string(),
            version: PROTOCOL_VERSION,
            pid: 1000 + (worker.0 & 0xffff) as u32,
        };
        if let Some(w) = self.workers.get_mut(&worker) {
            w.handshaked = true;
        }
        self.send(worker, &message);
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
                self.workers.insert(
                    worker,
                    SimWorker {
                        decoder: FrameDecoder::new(usize::MAX),
                        received: Vec::new(),
                        invoked_at: BTreeMap::new(),
                        jobs: BTreeMap::new(),
                        handshaked: false,
                        terminating: false,
                        signals: Vec::new(),
                        heartbeats_owed: 0,
                    },
                );
            }
            EngineOutput::Kill { worker, signal } => {
                if let Some(w) = self.workers.get_mut(&worker) {
                    w.signals.push(signal);
                }
            }
            EngineOutput::ToWorker { worker, bytes } => {
                let Some(w) = self.workers.get_mut(&worker) else {
                    return;
                };
                w.decoder.push(&bytes);
                while let Ok(Some(frame)) = w.decoder.next_frame() {
                    let Ok(message) = WorkerMessage::decode(&frame) else {
                        continue;
                    };
                    match &message {
                        WorkerMessage::Invoke { sid, event, .. } => {
                            w.invoked_at.insert(*sid, self.now);
                            let job = SimJob {
                                event: event.clone(),
                                ..SimJob::default()
                            };
                            w.jobs.insert(*sid, job);
                        }
                        WorkerMessage::Chunk { sid, data } => {
                            if let Some(job) = w.jobs.get_mut(sid) {
                                job.chunks.push(data.clone());
                            }
                        }
                        WorkerMessage::Choke { sid } => {
                            if let Some(job) = w.jobs.get_mut(sid) {
                                job.request_ended = true;
                            }
                        }
                        WorkerMessage::Cancel { sid } => {
                            if let Some(job) = w.jobs.get_mut(sid) {
                                job.cancelled = true;
                            }
                        }
                        WorkerMessage::Terminate { .. } => w.terminating = true,
                        WorkerMessage::Heartbeat => w.heartbeats_owed += 1,
                        _ => {}
                    }
                    w.received.push(message);
                }
            }
            EngineOutput::Event(event) => self.events.push(event),
            EngineOutput::Log { level, message } => self.logs.push((level, message)),
            EngineOutput::Stopped => self.stopped = true,
        }
    }

    /// Lets automatic workers act on what they received; true if any did.
    fn react(&mut self) -> bool {
        let b = self.behaviour;
        let mut to_send: Vec<(WorkerId, Vec<WorkerMessage>)> = Vec::new();
        let mut to_exit = Vec::new();
        for (id, w) in self.workers.iter_mut() {
            let mut messages = Vec::new();
            if b.handshake && !w.handshaked && w.signals.is_empty() {
                w.handshaked = true;
                messages.push(WorkerMessage::Handshake {
                    worker_id: id.to_string(),
                    version: PROTOCOL_VERSION,
                    pid: 1000 + (id.0 & 0xffff) as u32,
                });
            }
            if b.heartbeat && w.heartbeats_owed > 0 {
                w.heartbeats_owed = 0;
                messages.push(WorkerMessage::Heartbeat);
            }
            if b.echo && w.handshaked {
                let done: Vec<u64> = w
                    .jobs
                    .iter()
                    .filter(|(_, job)| job.request_ended || job.cancelled)
                    .map(|(sid, _)| *sid)
                    .collect();
                for sid in done {
                    let Some(job) = w.jobs.remove(&sid) else {
                        continue;
                    };
                    if job.cancelled {
                        messages.push(WorkerMessage::Error {
                            sid,
                            code: 499,
                            message: "cancelled".into(),
                        });
                    } else {
                        let data: Vec<u8> =
                            job.chunks.iter().flat_map(|c| c.iter().copied()).collect();
                        messages.push(WorkerMessage::Chunk {
                            sid,
                            data: Bytes::from(data),
                        });
                        messages.push(WorkerMessage::Choke { sid });
                    }
                }
            }
            if b.obey && (!w.signals.is_empty() || (w.terminating && w.jobs.is_empty())) {
                let status = match w.signals.last() {
                    Some(Signal::Kill) => ExitStatus::Signal(9),
                    Some(Signal::Term) => ExitStatus::Signal(15),
                    None => ExitStatus::Code(0),
                };
                to_exit.push((*id, status));
            }
            if !messages.is_empty() {
                to_send.push((*id, messages));
            }
        }
        let acted = !to_send.is_empty() || !to_exit.is_empty();
        for (id, messages) in to_send {
            let mut buf = BytesMut::new();
            for m in &messages {
                m.encode_framed(&mut buf);
            }
            self.engine.worker_data(self.now, id, &buf);
        }
        for (id, status) in to_exit {
            if self.workers.remove(&id).is_some() {
                self.engine.worker_exited(self.now, id, status);
            }
        }
        acted
    }
}
