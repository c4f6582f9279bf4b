//! A worker as the engine sees it: its lifecycle state, the jobs it holds and its timers.

use std::collections::VecDeque;
use std::time::Instant;

use crate::arena::Key;
use crate::codec::frame::FrameDecoder;
use crate::ids::WorkerId;
use crate::timers::TimerHandle;

/// How many stderr lines of a worker are kept for error reports.
pub const STDERR_TAIL_LINES: usize = 20;
/// How long one kept stderr line may be; longer ones are cut.
pub const STDERR_LINE_MAX: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkerState {
    /// Spawned; no handshake yet. `startup-timeout` runs.
    Starting,
    /// Handshaked; takes jobs while it has free slots.
    Ready,
    /// Asked to leave (idle, recycled, app stopping): takes no new jobs, finishes its own.
    Draining,
    /// Sent a signal; only its exit is awaited.
    Killed,
}

/// Why the engine got rid of a worker. Faults count towards crash-loop detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Departure {
    /// The engine asked it to leave (idle, recycling, stop): not a fault.
    Retired,
    /// Killed because a job it held ignored its cancel: the job's policy, not a crash.
    Overran,
    /// A fault, with its description.
    Fault(String),
}

#[derive(Debug)]
pub(crate) struct Worker {
    pub id: WorkerId,
    pub state: WorkerState,
    pub pid: Option<u32>,
    pub jobs: Vec<Key>,
    pub served: u64,
    pub last_heard: Instant,
    pub decoder: FrameDecoder,
    pub stderr: VecDeque<String>,
    /// Lines of `stderr` written before the handshake and not logged yet: a worker that
    /// fails to start has them in its failure report instead, once per distinct failure.
    pub unlogged: usize,
    /// Set once the engine decided this worker goes; the first reason wins.
    pub departure: Option<Departure>,
    /// Startup timeout while starting, heartbeat timeout once ready.
    pub liveness: Option<TimerHandle>,
    pub heartbeat: Option<TimerHandle>,
    pub idle: Option<TimerHandle>,
    /// Escalation while draining or killed: SIGTERM, then SIGKILL.
    pub termination: Option<TimerHandle>,
    pub signalled: Signalled,
    /// Undecodable messages seen, to rate-limit their log lines.
    pub bad_messages: u32,
}

/// How far a leaving worker has been pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Signalled {
    Nothing,
    Term,
    Kill,
}

impl Worker {
    pub fn new(id: WorkerId, now: Instant, max_message: usize) -> Self {
        Self {
            id,
            state: WorkerState::Starting,
            pid: None,
            jobs: Vec::new(),
            served: 0,
            last_heard: now,
            decoder: FrameDecoder::new(max_message),
            stderr: VecDeque::new(),
            unlogged: 0,
            departure: None,
            liveness: None,
            heartbeat: None,
            idle: None,
            termination: None,
            signalled: Signalled::Nothing,
            bad_messages: 0,
        }
    }

    pub fn push_stderr(&mut self, line: &str) {
        if self.stderr.len() == STDERR_TAIL_LINES {
            self.stderr.pop_front();
        }
        let mut line = line.trim_end().to_owned();
        if line.len() > STDERR_LINE_MAX {
            let mut cut = STDERR_LINE_MAX;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        self.stderr.push_back(line);
    }

    pub fn stderr_tail(&self) -> String {
        self.stderr
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every timer slot of the worker, to cancel them all when it goes.
    pub fn timer_slots(&mut self) -> [&mut Option<TimerHandle>; 4] {
        [
            &mut self.liveness,
            &mut self.heartbeat,
            &mut self.idle,
            &mut self.termination,
        ]
    }

    /// Takes jobs: ready and not on its way out.
    pub fn accepts_jobs(&self) -> bool {
        self.state == WorkerState::Ready && self.departure.is_none()
    }
}
