//! A job: one event to handle, from arrival to its one terminal outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::ids::WorkerId;
use crate::timers::TimerHandle;

/// What the submitter asks of a job's timing and place in the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobPolicy {
    /// Goes to the front of the queue.
    pub urgent: bool,
    /// From dispatch to end (start-to-close); 504 when exceeded.
    pub timeout: Option<Duration>,
    /// From arrival to end (schedule-to-close); 520 when exceeded, and never run if it
    /// passes in the queue.
    pub deadline: Option<Duration>,
}

/// How the reply reaches the submitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Every reply chunk is handed on as it arrives (native protocol).
    Stream,
    /// Chunks are collected and handed on once, at the end (zeromq-server, pubsub); a reply
    /// larger than `limit` bytes fails with 413.
    Collect { limit: usize },
}

/// Who is asking, passed to the worker in the invoke's `meta`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub user: Option<String>,
    pub peer: Option<String>,
    /// The HTTP request an http-server job answers (`meta.http`).
    pub http: Option<crate::codec::http_wire::HttpMeta>,
}

/// Everything needed to submit a job to an engine.
#[derive(Debug, Clone)]
pub struct JobRequest<R> {
    /// Index of the task that produced the job, as given to `Engine::new`.
    pub task: usize,
    /// The event name the worker is asked to handle.
    pub event: Arc<str>,
    pub policy: JobPolicy,
    pub reply: R,
    pub mode: ReplyMode,
    pub origin: Option<Box<Origin>>,
    /// A request known in full at submission (timers, sinks, zeromq-server): its chunks,
    /// after which the request is ended. `None` streams: chunks follow with
    /// `Engine::push_chunk` and `Engine::end_request`.
    pub body: Option<Vec<Bytes>>,
}

/// Where a job is in its life. A job leaves the arena at its terminal outcome unless a worker
/// still holds its slot (then it is `Abandoned` until the worker lets go or is killed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobState {
    Queued,
    Running {
        worker: WorkerId,
        since: Instant,
    },
    /// The submitter has its outcome (timeout, deadline, cancel, reply too large), but the
    /// worker has not yet answered the cancel.
    Abandoned {
        worker: WorkerId,
    },
}

/// A small list of chunks: none or one without a heap allocation, more in a `Vec`. Most
/// requests and replies are one chunk, and a queued job's size is the engine's memory cost.
#[derive(Debug, Default)]
pub(crate) enum Chunks {
    #[default]
    Empty,
    One(Bytes),
    Many(Vec<Bytes>),
}

impl Chunks {
    pub fn from_vec(mut chunks: Vec<Bytes>) -> Self {
        match chunks.len() {
            0 => Chunks::Empty,
            1 => Chunks::One(chunks.pop().unwrap_or_default()),
            _ => Chunks::Many(chunks),
        }
    }

    pub fn push(&mut self, chunk: Bytes) {
        *self = match std::mem::take(self) {
            Chunks::Empty => Chunks::One(chunk),
            Chunks::One(first) => Chunks::Many(vec![first, chunk]),
            Chunks::Many(mut all) => {
                all.push(chunk);
                Chunks::Many(all)
            }
        };
    }

    pub fn take(&mut self) -> Vec<Bytes> {
        match std::mem::take(self) {
            Chunks::Empty => Vec::new(),
            Chunks::One(chunk) => vec![chunk],
            Chunks::Many(all) => all,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Job<R> {
    pub task: u32,
    pub urgent: bool,
    pub request_ended: bool,
    pub state: JobState,
    pub event: Arc<str>,
    pub reply: R,
    pub mode: ReplyMode,
    pub timeout: Option<Duration>,
    pub deadline_at: Option<Instant>,
    pub arrived: Instant,
    /// While queued, request chunks not yet sent to a worker; once running, the reply
    /// gathered for `ReplyMode::Collect`.
    pub chunks: Chunks,
    /// Bytes gathered in `chunks` for `ReplyMode::Collect`.
    pub collected_len: usize,
    pub timer: Option<TimerHandle>,
    pub origin: Option<Box<Origin>>,
}
