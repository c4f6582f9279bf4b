//! What an engine asks of the node around it.

use bytes::Bytes;

use crate::codec::http_wire::ReplyHead;
use crate::ids::WorkerId;
use crate::process::{LogLevel, Signal};
use crate::status::Failure;

/// A step in a job's reply, addressed to the submitter's reply token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyEvent {
    /// The status and headers the handler chose (`[9, sid, head]`), before any chunk;
    /// `ReplyMode::Stream` only, and only if the handler sent one. Only HTTP uses it: other
    /// submitters ignore it.
    Head(ReplyHead),
    /// One reply chunk (`ReplyMode::Stream` only).
    Chunk(Bytes),
    /// The reply ended well (`ReplyMode::Stream`).
    End,
    /// The whole reply, at its end (`ReplyMode::Collect`).
    Collected(Vec<Bytes>),
    /// The job failed; terminal.
    Error(Failure),
}

impl ReplyEvent {
    pub fn is_terminal(&self) -> bool {
        !matches!(self, ReplyEvent::Chunk(_) | ReplyEvent::Head(_))
    }
}

/// A worker's lifecycle step, as published on the pubsub (`worker` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerEvent {
    Spawned,
    Ready,
    Exited,
}

/// Something worth publishing or logging about the app itself.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    Worker {
        id: WorkerId,
        pid: Option<u32>,
        event: WorkerEvent,
        status: Option<String>,
        stderr: Option<String>,
    },
    /// A job failed, or the app hit a fault.
    Error {
        failure: Failure,
        task: Option<String>,
    },
    /// The app's state changed.
    State {
        state: &'static str,
        reason: Option<String>,
    },
}

/// One thing for the node to do on behalf of an engine.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineOutput<R> {
    Reply {
        reply: R,
        event: ReplyEvent,
    },
    /// Start this worker; the node knows how from the app's manifest.
    Spawn {
        worker: WorkerId,
    },
    Kill {
        worker: WorkerId,
        signal: Signal,
    },
    /// Bytes for the worker channel, already framed.
    ToWorker {
        worker: WorkerId,
        bytes: Bytes,
    },
    Event(EngineEvent),
    Log {
        level: LogLevel,
        message: String,
    },
    /// Every worker is gone after `stop`: the app can be dropped.
    Stopped,
}
