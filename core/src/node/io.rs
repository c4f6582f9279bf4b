//! The node's inputs and outputs: everything that crosses between the core and a runtime.

use std::path::PathBuf;

use bytes::Bytes;

use crate::engine::Backend;
use crate::ids::{EndpointId, WorkerId};
use crate::manifest::Manifest;
use crate::process::{ExitStatus, LogLevel, Signal};

/// Something that happened, for the node to take in.
#[derive(Debug, Clone)]
pub enum Input {
    /// Nothing but time passed (the runtime woke at `poll_timeout`).
    Timeout,
    /// Run this app. A name already running is refused (see `Output::DeployFailed`).
    Deploy { manifest: Box<Manifest> },
    /// Stop this app gracefully and forget it.
    Remove { app: String },
    /// Stop every app gracefully; `Output::Stopped` follows when all are gone.
    Shutdown,
    /// An endpoint asked for with `Output::Bind` is up, or could not be set up.
    Bound {
        endpoint: EndpointId,
        result: Result<(), String>,
    },
    /// A multipart message arrived on an endpoint, routing frames included, as ZeroMQ gave it.
    Received {
        endpoint: EndpointId,
        frames: Vec<Bytes>,
    },
    /// A worker connected to its channel.
    WorkerConnected { worker: WorkerId },
    /// Bytes from a worker's channel, in any split.
    WorkerData { worker: WorkerId, bytes: Bytes },
    /// The worker's channel reached end of file.
    WorkerDisconnected { worker: WorkerId },
    /// One line the worker wrote to stderr.
    WorkerStderr { worker: WorkerId, line: String },
    /// The worker process (or thread) ended. Runtimes report this after its stderr is drained
    /// so the last lines reach the error report.
    WorkerExited {
        worker: WorkerId,
        status: ExitStatus,
    },
    /// `Output::Spawn` could not be carried out.
    SpawnFailed { worker: WorkerId, error: String },
}

/// The kind of socket an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketKind {
    /// ZeroMQ ROUTER, bound: servers and control.
    Router,
    /// ZeroMQ PULL, bound: sinks.
    Pull,
    /// ZeroMQ SUB, connected: subscribers. `Bind::subscribe` lists the prefixes.
    Sub,
    /// ZeroMQ PUB, bound: the app's pubsub.
    Pub,
}

/// How to start a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnSpec {
    pub worker: WorkerId,
    pub app: String,
    pub backend: Backend,
    /// Program and arguments (process backend), or the library and its argument (thread).
    pub argv: Vec<String>,
    /// Variables to add to the node's own environment.
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// Where the runtime listens for this worker's channel before spawning it.
    pub socket: PathBuf,
}

/// Something for the runtime to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Set up a socket at `address` (ZeroMQ syntax; interface names allowed) and report with
    /// `Input::Bound`.
    Bind {
        endpoint: EndpointId,
        kind: SocketKind,
        address: String,
        subscribe: Vec<Bytes>,
    },
    /// Close the socket.
    Unbind {
        endpoint: EndpointId,
    },
    /// Send a multipart message, routing frames first.
    Send {
        endpoint: EndpointId,
        frames: Vec<Bytes>,
    },
    /// Publish on a PUB endpoint: a topic frame, then a value frame.
    Publish {
        endpoint: EndpointId,
        topic: Bytes,
        value: Bytes,
    },
    Spawn(SpawnSpec),
    Kill {
        worker: WorkerId,
        signal: Signal,
    },
    /// Bytes for a worker's channel, already framed.
    ToWorker {
        worker: WorkerId,
        bytes: Bytes,
    },
    /// Close a worker's channel (it has exited or been abandoned).
    CloseWorker {
        worker: WorkerId,
    },
    Log {
        level: LogLevel,
        message: String,
    },
    /// An app is up: every endpoint bound.
    AppStarted {
        app: String,
    },
    /// An app could not be started; nothing of it remains.
    DeployFailed {
        app: String,
        reason: String,
    },
    /// An app is gone after `Remove` or `Shutdown`.
    AppStopped {
        app: String,
    },
    /// After `Shutdown`: every app is gone; the runtime may exit.
    Stopped,
}
