//! The one simulated worker: the worker's end of a channel, speaking the real protocol (every
//! byte through the worker codec). The engine harness ([`super::SimPool`]), the node tests'
//! harness, the node fuzzer and the `simulate` example all drive this type; each decides
//! *when* its workers act (a runtime's loop, a test's step, a fuzz byte), the worker decides
//! *what* they do, following its [`Script`].

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};

use crate::codec::frame::FrameDecoder;
use crate::codec::worker::{JobMeta, WorkerMessage, PROTOCOL_VERSION};
use crate::ids::WorkerId;
use crate::process::{ExitStatus, Signal};

/// How a simulated worker answers a job once its request has ended (or was cancelled: then
/// always a 499 error, unless `Manual`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Every request chunk back as one reply chunk each, then a choke.
    Echo,
    /// The whole request back as one reply chunk, then a choke.
    EchoJoined,
    /// These chunks, then a choke.
    Chunks(Vec<Bytes>),
    /// An error with this code and message.
    Fail(u32, String),
    /// Nothing: the test speaks for the worker (a hung worker, or a streaming one whose
    /// chunks the test sends with [`SimWorker::said`]).
    Manual,
}

/// What a simulated worker does by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Handshake as soon as it acts.
    pub handshake: bool,
    pub answer: Answer,
    /// Exit on a signal, and on a terminate message once idle.
    pub obey: bool,
    /// Answer every heartbeat from the node with one.
    pub heartbeat: bool,
}

/// A job as a simulated worker holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimJob {
    pub event: String,
    pub meta: JobMeta,
    pub chunks: Vec<Bytes>,
    /// The node sent the request's choke.
    pub ended: bool,
    pub cancelled: bool,
}

/// One simulated worker's view of its channel.
#[derive(Debug)]
pub struct SimWorker {
    pub id: WorkerId,
    pub script: Script,
    decoder: FrameDecoder,
    /// Every message the node sent, in order.
    pub received: Vec<WorkerMessage>,
    /// Jobs started and not answered yet, by sid.
    pub jobs: BTreeMap<u64, SimJob>,
    /// Sids of every invoke, in order.
    pub invoked: Vec<u64>,
    pub handshaked: bool,
    /// Asked to terminate gracefully.
    pub terminating: bool,
    pub signals: Vec<Signal>,
    /// Heartbeats from the node not answered yet.
    pub heartbeats_owed: usize,
    /// Gone: exited (or reported gone by its harness).
    pub exited: bool,
}

/// The node broke the worker protocol: bytes that do not decode, a job invoked twice, a request
/// chunk after its end, a message only a worker sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the node broke the channel of {worker}: {what}")]
pub struct Breach {
    pub worker: WorkerId,
    pub what: String,
}

impl SimWorker {
    pub fn new(id: WorkerId, script: Script) -> Self {
        Self {
            id,
            script,
            decoder: FrameDecoder::new(usize::MAX),
            received: Vec::new(),
            jobs: BTreeMap::new(),
            invoked: Vec::new(),
            handshaked: false,
            terminating: false,
            signals: Vec::new(),
            heartbeats_owed: 0,
            exited: false,
        }
    }

    /// Bytes the node wrote to the channel: the messages they complete, each already taken
    /// into the worker's view (jobs, terminate, heartbeats owed). Stops at the first breach.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Vec<WorkerMessage>, Breach> {
        self.decoder.push(bytes);
        let mut messages = Vec::new();
        loop {
            let frame = match self.decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(messages),
                Err(e) => return Err(self.breach(e.to_string())),
            };
            let message = WorkerMessage::decode(&frame)
                .map_err(|e| self.breach(format!("a bad message: {e}")))?;
            self.take_in(&message)?;
            self.received.push(message.clone());
            messages.push(message);
        }
    }

    fn take_in(&mut self, message: &WorkerMessage) -> Result<(), Breach> {
        match message {
            WorkerMessage::Invoke { sid, event, meta } => {
                let job = SimJob {
                    event: event.clone(),
                    meta: meta.clone(),
                    ..SimJob::default()
                };
                if self.jobs.insert(*sid, job).is_some() {
                    return Err(self.breach(format!("job {sid} invoked twice")));
                }
                self.invoked.push(*sid);
            }
            WorkerMessage::Chunk { sid, data } => {
                if let Some(job) = self.jobs.get_mut(sid) {
                    if job.ended {
                        return Err(self.breach("a request chunk after the request's end".into()));
                    }
                    job.chunks.push(data.clone());
                }
            }
            WorkerMessage::Choke { sid } => {
                if let Some(job) = self.jobs.get_mut(sid) {
                    job.ended = true;
                }
            }
            WorkerMessage::Cancel { sid } => {
                if let Some(job) = self.jobs.get_mut(sid) {
                    job.cancelled = true;
                }
            }
            WorkerMessage::Terminate { .. } => self.terminating = true,
            WorkerMessage::Heartbeat => self.heartbeats_owed += 1,
            other => return Err(self.breach(format!("the node sent {other:?}"))),
        }
        Ok(())
    }

    fn breach(&self, what: String) -> Breach {
        Breach {
            worker: self.id,
            what,
        }
    }

    /// The runtime signalled the worker.
    pub fn signal(&mut self, signal: Signal) {
        self.signals.push(signal);
    }

    /// The test (or fuzzer) speaks for the worker: keeps the worker's view in step (a reply's
    /// end finishes its job, a handshake counts).
    pub fn said(&mut self, message: &WorkerMessage) {
        match message {
            WorkerMessage::Choke { sid } | WorkerMessage::Error { sid, .. } => {
                self.jobs.remove(sid);
            }
            WorkerMessage::Handshake { worker_id, .. } if *worker_id == self.id.to_string() => {
                self.handshaked = true;
            }
            _ => {}
        }
    }

    /// The handshake this worker sends.
    pub fn hello(&self) -> WorkerMessage {
        handshake_of(self.id)
    }

    /// Handshakes now if its script says so and it has not (nor been signalled).
    pub fn greet(&mut self) -> Option<WorkerMessage> {
        let due = self.script.handshake && !self.handshaked && self.signals.is_empty();
        due.then(|| {
            self.handshaked = true;
            self.hello()
        })
    }

    /// A heartbeat for those the node sent, if its script answers them.
    pub fn beat(&mut self) -> Option<WorkerMessage> {
        let due = self.script.heartbeat && self.heartbeats_owed > 0;
        due.then(|| {
            self.heartbeats_owed = 0;
            WorkerMessage::Heartbeat
        })
    }

    /// Answers, following its script, every job whose request ended or was cancelled; a
    /// worker that has not handshaked, has exited or answers by hand says nothing.
    pub fn answer(&mut self) -> Vec<WorkerMessage> {
        if !self.handshaked || self.exited || self.script.answer == Answer::Manual {
            return Vec::new();
        }
        let done: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, job)| job.ended || job.cancelled)
            .map(|(sid, _)| *sid)
            .collect();
        let mut out = Vec::new();
        for sid in done {
            if let Some(job) = self.jobs.remove(&sid) {
                out.extend(reply(&self.script.answer, sid, &job));
            }
        }
        out
    }

    /// Whether an obedient worker leaves now: signalled, or told to terminate and idle.
    pub fn leaving(&self) -> bool {
        self.script.obey
            && !self.exited
            && (!self.signals.is_empty() || (self.terminating && self.jobs.is_empty()))
    }

    /// Marks the worker gone; the status it exits with (by its last signal, else 0).
    pub fn exit(&mut self) -> ExitStatus {
        self.exited = true;
        match self.signals.last() {
            Some(Signal::Kill) => ExitStatus::Signal(9),
            Some(Signal::Term) => ExitStatus::Signal(15),
            None => ExitStatus::Code(0),
        }
    }
}

/// A job's reply under `answer`.
fn reply(answer: &Answer, sid: u64, job: &SimJob) -> Vec<WorkerMessage> {
    if job.cancelled {
        return vec![WorkerMessage::Error {
            sid,
            code: 499,
            message: "cancelled".into(),
        }];
    }
    let chunks = match answer {
        Answer::Manual => return Vec::new(),
        Answer::Fail(code, message) => {
            return vec![WorkerMessage::Error {
                sid,
                code: *code,
                message: message.clone(),
            }]
        }
        Answer::Echo => job.chunks.clone(),
        Answer::EchoJoined => {
            let data: Vec<u8> = job.chunks.iter().flat_map(|c| c.iter().copied()).collect();
            vec![Bytes::from(data)]
        }
        Answer::Chunks(chunks) => chunks.clone(),
    };
    let mut out: Vec<WorkerMessage> = chunks
        .into_iter()
        .map(|data| WorkerMessage::Chunk { sid, data })
        .collect();
    out.push(WorkerMessage::Choke { sid });
    out
}

/// The handshake worker `worker` sends.
pub fn handshake_of(worker: WorkerId) -> WorkerMessage {
    WorkerMessage::Handshake {
        worker_id: worker.to_string(),
        version: PROTOCOL_VERSION,
        pid: 1000 + (worker.0 & 0xffff) as u32,
    }
}

/// Messages framed as a worker writes them to its channel.
pub fn encode(messages: &[WorkerMessage]) -> Bytes {
    let mut buf = BytesMut::new();
    for m in messages {
        m.encode_framed(&mut buf);
    }
    buf.freeze()
}
