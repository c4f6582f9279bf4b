//! The `resolve` control action through a hand-driven node: this node and every peer that
//! announced the app, with endpoints and load; 404 for an app no known node runs; bad
//! requests answered 400; peers gone from the table gone from the answer.

use crate::harness;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cocaine_core::cluster::announcement::AppState;
use cocaine_core::node::{DiscoveryConfig, Input, NodeConfig};
use harness::*;
use serde_json::{json, Value};

const CONTROL: &str = "tcp://127.0.0.2:5000";
const INTERVAL: Duration = Duration::from_millis(500);
const ECHO: &str = r#"{"type": "python", "args": "local:///srv/x", "version": 7,
    "engine": {"pool-limit": 3, "queue-limit": 30},
    "tasks": {"hello": {"type": "native-server", "endpoint": "tcp://*:9110"}}}"#;

fn config(discovery: bool) -> NodeConfig {
    NodeConfig {
        control: vec![CONTROL.to_owned()],
        discovery: discovery.then(|| DiscoveryConfig {
            interval: INTERVAL,
            peers: vec!["127.0.0.3:5000".parse().unwrap()],
            ..DiscoveryConfig::new("node-a".into(), 1_000)
        }),
        ..NodeConfig::default()
    }
}

/// A node with discovery on, its UDP endpoint bound; returns that endpoint.
fn node_with_peers() -> (Harness, cocaine_core::EndpointId) {
    let mut h = Harness::with_config(config(true));
    h.pump();
    let outputs = h.fresh();
    let udp = bind_udp(&mut h, outputs);
    (h, udp)
}

fn announcement(id: &str, seq: u64, app: &str, queue: u64, state: AppState) -> Bytes {
    peer_app(id, seq, app, 2, queue, state).encode().unwrap()
}

fn hear(h: &mut Harness, udp: cocaine_core::EndpointId, from: &str, bytes: Bytes) {
    let from: SocketAddr = from.parse().unwrap();
    h.input(Input::Datagram {
        endpoint: udp,
        from,
        bytes,
    });
}

fn control(h: &mut Harness, request: Value) -> Value {
    let endpoint = h.endpoint(CONTROL);
    h.fresh();
    let request = Bytes::from(request.to_string());
    h.receive(endpoint, vec![b(b"op"), Bytes::new(), request]);
    let replies = sends(&h.fresh(), endpoint);
    assert_eq!(replies.len(), 1);
    serde_json::from_slice(replies[0].last().unwrap()).unwrap()
}

fn resolve(h: &mut Harness, app: &str) -> Value {
    control(h, json!({"version": 1, "action": "resolve", "app": app}))
}

#[test]
fn resolve_lists_this_node_then_each_peer_running_the_app() {
    let (mut h, udp) = node_with_peers();
    h.deploy("echo", ECHO);
    hear(
        &mut h,
        udp,
        "127.0.0.3:5000",
        announcement("node-b", 10, "echo", 7, AppState::Running),
    );
    hear(
        &mut h,
        udp,
        "127.0.0.4:5000",
        announcement("node-c", 10, "other", 0, AppState::Running),
    );
    hear(
        &mut h,
        udp,
        "127.0.0.5:5000",
        announcement("node-d", 10, "echo", 0, AppState::Broken),
    );

    let reply = resolve(&mut h, "echo");
    let nodes = reply["ok"]["nodes"].as_array().unwrap();
    assert_eq!(reply["ok"]["app"], "echo");
    assert_eq!(nodes.len(), 3, "{reply}");
    let local = &nodes[0];
    assert_eq!(local["node_id"], "node-a");
    assert_eq!(local["local"], true);
    assert_eq!(local["control"], CONTROL);
    assert_eq!(local["version"], 7);
    assert_eq!(local["state"], "running");
    assert_eq!(local["tasks"]["hello"], "tcp://*:9110");
    assert_eq!(
        (local["pool_limit"].as_u64(), local["queue_limit"].as_u64()),
        (Some(3), Some(30))
    );
    let b = nodes.iter().find(|n| n["node_id"] == "node-b").unwrap();
    assert_eq!(b["local"], false);
    assert_eq!(b["control"], "tcp://127.0.0.3:5000");
    assert_eq!(
        b["tasks"]["hello"], "tcp://127.0.0.3:9110",
        "wildcard host resolved"
    );
    assert_eq!(
        (b["queue"].as_u64(), b["busy"].as_u64()),
        (Some(7), Some(2))
    );
    assert_eq!(b["state"], "running");
    let d = nodes.iter().find(|n| n["node_id"] == "node-d").unwrap();
    assert_eq!(d["state"], "broken", "listed; the client excludes it");
    assert!(nodes.iter().all(|n| n["node_id"] != "node-c"));

    // An app only a peer runs resolves to that peer alone.
    let other = resolve(&mut h, "other");
    assert_eq!(other["ok"]["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(other["ok"]["nodes"][0]["node_id"], "node-c");
}

#[test]
fn forgotten_peers_leave_the_answer_and_unknown_apps_are_404() {
    let (mut h, udp) = node_with_peers();
    hear(
        &mut h,
        udp,
        "127.0.0.3:5000",
        announcement("node-b", 10, "echo", 0, AppState::Running),
    );
    assert_eq!(
        resolve(&mut h, "echo")["ok"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    h.advance(INTERVAL * 4);
    let gone = resolve(&mut h, "echo");
    assert_eq!(gone["error"]["code"], 404, "{gone}");
    assert!(gone["error"]["message"].as_str().unwrap().contains("echo"));
    assert_eq!(resolve(&mut h, "nothing")["error"]["code"], 404);
}

#[test]
fn a_tombstone_announced_by_a_peer_is_no_node_running_the_app() {
    let (mut h, udp) = node_with_peers();
    hear(
        &mut h,
        udp,
        "127.0.0.3:5000",
        announcement("node-b", 10, "echo", 0, AppState::Deleted),
    );
    let answer = resolve(&mut h, "echo");
    assert_eq!(answer["error"]["code"], 404, "{answer}");
}

#[test]
fn resolve_without_discovery_names_this_node_only() {
    let mut h = Harness::with_config(config(false));
    h.pump();
    h.deploy("echo", ECHO);
    let reply = resolve(&mut h, "echo");
    let nodes = reply["ok"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["node_id"], Value::Null);
    assert_eq!(nodes[0]["local"], true);
    assert_eq!(nodes[0]["tasks"]["hello"], "tcp://*:9110");
}

#[test]
fn bad_resolve_requests_are_400() {
    let mut h = Harness::with_config(config(false));
    h.pump();
    for request in [
        json!({"version": 1, "action": "resolve"}),
        json!({"version": 1, "action": "resolve", "app": 5}),
        json!({"version": 1, "action": "resolve", "app": ""}),
        json!({"version": 1, "action": "resolve", "app": "x".repeat(10_000)}),
        json!({"version": 1, "action": "resolve", "app": "echo", "extra": true}),
    ] {
        let reply = control(&mut h, request.clone());
        assert_eq!(reply["error"]["code"], 400, "{request} -> {reply}");
    }
}
