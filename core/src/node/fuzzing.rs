//! Property checks for fuzzing the node: the body of the `fuzz/` target `node_inputs`, kept
//! here so that `cargo test` can replay the committed corpus (`tests/node_fuzz_corpus.rs`)
//! with the same checks.
//!
//! [`check_node_inputs`] turns arbitrary bytes into a sequence of node inputs (client
//! messages on every kind of endpoint, worker bytes and messages, exits, stderr, spawn
//! failures, time, binds, removals and redeploys, shutdown) against two apps deployed at the
//! start, plays the runtime and the workers around the node, and checks properties after every
//! step. Like the rest of the core it reads no clock: the caller gives the origin of time.
//!
//! Unlike the rest of the core these functions panic, on purpose: a panic is how a fuzzer
//! learns that a property failed. Nothing outside fuzzing and tests should call them.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hasher;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

use super::{
    BindError, FsEvent, FsEventKind, Input, Node, NodeConfig, Output, SocketKind, SpawnError,
    StoreError, WatchError,
};
use crate::codec::native::{self, Auth, NativeMessage, Policy};
use crate::codec::worker::{JobMeta, WorkerMessage, PROTOCOL_VERSION};
use crate::ids::{ConnId, EndpointId, WatchId, WorkerId};
use crate::manifest::Manifest;
use crate::process::ExitStatus;
use crate::sim::{self, Answer, Script, SimWorker};
use crate::time::Now;

/// The app with every driver the node runs: two servers, two sinks, two timers, a cron task,
/// a filesystem monitor, a pubsub.
/// Limits are small so that fuzzed inputs reach them.
pub const FUZZ_APP: &str = r#"{
  "type": "python", "args": "local:///srv/fuzz",
  "engine": {"pool-limit": 3, "queue-limit": 4, "concurrency": 2, "restart-intensity": 3,
             "restart-period": 5, "termination-timeout": 1, "startup-timeout": 2,
             "heartbeat-interval": 1, "heartbeat-timeout": 3, "idle-timeout": 5,
             "max-requests": 7, "max-message": 4096},
  "pubsub": {"endpoint": "tcp://127.0.0.1:7100", "interval": 2500},
  "tasks": {
    "native": {"type": "native-server", "endpoint": "tcp://127.0.0.1:7101"},
    "server": {"type": "zeromq-server", "endpoint": "tcp://127.0.0.1:7102", "reply-limit": 64},
    "tick": {"type": "recurring-timer", "interval": 900, "immediate": true},
    "drift": {"type": "drifting-timer", "interval": 1300},
    "cron": {"type": "cron", "schedule": "*/2 * * * * *", "overlap": "buffer-one"},
    "sink": {"type": "native-sink", "endpoint": "tcp://127.0.0.1:7103"},
    "pull": {"type": "zeromq-sink", "endpoint": "tcp://127.0.0.1:7104"},
    "watch": {"type": "filesystem-monitor", "path": "/srv/fuzz/in", "debounce": 300},
    "lines": {"type": "raw-server", "endpoint": "tcp://127.0.0.1:7105", "framing": "line",
              "max-line": 16},
    "stream": {"type": "raw-server", "endpoint": "tcp://127.0.0.1:7106", "framing": "stream",
               "max-message": 64}
  }
}"#;

/// A second app sharing the node: one native-server, one worker, a queue of one.
pub const FUZZ_MINI: &str = r#"{
  "type": "python", "args": "local:///srv/mini",
  "engine": {"pool-limit": 1, "queue-limit": 1, "restart-intensity": 1, "restart-period": 2,
             "termination-timeout": 0.5},
  "tasks": {"echo": {"type": "native-server", "endpoint": "tcp://127.0.0.1:7201"}}
}"#;

/// An app deployed, redeployed, scheduled and deleted over the control endpoint.
pub const FUZZ_CONTROLLED: &str = r#"{
  "type": "python", "args": "local://code", "version": VERSION,
  "engine": {"pool-limit": 2, "queue-limit": 3, "termination-timeout": 0.5},
  "pubsub": {"endpoint": "tcp://127.0.0.1:7300"},
  "tasks": {"echo": {"type": "native-server", "endpoint": "tcp://127.0.0.1:7301"},
            "later": {"type": "manual-scheduler"}}
}"#;

const APPS: [(&str, &str); 2] = [("fuzz", FUZZ_APP), ("mini", FUZZ_MINI)];
/// The app names, in the order of `APPS`.
const APP_NAMES: [&str; 2] = ["fuzz", "mini"];
const NATIVE_SERVERS: [&str; 3] = [
    "tcp://127.0.0.1:7101",
    "tcp://127.0.0.1:7201",
    "tcp://127.0.0.1:7301",
];
const CONTROL: &str = "tcp://127.0.0.1:7000";
const ZMQ_SERVER: &str = "tcp://127.0.0.1:7102";
const NATIVE_SINK: &str = "tcp://127.0.0.1:7103";
const ZMQ_SINK: &str = "tcp://127.0.0.1:7104";
const RAW_LINES: &str = "tcp://127.0.0.1:7105";
const RAW_STREAM: &str = "tcp://127.0.0.1:7106";

/// Rounds of (workers act, 2 s pass) a shutdown may take with cooperative workers.
const WIND_DOWN_ROUNDS: usize = 20;
/// Outputs one input may cause before the node is deemed to talk forever.
const MAX_OUTPUTS_PER_STEP: usize = 200_000;
/// Steps one run takes at most, so that a fuzzer's long inputs stay fast.
const MAX_STEPS: usize = 2_000;

/// Runs the input sequence `data` describes twice from `start` and checks every property
/// after every step, and that both runs gave the same outputs.
///
/// Properties: no panic; one input makes finitely many outputs, and after `Input::Tick`
/// no timer is still due; every message to a client or a worker decodes; a native-server
/// client gets at most one terminal (`[5]`, or `[6]` with a sid other than 0) per open of a
/// (identity, sid), and no reply chunk for a sid not open; zeromq-server replies are
/// well formed, at most one per request; publications are a four-word topic and JSON; worker
/// ids are never reused and a worker's channel is never written to (nor the worker
/// signalled) after `Output::CloseWorker`; `Stopped` only after `Shutdown`; every control
/// request gets exactly one reply, `{"ok": ...}` or `{"error": {"code", "message"}}` with a
/// known code; a raw connection is written to only between its accept and its close (or
/// the client's reset), a `line` one with whole lines, never more than its requests and one
/// error. At the end the
/// node is shut down with cooperative workers: it must stop within bounded time, with every
/// native open and every zeromq-server request answered exactly once, every raw connection
/// closed, and nothing left to wake up for.
///
/// # Panics
///
/// When a property fails.
pub fn check_node_inputs(start: Instant, data: &[u8]) {
    let manifests = APPS.map(|(name, json)| {
        Manifest::parse(name, json.as_bytes(), None)
            .unwrap_or_else(|e| panic!("the fuzz manifest of {name} does not parse: {e}"))
    });
    let first = run(start, &manifests, data);
    let second = run(start, &manifests, data);
    assert_eq!(first, second, "the same inputs gave different outputs");
}

/// One run: the number of outputs and a hash of their `Debug` text.
fn run(start: Instant, manifests: &[Manifest; 2], data: &[u8]) -> (usize, u64) {
    let mut f = Fuzz::new(start, manifests.clone());
    for i in 0..manifests.len() {
        f.deploy(i);
    }
    f.confirm_binds();
    let mut r = Bytes::copy_from_slice(data);
    let mut steps = 0;
    while !r.is_empty() && steps < MAX_STEPS {
        steps += 1;
        f.step(&mut r);
        f.check_quiet();
    }
    f.wind_down();
    (f.count, f.hash.finish())
}

/// Reads fuzz input; returns zeros once it runs out.
trait Take {
    fn byte(&mut self) -> u8;
    fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    fn blob(&mut self, max: usize) -> Bytes;
}

impl Take for Bytes {
    fn byte(&mut self) -> u8 {
        if self.is_empty() {
            0
        } else {
            let b = self[0];
            bytes::Buf::advance(self, 1);
            b
        }
    }

    fn blob(&mut self, max: usize) -> Bytes {
        let len = usize::from(self.byte()) % (max + 1);
        self.split_to(len.min(self.len()))
    }
}

/// A simulated worker, as the fuzzer's runtime sees it: the one simulated worker, and whether
/// the node closed its channel (`Output::CloseWorker`): then it must not talk to it again.
/// (Between the report of its end and the close it may: timers due at the report's time fire
/// first.)
#[derive(Debug)]
struct FuzzWorker {
    worker: SimWorker,
    closed: bool,
}

/// Every fuzzed worker handshakes, answers each finished job with `{"ok": true}` (499 if
/// cancelled) and leaves when signalled or told to terminate while idle.
fn script() -> Script {
    Script {
        handshake: true,
        answer: Answer::Chunks(vec![Bytes::from_static(b"{\"ok\": true}")]),
        obey: true,
        heartbeat: false,
    }
}

/// What a native-server client sent and got, for one (endpoint, identity, sid).
#[derive(Debug, Default)]
struct SidLedger {
    /// `[3]` messages sent with this sid.
    opens: u64,
    /// `[6, sid, 400, "... already open"]` received: an open that did not open.
    refused: u64,
    /// `[5]` and other `[6]` received.
    terminals: u64,
}

/// What a raw-server client sent and got.
#[derive(Debug, Default)]
struct ConnLedger {
    /// Accepted on the `line` task (else `stream`).
    line: bool,
    /// Line ends sent: at most that many replies, plus one error for a line too long.
    requests: u64,
    /// Lines written back.
    replies: u64,
    /// The node closed it (`Output::ConnClose`).
    closed: bool,
    /// The client reset it (`Input::ConnClosed`): the node must not write to it again.
    reset: bool,
}

impl SidLedger {
    fn live(&self) -> i128 {
        i128::from(self.opens) - i128::from(self.refused) - i128::from(self.terminals)
    }
}

struct Fuzz {
    node: Node,
    manifests: [Manifest; 2],
    now: Now,
    binds: Vec<(EndpointId, SocketKind, String)>,
    /// Endpoints the node owns: from their `Bind` to their `Unbind`. Messages on others are
    /// ignored by the node, so they are not counted.
    live_endpoints: BTreeSet<EndpointId>,
    /// zeromq-server requests sent to live endpoints, and replies seen: one reply each.
    server_requests: u64,
    server_replies: u64,
    unconfirmed: Vec<EndpointId>,
    workers: BTreeMap<WorkerId, FuzzWorker>,
    spawned: Vec<WorkerId>,
    ledgers: BTreeMap<(EndpointId, Bytes, u64), SidLedger>,
    shutdown: bool,
    stopped: bool,
    count: usize,
    hash: DefaultHasher,
    /// Store operations asked for and not yet carried out, by token.
    store_ops: Vec<u64>,
    control_requests: u64,
    control_replies: u64,
    /// Watches from their `WatchPath` to their `Unwatch` (or a failure reported for them).
    live_watches: BTreeSet<WatchId>,
    /// Every watch ever asked for: events may still come for dropped ones.
    seen_watches: Vec<WatchId>,
    conns: BTreeMap<ConnId, ConnLedger>,
}

impl Fuzz {
    fn new(start: Instant, manifests: [Manifest; 2]) -> Self {
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        Self {
            node: Node::new(NodeConfig {
                hostname: "fuzzhost".to_owned(),
                run_dir: "/run/cocaine-fuzz".into(),
                max_open_per_peer: 3,
                control: vec![CONTROL.to_owned()],
                control_max_message: 2048,
                ..NodeConfig::default()
            }),
            now: Now::new(start, wall),
            manifests,
            binds: Vec::new(),
            live_endpoints: BTreeSet::new(),
            server_requests: 0,
            server_replies: 0,
            unconfirmed: Vec::new(),
            workers: BTreeMap::new(),
            spawned: Vec::new(),
            ledgers: BTreeMap::new(),
            shutdown: false,
            stopped: false,
            count: 0,
            hash: DefaultHasher::new(),
            store_ops: Vec::new(),
            control_requests: 0,
            control_replies: 0,
            live_watches: BTreeSet::new(),
            seen_watches: Vec::new(),
            conns: BTreeMap::new(),
        }
    }

    /// Deploys app `i` of `APPS`.
    fn deploy(&mut self, i: usize) {
        let manifest = Box::new(self.manifests[i].clone());
        self.input(Input::Deploy {
            manifest,
            origin: crate::node::AppOrigin::CommandLine,
        });
    }

    fn confirm_binds(&mut self) {
        for endpoint in std::mem::take(&mut self.unconfirmed) {
            self.input(Input::Bound {
                endpoint,
                result: Ok(()),
            });
        }
    }

    /// The endpoint last bound at `address`, if any.
    fn endpoint(&self, address: &str) -> Option<EndpointId> {
        self.binds
            .iter()
            .rev()
            .find(|(_, _, a)| a == address)
            .map(|(e, _, _)| *e)
    }

    fn is_native_server(&self, endpoint: EndpointId) -> bool {
        self.binds
            .iter()
            .any(|(e, _, a)| *e == endpoint && NATIVE_SERVERS.contains(&a.as_str()))
    }

    fn is_zmq_server(&self, endpoint: EndpointId) -> bool {
        self.binds
            .iter()
            .any(|(e, _, a)| *e == endpoint && a == ZMQ_SERVER)
    }

    /// One input, chosen and shaped by the fuzz bytes.
    fn step(&mut self, r: &mut Bytes) {
        match r.byte() % 16 {
            0 | 1 => {
                let address = NATIVE_SERVERS[usize::from(r.byte()) % NATIVE_SERVERS.len()];
                if let Some(endpoint) = self.endpoint(address) {
                    let peer = Bytes::from(vec![b'c', r.byte() % 3]);
                    let mut frames = vec![peer];
                    if r.flag() {
                        frames.push(Bytes::new());
                    }
                    frames.extend(native_messages(r));
                    self.client_sends(endpoint, frames);
                }
            }
            2 => {
                let address = NATIVE_SERVERS[usize::from(r.byte()) % NATIVE_SERVERS.len()];
                if let Some(endpoint) = self.endpoint(address) {
                    let frames = raw_frames(r);
                    self.client_sends(endpoint, frames);
                }
            }
            3 => {
                if let Some(endpoint) = self.endpoint(ZMQ_SERVER) {
                    let mut frames = raw_frames(r);
                    if r.flag() {
                        // Mostly well formed: routing, delimiter, body.
                        frames.insert(0, Bytes::from_static(b"peer"));
                        frames.insert(1, Bytes::new());
                    }
                    if self.live_endpoints.contains(&endpoint) {
                        self.server_requests += 1;
                    }
                    self.input(Input::Received { endpoint, frames });
                }
            }
            4 => {
                let (address, frames) = if r.flag() {
                    (NATIVE_SINK, native_messages(r))
                } else {
                    (ZMQ_SINK, raw_frames(r))
                };
                if let Some(endpoint) = self.endpoint(address) {
                    self.input(Input::Received { endpoint, frames });
                }
            }
            5 => self.workers_act(),
            6 => {
                if let Some(worker) = self.pick_worker(r) {
                    let messages = self.worker_messages(worker, r);
                    let mut buf = BytesMut::new();
                    for m in &messages {
                        m.encode_framed(&mut buf);
                    }
                    let bytes = buf.freeze();
                    // Split the write somewhere: the channel is a byte stream.
                    let at = usize::from(r.byte()).min(bytes.len());
                    for piece in [bytes.slice(..at), bytes.slice(at..)] {
                        self.input(Input::WorkerData {
                            worker,
                            bytes: piece,
                        });
                    }
                }
            }
            7 => {
                if let Some(worker) = self.pick_worker(r) {
                    let bytes = r.blob(40);
                    self.input(Input::WorkerData { worker, bytes });
                }
            }
            8 => {
                if let Some(worker) = self.pick_worker(r) {
                    let status = if r.flag() {
                        ExitStatus::Code(i32::from(r.byte()) - 128)
                    } else {
                        ExitStatus::Signal(i32::from(r.byte() % 32))
                    };
                    self.gone(worker);
                    self.input(Input::WorkerExited { worker, status });
                }
            }
            9 => {
                if let Some(worker) = self.pick_worker(r) {
                    let line = String::from_utf8_lossy(&r.blob(60)).into_owned();
                    self.input(Input::WorkerStderr { worker, line });
                }
            }
            10 => {
                if let Some(worker) = self.pick_worker(r) {
                    self.gone(worker);
                    self.input(Input::SpawnFailed {
                        worker,
                        error: SpawnError::NotFound("no such file".to_owned()),
                    });
                }
            }
            11 | 12 => {
                let ms = u64::from(r.u16() % 5000) * u64::from(1 + r.byte() % 4);
                self.advance(Duration::from_millis(ms));
            }
            13 => {
                if !self.unconfirmed.is_empty() {
                    let i = usize::from(r.byte()) % self.unconfirmed.len();
                    let endpoint = self.unconfirmed.remove(i);
                    let result = if r.byte().is_multiple_of(4) {
                        Err(BindError::AddressInUse("Address already in use".to_owned()))
                    } else {
                        Ok(())
                    };
                    self.input(Input::Bound { endpoint, result });
                }
            }
            14 => {
                let i = usize::from(r.byte() % 2);
                if r.flag() {
                    self.input(Input::Remove {
                        app: APP_NAMES[i].to_owned(),
                        origin: crate::node::AppOrigin::CommandLine,
                    });
                } else {
                    self.deploy(i);
                }
            }
            _ => match r.byte() % 10 {
                0 => self.shut_down(),
                1 => {
                    if let Some(worker) = self.pick_worker(r) {
                        self.input(Input::WorkerDisconnected { worker });
                    }
                }
                2 | 3 => self.control_request(r),
                4 => self.complete_store_op(r),
                5 => self.fs_events(r),
                6 => {
                    if let Some(&watch) = self.pick_watch(r) {
                        self.live_watches.remove(&watch);
                        let error = WatchError::Other("inotify watch limit reached".to_owned());
                        self.input(Input::WatchFailed { watch, error });
                    }
                }
                7 | 8 => self.raw_client(r),
                _ => self.input(Input::Tick),
            },
        }
    }

    /// A watch the node asked for at some point (maybe dropped since), if any.
    fn pick_watch(&self, r: &mut Bytes) -> Option<&WatchId> {
        let n = self.seen_watches.len();
        (n > 0).then(|| &self.seen_watches[usize::from(r.byte()) % n])
    }

    /// A few changes under the monitored folder, reported by some watch.
    fn fs_events(&mut self, r: &mut Bytes) {
        let Some(&watch) = self.pick_watch(r) else {
            return;
        };
        let events = (0..r.byte() % 5)
            .map(|_| FsEvent {
                path: format!("/srv/fuzz/in/{}", r.byte() % 4).into(),
                kind: match r.byte() % 3 {
                    0 => FsEventKind::Created,
                    1 => FsEventKind::Modified,
                    _ => FsEventKind::Removed,
                },
            })
            .collect();
        self.input(Input::FsEvents { watch, events });
    }

    /// A raw-server client connects, sends bytes (line ends likely), ends its input or
    /// resets.
    fn raw_client(&mut self, r: &mut Bytes) {
        let live: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.closed && !c.reset)
            .map(|(id, _)| *id)
            .collect();
        let action = r.byte() % 6;
        if action == 0 || live.is_empty() {
            let line = r.flag();
            let address = if line { RAW_LINES } else { RAW_STREAM };
            let Some(endpoint) = self.endpoint(address) else {
                return;
            };
            if !self.live_endpoints.contains(&endpoint) {
                return;
            }
            let conn = ConnId(self.conns.len() as u64 + 1);
            self.conns.insert(
                conn,
                ConnLedger {
                    line,
                    ..ConnLedger::default()
                },
            );
            let peer = format!("10.0.0.1:{}", conn.0);
            self.input(Input::Accepted {
                endpoint,
                conn,
                peer,
            });
            return;
        }
        let conn = live[usize::from(r.byte()) % live.len()];
        match action {
            1..=3 => {
                let mut bytes = r.blob(24).to_vec();
                if action == 3 {
                    bytes.push(b'\n');
                }
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.requests += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
                }
                let bytes = Bytes::from(bytes);
                self.input(Input::ConnData { conn, bytes });
            }
            4 => self.input(Input::ConnEof { conn }),
            _ => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.reset = true;
                }
                self.input(Input::ConnClosed { conn });
            }
        }
    }

    /// Checks a write to a raw connection: one the node has not closed nor the client reset,
    /// and (in `line`) no more reply lines than requests and one error.
    fn check_conn_output(&mut self, conn: ConnId, bytes: Option<&Bytes>) {
        let c = self
            .conns
            .get_mut(&conn)
            .unwrap_or_else(|| panic!("output for raw connection {conn}, never accepted"));
        assert!(
            !c.closed,
            "output for raw connection {conn} after its close"
        );
        assert!(
            !c.reset,
            "output for raw connection {conn} after the client reset it"
        );
        match bytes {
            Some(bytes) => {
                if c.line {
                    assert_eq!(bytes.last(), Some(&b'\n'), "a line reply without its end");
                    c.replies += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
                    assert!(
                        c.replies <= c.requests + 1,
                        "raw connection {conn}: more replies than requests: {c:?}"
                    );
                }
            }
            None => c.closed = true,
        }
    }

    /// A native-server client sends `frames`; its opens are counted first.
    fn client_sends(&mut self, endpoint: EndpointId, frames: Vec<Bytes>) {
        let counted = self.live_endpoints.contains(&endpoint);
        if let Some((peer, rest)) = frames.split_first().filter(|_| counted) {
            let rest = match rest.split_first() {
                Some((first, tail)) if first.is_empty() => tail,
                _ => rest,
            };
            for frame in rest {
                if let Ok(NativeMessage::Open { sid, .. }) =
                    NativeMessage::decode(frame, usize::MAX)
                {
                    if sid != 0 {
                        let key = (endpoint, peer.clone(), sid);
                        self.ledgers.entry(key).or_default().opens += 1;
                    }
                }
            }
        }
        self.input(Input::Received { endpoint, frames });
    }

    /// A spawned worker (sometimes one already gone: the node must shrug those off).
    fn pick_worker(&self, r: &mut Bytes) -> Option<WorkerId> {
        let live: Vec<WorkerId> = self
            .spawned
            .iter()
            .copied()
            .filter(|w| !self.workers[w].worker.exited)
            .collect();
        let choice = r.byte();
        let pool = if live.is_empty() || choice >= 240 {
            &self.spawned
        } else {
            &live
        };
        (!pool.is_empty()).then(|| pool[usize::from(choice) % pool.len()])
    }

    /// Messages a worker sends, valid on the wire but not always in the protocol.
    fn worker_messages(&mut self, worker: WorkerId, r: &mut Bytes) -> Vec<WorkerMessage> {
        let sid = |f: &Self, r: &mut Bytes| -> u64 {
            let jobs: Vec<u64> = f.workers[&worker].worker.jobs.keys().copied().collect();
            if !jobs.is_empty() && r.byte() < 200 {
                jobs[usize::from(r.byte()) % jobs.len()]
            } else {
                u64::from(r.u16())
            }
        };
        let mut out = Vec::new();
        for _ in 0..1 + r.byte() % 3 {
            let message = match r.byte() % 9 {
                0 => {
                    let right = r.byte() < 220;
                    WorkerMessage::Handshake {
                        worker_id: if right {
                            worker.to_string()
                        } else {
                            "w999".to_owned()
                        },
                        version: if r.byte() < 240 { PROTOCOL_VERSION } else { 2 },
                        pid: 4242,
                    }
                }
                1 => WorkerMessage::Heartbeat,
                2 => WorkerMessage::Chunk {
                    sid: sid(self, r),
                    data: r.blob(80),
                },
                3 => WorkerMessage::Choke { sid: sid(self, r) },
                4 => WorkerMessage::Error {
                    sid: sid(self, r),
                    code: u32::from(r.u16()),
                    message: "failed".to_owned(),
                },
                5 => WorkerMessage::Terminate {
                    reason: "bye".to_owned(),
                },
                6 => WorkerMessage::Invoke {
                    sid: sid(self, r),
                    event: "x".to_owned(),
                    meta: JobMeta::default(),
                },
                7 => WorkerMessage::Cancel { sid: sid(self, r) },
                _ => {
                    // Answer one job whole.
                    let sid = sid(self, r);
                    out.push(WorkerMessage::Chunk {
                        sid,
                        data: r.blob(80),
                    });
                    WorkerMessage::Choke { sid }
                }
            };
            if let Some(w) = self.workers.get_mut(&worker) {
                w.worker.said(&message);
            }
            out.push(message);
        }
        out
    }

    /// Every live worker does what a well-behaved one would: handshake, answer the jobs
    /// whose request ended (`{"ok": true}`; 499 if cancelled), leave when told.
    fn workers_act(&mut self) {
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        for id in ids {
            let Some(FuzzWorker { worker: w, .. }) = self.workers.get_mut(&id) else {
                continue;
            };
            if w.exited {
                continue;
            }
            if w.leaving() {
                let status = w.exit();
                self.input(Input::WorkerExited { worker: id, status });
                continue;
            }
            let mut messages: Vec<WorkerMessage> = w.greet().into_iter().collect();
            messages.extend(w.answer());
            if !messages.is_empty() {
                self.input(Input::WorkerData {
                    worker: id,
                    bytes: sim::encode(&messages),
                });
            }
        }
    }

    fn gone(&mut self, worker: WorkerId) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.worker.exited = true;
        }
    }

    /// Moves time forward by `by`, firing timers at their due times as a runtime would.
    fn advance(&mut self, by: Duration) {
        let target = self.now.mono + by;
        while let Some(at) = self.node.poll_timeout() {
            if at > target {
                break;
            }
            let at = at.max(self.now.mono);
            self.now = self.now + (at - self.now.mono);
            self.input(Input::Tick);
            if let Some(next) = self.node.poll_timeout() {
                assert!(
                    next > self.now.mono,
                    "a timer is still due after Input::Tick: the runtime would spin"
                );
            }
        }
        self.now = self.now + (target - self.now.mono);
        self.input(Input::Tick);
    }

    /// Feeds one input and drains the outputs, checking each.
    fn input(&mut self, input: Input) {
        self.node.handle_input(self.now, input);
        if let Err(e) = self.node.check_deadline_index() {
            panic!("after an input: {e}");
        }
        let mut n = 0;
        while let Some(output) = self.node.poll_output() {
            n += 1;
            assert!(
                n <= MAX_OUTPUTS_PER_STEP,
                "one input made more than {MAX_OUTPUTS_PER_STEP} outputs"
            );
            self.count += 1;
            self.hash.write(format!("{output:?}").as_bytes());
            self.check_output(output);
        }
    }

    fn check_output(&mut self, output: Output) {
        match output {
            Output::Bind {
                endpoint,
                kind,
                address,
                ..
            } => {
                self.binds.push((endpoint, kind, address));
                self.unconfirmed.push(endpoint);
                assert!(
                    self.live_endpoints.insert(endpoint),
                    "{endpoint} bound twice"
                );
            }
            Output::Send { endpoint, frames } => {
                if self.endpoint(CONTROL) == Some(endpoint) {
                    check_control_reply(&frames);
                    self.control_replies += 1;
                    assert!(
                        self.control_replies <= self.control_requests,
                        "more control replies than requests"
                    );
                } else if self.is_native_server(endpoint) {
                    self.check_native_reply(endpoint, &frames);
                } else if self.is_zmq_server(endpoint) {
                    check_server_reply(&frames);
                    self.server_replies += 1;
                    assert!(
                        self.server_replies <= self.server_requests,
                        "more zeromq-server replies than requests"
                    );
                } else {
                    panic!("a Send on {endpoint}, which has no clients: {frames:?}");
                }
            }
            Output::Publish { topic, value, .. } => {
                let topic = std::str::from_utf8(&topic).expect("a topic is not UTF-8");
                assert_eq!(topic.split(' ').count(), 4, "topic {topic:?}");
                // Stats are serialized by serde_json itself; parsing them back only costs time.
                let stats = topic.split(' ').nth(1) == Some("stats");
                assert!(
                    stats || serde_json::from_slice::<serde_json::Value>(&value).is_ok(),
                    "a published value is not JSON: {value:?}"
                );
            }
            Output::Spawn(spec) => {
                assert!(!self.shutdown, "a worker spawned after shutdown");
                let worker = FuzzWorker {
                    worker: SimWorker::new(spec.worker, script()),
                    closed: false,
                };
                let known = self.workers.insert(spec.worker, worker);
                assert!(known.is_none(), "worker id {} reused", spec.worker);
                self.spawned.push(spec.worker);
            }
            Output::Kill { worker, signal } => {
                self.live_worker(worker, "signalled").signal(signal);
            }
            Output::ToWorker { worker, bytes } => {
                let w = self.live_worker(worker, "written to");
                if let Err(breach) = w.receive(&bytes) {
                    panic!("{breach}");
                }
            }
            Output::Stopped => {
                assert!(self.shutdown, "Stopped without a Shutdown");
                self.stopped = true;
            }
            Output::CloseWorker { worker } => {
                if let Some(w) = self.workers.get_mut(&worker) {
                    assert!(
                        w.worker.exited,
                        "{worker} closed before it was reported gone"
                    );
                    w.closed = true;
                }
            }
            Output::SetMaxMessage { endpoint, .. } => {
                assert!(
                    self.live_endpoints.contains(&endpoint),
                    "{endpoint}'s limit set but it is not bound"
                );
            }
            Output::Unbind { endpoint } => {
                assert!(
                    self.live_endpoints.remove(&endpoint),
                    "{endpoint} unbound but not bound"
                );
            }
            Output::Store { token, .. } => self.store_ops.push(token),
            Output::WatchPath { watch, .. } => {
                assert!(!self.shutdown, "a watch asked for after shutdown");
                assert!(self.live_watches.insert(watch), "{watch} watched twice");
                self.seen_watches.push(watch);
            }
            Output::Unwatch { watch } => {
                assert!(
                    self.live_watches.remove(&watch),
                    "{watch} unwatched but not watched"
                );
            }
            Output::ConnSend { conn, bytes } => self.check_conn_output(conn, Some(&bytes)),
            Output::ConnClose { conn } => self.check_conn_output(conn, None),
            // Raw servers never pause reading; only HTTP connections do.
            Output::ConnReading { conn, .. } => {
                panic!("raw connection {conn} paused or resumed")
            }
            Output::Fatal { reason } => {
                panic!("fatal with a control endpoint that binds: {reason}")
            }
            Output::OpenUdp { .. } | Output::SendTo { .. } | Output::Announce { .. } => {
                panic!("UDP with discovery off: {output:?}")
            }
            Output::AppStarted { .. }
            | Output::PrepareWorkers(_)
            | Output::ControlReady { .. }
            | Output::AppStopped { .. }
            | Output::DeployFailed { .. }
            | Output::Log { .. } => {}
        }
    }

    /// A control request: well formed (deploy, redeploy, delete, reload, list, info,
    /// schedule, unschedule, with or without a package) or any frames at all.
    fn control_request(&mut self, r: &mut Bytes) {
        let Some(endpoint) = self.endpoint(CONTROL) else {
            return;
        };
        let mut frames = vec![Bytes::from(vec![b'o', r.byte() % 2]), Bytes::new()];
        let body = match r.byte() % 10 {
            0 | 1 => {
                let version = u64::from(r.byte() % 4);
                let manifest = FUZZ_CONTROLLED.replace("VERSION", &version.to_string());
                let app = ["ctl", "fuzz", "ctl2"][usize::from(r.byte() % 3)];
                let json = format!(
                    r#"{{"version": 1, "action": "deploy", "app": "{app}", "manifest": {manifest}}}"#
                );
                frames.push(Bytes::from(json));
                if r.flag() {
                    frames.push(r.blob(40));
                }
                None
            }
            2 => Some(r#"{"version": 1, "action": "delete", "app": "ctl"}"#.to_owned()),
            3 => Some(r#"{"version": 1, "action": "reload", "app": "ctl"}"#.to_owned()),
            4 => Some(r#"{"version": 1, "action": "list"}"#.to_owned()),
            5 => Some(r#"{"version": 1, "action": "info", "app": "ctl"}"#.to_owned()),
            6 => Some(r#"{"version": 1, "action": "info"}"#.to_owned()),
            7 => {
                let task = if r.flag() { "later" } else { "echo" };
                let when = if r.flag() { "after" } else { "at" };
                Some(format!(
                    r#"{{"version": 1, "action": "schedule", "app": "ctl", "task": "{task}", "{when}": {}, "body": "eA=="}}"#,
                    u64::from(r.u16()) * 10
                ))
            }
            8 => Some(format!(
                r#"{{"version": 1, "action": "unschedule", "id": "1700000000000-{}"}}"#,
                r.byte() % 4
            )),
            _ => {
                if r.flag() {
                    // No delimiter at all.
                    frames.pop();
                }
                frames.extend(raw_frames(r));
                None
            }
        };
        if let Some(body) = body {
            frames.push(Bytes::from(body));
        }
        if self.live_endpoints.contains(&endpoint) {
            self.control_requests += 1;
        }
        self.input(Input::Received { endpoint, frames });
    }

    /// Asks the node to shut down. Timers already due fire before a shutdown is taken in,
    /// and may spawn: they fire first, so that "no spawn after shutdown" means after it.
    fn shut_down(&mut self) {
        self.input(Input::Tick);
        self.shutdown = true;
        self.input(Input::Shutdown);
    }

    /// The runtime carries out every store operation waiting.
    fn finish_store_ops(&mut self) {
        while !self.store_ops.is_empty() {
            let token = self.store_ops.remove(0);
            let result = Ok(crate::node::StoreDone::default());
            self.input(Input::Stored { token, result });
        }
    }

    /// The runtime carries out the oldest store operation waiting, or fails it.
    fn complete_store_op(&mut self, r: &mut Bytes) {
        if self.store_ops.is_empty() {
            return;
        }
        let token = self.store_ops.remove(0);
        let result = if r.byte() < 230 {
            Ok(crate::node::StoreDone {
                package_dir: Some("/store/apps/ctl/package".into()),
                revision: Some(u64::from(r.byte())),
            })
        } else {
            Err(StoreError::Io("No space left on device".to_owned()))
        };
        self.input(Input::Stored { token, result });
    }

    fn live_worker(&mut self, worker: WorkerId, what: &str) -> &mut SimWorker {
        let w = self
            .workers
            .get_mut(&worker)
            .unwrap_or_else(|| panic!("{worker} {what} but never spawned"));
        assert!(!w.closed, "{worker} {what} after its channel was closed");
        &mut w.worker
    }

    /// A native-protocol reply: `[identity, ("",) message...]`, every message decodable, and
    /// at most one terminal per open.
    fn check_native_reply(&mut self, endpoint: EndpointId, frames: &[Bytes]) {
        let header = if frames.get(1).is_some_and(|f| f.is_empty()) {
            2
        } else {
            1
        };
        assert!(frames.len() > header, "native reply frames {frames:?}");
        let peer = frames[0].clone();
        for frame in &frames[header..] {
            self.check_native_message(endpoint, &peer, frame);
        }
    }

    fn check_native_message(&mut self, endpoint: EndpointId, peer: &Bytes, frame: &Bytes) {
        let message = NativeMessage::decode(frame, usize::MAX)
            .unwrap_or_else(|e| panic!("the node sent a client a bad message: {e}"));
        let (sid, terminal, refused) = match &message {
            NativeMessage::Chunk { sid, .. } => (*sid, false, false),
            NativeMessage::Choke { sid } => (*sid, true, false),
            NativeMessage::Error { sid: 0, .. } | NativeMessage::Pong { .. } => return,
            NativeMessage::Error { sid, message, .. } => {
                (*sid, true, message.ends_with("is already open"))
            }
            other => panic!("the node sent a client {other:?}"),
        };
        assert_ne!(sid, 0, "a reply chunk or end for sid 0");
        let ledger = self
            .ledgers
            .entry((endpoint, peer.clone(), sid))
            .or_default();
        if refused {
            ledger.refused += 1;
        } else if terminal {
            ledger.terminals += 1;
        } else {
            assert!(
                ledger.live() > 0,
                "a reply chunk for sid {sid}, which is not open: {ledger:?}"
            );
        }
        assert!(
            ledger.live() >= 0,
            "more terminal replies than opens for sid {sid}: {ledger:?} ({message:?})"
        );
    }

    /// Shuts the node down with cooperative workers and checks that it stops in bounded time
    /// with every request answered: each native open got its one terminal, each zeromq-server
    /// request its one reply, and nothing is left to wake up for.
    fn wind_down(&mut self) {
        self.finish_store_ops();
        if !self.stopped {
            self.shut_down();
        }
        for _ in 0..WIND_DOWN_ROUNDS {
            if self.stopped {
                break;
            }
            self.workers_act();
            self.finish_store_ops();
            self.advance(Duration::from_secs(2));
        }
        assert!(self.stopped, "the node did not stop after Shutdown");
        self.finish_store_ops();
        assert_eq!(
            self.control_requests, self.control_replies,
            "control requests without a reply"
        );
        assert_eq!(self.node.apps().count(), 0);
        assert_eq!(self.node.poll_timeout(), None, "timers outlive the node");
        assert!(self.live_endpoints.is_empty(), "endpoints left bound");
        assert!(
            self.live_watches.is_empty(),
            "watches left: {:?}",
            self.live_watches
        );
        for (key, ledger) in &self.ledgers {
            assert_eq!(ledger.live(), 0, "request {key:?} never ended: {ledger:?}");
        }
        assert_eq!(
            self.server_requests, self.server_replies,
            "zeromq-server requests without a reply"
        );
        for (conn, c) in &self.conns {
            assert!(
                c.closed || c.reset,
                "raw connection {conn} left open: {c:?}"
            );
        }
    }

    /// Checks that hold between inputs.
    fn check_quiet(&self) {
        if self.stopped {
            assert!(self.node.apps().next().is_none(), "an app after Stopped");
        }
    }
}

/// A control reply: `[routing..., "", json]`, the JSON `{"ok": ...}` or an error with a known
/// code and a message.
fn check_control_reply(frames: &[Bytes]) {
    let n = frames.len();
    assert!(
        n >= 3,
        "a control reply is [routing..., \"\", json]: {frames:?}"
    );
    assert!(frames[n - 2].is_empty(), "no delimiter in a control reply");
    assert!(
        frames[..n - 2].iter().all(|f| !f.is_empty()),
        "routing frames are never empty: {frames:?}"
    );
    let reply: serde_json::Value =
        serde_json::from_slice(&frames[n - 1]).expect("a control reply is not JSON");
    if reply.get("ok").is_some() {
        return;
    }
    let code = reply["error"]["code"]
        .as_u64()
        .expect("neither ok nor an error code");
    assert!(
        [400, 401, 404, 409, 413, 500, 503].contains(&code),
        "unexpected control error code {code}: {reply}"
    );
    assert!(reply["error"]["message"].is_string(), "{reply}");
}

/// A zeromq-server reply: `[routing..., "", "ok", chunks...]` or
/// `[routing..., "", "error", {"code", "message"}]`.
fn check_server_reply(frames: &[Bytes]) {
    let split = frames
        .iter()
        .position(Bytes::is_empty)
        .unwrap_or_else(|| panic!("a zeromq-server reply without a delimiter: {frames:?}"));
    match frames.get(split + 1).map(|f| &f[..]) {
        Some(b"ok") => {}
        Some(b"error") => {
            assert_eq!(frames.len(), split + 3, "error reply {frames:?}");
            let json: serde_json::Value = serde_json::from_slice(&frames[split + 2])
                .unwrap_or_else(|e| panic!("an error reply that is not JSON: {e}"));
            assert!(
                json["code"].is_u64() && json["message"].is_string(),
                "{json}"
            );
        }
        _ => panic!("a zeromq-server reply with no status: {frames:?}"),
    }
}

/// 0 to 4 frames of arbitrary bytes, some empty.
fn raw_frames(r: &mut Bytes) -> Vec<Bytes> {
    (0..r.byte() % 5)
        .map(|_| {
            if r.byte().is_multiple_of(4) {
                Bytes::new()
            } else {
                r.blob(40)
            }
        })
        .collect()
}

/// 1 to 4 native messages, well formed, with fuzzed fields (and sometimes a raw frame).
fn native_messages(r: &mut Bytes) -> Vec<Bytes> {
    let mut frames = Vec::new();
    for _ in 0..1 + r.byte() % 4 {
        let sid = u64::from(r.byte() % 6);
        match r.byte() % 9 {
            0 | 1 => frames.push(open_message(sid, r)),
            2 => frames.push(native::encode_chunk(sid, &r.blob(60))),
            3 => frames.push(native::encode_choke(sid)),
            4 => frames.push(native::encode_cancel(sid)),
            5 => frames.push(native::encode_ping(u64::from(r.u16()))),
            6 => {
                frames.push(open_message(sid, r));
                frames.push(native::encode_chunk(sid, &r.blob(60)));
                frames.push(native::encode_choke(sid));
            }
            7 => frames.push(native::encode_error(sid, 500, "from a client")),
            _ => frames.push(r.blob(20)),
        }
    }
    frames
}

fn open_message(sid: u64, r: &mut Bytes) -> Bytes {
    let event = ["", "native", "other", "echo"][usize::from(r.byte() % 4)];
    let bits = r.byte();
    let policy = Policy {
        urgent: bits & 1 != 0,
        timeout_ms: (bits & 2 != 0).then(|| u64::from(r.u16() % 4000)),
        deadline_ms: (bits & 4 != 0).then(|| u64::from(r.u16() % 4000)),
        hop: 0,
        sealed: false,
    };
    let auth = (bits & 8 != 0).then(|| Auth {
        user: "fuzzer".to_owned(),
        ts: 1,
        nonce: Bytes::from_static(b"n"),
        app: None,
        body: None,
        sig: Bytes::from_static(b"s"),
    });
    native::encode_open(sid, event, &policy, auth.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_runs_the_timers() {
        check_node_inputs(Instant::now(), &[]);
    }

    #[test]
    fn some_inputs_run() {
        let data: Vec<u8> = (0..4000u32).map(|i| (i * 7919 % 251) as u8).collect();
        check_node_inputs(Instant::now(), &data);
    }
}
