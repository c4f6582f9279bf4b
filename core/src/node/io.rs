//! The node's inputs and outputs: everything that crosses between the core and a runtime.

use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;

use bytes::Bytes;

use crate::engine::Backend;
use crate::ids::{ConnId, EndpointId, WatchId, WorkerId};
use crate::manifest::Manifest;
use crate::process::{ExitStatus, LogLevel, Signal};

/// Something that happened, for the node to take in.
#[derive(Debug, Clone)]
pub enum Input {
    /// Time passed: the runtime woke at `poll_timeout` (or wants timers due by `now` fired
    /// before its other inputs). Any input fires due timers; this one carries nothing else.
    Tick,
    /// Run this app, given on the command line or found in a watched folder (never written to
    /// the store). A name already running from the same origin is redeployed: new workers take
    /// new jobs and the queue, the old ones finish what they run (docs/control.md).
    Deploy {
        manifest: Box<Manifest>,
        origin: AppOrigin,
    },
    /// Stop this app gracefully and forget it. Only an app of `origin` is removed: a watched
    /// file disappearing does not stop an app deployed over control.
    Remove { app: String, origin: AppOrigin },
    /// An app read from the store at start. The node parses the manifest itself, so a corrupt
    /// one is reported (log, `list`, `info`) like any other failure to start. An app given on
    /// the command line with the same name wins, with a warning.
    Restore {
        app: String,
        stored: Result<StoredApp, String>,
    },
    /// A manual-scheduler job read from the store at start (after the apps).
    RestoreJob { job: Result<ScheduledJob, String> },
    /// `Output::Store` with this token was carried out.
    Stored {
        token: u64,
        result: Result<StoreDone, StoreError>,
    },
    /// Stop every app gracefully; `Output::Stopped` follows when all are gone.
    Shutdown,
    /// An endpoint asked for with `Output::Bind` is up, or could not be set up.
    Bound {
        endpoint: EndpointId,
        result: Result<(), BindError>,
    },
    /// A multipart message arrived on an endpoint, routing frames included, as ZeroMQ gave it.
    Received {
        endpoint: EndpointId,
        frames: Vec<Bytes>,
    },
    /// A client connected to a TCP endpoint (`SocketKind::Tcp`); the runtime chose `conn`.
    /// `peer` is its address, for the job's `meta`.
    Accepted {
        endpoint: EndpointId,
        conn: ConnId,
        peer: String,
    },
    /// Bytes from a TCP connection, in any split.
    ConnData { conn: ConnId, bytes: Bytes },
    /// The client sends no more (it closed or shut down its side); the connection may still
    /// be written to until the node closes it.
    ConnEof { conn: ConnId },
    /// The connection failed (reset, a write error): nothing more can be written, and the
    /// runtime has dropped it.
    ConnClosed { conn: ConnId },
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
    SpawnFailed { worker: WorkerId, error: SpawnError },
    /// Changes seen by a watch asked for with `Output::WatchPath`, only for its path (and
    /// below it, for a folder), in the order they happened. Any split into inputs is fine:
    /// the node batches them itself.
    FsEvents {
        watch: WatchId,
        events: Vec<FsEvent>,
    },
    /// A watch could not be set up, or broke (events were lost): the runtime has dropped it.
    /// The node logs it and asks for the watch again after a backoff; the app keeps running.
    /// A path that does not exist yet is not a failure (it is watched from its parent).
    WatchFailed { watch: WatchId, error: WatchError },
    /// The key folder has `<user>.pem` with these bytes (new or changed): the node reads it
    /// into its key store, or logs why not and keeps the key it had.
    KeySet { user: String, pem: Bytes },
    /// `<user>.pem` left the key folder: requests signed by `user` are refused from now on.
    KeyRemoved { user: String },
    /// A registry of nodes (etcd, later) holds this announcement for a node: the peer table
    /// takes it as it takes a datagram's, with no sender address (docs/cluster.md). An
    /// adapter thread watching the registry sends it through the inbox.
    PeerRecord {
        announcement: Box<crate::cluster::Announcement>,
    },
    /// The registry says a node left (its lease ended): it is forgotten at once.
    PeerGone { node_id: String },
    /// A datagram arrived on a UDP endpoint (`Output::OpenUdp`): an announcement, or
    /// anything anyone sent to that port.
    Datagram {
        endpoint: EndpointId,
        from: SocketAddr,
        bytes: Bytes,
    },
    /// A replicated app's tombstone read from the store at start (before the apps), as the
    /// node wrote it (`StoreOp::PutTombstone`), or why it could not be read.
    RestoreTombstone {
        app: String,
        record: Result<Bytes, String>,
    },
}

/// Why an endpoint could not be set up (`Input::Bound`). Each variant keeps the runtime's
/// own words, which `Display` gives as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// Another socket holds the address.
    #[error("{0}")]
    AddressInUse(String),
    /// The host part is neither an address nor a network interface of this host.
    #[error("{0}")]
    NoSuchInterface(String),
    /// The address cannot be read (or resolved) as one of its transport.
    #[error("{0}")]
    InvalidAddress(String),
    /// The node may not bind there (a privileged port, a socket file's folder).
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Other(String),
}

/// Why a worker could not be started (`Input::SpawnFailed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    /// The program (or library) is not there.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// The worker's channel could not be set up.
    #[error("{0}")]
    Channel(String),
    #[error("{0}")]
    Other(String),
}

/// Why a store operation failed (`Input::Stored`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The node runs without a store, or its store thread is gone.
    #[error("{0}")]
    Unavailable(String),
    /// What the store was asked to keep is not acceptable (a bad package, an unknown app).
    #[error("{0}")]
    Rejected(String),
    /// Reading or writing the disk failed.
    #[error("{0}")]
    Io(String),
    /// A deploy's manifest names code that is not there (in its package, or on the node for
    /// an absolute path): nothing was written. The client's mistake, a 400.
    #[error("{0}")]
    MissingCode(String),
}

/// Why a watch failed (`Input::WatchFailed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// Events were lost (the kernel's queue overflowed): the watch must start afresh.
    #[error("{0}")]
    Overflow(String),
    #[error("{0}")]
    Other(String),
}

/// One change under a watched path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsEvent {
    pub path: PathBuf,
    pub kind: FsEventKind,
}

/// What happened to a path. A rename is a removal of the old path and a creation of the new
/// one (only the paths inside the watch are reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsEventKind {
    Created,
    /// Content or metadata (permissions, times) changed.
    Modified,
    Removed,
}

impl FsEventKind {
    /// The name in a filesystem-monitor job's body.
    pub fn name(self) -> &'static str {
        match self {
            FsEventKind::Created => "created",
            FsEventKind::Modified => "modified",
            FsEventKind::Removed => "removed",
        }
    }
}

/// Where an app came from, which says who may change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppOrigin {
    /// `cocaine node MANIFEST...`: lives as long as this run, not stored.
    CommandLine,
    /// A manifest file in the folder of `cocaine node --watch`: follows the file.
    Watched,
    /// Deployed over the control endpoint (or restored from the store): stored.
    Store,
}

/// An app as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApp {
    /// The manifest's bytes, as deployed.
    pub manifest_json: Bytes,
    /// Where its package is unpacked, if it has one: the base for relative paths in `args`.
    pub package_dir: Option<PathBuf>,
    /// Which stored revision of the app this is (see `StoreOp::PutApp`).
    pub revision: u64,
    /// The app was stopped (`StoreOp::SetStopped`): it is restored stopped, not started.
    pub stopped: bool,
    /// The package archive as deployed, when the store kept it: what peers fetch.
    pub package: Option<Bytes>,
}

/// A one-shot job of a `manual-scheduler` task, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledJob {
    /// Unique among the node's jobs; follows the rules of app names (it is a file name).
    pub id: String,
    pub app: String,
    pub task: String,
    /// When it is due, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    pub body: Bytes,
}

/// A durable write (or removal) in the app store, asked for with `Output::Store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Store an app's manifest and, if given, unpack its package (a tar archive), as a new
    /// revision of the app that becomes its current one. Earlier revisions stay on disk (a
    /// version still running may need its files) until dropped. Done means fsynced.
    PutApp {
        app: String,
        manifest_json: Bytes,
        package: Option<Bytes>,
    },
    /// A redeploy failed: if `from` is the app's current revision, `to` becomes current again;
    /// then `from` is removed.
    Revert {
        app: String,
        to: u64,
        from: u64,
    },
    /// The version of this revision is gone: remove its files, unless it is the current one.
    DropRevision {
        app: String,
        revision: u64,
    },
    DeleteApp {
        app: String,
    },
    /// Mark a stored app stopped (a restart keeps it stopped) or running again. `PutApp`
    /// clears the mark: a deploy starts the app.
    SetStopped {
        app: String,
        stopped: bool,
    },
    PutJob(ScheduledJob),
    DeleteJob {
        id: String,
    },
    /// Keep (or replace) the tombstone of a replicated app: bytes the node reads back with
    /// `Input::RestoreTombstone`. Done means fsynced.
    PutTombstone {
        app: String,
        record: Bytes,
    },
}

/// What a carried-out `StoreOp` gives back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreDone {
    /// For `PutApp` with a package: where it is unpacked.
    pub package_dir: Option<PathBuf>,
    /// For `PutApp`: the revision it stored.
    pub revision: Option<u64>,
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
    /// A plain TCP listener (`tcp://HOST:PORT`, interface names allowed): raw servers. Each
    /// connection accepted is reported with `Input::Accepted`.
    Tcp,
    /// ZeroMQ DEALER, connected: the node's own requests to a peer's control endpoint
    /// (replication's `fetch`). Replies come back as `Input::Received`, without a routing
    /// frame.
    Dealer,
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
    /// The worker may be forked from a fork server of its app version (`worker.app()`)
    /// instead of started from `argv`: a Python app whose manifest allows it. A runtime
    /// without fork servers starts it from `argv`.
    pub fork: bool,
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
        /// The `max-message` of the task the endpoint serves, if it has one. A ROUTER cuts a
        /// peer off from the header of a frame far over it (docs/protocol.md); a frame
        /// somewhat over it still reaches the task, which answers 413.
        max_message: Option<usize>,
    },
    /// A new version took a ROUTER endpoint over from the old one with another
    /// `max-message` (see `Bind`): frames are checked against it from now on.
    SetMaxMessage {
        endpoint: EndpointId,
        max_message: Option<usize>,
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
    /// Bytes for a TCP connection, written in order after what was sent before.
    ConnSend {
        conn: ConnId,
        bytes: Bytes,
    },
    /// Close a TCP connection once what was sent to it is written (or at once if it cannot
    /// be). Nothing about it is reported afterwards.
    ConnClose {
        conn: ConnId,
    },
    /// Stop (`on: false`) or resume reading a TCP connection: backpressure for a client that
    /// sends requests faster than they are answered, so its input waits in its own socket
    /// buffers (and then its sender's) rather than in the node's memory. Reading starts on.
    ConnReading {
        conn: ConnId,
        on: bool,
    },
    Spawn(SpawnSpec),
    /// A version whose workers may be forked (`spec.fork`) is up: a runtime may start its
    /// fork server now, so that a first worker asked for later starts at once, and stop the
    /// fork servers of the app's other versions. `spec` is how one of its workers would be
    /// started (no such worker exists). Runtimes without fork servers ignore it.
    PrepareWorkers(SpawnSpec),
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
    /// Carry out a store operation and report it with `Input::Stored` and the same token.
    /// Operations must be carried out in the order they are asked for.
    Store {
        token: u64,
        op: StoreOp,
    },
    /// The node cannot go on (its control endpoint cannot be bound): the runtime should stop
    /// it (`Input::Shutdown`) and exit with an error.
    Fatal {
        reason: String,
    },
    /// A control endpoint is listening.
    ControlReady {
        address: String,
    },
    /// An app is up: every endpoint bound.
    AppStarted {
        app: String,
    },
    /// An app could not be started; nothing of it remains (a redeploy that fails leaves the
    /// running version as it was).
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
    /// Watch `path` (a file or a folder; `recursive`: everything below it too) and report its
    /// changes with `Input::FsEvents`, or `Input::WatchFailed`. A path that does not exist
    /// yet is watched from its nearest existing parent until it appears. Asking again for a
    /// `watch` the runtime has replaces it.
    WatchPath {
        watch: WatchId,
        path: PathBuf,
        recursive: bool,
    },
    /// Stop a watch; events it still reports are ignored.
    Unwatch {
        watch: WatchId,
    },
    /// Open a UDP socket bound at `address` (`udp://HOST:PORT`, interface names allowed) and
    /// report with `Input::Bound`; what arrives on it comes as `Input::Datagram`. With
    /// `multicast`, the socket also joins that group (docs/cluster.md). Closed with
    /// `Output::Unbind`.
    OpenUdp {
        endpoint: EndpointId,
        address: String,
        multicast: Option<Multicast>,
    },
    /// Send one datagram from a UDP endpoint. A datagram that cannot be sent is dropped
    /// (UDP promises nothing): the runtime may log it, nothing is reported.
    SendTo {
        endpoint: EndpointId,
        to: SocketAddr,
        bytes: Bytes,
    },
    /// The node's announcement, encoded, for a registry to carry (`DiscoveryConfig::registry`,
    /// docs/cluster.md): one every announcement interval, the same bytes the UDP modes send.
    /// The runtime hands it to whatever keeps the node's record (the etcd adapter).
    Announce {
        bytes: Bytes,
    },
}

/// How a UDP endpoint takes part in a multicast group (`Output::OpenUdp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multicast {
    /// The group and its port; the socket binds that port on every address, shared with
    /// other sockets of the group on the machine.
    pub group: SocketAddrV4,
    /// The interface (an IPv4 address or an interface name) to join on and send from; none
    /// lets the kernel choose by its routes.
    pub interface: Option<String>,
    /// Routers a datagram may cross: 1 keeps it on the local network.
    pub ttl: u32,
    /// Whether sockets on this machine hear what this one sends (nodes sharing a machine).
    pub loopback: bool,
}
