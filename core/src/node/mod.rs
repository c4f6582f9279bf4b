//! The node: every app, its tasks and engine, and the endpoints they own. It turns inputs
//! from the runtime into engine calls and engine outputs into runtime outputs; drivers (what
//! each task type means on its wire) live in one module each.

mod app;
mod apps;
pub mod auth;
mod cluster;
mod control;
mod dispatch;
mod driver;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod io;
mod lifecycle;
mod listing;
mod metrics;
mod native_auth;
mod native_seal;
mod native_session;
mod operate;
mod publication;
mod readiness;
pub(crate) mod registry;
mod replication;
mod resolve;
mod route;
mod scheduler;
mod spawn;
mod spill;

// Every task type, one line per driver module: the module (`node/<module>.rs`), then each
// manifest `type` it runs with its key reader and its driver maker. Adding a task type is its
// file and its line here (docs/drivers.md).
registry::drivers! {
    timer_tasks => [
        ("recurring-timer", parse_recurring, recurring),
        ("drifting-timer", parse_drifting, drifting),
    ],
    cron_tasks => [("cron", parse, make)],
    manual_scheduler => [("manual-scheduler", parse, make)],
    fs_tasks => [("filesystem-monitor", parse, make)],
    zmq_server => [("zeromq-server", parse, make)],
    native_server => [("native-server", parse, make)],
    sinks => [("zeromq-sink", parse_sink, make)],
    native_sink => [("native-sink", parse, make)],
    subscriber => [("zeromq-subscriber", parse, make)],
    raw_server => [("raw-server", parse, make)],
    http_server => [("http-server", parse, make)],
}

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Instant;

pub use cluster::{DiscoveryConfig, DEFAULT_ANNOUNCE_INTERVAL, DEFAULT_MULTICAST_GROUP};
pub use control::DEFAULT_CONTROL_MAX_MESSAGE;
pub use io::{
    AppOrigin, BindError, FsEvent, FsEventKind, Input, Multicast, Output, ScheduledJob, SocketKind,
    SpawnError, SpawnSpec, StoreDone, StoreError, StoreOp, StoredApp, WatchError,
};
pub use replication::{FETCH_TIMEOUT, TOMBSTONE_HORIZON};
pub use route::Route;
pub use spawn::PYTHON_WORKER_ENTRY;
pub use spill::{SpillStats, BAD_GATEWAY, DEADLINE_GRACE};

use crate::engine::Engine;
use crate::ids::{AppId, EndpointId, IdMap, WorkerId};
use crate::process::LogLevel;
use crate::time::Now;
use apps::Apps;
use driver::DriverInput;

/// The `run_dir` of [`NodeConfig::default`].
pub const DEFAULT_RUN_DIR: &str = "/tmp";

/// What a node is told when it is made; everything here comes from the runtime's world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// The host name in pubsub envelopes.
    pub hostname: String,
    /// Where worker channel sockets go (keep it short: Unix socket paths are limited). The
    /// default is [`DEFAULT_RUN_DIR`]; a runtime gives its own folder (the core reads no
    /// environment to find one).
    pub run_dir: PathBuf,
    /// The Python interpreter for `python` apps.
    pub python: String,
    /// A folder holding the `cocaine` Python package, put first on `PYTHONPATH`.
    pub python_path: Option<PathBuf>,
    /// The JavaScript SDK's folder (holding `bin/cocaine-worker.js`) for `javascript` apps;
    /// none runs `cocaine-worker-js` from PATH (the SDK installed with npm).
    pub javascript_sdk: Option<PathBuf>,
    /// The Perl SDK's folder (holding `bin/cocaine-worker-perl`) for `perl` apps; none runs
    /// `cocaine-worker-perl` from PATH.
    pub perl_sdk: Option<PathBuf>,
    /// The host program that runs a `native` app in a process.
    pub native_host: Option<PathBuf>,
    /// Requests one native-protocol client may have open at once; more get 503. This keeps
    /// replies within ZeroMQ's send high-water mark, past which a ROUTER drops them silently.
    pub max_open_per_peer: usize,
    /// Addresses of the control endpoint (PROTOCOL.md §7), bound when the node is made; none
    /// runs the node without one.
    pub control: Vec<String>,
    /// The largest control frame accepted (a deploy's package is one); larger is 413.
    pub control_max_message: usize,
    /// Whether control requests must be signed; none picks by the control addresses
    /// (`optional` when all are local to the machine, `required` otherwise).
    pub control_auth: Option<auth::AuthMode>,
    /// The replay window and nonce cache bounds for signed requests.
    pub replay: crate::auth::ReplayLimits,
    /// Addresses (`tcp://HOST:PORT`) of plain TCP endpoints answering `GET /metrics` in the
    /// Prometheus text format; bound when the node is made. None by default.
    pub metrics: Vec<String>,
    /// `--host`: the address every endpoint whose host is `*` is bound on (and announced
    /// with), so that several nodes can share one machine; none binds `*` as it is.
    pub host: Option<String>,
    /// Discovery and membership (docs/cluster.md); none keeps the node to itself.
    pub discovery: Option<DiscoveryConfig>,
    /// The node's own public key (PEM), answered by control `pubkey`; the runtime makes or
    /// reads the pair in the node's state folder and keeps the private half.
    pub node_key: Option<String>,
    /// Session keys' lifetime, idle limit and bounds (docs/security.md, "Session keys").
    pub sessions: crate::auth::session::SessionLimits,
    /// 32 bytes from the system's random source, from which the node makes session ids and
    /// keys; none refuses session-opens (503). The core reads no random source itself.
    pub session_seed: Option<crate::auth::session::Seed>,
    /// The node's key pair, held by the runtime (the private half never enters the core):
    /// `pubkey` answers from it when `node_key` is none, and it signs announcements and
    /// `fetch` requests when `cluster_auth` is on. The runtime may make the pair on first use.
    pub own_key: Option<crate::auth::NodeKeyHandle>,
    /// Whether announcements are signed and checked (`--cluster-auth`, docs/cluster.md):
    /// `off` sends them unsigned and takes any; `optional` signs them and checks signed ones;
    /// `required` also drops unsigned ones. Off by default.
    pub cluster_auth: auth::AuthMode,
    /// How long after a delete its tombstone is announced even when no peer needs it
    /// ([`TOMBSTONE_HORIZON`] by default; docs/cluster.md, "Deletes and restarts").
    pub tombstone_horizon: std::time::Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            hostname: "localhost".to_owned(),
            run_dir: PathBuf::from(DEFAULT_RUN_DIR),
            python: "python3".to_owned(),
            python_path: None,
            javascript_sdk: None,
            perl_sdk: None,
            native_host: None,
            max_open_per_peer: 512,
            control: Vec::new(),
            control_max_message: DEFAULT_CONTROL_MAX_MESSAGE,
            control_auth: None,
            replay: crate::auth::ReplayLimits::default(),
            metrics: Vec::new(),
            host: None,
            discovery: None,
            node_key: None,
            sessions: crate::auth::session::SessionLimits::default(),
            session_seed: None,
            own_key: None,
            cluster_auth: auth::AuthMode::Off,
            tombstone_horizon: TOMBSTONE_HORIZON,
        }
    }
}

/// Which app (and which of its tasks) an endpoint belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EndpointOwner {
    app: AppId,
    /// The task's index, or `None` for the app's pubsub.
    task: Option<usize>,
}

/// A Cocaine node as a state machine. See the crate docs for the loop that drives it.
#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    /// Every app version, with the index of their deadlines and the apps with engine outputs
    /// to carry out: a wake-up visits only the apps it concerns (`apps.rs`).
    apps: Apps,
    /// The serving version of each app, by name.
    names: BTreeMap<String, AppId>,
    /// Versions deployed over a running one and still starting, by name.
    successors: BTreeMap<String, AppId>,
    /// Apps that could not start, by name.
    failed: BTreeMap<String, lifecycle::FailedApp>,
    /// Apps stopped over control (kept, and stored as stopped), by name.
    stopped: BTreeMap<String, lifecycle::FailedApp>,
    control: control::ControlState,
    metrics: metrics::MetricsState,
    scheduler: scheduler::Scheduler,
    /// When the node took its first input: the start of its uptime.
    started_at: Option<Instant>,
    endpoints: IdMap<EndpointId, EndpointOwner>,
    next_app: u64,
    next_endpoint: u64,
    /// What drivers share across versions: tokens, connections.
    shared: driver::Shared,
    out: VecDeque<Output>,
    shutting_down: bool,
    auth: auth::AuthState,
    /// None while discovery is off.
    membership: Option<cluster::Membership>,
    replication: replication::Replication,
}

impl Node {
    /// A node with no apps. Its control endpoints are asked for at once (`Output::Bind`).
    pub fn new(config: NodeConfig) -> Self {
        let mut auth = auth::AuthState::new(config.control_auth, &config.control, config.replay);
        auth.configure_sessions(config.sessions, config.session_seed.as_ref());
        let membership = config.discovery.clone().map(cluster::Membership::new);
        let mut node = Self {
            config,
            apps: Apps::default(),
            names: BTreeMap::new(),
            successors: BTreeMap::new(),
            failed: BTreeMap::new(),
            stopped: BTreeMap::new(),
            control: control::ControlState::default(),
            metrics: metrics::MetricsState::default(),
            scheduler: scheduler::Scheduler::default(),
            started_at: None,
            endpoints: IdMap::default(),
            next_app: 1,
            next_endpoint: 1,
            shared: driver::Shared::default(),
            out: VecDeque::new(),
            shutting_down: false,
            auth,
            membership,
            replication: replication::Replication::default(),
        };
        node.bind_control();
        node.bind_metrics();
        node.open_discovery();
        node
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Lets the node open sealed requests and seal their replies (docs/security.md): the
    /// private half of the node's key (`node_key` is its public half) and a random source
    /// for reply keys and nonces, both the runtime's. Without them a sealed request is 400.
    pub fn set_sealing(
        &mut self,
        unsealer: std::sync::Arc<dyn crate::auth::Unsealer>,
        random: Box<dyn crate::auth::Random>,
    ) {
        self.shared.seal.set(unsealer, random);
    }

    /// Takes in one input at `now`. Timers due by `now` fire first.
    pub fn handle_input(&mut self, now: Now, input: Input) {
        self.started_at.get_or_insert(now.mono);
        self.apps.new_step();
        self.fire_timers(now);
        self.membership_timers(now);
        self.replication_timers(now);
        match input {
            Input::Tick => {}
            Input::PeerRecord { announcement } => self.peer_record(now, *announcement),
            Input::PeerGone { node_id } => self.peer_gone(&node_id),
            input @ (Input::KeySet { .. } | Input::KeyRemoved { .. }) => self.key_input(input),
            Input::Deploy { manifest, origin } => {
                self.deploy(now, *manifest, origin, None, None);
            }
            Input::Remove { app, origin } => {
                self.remove(now, &app, Some(origin));
            }
            Input::Restore { app, stored } => self.restore(now, app, stored),
            Input::RestoreJob { job } => self.restore_job(now, job),
            Input::RestoreTombstone { app, record } => self.restore_tombstone(app, record),
            Input::Stored { token, result } => self.stored(now, token, result),
            Input::Shutdown => self.shutdown(now),
            Input::Bound { endpoint, result } => self.bound(now, endpoint, result),
            Input::Received { endpoint, frames } => self.received(now, endpoint, frames),
            Input::Accepted { endpoint, conn, .. } if self.owns_metrics(endpoint) => {
                self.metrics_accepted(conn)
            }
            Input::ConnData { conn, bytes } if self.owns_metrics_conn(conn) => {
                self.metrics_conn(now, conn, metrics::ConnEvent::Data(bytes))
            }
            Input::ConnEof { conn } if self.owns_metrics_conn(conn) => {
                self.metrics_conn(now, conn, metrics::ConnEvent::Eof)
            }
            Input::ConnClosed { conn } if self.owns_metrics_conn(conn) => {
                self.metrics_conn(now, conn, metrics::ConnEvent::Closed)
            }
            Input::Accepted {
                endpoint,
                conn,
                peer,
            } => self.accepted(now, endpoint, conn, peer),
            Input::ConnData { conn, bytes } => {
                self.conn_input(now, conn, DriverInput::ConnData { conn, bytes })
            }
            Input::ConnEof { conn } => self.conn_input(now, conn, DriverInput::ConnEof { conn }),
            Input::Datagram {
                endpoint,
                from,
                bytes,
            } => self.datagram(now, endpoint, from, &bytes),
            Input::ConnClosed { conn } => {
                self.conn_input(now, conn, DriverInput::ConnClosed { conn });
                self.shared.conns.remove(&conn);
            }
            Input::WorkerConnected { .. } | Input::WorkerDisconnected { .. } => {}
            input => self.worker_input(now, input),
        }
        // After the input: a peer it made leave the table fails its forwarded requests now.
        self.spill_timers(now);
        self.drain_engines(now);
    }

    fn worker_input(&mut self, now: Now, input: Input) {
        match input {
            Input::WorkerData { worker, bytes } => {
                self.with_engine(worker, |e| e.worker_data(now.mono, worker, &bytes))
            }
            Input::WorkerStderr { worker, line } => {
                self.with_engine(worker, |e| e.worker_stderr(worker, &line))
            }
            Input::WorkerExited { worker, status } => {
                self.with_engine(worker, |e| e.worker_exited(now.mono, worker, status));
                self.out.push_back(Output::CloseWorker { worker });
            }
            Input::SpawnFailed { worker, error } => {
                let error = error.to_string();
                self.with_engine(worker, |e| e.spawn_failed(now.mono, worker, &error));
                self.out.push_back(Output::CloseWorker { worker });
            }
            Input::FsEvents { watch, events } => {
                let input = DriverInput::FsEvents { watch, events };
                self.drive(now, (watch.app(), watch.task()), |d, cx| {
                    d.handle(cx, input)
                });
            }
            Input::WatchFailed { watch, error } => {
                let input = DriverInput::WatchFailed { watch, error };
                self.drive(now, (watch.app(), watch.task()), |d, cx| {
                    d.handle(cx, input)
                });
            }
            _ => {}
        }
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When the node next needs time (`Input::Tick`), if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.apps
            .earliest()
            .into_iter()
            .chain(self.scheduler.poll_timeout())
            .chain(
                self.membership
                    .as_ref()
                    .and_then(cluster::Membership::poll_timeout),
            )
            .chain(self.replication.poll_timeout())
            .chain(self.spill_poll_timeout())
            .min()
    }

    /// How many times the last [`Node::handle_input`] looked at an app to fire its timers,
    /// read its deadline or carry out its engine's outputs: a measure of its cost that does
    /// not grow with apps it did not concern (tests and benchmarks).
    #[doc(hidden)]
    pub fn apps_visited_last_step(&self) -> usize {
        self.apps.visits()
    }

    /// Whether the index of app deadlines agrees with every app's own, found by walking them
    /// all: for tests and fuzzing, after an input (`apps.rs` says why it must).
    #[doc(hidden)]
    pub fn check_deadline_index(&self) -> Result<(), String> {
        self.apps.check()
    }

    /// Names of the apps the node runs (stopping ones included).
    pub fn apps(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }

    /// The engine of an app, for `info` and tests.
    pub fn engine(&self, app: &str) -> Option<&Engine<Route>> {
        self.names
            .get(app)
            .and_then(|id| self.apps.get(id))
            .map(|a| &a.engine)
    }

    fn with_engine(&mut self, worker: WorkerId, f: impl FnOnce(&mut Engine<Route>)) {
        if let Some(app) = self.apps.get_mut(&worker.app()) {
            f(&mut app.engine);
        }
    }

    fn log(&mut self, level: LogLevel, message: String) {
        self.out.push_back(Output::Log { level, message });
    }

    fn new_endpoint(&mut self, owner: EndpointOwner) -> EndpointId {
        let id = EndpointId(self.next_endpoint);
        self.next_endpoint += 1;
        self.endpoints.insert(id, owner);
        id
    }
}
