//! The interface between the node and a task type's driver (see `docs/drivers.md`).
//!
//! A driver is one task of one app version: it owns that task's state (clients, sessions,
//! connections, timers, batches) and is driven through the few methods of [`Driver`], each
//! given a [`Cx`]: the time, the app's engine to submit jobs to, the app's pubsub, timers
//! keyed by the driver's own tokens, and the runtime's outputs. The node routes to it without
//! knowing what it is: endpoints and watches by owner, connections by the driver that
//! accepted them, and a job's reply by its [`Route`], `(task index, driver token)`.
//!
//! On a redeploy each task of the old version is paired with the new version's task of the
//! same name and type. The old driver hands over what must outlive it (open requests,
//! connections, a pending batch), the new one takes it, and from then on everything
//! addressed to the old task (input on an endpoint the old version still holds, replies of
//! jobs still running on the old workers, events of old watches) is forwarded to the new one.
//! Tokens are unique across the node, so moved state keeps them.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::Value;

use super::app::{App, AppTimer, Phase};
use super::apps::Apps;
use super::io::{FsEvent, Output, SocketKind, WatchError};
use super::route::Route;
use super::spill::{Caller, CallerKey, Follow, Offer};
use super::NodeConfig;
use crate::auth::Verifier;
use crate::cluster::PeerTable;
use crate::codec::native::Policy;
use crate::engine::{AppState, JobId, JobPolicy, JobRequest, ReplyEvent, ReplyMode};
use crate::ids::{AppId, ConnId, EndpointId, IdMap, WatchId};
use crate::process::LogLevel;
use crate::status::Failure;
use crate::time::Now;
use crate::timers::TimerHandle;

/// What one task type does. Every method but [`Driver::handle`] and [`Driver::reply`] has a
/// default that does nothing, so a driver writes only what its task type needs.
pub(super) trait Driver: fmt::Debug {
    /// The socket the task needs, if any; asked for when the version is deployed.
    fn binding(&self) -> Option<Binding> {
        None
    }

    /// Every endpoint of the version is up: arm timers, ask for watches.
    fn start(&mut self, _cx: &mut Cx<'_>) {}

    /// Something for this task: a message on its endpoint, a connection event, a watch's
    /// events, one of its timers, a scheduled job.
    fn handle(&mut self, cx: &mut Cx<'_>, input: DriverInput);

    /// A reply event for one of its jobs, by the token it submitted the job with.
    fn reply(&mut self, cx: &mut Cx<'_>, token: u64, event: ReplyEvent);

    /// A redeploy: the state that moves to the new version's task of the same name and type
    /// (open requests, connections, an open batch). `None` keeps everything here, and replies
    /// for this task's running jobs keep coming to this driver.
    fn hand_over(&mut self, _cx: &mut Cx<'_>) -> Option<Handover> {
        None
    }

    /// Takes what the previous version's driver handed over (its own type).
    fn take_over(&mut self, _cx: &mut Cx<'_>, _from: Handover) {}

    /// A queued job of this driver moved to the new version's engine (after `take_over`).
    fn job_moved(&mut self, _token: u64, _to: JobRef) {}

    /// The app stops (removed, shut down, failed): take no new work; running jobs still
    /// reply.
    fn stop(&mut self, _cx: &mut Cx<'_>) {}

    /// The version is gone: close what is still held (connections), without replies.
    fn close(&mut self, _cx: &mut Cx<'_>) {}
}

/// State handed from one version's driver to the next one's.
pub(super) type Handover = Box<dyn Any>;

/// What the node routes to a driver.
#[derive(Debug)]
pub(super) enum DriverInput {
    /// A multipart message on the task's endpoint, routing frames included.
    Received {
        endpoint: EndpointId,
        frames: Vec<Bytes>,
    },
    /// A client connected to the task's TCP endpoint; the connection is this driver's until
    /// it closes it ([`Cx::close_conn`]) or hands it over.
    Accepted {
        endpoint: EndpointId,
        conn: ConnId,
        peer: String,
    },
    ConnData {
        conn: ConnId,
        bytes: Bytes,
    },
    /// The client sends no more.
    ConnEof {
        conn: ConnId,
    },
    /// The connection failed; the runtime has dropped it.
    ConnClosed {
        conn: ConnId,
    },
    /// An endpoint this driver serves closes (the old version that bound it is gone).
    Unbound {
        endpoint: EndpointId,
    },
    /// Changes seen by a watch: the driver's own, or its previous version's during a hand-over.
    FsEvents {
        watch: WatchId,
        events: Vec<FsEvent>,
    },
    WatchFailed {
        watch: WatchId,
        error: WatchError,
    },
    /// One of the driver's timers ([`Cx::arm`]) is due.
    Timer {
        token: u64,
    },
    /// A manual-scheduler job is due.
    Scheduled {
        id: Arc<str>,
        body: Bytes,
    },
}

/// The socket a task needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Binding {
    pub kind: SocketKind,
    pub address: String,
    pub subscribe: Vec<Bytes>,
    /// The task's `max-message`, for the socket to cut off peers far over it.
    pub max_message: Option<usize>,
}

impl Binding {
    pub fn new(kind: SocketKind, address: &str) -> Binding {
        Binding {
            kind,
            address: address.to_owned(),
            subscribe: Vec::new(),
            max_message: None,
        }
    }

    pub fn with_max_message(mut self, max_message: usize) -> Binding {
        self.max_message = Some(max_message);
        self
    }

    /// Whether one socket serves both: the same type at the same address (and, for a
    /// subscriber, the same prefixes). The limit is not part of it: a new version with
    /// another `max-message` still takes the socket over (`Output::SetMaxMessage`).
    pub fn same_socket(&self, other: &Binding) -> bool {
        self.kind == other.kind
            && self.address == other.address
            && self.subscribe == other.subscribe
    }
}

/// A job in some version's engine: a driver that took over requests from an older version
/// may hold jobs still running there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct JobRef {
    pub app: AppId,
    pub job: JobId,
}

/// What the node keeps for drivers across versions.
#[derive(Debug, Default)]
pub(super) struct Shared {
    next_token: u64,
    /// Open connections, by the driver that holds them (resolved through hand-overs).
    pub conns: IdMap<ConnId, ConnOwner>,
    /// Manual-scheduler jobs whose outcome is out, for the node to drop from the store.
    pub scheduled_done: Vec<Arc<str>>,
    /// Requests handed to peers, their links and counters (spillover).
    pub spill: super::spill::Spill,
    /// Opening and sealing bodies (the node's key, a random source) and their counters.
    pub seal: super::native_seal::SealState,
}

/// Which driver took a connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnOwner {
    pub app: AppId,
    pub task: usize,
}

/// What a driver method may touch: its own app (engine, pubsub, timers), jobs it holds in
/// other versions' engines, and the runtime's outputs.
pub(super) struct Cx<'a> {
    pub now: Now,
    app: AppId,
    task: usize,
    apps: &'a mut Apps,
    out: &'a mut VecDeque<Output>,
    config: &'a NodeConfig,
    shared: &'a mut Shared,
    verifier: &'a mut Verifier,
    /// The peer table, while discovery is on: where a full queue's requests may go.
    peers: Option<&'a PeerTable>,
}

impl<'a> Cx<'a> {
    pub(super) fn new(
        now: Now,
        (app, task): (AppId, usize),
        apps: &'a mut Apps,
        out: &'a mut VecDeque<Output>,
        (config, shared): (&'a NodeConfig, &'a mut Shared),
        (verifier, peers): (&'a mut Verifier, Option<&'a PeerTable>),
    ) -> Self {
        Cx {
            now,
            app,
            task,
            apps,
            out,
            config,
            shared,
            verifier,
            peers,
        }
    }

    /// The node's signature checks (key store, replay guard, counters), for signed requests.
    pub fn verifier(&mut self) -> &mut Verifier {
        self.verifier
    }

    /// The node's means to open sealed requests and seal replies.
    pub fn seal(&mut self) -> &mut super::native_seal::SealState {
        &mut self.shared.seal
    }

    fn own(&mut self) -> Option<&mut App> {
        self.apps.get_mut(&self.app)
    }

    pub fn config(&self) -> &NodeConfig {
        self.config
    }

    /// The app's name.
    pub fn app_name(&self) -> Arc<str> {
        self.apps
            .get(&self.app)
            .map_or_else(|| Arc::from("?"), |a| a.name.clone())
    }

    /// The task's name: the event its jobs carry by default, and its pubsub source.
    pub fn task_name(&self) -> Arc<str> {
        self.apps
            .get(&self.app)
            .and_then(|a| a.tasks.get(self.task))
            .map_or_else(|| Arc::from("?"), |t| t.name.clone())
    }

    /// The engine's `max-message`.
    pub fn max_message(&self) -> usize {
        self.apps
            .get(&self.app)
            .map_or(0, |a| a.engine.config().max_message)
    }

    /// A token no other driver of the node uses (so it survives a hand-over).
    pub fn token(&mut self) -> u64 {
        self.shared.next_token += 1;
        self.shared.next_token
    }

    /// Whether the version takes new work of its own making (timers): it is running, not
    /// replaced, removed or stopping.
    pub fn accepting(&self) -> bool {
        self.apps.get(&self.app).is_some_and(|a| {
            a.phase == Phase::Running
                && !matches!(a.engine.state(), AppState::Stopping | AppState::Stopped)
        })
    }

    /// Submits a job to the app's engine; its replies come to [`Driver::reply`] with `token`.
    pub fn submit(&mut self, token: u64, job: Job) -> Result<JobRef, Failure> {
        let now = self.now.mono;
        let (app, task) = (self.app, self.task);
        let event = job.event.unwrap_or_else(|| self.task_name());
        let Some(own) = self.own() else {
            return Err(Failure::new(
                crate::status::UNAVAILABLE,
                "app is not running",
            ));
        };
        let request = JobRequest {
            task,
            event,
            policy: job.policy,
            reply: Route { task, token },
            mode: job.mode,
            origin: job.origin,
            body: job.body,
        };
        let job = own.engine.submit(now, request)?;
        Ok(JobRef { app, job })
    }

    /// Submits a job whose reply is published (timers, sinks, monitors); false if refused,
    /// which is logged.
    pub fn submit_published(&mut self, token: u64, body: Vec<Bytes>, what: &str) -> bool {
        let limit = self.max_message();
        let job = Job::collect(body, limit);
        match self.submit(token, job) {
            Ok(_) => true,
            Err(failure) => {
                let message = format!(
                    "{}/{}: {what} refused: {failure}",
                    self.app_name(),
                    self.task_name()
                );
                self.log(LogLevel::Warn, message);
                false
            }
        }
    }

    fn engine_of(&mut self, job: JobRef) -> Option<&mut crate::engine::Engine<Route>> {
        self.apps.get_mut(&job.app).map(|a| &mut a.engine)
    }

    pub fn push_chunk(&mut self, job: JobRef, data: Bytes) {
        if let Some(engine) = self.engine_of(job) {
            engine.push_chunk(job.job, data);
        }
    }

    pub fn end_request(&mut self, job: JobRef) {
        if let Some(engine) = self.engine_of(job) {
            engine.end_request(job.job);
        }
    }

    /// Cancels a job; returns whether it was still open.
    pub fn cancel(&mut self, job: JobRef) -> bool {
        let now = self.now.mono;
        match self.engine_of(job) {
            Some(engine) if engine.is_open(job.job) => {
                engine.cancel(now, job.job);
                true
            }
            _ => false,
        }
    }

    /// Arms one of the driver's timers; it comes back as `DriverInput::Timer { token }`.
    pub fn arm(&mut self, at: Instant, token: u64) -> Option<TimerHandle> {
        let task = self.task;
        let own = self.own()?;
        Some(own.timers.arm(at, AppTimer::Driver { task, token }))
    }

    /// Cancels the timer in `slot`, if any.
    pub fn cancel_timer(&mut self, slot: &mut Option<TimerHandle>) {
        if let Some(own) = self.own() {
            own.timers.cancel_slot(slot);
        } else {
            *slot = None;
        }
    }

    /// The id of this task's filesystem watch.
    pub fn watch_id(&self) -> WatchId {
        WatchId::new(self.app, self.task)
    }

    /// Publishes one field on the app's pubsub (`source` names the task, or `engine`).
    pub fn publish(&mut self, source: &str, field: &str, value: &Value) {
        let (now, config) = (self.now, self.config);
        if let Some(own) = self.apps.get_mut(&self.app) {
            own.publish(now, config, self.out, source, field, value);
        }
    }

    /// Publishes a job's outcome as the task's publication (an error as the engine's).
    pub fn publish_reply(&mut self, event: ReplyEvent) {
        let source = self.task_name();
        match event {
            ReplyEvent::Collected(chunks) => {
                for (field, value) in super::publication::fields_of_reply(&chunks) {
                    self.publish(&source, &field, &value);
                }
            }
            ReplyEvent::Error(failure) => {
                let value = serde_json::json!({
                    "code": failure.code, "message": failure.message, "task": &*source,
                });
                self.publish("engine", "error", &value);
            }
            ReplyEvent::Chunk(_) | ReplyEvent::End | ReplyEvent::Head(_) => {}
        }
    }

    pub fn log(&mut self, level: LogLevel, message: String) {
        self.out.push_back(Output::Log { level, message });
    }

    /// The runtime's outputs, for a driver that sends or merges sends.
    pub fn out(&mut self) -> &mut VecDeque<Output> {
        self.out
    }

    /// Takes a connection as this driver's: its events come here from now on.
    pub fn own_conn(&mut self, conn: ConnId) {
        let owner = ConnOwner {
            app: self.app,
            task: self.task,
        };
        self.shared.conns.insert(conn, owner);
    }

    /// Closes a connection once what was sent is written; nothing more comes for it.
    pub fn close_conn(&mut self, conn: ConnId) {
        self.shared.conns.remove(&conn);
        self.out.push_back(Output::ConnClose { conn });
    }

    /// Offers a request to spillover (docs/cluster.md): a request from a peer is counted; one
    /// from a client, when the app's queue is full and its manifest has `cluster.spillover`
    /// on, is handed to the least-loaded peer running the app. `true` when it was: the
    /// caller's later messages go with [`Cx::spill_follow`].
    pub fn spill_offer(&mut self, caller: Caller, event: &str, policy: &Policy) -> bool {
        let Some(own) = self.apps.get(&self.app) else {
            return false;
        };
        let engine = &own.engine;
        let app = own.name.clone();
        if policy.hop != 0 {
            self.shared.spill.count_forwarded_in(&app);
            return false;
        }
        let spillover = own.manifest.cluster.is_some_and(|c| c.spillover);
        let queue_full =
            *engine.state() == AppState::Running && engine.queued() >= engine.config().queue_limit;
        if !(spillover && queue_full) {
            return false;
        }
        let task = self.task_name();
        let offer = Offer {
            app: &app,
            task: &task,
            event,
            policy,
            queue_full,
            spillover,
        };
        let now = self.now.mono;
        (self.shared.spill).offer(now, self.out, self.peers, caller, offer)
    }

    /// A caller's chunk, end or cancel for a request handed to a peer; `false` when the
    /// request was not handed on.
    pub fn spill_follow(&mut self, key: &CallerKey, what: Follow) -> bool {
        self.shared.spill.follow(self.out, key, what)
    }

    /// Whether this caller's request was handed to a peer and has not ended.
    pub fn spill_is_open(&self, key: &CallerKey) -> bool {
        self.shared.spill.is_forwarded(key)
    }

    /// A server endpoint closed: its requests handed on are cancelled at their peers.
    pub fn spill_unbound(&mut self, endpoint: EndpointId) {
        self.shared.spill.caller_unbound(self.out, endpoint);
    }

    /// A manual-scheduler job's outcome is out: the node drops it from the store.
    pub fn scheduled_done(&mut self, id: Arc<str>) {
        self.shared.scheduled_done.push(id);
    }
}

/// A job as a driver asks for it; the node fills in the task and the route.
#[derive(Debug)]
pub(super) struct Job {
    /// The event; the task's name when `None`.
    pub event: Option<Arc<str>>,
    pub policy: JobPolicy,
    pub mode: ReplyMode,
    pub origin: Option<Box<crate::engine::Origin>>,
    /// The request, whole; `None` streams it with [`Cx::push_chunk`] and [`Cx::end_request`].
    pub body: Option<Vec<Bytes>>,
}

impl Job {
    /// A whole request whose reply is collected up to `limit` bytes.
    pub fn collect(body: Vec<Bytes>, limit: usize) -> Job {
        Job {
            event: None,
            policy: JobPolicy::default(),
            mode: ReplyMode::Collect { limit },
            origin: None,
            body: Some(body),
        }
    }
}
