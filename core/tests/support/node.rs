//! A hand-driven node for integration tests: manifests deployed from JSON, binds confirmed,
//! workers simulated in memory (every byte through the real worker codec), time moved by
//! hand. Nothing here touches a socket, a process or the clock (except one `Instant::now()`
//! as the origin of the simulated monotonic time).
//!
//! Declared once in tests/main.rs; a test file uses it with `use crate::harness;`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use cocaine_core::cluster::announcement::{AppAnnouncement, AppState, Load};
use cocaine_core::cluster::Announcement;
use cocaine_core::codec::native::{self, NativeMessage, Policy};
use cocaine_core::codec::worker::WorkerMessage;
use cocaine_core::manifest::Manifest;
use cocaine_core::node::{
    AppOrigin, Input, Node, NodeConfig, Output, ScheduledJob, SocketKind, SpawnSpec, StoreDone,
    StoreError, StoreOp,
};
use cocaine_core::process::{ExitStatus, LogLevel, Signal};
use cocaine_core::sim::{self, Script};
pub use cocaine_core::sim::{handshake_of, Answer};
use cocaine_core::{EndpointId, Now, WorkerId};

/// The host name the harness's node publishes under.
pub const HOST: &str = "testhost";
/// Wall-clock time at the harness's start, in unix milliseconds (envelopes read
/// `1700000000.000` then).
pub const EPOCH_MS: u64 = 1_700_000_000_000;

/// What the simulated workers of an app do by themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behaviour {
    /// Handshake as soon as spawned.
    pub handshake: bool,
    pub answer: Answer,
    /// Exit on any signal, and on a terminate message once idle.
    pub obey: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            handshake: true,
            answer: Answer::Echo,
            obey: true,
        }
    }
}

impl Behaviour {
    /// The script of the one simulated worker (`cocaine_core::sim::SimWorker`) these workers
    /// follow; they leave heartbeats unanswered.
    fn script(&self) -> Script {
        Script {
            handshake: self.handshake,
            answer: self.answer.clone(),
            obey: self.obey,
            heartbeat: false,
        }
    }
}

/// One simulated worker as the harness keeps it: the worker, its spawn spec, and when it
/// received each message.
#[derive(Debug)]
pub struct SimWorker {
    pub spec: SpawnSpec,
    /// Every message the node sent it, with the time (since the harness's start).
    pub received: Vec<(Duration, WorkerMessage)>,
    worker: sim::SimWorker,
}

impl Deref for SimWorker {
    type Target = sim::SimWorker;
    fn deref(&self) -> &sim::SimWorker {
        &self.worker
    }
}

impl DerefMut for SimWorker {
    fn deref_mut(&mut self) -> &mut sim::SimWorker {
        &mut self.worker
    }
}

impl SimWorker {
    /// Messages received, without their times.
    pub fn messages(&self) -> Vec<WorkerMessage> {
        self.received.iter().map(|(_, m)| m.clone()).collect()
    }

    /// Messages received other than heartbeats.
    pub fn messages_no_heartbeat(&self) -> Vec<WorkerMessage> {
        self.received
            .iter()
            .map(|(_, m)| m.clone())
            .filter(|m| *m != WorkerMessage::Heartbeat)
            .collect()
    }
}

/// A node and everything around it.
pub struct Harness {
    pub node: Node,
    pub start: Instant,
    pub now: Now,
    /// Every output, with the time it came out (since the start).
    pub outputs: Vec<(Duration, Output)>,
    seen: usize,
    pub workers: BTreeMap<WorkerId, SimWorker>,
    /// Workers in the order they were spawned.
    pub spawned: Vec<WorkerId>,
    /// Behaviour by app name; apps not listed get `default`.
    pub behaviours: BTreeMap<String, Behaviour>,
    pub default: Behaviour,
    /// Confirm every bind at once with `Ok(())`.
    pub auto_bind: bool,
    /// Every bind asked for: endpoint, kind, address.
    pub binds: Vec<(EndpointId, SocketKind, String)>,
    /// Every invoke any worker got, in order: the worker and the job's sid.
    pub invokes: Vec<(WorkerId, u64)>,
    /// What the simulated store holds: apps (manifest, has a package) and jobs by id. A runtime
    /// answers `Output::Store` at once unless `store_fails` holds a message.
    pub stored_apps: BTreeMap<String, (Bytes, bool)>,
    /// Each stored app's current revision, and every revision on disk.
    pub current_revision: BTreeMap<String, u64>,
    pub revisions: std::collections::BTreeSet<(String, u64)>,
    pub stored_jobs: BTreeMap<String, ScheduledJob>,
    /// Tombstones of replicated apps, as the node gave them.
    pub stored_tombstones: BTreeMap<String, Bytes>,
    pub store_fails: Option<String>,
    /// The store's answer to every operation until cleared, when not `store_fails`.
    pub store_refuses: Option<StoreError>,
    /// Apps the store holds marked stopped.
    pub stopped_apps: std::collections::BTreeSet<String>,
}

/// Parses a manifest or fails the test with the parser's message.
pub fn manifest(app: &str, json: &str) -> Manifest {
    match Manifest::parse(app, json.as_bytes(), None) {
        Ok(m) => m,
        Err(e) => panic!("manifest of {app} does not parse: {e}"),
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(NodeConfig {
            hostname: HOST.to_owned(),
            run_dir: "/run/cocaine-test".into(),
            ..NodeConfig::default()
        })
    }

    pub fn with_config(config: NodeConfig) -> Self {
        let start = Instant::now();
        Self::at(start, config)
    }

    /// A harness whose simulated time starts at `start` (two harnesses made at the same
    /// `start` see the same instants).
    pub fn at(start: Instant, config: NodeConfig) -> Self {
        let wall = UNIX_EPOCH + Duration::from_millis(EPOCH_MS);
        Self {
            node: Node::new(config),
            start,
            now: Now::new(start, wall),
            outputs: Vec::new(),
            seen: 0,
            workers: BTreeMap::new(),
            spawned: Vec::new(),
            behaviours: BTreeMap::new(),
            default: Behaviour::default(),
            auto_bind: true,
            binds: Vec::new(),
            invokes: Vec::new(),
            stored_apps: BTreeMap::new(),
            current_revision: BTreeMap::new(),
            revisions: std::collections::BTreeSet::new(),
            stored_jobs: BTreeMap::new(),
            stored_tombstones: BTreeMap::new(),
            store_fails: None,
            store_refuses: None,
            stopped_apps: std::collections::BTreeSet::new(),
        }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now.mono - self.start
    }

    pub fn behaviour_of(&self, app: &str) -> Behaviour {
        self.behaviours
            .get(app)
            .cloned()
            .unwrap_or_else(|| self.default.clone())
    }

    /// Parses and deploys `json` as app `name`.
    pub fn deploy(&mut self, name: &str, json: &str) {
        let m = manifest(name, json);
        self.input(Input::Deploy {
            manifest: Box::new(m),
            origin: AppOrigin::CommandLine,
        });
    }

    /// The endpoint last bound at `address`.
    pub fn endpoint(&self, address: &str) -> EndpointId {
        self.binds
            .iter()
            .rev()
            .find(|(_, _, a)| a == address)
            .map(|(e, _, _)| *e)
            .unwrap_or_else(|| panic!("nothing was bound at {address}"))
    }

    /// Takes in one input now and carries out what follows.
    pub fn input(&mut self, input: Input) {
        self.node.handle_input(self.now, input);
        self.check_deadline_index();
        self.pump();
    }

    /// A multipart message arrives on an endpoint.
    pub fn receive(&mut self, endpoint: EndpointId, frames: Vec<Bytes>) {
        self.input(Input::Received { endpoint, frames });
    }

    /// Every input leaves the node's index of app deadlines exact: a missed update would lose
    /// a timer (core/src/node/apps.rs).
    fn check_deadline_index(&self) {
        if let Err(e) = self.node.check_deadline_index() {
            panic!("after an input at {:?}: {e}", self.elapsed());
        }
    }

    /// Moves time forward by `by`, firing every timer at its own due time on the way, as a
    /// runtime sleeping on `poll_timeout` would.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now.mono + by;
        let mut guard = 0;
        while let Some(at) = self.node.poll_timeout() {
            if at > target {
                break;
            }
            guard += 1;
            assert!(guard < 100_000, "timers keep firing without time passing");
            let at = at.max(self.now.mono);
            self.set_time(at);
            self.input(Input::Tick);
        }
        self.set_time(target);
        self.input(Input::Tick);
    }

    /// Moves time to `since_start` after the start.
    pub fn advance_to(&mut self, since_start: Duration) {
        let target = self.start + since_start;
        assert!(target >= self.now.mono, "time cannot go back");
        self.advance(target - self.now.mono);
    }

    fn set_time(&mut self, mono: Instant) {
        let d = mono - self.now.mono;
        self.now = self.now + d;
    }

    /// The worker writes these messages to its channel (one write).
    pub fn worker_says(&mut self, worker: WorkerId, messages: &[WorkerMessage]) {
        let mut buf = BytesMut::new();
        for m in messages {
            if let WorkerMessage::Choke { sid } | WorkerMessage::Error { sid, .. } = m {
                if let Some(w) = self.workers.get_mut(&worker) {
                    w.jobs.remove(sid);
                }
            }
            m.encode_framed(&mut buf);
        }
        self.input(Input::WorkerData {
            worker,
            bytes: buf.freeze(),
        });
    }

    /// The worker answers job `sid` with these chunks and a choke.
    pub fn worker_replies(&mut self, worker: WorkerId, sid: u64, chunks: &[&[u8]]) {
        let mut messages: Vec<WorkerMessage> = chunks
            .iter()
            .map(|c| WorkerMessage::Chunk {
                sid,
                data: Bytes::copy_from_slice(c),
            })
            .collect();
        messages.push(WorkerMessage::Choke { sid });
        self.worker_says(worker, &messages);
    }

    pub fn handshake(&mut self, worker: WorkerId) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.handshaked = true;
        }
        self.worker_says(worker, &[handshake_of(worker)]);
    }

    /// The worker process ends.
    pub fn exit(&mut self, worker: WorkerId, status: ExitStatus) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.exited = true;
        }
        self.input(Input::WorkerExited { worker, status });
    }

    pub fn stderr(&mut self, worker: WorkerId, line: &str) {
        self.input(Input::WorkerStderr {
            worker,
            line: line.to_owned(),
        });
    }

    pub fn worker(&self, worker: WorkerId) -> &SimWorker {
        self.workers
            .get(&worker)
            .unwrap_or_else(|| panic!("no worker {worker}"))
    }

    /// The last worker spawned for `app`.
    pub fn last_worker(&self, app: &str) -> WorkerId {
        *self
            .spawned
            .iter()
            .rev()
            .find(|w| self.workers[w].spec.app == app)
            .unwrap_or_else(|| panic!("no worker was spawned for {app}"))
    }

    /// Workers spawned for `app`, in order.
    pub fn workers_of(&self, app: &str) -> Vec<WorkerId> {
        self.spawned
            .iter()
            .copied()
            .filter(|w| self.workers[w].spec.app == app)
            .collect()
    }

    /// Outputs since the last call.
    pub fn fresh(&mut self) -> Vec<Output> {
        let out = self.outputs[self.seen..]
            .iter()
            .map(|(_, o)| o.clone())
            .collect();
        self.seen = self.outputs.len();
        out
    }

    /// Every output so far.
    pub fn all(&self) -> Vec<Output> {
        self.outputs.iter().map(|(_, o)| o.clone()).collect()
    }

    /// Carries out every pending output as a runtime with these simulated workers would,
    /// until the node has nothing more to say and no timer is due.
    pub fn pump(&mut self) {
        let mut guard = 0;
        loop {
            let mut reactions = Vec::new();
            while let Some(output) = self.node.poll_output() {
                guard += 1;
                assert!(guard < 1_000_000, "the node does not stop talking");
                let at = self.elapsed();
                self.react(&output, &mut reactions);
                self.outputs.push((at, output));
            }
            if reactions.is_empty() {
                self.leave_when_done(&mut reactions);
            }
            if reactions.is_empty() {
                // A runtime wakes at once for a timer already due.
                if self
                    .node
                    .poll_timeout()
                    .is_some_and(|at| at <= self.now.mono)
                {
                    guard += 1;
                    reactions.push(Input::Tick);
                } else {
                    break;
                }
            }
            for input in reactions {
                self.node.handle_input(self.now, input);
                self.check_deadline_index();
            }
        }
    }

    /// Obedient workers told to terminate exit once they hold no job.
    fn leave_when_done(&mut self, reactions: &mut Vec<Input>) {
        self.follow_behaviours();
        for (id, w) in self.workers.iter_mut() {
            if w.terminating && w.leaving() {
                let status = w.exit();
                reactions.push(Input::WorkerExited {
                    worker: *id,
                    status,
                });
            }
        }
    }

    /// A test may change `behaviours` or `default` mid-run: workers follow from then on.
    fn follow_behaviours(&mut self) {
        let scripts: Vec<(WorkerId, Script)> = self
            .workers
            .iter()
            .map(|(id, w)| (*id, self.behaviour_of(&w.spec.app).script()))
            .collect();
        for (id, script) in scripts {
            if let Some(w) = self.workers.get_mut(&id) {
                w.script = script;
            }
        }
    }

    fn react(&mut self, output: &Output, reactions: &mut Vec<Input>) {
        let at = self.elapsed();
        match output {
            Output::Bind {
                endpoint,
                kind,
                address,
                ..
            } => {
                self.binds.push((*endpoint, *kind, address.clone()));
                if self.auto_bind {
                    reactions.push(Input::Bound {
                        endpoint: *endpoint,
                        result: Ok(()),
                    });
                }
            }
            Output::Spawn(spec) => {
                let mut worker =
                    sim::SimWorker::new(spec.worker, self.behaviour_of(&spec.app).script());
                self.spawned.push(spec.worker);
                if let Some(hello) = worker.greet() {
                    reactions.push(data_of(spec.worker, &[hello]));
                }
                let record = SimWorker {
                    spec: spec.clone(),
                    received: Vec::new(),
                    worker,
                };
                self.workers.insert(spec.worker, record);
            }
            Output::Kill { worker, signal } => {
                self.follow_behaviours();
                let Some(w) = self.workers.get_mut(worker) else {
                    return;
                };
                w.signal(*signal);
                if w.leaving() {
                    let status = w.exit();
                    reactions.push(Input::WorkerExited {
                        worker: *worker,
                        status,
                    });
                }
            }
            Output::ToWorker { worker, bytes } => {
                self.follow_behaviours();
                let Some(w) = self.workers.get_mut(worker) else {
                    return;
                };
                let messages = w.worker.receive(bytes).unwrap_or_else(|e| panic!("{e}"));
                for message in messages {
                    if let WorkerMessage::Invoke { sid, .. } = &message {
                        self.invokes.push((*worker, *sid));
                    }
                    w.received.push((at, message));
                }
                let answers = w.answer();
                if !answers.is_empty() {
                    reactions.push(data_of(*worker, &answers));
                }
            }
            Output::Store { token, op } => {
                let result = match (&self.store_fails, &self.store_refuses) {
                    (Some(error), _) => Err(StoreError::Io(error.clone())),
                    (None, Some(refusal)) => Err(refusal.clone()),
                    (None, None) => Ok(self.carry_out(op)),
                };
                reactions.push(Input::Stored {
                    token: *token,
                    result,
                });
            }
            _ => {}
        }
    }
}

impl Harness {
    /// A store operation as the real store does it, in memory.
    fn carry_out(&mut self, op: &StoreOp) -> StoreDone {
        match op {
            StoreOp::PutApp {
                app,
                manifest_json,
                package,
            } => {
                self.stored_apps
                    .insert(app.clone(), (manifest_json.clone(), package.is_some()));
                let revision = self
                    .revisions
                    .iter()
                    .filter(|(a, _)| a == app)
                    .map(|(_, r)| r + 1)
                    .max()
                    .unwrap_or(1);
                self.revisions.insert((app.clone(), revision));
                self.current_revision.insert(app.clone(), revision);
                StoreDone {
                    package_dir: package
                        .as_ref()
                        .map(|_| format!("/store/apps/{app}/r{revision}/package").into()),
                    revision: Some(revision),
                }
            }
            StoreOp::Revert { app, to, from } => {
                if self.current_revision.get(app) == Some(from) {
                    self.current_revision.insert(app.clone(), *to);
                }
                self.revisions.remove(&(app.clone(), *from));
                StoreDone::default()
            }
            StoreOp::DropRevision { app, revision } => {
                if self.current_revision.get(app) != Some(revision) {
                    self.revisions.remove(&(app.clone(), *revision));
                }
                StoreDone::default()
            }
            StoreOp::DeleteApp { app } => {
                self.stored_apps.remove(app);
                self.current_revision.remove(app);
                self.revisions.retain(|(a, _)| a != app);
                StoreDone::default()
            }
            StoreOp::SetStopped { app, stopped } => {
                if *stopped {
                    self.stopped_apps.insert(app.clone());
                } else {
                    self.stopped_apps.remove(app);
                }
                StoreDone::default()
            }
            StoreOp::PutJob(job) => {
                self.stored_jobs.insert(job.id.clone(), job.clone());
                StoreDone::default()
            }
            StoreOp::DeleteJob { id } => {
                self.stored_jobs.remove(id);
                StoreDone::default()
            }
            StoreOp::PutTombstone { app, record } => {
                self.stored_tombstones.insert(app.clone(), record.clone());
                StoreDone::default()
            }
        }
    }
}

fn data_of(worker: WorkerId, messages: &[WorkerMessage]) -> Input {
    Input::WorkerData {
        worker,
        bytes: sim::encode(messages),
    }
}

// ---- native protocol helpers ----

pub fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

pub fn open(sid: u64, event: &str) -> Bytes {
    native::encode_open(sid, event, &Policy::default(), None)
}

pub fn open_with(sid: u64, event: &str, policy: Policy) -> Bytes {
    native::encode_open(sid, event, &policy, None)
}

pub fn chunk(sid: u64, data: &[u8]) -> Bytes {
    native::encode_chunk(sid, data)
}

pub fn choke(sid: u64) -> Bytes {
    native::encode_choke(sid)
}

pub fn cancel(sid: u64) -> Bytes {
    native::encode_cancel(sid)
}

/// Decodes a native-protocol message the node sent.
pub fn decode_native(frame: &[u8]) -> NativeMessage {
    NativeMessage::decode(frame, usize::MAX)
        .unwrap_or_else(|e| panic!("the node sent a bad native message: {e}"))
}

// ---- output filters ----

/// Frames of every `Send` on `endpoint`.
pub fn sends(outputs: &[Output], endpoint: EndpointId) -> Vec<Vec<Bytes>> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                endpoint: e,
                frames,
            } if *e == endpoint => Some(frames.clone()),
            _ => None,
        })
        .collect()
}

/// Native replies on `endpoint` to `peer`, decoded: every message frame after the identity
/// (and the empty delimiter, if any), in order. One send may carry several.
pub fn native_replies(outputs: &[Output], endpoint: EndpointId, peer: &[u8]) -> Vec<NativeMessage> {
    sends(outputs, endpoint)
        .into_iter()
        .filter(|f| f.first().map(|p| &p[..]) == Some(peer))
        .flat_map(|f| {
            let header = if f.get(1).is_some_and(|d| d.is_empty()) {
                2
            } else {
                1
            };
            f[header..]
                .iter()
                .map(|m| decode_native(m))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every publication as (topic, JSON value).
pub fn publications(outputs: &[Output]) -> Vec<(String, serde_json::Value)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Publish { topic, value, .. } => Some((
                String::from_utf8(topic.to_vec()).expect("topic is not UTF-8"),
                serde_json::from_slice(value).expect("published value is not JSON"),
            )),
            _ => None,
        })
        .collect()
}

/// Publications whose topic starts with `prefix`.
pub fn published(outputs: &[Output], prefix: &str) -> Vec<(String, serde_json::Value)> {
    publications(outputs)
        .into_iter()
        .filter(|(t, _)| t.starts_with(prefix))
        .collect()
}

pub fn logs(outputs: &[Output]) -> Vec<(LogLevel, String)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Log { level, message } => Some((*level, message.clone())),
            _ => None,
        })
        .collect()
}

pub fn kills(outputs: &[Output]) -> Vec<(WorkerId, Signal)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Kill { worker, signal } => Some((*worker, *signal)),
            _ => None,
        })
        .collect()
}

/// The envelope a publication at `ms` after the harness's start carries.
pub fn topic(app: &str, source: &str, field: &str, ms: u64) -> String {
    let unix = EPOCH_MS + ms;
    format!(
        "{app}:{source} {field} {HOST} {}.{:03}",
        unix / 1000,
        unix % 1000
    )
}

/// The discovery (UDP) socket the node asked to open among `outputs`, if any.
pub fn udp_endpoint(outputs: impl IntoIterator<Item = Output>) -> Option<EndpointId> {
    outputs.into_iter().find_map(|o| match o {
        Output::OpenUdp { endpoint, .. } => Some(endpoint),
        _ => None,
    })
}

/// Confirms the discovery socket the node asked to open among `outputs` as bound; returns it.
pub fn bind_udp(h: &mut Harness, outputs: impl IntoIterator<Item = Output>) -> EndpointId {
    let udp = udp_endpoint(outputs).expect("a discovery socket");
    h.input(Input::Bound {
        endpoint: udp,
        result: Ok(()),
    });
    udp
}

/// A peer's unsigned announcement of one app with task `hello` at `tcp://*:9110`.
pub fn peer_app(
    id: &str,
    seq: u64,
    app: &str,
    busy: u64,
    queue: u64,
    state: AppState,
) -> Announcement {
    Announcement {
        node_id: id.into(),
        seq,
        control: "tcp://*:5000".into(),
        apps: [(
            app.to_owned(),
            AppAnnouncement {
                version: 4,
                hash: String::new(),
                tasks: [("hello".to_owned(), "tcp://*:9110".to_owned())].into(),
                load: Load {
                    queue,
                    busy,
                    workers: 2,
                    pool_limit: 5,
                    queue_limit: 50,
                },
                state,
            },
        )]
        .into(),
        sig: None,
    }
}

/// The one reply to the control request `request` (JSON) sent on the control endpoint
/// `control`, decoded.
pub fn control_reply(h: &mut Harness, control: &str, request: &str) -> serde_json::Value {
    let control = h.endpoint(control);
    h.fresh();
    h.receive(
        control,
        vec![
            b(b"op"),
            Bytes::new(),
            Bytes::copy_from_slice(request.as_bytes()),
        ],
    );
    let replies = sends(&h.fresh(), control);
    assert_eq!(replies.len(), 1);
    serde_json::from_slice(replies[0].last().unwrap()).unwrap()
}
