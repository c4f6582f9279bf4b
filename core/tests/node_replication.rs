//! Replication between hand-driven nodes (docs/cluster.md): several `Node`s with static peers
//! exchange their real announcements and `fetch` requests and replies in memory, with time
//! moved by hand. An app deployed on one node runs on every node within two announcement
//! intervals; the newest version wins; equal versions with different contents are a stable
//! conflict; deletions travel as tombstones; a node that was down while an app was deleted
//! does not bring it back; a node joining late catches up.

use crate::harness;
use crate::native_auth;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cocaine_core::auth::{sign_control, NodeKey, NodeKeyHandle, SignError, Signer, Stamp};
use cocaine_core::cluster::{Announcement, AppState};
use cocaine_core::node::auth::AuthMode;
use cocaine_core::node::{
    DiscoveryConfig, Input, NodeConfig, Output, SocketKind, StoredApp, TOMBSTONE_HORIZON,
};
use cocaine_core::EndpointId;
use harness::*;
use serde_json::{json, Value};

const INTERVAL: Duration = Duration::from_millis(500);
const STEP: Duration = Duration::from_millis(50);

fn control_of(i: usize) -> String {
    format!("tcp://127.0.0.{}:5000", i + 2)
}

fn udp_of(i: usize) -> SocketAddr {
    format!("127.0.0.{}:5000", i + 2).parse().unwrap()
}

/// Each app serves on its own port, so several can run on one node.
fn endpoint_of(app: &str) -> String {
    let port = match app {
        "echo" => 9501,
        "web" => 9502,
        _ => 9503,
    };
    format!("tcp://127.0.0.1:{port}")
}

fn manifest(app: &str, version: u64, flavour: &str) -> Value {
    json!({
        "type": "python", "args": format!("local://app-{flavour}"), "version": version,
        "cluster": {"replicate": true},
        "tasks": {"serve": {"type": "native-server", "endpoint": endpoint_of(app)}},
        "engine": {"pool-limit": 2, "queue-limit": 10},
    })
}

/// One node of the simulated cluster and what the network knows of it.
struct Member {
    h: Harness,
    up: bool,
    control: EndpointId,
    unicast: Option<EndpointId>,
    /// Replies the operator got, in order.
    replies: Vec<Value>,
    /// Package bytes of each app this node stored, as a store keeps them.
    packages: BTreeMap<String, Option<Bytes>>,
}

struct Cluster {
    start: Instant,
    members: Vec<Member>,
    size: usize,
    /// Fetch requests sent over the network, for counting.
    fetches: usize,
    /// Lose every fetch request (the peer never answers).
    lose_fetches: bool,
    /// Security on: control requires signed requests, `cluster_auth` is this mode, each node
    /// has its own key and every node's key store holds the others' and the operator's.
    secure: Option<AuthMode>,
    /// Signed operator requests made, for unique nonces.
    signed: u64,
    tombstone_horizon: Duration,
}

// Throw-away test keys (core/tests/data/auth/): node-0 is alice's pair, node-1 bob's, and the
// operator signs with carol's.
const NODE_KEYS: [(&str, &str); 2] = [
    (
        include_str!("data/auth/alice.key"),
        include_str!("data/auth/alice.pem"),
    ),
    (
        include_str!("data/auth/bob.key"),
        include_str!("data/auth/bob.pem"),
    ),
];
const OPERATOR_KEY: &str = include_str!("data/auth/carol3072.key");
const OPERATOR_PEM: &str = include_str!("data/auth/carol3072.pem");

/// A key over the `rsa` crate, as a test tool only (nodes sign with OpenSSL).
struct TestKey(rsa::RsaPrivateKey, String);

impl TestKey {
    fn read(pem: &str, user: &str) -> Self {
        use rsa::pkcs8::DecodePrivateKey;
        TestKey(
            rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap(),
            user.into(),
        )
    }
}

impl NodeKey for TestKey {
    fn public_pem(&self) -> Result<String, SignError> {
        use rsa::pkcs8::EncodePublicKey;
        Ok(self
            .0
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap())
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(native_auth::pss_sign(&self.0, message))
    }
}

impl Signer for TestKey {
    fn user(&self) -> &str {
        &self.1
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        NodeKey::sign(self, message)
    }
}

impl Cluster {
    /// `size` node slots that know each other as static peers; `running` of them start now.
    fn new(size: usize, running: usize) -> Self {
        Cluster::build(size, running, None, TOMBSTONE_HORIZON)
    }

    /// Like [`Cluster::new`] with security on (`secure`), at most two nodes.
    fn secure(size: usize, running: usize, cluster_auth: AuthMode) -> Self {
        Cluster::build(size, running, Some(cluster_auth), TOMBSTONE_HORIZON)
    }

    fn build(
        size: usize,
        running: usize,
        secure: Option<AuthMode>,
        tombstone_horizon: Duration,
    ) -> Self {
        let mut cluster = Cluster {
            start: Instant::now(),
            members: Vec::new(),
            size,
            fetches: 0,
            lose_fetches: false,
            secure,
            signed: 0,
            tombstone_horizon,
        };
        cluster.start_nodes(running);
        cluster
    }

    fn start_nodes(&mut self, running: usize) {
        let cluster = self;
        for i in 0..running {
            let member = cluster.boot(i, 1_000, Vec::new());
            cluster.members.push(member);
        }
        cluster.route();
    }

    fn config(&self, i: usize, seq_start: u64) -> NodeConfig {
        let peers = (0..self.size).filter(|&j| j != i).map(udp_of).collect();
        let config = NodeConfig {
            control: vec![control_of(i)],
            discovery: Some(DiscoveryConfig {
                interval: INTERVAL,
                peers,
                ..DiscoveryConfig::new(format!("node-{i}"), seq_start)
            }),
            tombstone_horizon: self.tombstone_horizon,
            ..NodeConfig::default()
        };
        match self.secure {
            None => config,
            Some(mode) => NodeConfig {
                control_auth: Some(AuthMode::Required),
                cluster_auth: mode,
                own_key: Some(NodeKeyHandle::new(TestKey::read(
                    NODE_KEYS[i].0,
                    &format!("node-{i}"),
                ))),
                ..config
            },
        }
    }

    /// A node started at the cluster's current time, fed `restore` (what its store holds).
    fn boot(&self, i: usize, seq_start: u64, restore: Vec<Input>) -> Member {
        let mut h = Harness::at(self.start, self.config(i, seq_start));
        let elapsed = self
            .members
            .first()
            .map(|m| m.h.elapsed())
            .unwrap_or_default();
        h.advance(elapsed);
        if self.secure.is_some() {
            let keys = NODE_KEYS
                .iter()
                .enumerate()
                .map(|(j, (_, pem))| (format!("node-{j}"), *pem))
                .chain([("op".to_owned(), OPERATOR_PEM)]);
            for (user, pem) in keys {
                h.input(Input::KeySet {
                    user,
                    pem: Bytes::from_static(pem.as_bytes()),
                });
            }
        }
        for input in restore {
            h.input(input);
        }
        let control = h.endpoint(&control_of(i));
        Member {
            h,
            up: true,
            control,
            unicast: None,
            replies: Vec::new(),
            packages: BTreeMap::new(),
        }
    }

    /// Node `i` stops (its outputs and inputs are lost) and later starts again from its store.
    fn stop(&mut self, i: usize) {
        self.members[i].up = false;
    }

    fn restart(&mut self, i: usize) {
        let old = &self.members[i];
        let mut restore: Vec<Input> = old
            .h
            .stored_tombstones
            .iter()
            .map(|(app, record)| Input::RestoreTombstone {
                app: app.clone(),
                record: Ok(record.clone()),
            })
            .collect();
        for (app, (manifest_json, _)) in &old.h.stored_apps {
            let package = old.packages.get(app).cloned().flatten();
            restore.push(Input::Restore {
                app: app.clone(),
                stored: Ok(StoredApp {
                    manifest_json: manifest_json.clone(),
                    package_dir: package.as_ref().map(|_| "/store/package".into()),
                    revision: old.h.current_revision.get(app).copied().unwrap_or(1),
                    package,
                    stopped: false,
                }),
            });
        }
        let (tombstones, apps) = (old.h.stored_tombstones.clone(), old.h.stored_apps.clone());
        let packages = old.packages.clone();
        let seq = 1_000_000 + old.h.elapsed().as_millis() as u64;
        let mut member = self.boot(i, seq, restore);
        member.h.stored_tombstones = tombstones;
        member.h.stored_apps = apps;
        member.packages = packages;
        self.members[i] = member;
        self.route();
    }

    fn join(&mut self) {
        let i = self.members.len();
        let member = self.boot(i, 1_000, Vec::new());
        self.members.push(member);
        self.route();
    }

    /// Every node moves `by` forward in steps, the network delivering between steps.
    fn run(&mut self, by: Duration) {
        let mut left = by;
        while !left.is_zero() {
            let step = left.min(STEP);
            for m in self.members.iter_mut() {
                m.h.advance(step);
            }
            self.route();
            left -= step;
        }
    }

    /// Runs until `done` holds, for at most `limit`; returns how long it took.
    fn run_until(&mut self, limit: Duration, done: impl Fn(&mut Cluster) -> bool) -> Duration {
        let mut waited = Duration::ZERO;
        while !done(self) {
            assert!(waited < limit, "not done within {limit:?}");
            self.run(STEP);
            waited += STEP;
        }
        waited
    }

    /// Delivers what every node sent until nobody sends anything more.
    fn route(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            for i in 0..self.members.len() {
                let outputs = self.members[i].h.fresh();
                if !self.members[i].up {
                    continue;
                }
                for output in outputs {
                    moved |= self.deliver(i, output);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the network never settles");
    }

    fn deliver(&mut self, i: usize, output: Output) -> bool {
        match output {
            Output::OpenUdp { endpoint, .. } => {
                self.members[i].unicast = Some(endpoint);
                self.members[i].h.input(Input::Bound {
                    endpoint,
                    result: Ok(()),
                });
                true
            }
            Output::SendTo { to, bytes, .. } => {
                let Some(j) = (0..self.members.len()).find(|&j| udp_of(j) == to) else {
                    return false;
                };
                let target = &mut self.members[j];
                let (true, Some(endpoint)) = (target.up, target.unicast) else {
                    return false;
                };
                target.h.input(Input::Datagram {
                    endpoint,
                    from: udp_of(i),
                    bytes,
                });
                true
            }
            Output::Store { op, .. } => {
                if let cocaine_core::node::StoreOp::PutApp { app, package, .. } = op {
                    self.members[i].packages.insert(app, package);
                }
                false
            }
            Output::Send { endpoint, frames } => self.send(i, endpoint, frames),
            _ => false,
        }
    }

    /// A ZeroMQ send: from a node's link (DEALER) to a peer's control endpoint, or from a
    /// control endpoint back to a link or to the operator.
    fn send(&mut self, i: usize, endpoint: EndpointId, frames: Vec<Bytes>) -> bool {
        let link = self.members[i]
            .h
            .binds
            .iter()
            .find(|(e, kind, _)| *e == endpoint && *kind == SocketKind::Dealer)
            .map(|(_, _, address)| address.clone());
        if let Some(address) = link {
            let Some(j) = (0..self.members.len()).find(|&j| control_of(j) == address) else {
                return false;
            };
            if !self.members[j].up || self.lose_fetches {
                return false;
            }
            self.fetches += 1;
            let identity = Bytes::from(format!("link-{i}-{}", endpoint.0));
            let mut routed = vec![identity];
            routed.extend(frames);
            let control = self.members[j].control;
            self.members[j].h.receive(control, routed);
            return true;
        }
        if endpoint != self.members[i].control {
            return false;
        }
        let identity = String::from_utf8_lossy(&frames[0]).into_owned();
        if identity == "operator" {
            let reply = serde_json::from_slice(&frames[2]).expect("JSON reply");
            self.members[i].replies.push(reply);
            return false;
        }
        let mut parts = identity.strip_prefix("link-").unwrap().split('-');
        let from: usize = parts.next().unwrap().parse().unwrap();
        let link = EndpointId(parts.next().unwrap().parse().unwrap());
        if !self.members[from].up {
            return false;
        }
        self.members[from].h.receive(link, frames[1..].to_vec());
        true
    }

    /// A control request to node `i`; its reply.
    fn ask(&mut self, i: usize, request: Value, package: Option<&[u8]>) -> Value {
        let mut frames = vec![b(b"operator"), Bytes::new()];
        let json = request.to_string();
        let signature = if self.secure.is_some() {
            self.signed += 1;
            let stamp = Stamp {
                ts: self.members[i].h.now.unix_ms(),
                nonce: format!("operator-nonce-{:08}", self.signed),
            };
            let op = TestKey::read(OPERATOR_KEY, "op");
            let (json, signature) = sign_control(json.as_bytes(), &stamp, &op).unwrap();
            frames.push(Bytes::from(json));
            Some(Bytes::from(signature))
        } else {
            frames.push(Bytes::from(json));
            None
        };
        frames.extend(package.map(Bytes::copy_from_slice));
        frames.extend(signature);
        let control = self.members[i].control;
        let before = self.members[i].replies.len();
        self.members[i].h.receive(control, frames);
        self.route();
        let replies = &self.members[i].replies;
        assert_eq!(replies.len(), before + 1, "one reply");
        replies[before].clone()
    }

    fn deploy(&mut self, i: usize, app: &str, version: u64, flavour: &str) -> Value {
        let request = json!({"version": 1, "action": "deploy", "app": app,
            "manifest": manifest(app, version, flavour)});
        self.ask(i, request, Some(format!("package of {flavour}").as_bytes()))
    }

    /// The version node `i` serves `app` at (state running), per its `list`.
    fn version(&mut self, i: usize, app: &str) -> Option<u64> {
        if !self.members[i].up {
            return None;
        }
        let list = self.ask(i, json!({"version": 1, "action": "list"}), None);
        list["ok"]
            .as_array()?
            .iter()
            .find(|a| a["app"] == app && a["state"] == "running")
            .and_then(|a| a["version"].as_u64())
    }

    fn up(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].up)
            .collect()
    }

    fn everywhere(&mut self, app: &str, version: u64) -> bool {
        self.up()
            .into_iter()
            .all(|i| self.version(i, app) == Some(version))
    }

    fn nowhere(&self, app: &str) -> bool {
        self.up()
            .into_iter()
            .all(|i| !self.members[i].h.node.apps().any(|a| a == app))
    }

    fn info(&mut self, i: usize) -> Value {
        self.ask(i, json!({"version": 1, "action": "info"}), None)["ok"].clone()
    }
}

/// Two announcement intervals: the time the issue allows for an app to reach every node.
const TWO_INTERVALS: Duration = Duration::from_millis(1_000);

#[test]
fn an_app_deployed_on_one_node_runs_on_every_node_within_two_intervals() {
    let mut c = Cluster::new(3, 3);
    c.run(INTERVAL); // everyone has heard everyone once
    let reply = c.deploy(0, "echo", 1, "a");
    assert_eq!(reply["ok"]["state"], "running", "{reply}");
    c.run_until(TWO_INTERVALS, |c| c.everywhere("echo", 1));

    // The copies are the same content: the same hash everywhere, no conflict.
    let hashes: Vec<Value> = (0..3)
        .map(|i| c.info(i)["replication"]["apps"]["echo"]["hash"].clone())
        .collect();
    assert!(hashes[0].as_str().is_some_and(|h| h.len() == 64));
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");
    for i in 0..3 {
        assert_eq!(c.info(i)["replication"]["conflicts"], json!({}));
    }
    // The package travelled with it, byte for byte.
    for i in 1..3 {
        assert_eq!(
            c.members[i].packages.get("echo"),
            Some(&Some(Bytes::from_static(b"package of a")))
        );
    }
    // Settled: nobody fetches again.
    let fetches = c.fetches;
    c.run(INTERVAL * 6);
    assert_eq!(c.fetches, fetches, "fetches after the cluster settled");
}

#[test]
fn a_copied_app_answers_calls() {
    let mut c = Cluster::new(2, 2);
    c.run(INTERVAL);
    c.deploy(0, "echo", 1, "a");
    c.run_until(TWO_INTERVALS, |c| c.everywhere("echo", 1));
    let h = &mut c.members[1].h;
    let ep = h.endpoint(&endpoint_of("echo"));
    h.fresh();
    h.receive(
        ep,
        vec![b(b"client"), open(1, ""), chunk(1, b"hello"), choke(1)],
    );
    let replies = native_replies(&h.fresh(), ep, b"client");
    assert_eq!(
        replies,
        vec![
            cocaine_core::codec::native::NativeMessage::Chunk {
                sid: 1,
                data: b(b"hello")
            },
            cocaine_core::codec::native::NativeMessage::Choke { sid: 1 },
        ]
    );
}

#[test]
fn the_newest_version_wins_wherever_it_is_deployed() {
    let mut c = Cluster::new(3, 3);
    c.run(INTERVAL);
    c.deploy(0, "echo", 1, "a");
    c.run_until(TWO_INTERVALS, |c| c.everywhere("echo", 1));
    c.deploy(2, "echo", 2, "b");
    c.run_until(TWO_INTERVALS * 2, |c| c.everywhere("echo", 2));
    // An older version is refused where a newer one runs: peers would bring it back.
    let reply = c.deploy(1, "echo", 1, "c");
    assert_eq!(reply["error"]["code"], 409, "{reply}");
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("runs version 2"));
}

#[test]
fn equal_versions_with_different_contents_are_a_conflict_and_never_flip() {
    let mut c = Cluster::new(2, 2);
    c.run(INTERVAL);
    // Both deployed before either hears of the other.
    c.deploy(0, "echo", 3, "a");
    c.deploy(1, "echo", 3, "b");
    c.run(INTERVAL * 4);
    let mut hashes = Vec::new();
    for i in 0..2 {
        let info = c.info(i);
        let conflict = &info["replication"]["conflicts"]["echo"];
        assert_eq!(conflict["version"], 3, "node {i}: {info}");
        assert_eq!(conflict["peer"], format!("node-{}", 1 - i));
        assert_ne!(conflict["ours"], conflict["theirs"]);
        hashes.push(info["replication"]["apps"]["echo"]["hash"].clone());
        let app = c.ask(
            i,
            json!({"version": 1, "action": "info", "app": "echo"}),
            None,
        );
        assert_eq!(app["ok"]["replication"]["conflict"], *conflict);
    }
    // Each keeps its own: no fetch, however long it runs.
    let fetches = c.fetches;
    c.run(INTERVAL * 10);
    assert_eq!(c.fetches, fetches);
    for (i, hash) in hashes.iter().enumerate() {
        assert_eq!(c.info(i)["replication"]["apps"]["echo"]["hash"], *hash);
    }
    // A higher version settles it.
    c.deploy(1, "echo", 4, "b");
    c.run_until(TWO_INTERVALS, |c| c.everywhere("echo", 4));
    for i in 0..2 {
        assert_eq!(c.info(i)["replication"]["conflicts"], json!({}));
    }
}

#[test]
fn a_delete_travels_as_a_tombstone_and_a_node_that_was_down_does_not_resurrect_it() {
    let mut c = Cluster::new(3, 3);
    c.run(INTERVAL);
    c.deploy(0, "echo", 1, "a");
    c.run_until(TWO_INTERVALS, |c| c.everywhere("echo", 1));

    // Node 0 goes down; the app is deleted on node 2 and leaves node 1.
    c.stop(0);
    let reply = c.ask(
        2,
        json!({"version": 1, "action": "delete", "app": "echo"}),
        None,
    );
    assert_eq!(reply["ok"]["app"], "echo", "{reply}");
    c.run_until(TWO_INTERVALS, |c| c.nowhere("echo"));
    for i in 1..3 {
        assert!(c.members[i].h.stored_tombstones.contains_key("echo"));
        let info = c.info(i);
        assert_eq!(info["replication"]["apps"]["echo"]["version"], 1, "{info}");
        assert!(info["replication"]["apps"]["echo"]["deleted_at"].is_u64());
    }

    // Node 0 comes back from its store, which still has the app: the tombstone wins.
    c.restart(0);
    assert!(c.members[0].h.node.apps().any(|a| a == "echo"));
    c.run_until(TWO_INTERVALS * 2, |c| c.nowhere("echo"));
    assert!(!c.members[0].h.stored_apps.contains_key("echo"));
    assert!(c.members[0].h.stored_tombstones.contains_key("echo"));
    // And it stays gone everywhere.
    c.run(INTERVAL * 6);
    assert!(c.nowhere("echo"));
    // Deploying the deleted version again is refused; a newer one comes back everywhere.
    let reply = c.deploy(1, "echo", 1, "a");
    assert_eq!(reply["error"]["code"], 409, "{reply}");
    c.deploy(1, "echo", 2, "a");
    c.run_until(TWO_INTERVALS, |c| c.everywhere("echo", 2));
}

#[test]
fn a_restarted_node_keeps_its_tombstones() {
    let mut c = Cluster::new(2, 2);
    c.run(INTERVAL);
    c.deploy(0, "echo", 5, "a");
    c.run_until(TWO_INTERVALS, |c| c.everywhere("echo", 5));
    c.ask(
        0,
        json!({"version": 1, "action": "delete", "app": "echo"}),
        None,
    );
    c.run_until(TWO_INTERVALS, |c| c.nowhere("echo"));
    // Node 1 restarts with only its tombstone; its peer still knows nothing newer.
    c.restart(1);
    c.run(INTERVAL * 4);
    assert!(c.nowhere("echo"));
    assert_eq!(c.info(1)["replication"]["apps"]["echo"]["version"], 5);
}

#[test]
fn a_node_joining_late_catches_up_with_apps_and_tombstones() {
    let mut c = Cluster::new(3, 2);
    c.run(INTERVAL);
    c.deploy(0, "echo", 1, "a");
    c.deploy(1, "web", 7, "w");
    c.run_until(TWO_INTERVALS, |c| {
        c.everywhere("echo", 1) && c.everywhere("web", 7)
    });
    c.ask(
        1,
        json!({"version": 1, "action": "delete", "app": "echo"}),
        None,
    );
    c.run_until(TWO_INTERVALS, |c| c.nowhere("echo"));

    c.join();
    c.run_until(TWO_INTERVALS, |c| c.everywhere("web", 7));
    assert!(c.nowhere("echo"));
    assert_eq!(c.info(2)["replication"]["apps"]["echo"]["version"], 1);
    assert!(c.members[2].h.stored_tombstones.contains_key("echo"));
}

#[test]
fn apps_that_do_not_replicate_stay_local() {
    let mut c = Cluster::new(2, 2);
    c.run(INTERVAL);
    let mut local = manifest("mine", 1, "l");
    local["cluster"]["replicate"] = json!(false);
    let reply = c.ask(
        0,
        json!({"version": 1, "action": "deploy", "app": "mine", "manifest": local}),
        Some(b"local package"),
    );
    assert_eq!(reply["ok"]["state"], "running", "{reply}");
    // A peer with a replicated app of the same name does not touch it.
    c.deploy(1, "mine", 9, "r");
    c.run(INTERVAL * 4);
    assert_eq!(c.version(0, "mine"), Some(1));
    assert_eq!(c.fetches, 0);
    // It cannot be fetched either.
    let reply = c.ask(
        0,
        json!({"version": 1, "action": "fetch", "app": "mine"}),
        None,
    );
    assert_eq!(reply["error"]["code"], 404, "{reply}");
    // Deleting it leaves no tombstone.
    c.ask(
        0,
        json!({"version": 1, "action": "delete", "app": "mine"}),
        None,
    );
    assert!(c.members[0].h.stored_tombstones.is_empty());
}

#[test]
fn fetch_answers_with_the_manifest_and_the_package() {
    let mut c = Cluster::new(1, 1);
    c.deploy(0, "echo", 2, "a");
    let h = &mut c.members[0].h;
    let control = h.endpoint(&control_of(0));
    h.fresh();
    let request = json!({"version": 1, "action": "fetch", "app": "echo"}).to_string();
    h.receive(control, vec![b(b"op"), Bytes::new(), Bytes::from(request)]);
    let replies = sends(&h.fresh(), control);
    assert_eq!(replies.len(), 1);
    let reply = &replies[0];
    assert_eq!(reply.len(), 4, "[identity, \"\", json, package]");
    let fetched = cocaine_core::cluster::fetch::decode_reply(&reply[2..], 1 << 20).unwrap();
    assert_eq!(fetched.app, "echo");
    assert_eq!(fetched.version, 2);
    assert_eq!(fetched.package.as_deref(), Some(&b"package of a"[..]));
    let body: Value = serde_json::from_slice(&fetched.manifest_json).unwrap();
    assert_eq!(body["args"], "local://app-a");

    for (request, code) in [
        (json!({"version": 1, "action": "fetch", "app": "nope"}), 404),
        (json!({"version": 1, "action": "fetch"}), 400),
        (json!({"version": 1, "action": "fetch", "app": "../x"}), 400),
    ] {
        let reply = c.ask(0, request, None);
        assert_eq!(reply["error"]["code"], code, "{reply}");
    }
}

#[test]
fn a_reply_that_does_not_match_the_announcement_is_refused() {
    // Node 1 answers fetch with content other than it announced (a forged reply).
    let mut c = Cluster::new(2, 2);
    c.run(INTERVAL);
    // Node 1 asks and node 0 never hears it: the test answers instead, with a valid reply of
    // other content.
    c.lose_fetches = true;
    c.deploy(0, "echo", 1, "a");
    c.run(INTERVAL * 2);
    let h = &mut c.members[1].h;
    let link = h
        .binds
        .iter()
        .find(|(_, kind, _)| *kind == SocketKind::Dealer)
        .map(|(e, _, _)| *e)
        .expect("node 1 connected to node 0 to fetch");
    let sent: Vec<Vec<Bytes>> = sends(&h.all(), link);
    let token = sent.last().expect("a fetch was sent")[0].clone();
    let forged = cocaine_core::cluster::fetch::encode_reply(
        "echo",
        1,
        manifest("echo", 1, "evil").to_string().as_bytes(),
        Some(&Bytes::from_static(b"evil package")),
    )
    .unwrap();
    let mut frames = vec![token, Bytes::new()];
    frames.extend(forged);
    h.fresh();
    h.receive(link, frames);
    let logged = logs(&h.fresh());
    assert!(
        logged
            .iter()
            .any(|(_, l)| l.contains("refused") && l.contains("announced")),
        "{logged:?}"
    );
    assert!(!h.stored_apps.contains_key("echo"));
    // Garbage on the link is ignored too.
    h.receive(link, vec![b(b"short"), Bytes::new(), b(b"{")]);
    assert!(!h.stored_apps.contains_key("echo"));
}

#[test]
fn an_unanswered_fetch_is_given_up_and_tried_again() {
    let mut c = Cluster::new(2, 2);
    c.run(INTERVAL);
    c.lose_fetches = true;
    c.deploy(0, "echo", 1, "a");
    c.run(INTERVAL * 2);
    let info = c.info(1);
    assert_eq!(
        info["replication"]["fetching"]["echo"]["peer"], "node-0",
        "{info}"
    );
    // Past the timeout the fetch and its connection are dropped...
    c.run(cocaine_core::node::FETCH_TIMEOUT);
    let logged = logs(&c.members[1].h.all());
    assert!(logged
        .iter()
        .any(|(_, l)| l.contains("did not answer fetch")));
    assert!(c.members[1]
        .h
        .all()
        .iter()
        .any(|o| matches!(o, Output::Unbind { .. })));
    // ...and tried again at the next announcement: once the peer answers, the app comes (at
    // the latest when the fetch in flight times out too).
    c.lose_fetches = false;
    let limit = cocaine_core::node::FETCH_TIMEOUT + TWO_INTERVALS;
    c.run_until(limit, |c| c.everywhere("echo", 1));
}

#[test]
fn records_from_a_registry_replicate_like_datagrams() {
    use cocaine_core::cluster::announcement::{AppAnnouncement, AppState, Load};
    use cocaine_core::cluster::Announcement;

    let mut c = Cluster::new(1, 1);
    let hash = "ab".repeat(32);
    let entry = |state, hash: &str| AppAnnouncement {
        version: 2,
        hash: hash.to_owned(),
        tasks: BTreeMap::new(),
        load: Load {
            queue: 0,
            busy: 0,
            workers: 0,
            pool_limit: 1,
            queue_limit: 1,
        },
        state,
    };
    let announcement = Announcement {
        node_id: "node-r".into(),
        seq: 1,
        control: "tcp://127.0.0.9:5000".into(),
        apps: [
            ("echo".to_owned(), entry(AppState::Running, &hash)),
            ("gone".to_owned(), entry(AppState::Deleted, "")),
            ("private".to_owned(), entry(AppState::Running, "")),
        ]
        .into(),
        sig: None,
    };
    let h = &mut c.members[0].h;
    h.fresh();
    h.input(Input::PeerRecord {
        announcement: Box::new(announcement),
    });
    let out = h.fresh();
    let link = out
        .iter()
        .find_map(|o| match o {
            Output::Bind {
                endpoint,
                kind: SocketKind::Dealer,
                address,
                ..
            } if address == "tcp://127.0.0.9:5000" => Some(*endpoint),
            _ => None,
        })
        .expect("a link to the registry's peer");
    let sent = sends(&out, link);
    assert_eq!(sent.len(), 1, "one fetch, for echo only: {sent:?}");
    let request: Value = serde_json::from_slice(&sent[0][2]).unwrap();
    assert_eq!(
        request,
        json!({"version": 1, "action": "fetch", "app": "echo"})
    );
    // The tombstone is kept; the app without a hash is the peer's own business.
    assert!(h.stored_tombstones.contains_key("gone"));
    let info = c.info(0);
    assert_eq!(info["replication"]["apps"]["gone"]["version"], 2, "{info}");
    assert!(
        info["replication"]["apps"].get("private").is_none(),
        "{info}"
    );
    assert_eq!(info["replication"]["fetching"]["echo"]["peer"], "node-r");
}

#[test]
fn nodes_whose_control_requires_signatures_replicate_with_signed_fetch() {
    let mut c = Cluster::secure(2, 2, AuthMode::Required);
    c.run(INTERVAL);
    let reply = c.deploy(0, "echo", 1, "a");
    assert_eq!(reply["ok"]["state"], "running", "{reply}");
    c.run_until(TWO_INTERVALS, |c| c.everywhere("echo", 1));
    // node-1 fetched from node-0 signed as user node-1: node-0 verified it like any request.
    let keys = c.ask(0, json!({"version": 1, "action": "keys"}), None);
    let stats = &keys["ok"]["stats"];
    assert_eq!(stats["unsigned"], 0, "{keys}");
    assert_eq!(stats["bad_signature"], 0, "{keys}");
    // The operator's deploy, keys, and node-1's fetch (at least), all verified.
    assert!(stats["accepted"].as_u64().unwrap() >= 3, "{keys}");
    // A delete travels too (as a signed announcement's tombstone).
    let reply = c.ask(
        1,
        json!({"version": 1, "action": "delete", "app": "echo"}),
        None,
    );
    assert!(reply.get("ok").is_some(), "{reply}");
    c.run_until(TWO_INTERVALS, |c| c.nowhere("echo"));
}

#[test]
fn without_cluster_auth_a_control_that_requires_signatures_refuses_fetch() {
    // The same cluster, but the nodes do not sign: announcements pass, fetch gets 401.
    let mut c = Cluster::secure(2, 2, AuthMode::Off);
    c.run(INTERVAL);
    let reply = c.deploy(0, "echo", 1, "a");
    assert_eq!(reply["ok"]["state"], "running", "{reply}");
    c.run(TWO_INTERVALS * 2);
    assert_eq!(c.version(1, "echo"), None);
    assert!(c.fetches >= 1);
    let keys = c.ask(0, json!({"version": 1, "action": "keys"}), None);
    assert!(
        keys["ok"]["stats"]["unsigned"].as_u64().unwrap() >= 1,
        "{keys}"
    );
    let refused = logs(&c.members[1].h.all())
        .into_iter()
        .any(|(_, m)| m.contains("fetch from peer node-0 refused") && m.contains("401"));
    assert!(refused, "node-1 logs the 401");
}

/// The entries of node `i`'s latest announcement.
fn last_announced(c: &Cluster, i: usize) -> Announcement {
    c.members[i]
        .h
        .all()
        .iter()
        .rev()
        .find_map(|o| match o {
            Output::SendTo { bytes, .. } => Some(Announcement::decode(bytes).unwrap()),
            _ => None,
        })
        .expect("node has announced")
}

fn announces_tombstone(c: &Cluster, i: usize, app: &str) -> bool {
    last_announced(c, i)
        .apps
        .get(app)
        .is_some_and(|a| a.state == AppState::Deleted)
}

#[test]
fn an_old_tombstone_is_announced_only_while_a_peer_needs_it_and_still_stops_a_resurrection() {
    let horizon = Duration::from_secs(2);
    let mut c = Cluster::build(3, 3, None, horizon);
    c.run(INTERVAL);
    c.deploy(0, "echo", 1, "a");
    c.run_until(TWO_INTERVALS, |c| c.everywhere("echo", 1));

    // Node 2 goes down; the app is deleted on node 0 and leaves node 1.
    c.stop(2);
    let reply = c.ask(
        0,
        json!({"version": 1, "action": "delete", "app": "echo"}),
        None,
    );
    assert_eq!(reply["ok"]["app"], "echo", "{reply}");
    c.run_until(TWO_INTERVALS, |c| c.nowhere("echo"));
    assert!(announces_tombstone(&c, 0, "echo"), "young: announced");

    // Past the horizon, with no peer running the app, nobody announces the tombstone; both
    // still keep it.
    c.run(horizon + INTERVAL * 2);
    for i in 0..2 {
        assert!(
            !announces_tombstone(&c, i, "echo"),
            "node {i} still announces it"
        );
        assert!(c.members[i].h.stored_tombstones.contains_key("echo"));
        assert_eq!(c.info(i)["replication"]["apps"]["echo"]["version"], 1);
    }

    // Node 2 comes back from its store with the app and announces it: the others announce
    // the tombstone again, and node 2 deletes it; nobody fetches it back.
    c.restart(2);
    assert!(c.members[2].h.node.apps().any(|a| a == "echo"));
    c.run_until(TWO_INTERVALS * 2, |c| c.nowhere("echo"));
    assert!(c.members[2].h.stored_tombstones.contains_key("echo"));
    c.run(horizon + INTERVAL * 2);
    assert!(c.nowhere("echo"));
    for i in 0..3 {
        assert!(
            !announces_tombstone(&c, i, "echo"),
            "node {i} still announces it"
        );
    }
    // A deploy of the deleted version is still refused where the tombstone is kept.
    let reply = c.deploy(0, "echo", 1, "a");
    assert_eq!(reply["error"]["code"], 409, "{reply}");
}
