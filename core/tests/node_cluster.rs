//! Discovery through a hand-driven node: the UDP endpoints it asks for, the announcement it
//! sends every interval (apps, tasks, load, state), peers taken in from datagrams and shown
//! by the `peers` control action, forgotten after three silent intervals, malformed
//! datagrams dropped and counted, and `--host` on every `*` endpoint.

use crate::harness;

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use bytes::Bytes;
use cocaine_core::cluster::announcement::AppState;
use cocaine_core::cluster::Announcement;
use cocaine_core::node::{DiscoveryConfig, Input, Multicast, NodeConfig, Output, SocketKind};
use cocaine_core::EndpointId;
use harness::*;
use serde_json::{json, Value};

const CONTROL: &str = "tcp://127.0.0.2:5000";
const PEER: &str = "127.0.0.3:5000";
const INTERVAL: Duration = Duration::from_millis(500);

fn discovery(multicast: bool) -> DiscoveryConfig {
    DiscoveryConfig {
        interval: INTERVAL,
        peers: vec![PEER.parse().unwrap()],
        multicast: multicast.then(|| "239.192.74.66:5001".parse().unwrap()),
        ..DiscoveryConfig::new("node-a".into(), 1_000)
    }
}

fn config(multicast: bool, host: Option<&str>) -> NodeConfig {
    NodeConfig {
        control: vec![CONTROL.to_owned()],
        host: host.map(str::to_owned),
        discovery: Some(discovery(multicast)),
        ..NodeConfig::default()
    }
}

/// The UDP endpoints the node asked for, bound at once.
fn open_udp(h: &mut Harness) -> Vec<(EndpointId, String, Option<Multicast>)> {
    let opened: Vec<_> = h
        .fresh()
        .into_iter()
        .filter_map(|o| match o {
            Output::OpenUdp {
                endpoint,
                address,
                multicast,
            } => Some((endpoint, address, multicast)),
            _ => None,
        })
        .collect();
    for (endpoint, _, _) in &opened {
        h.input(Input::Bound {
            endpoint: *endpoint,
            result: Ok(()),
        });
    }
    opened
}

fn datagrams(outputs: &[Output]) -> Vec<(EndpointId, SocketAddr, Announcement)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::SendTo {
                endpoint,
                to,
                bytes,
            } => Some((
                *endpoint,
                *to,
                Announcement::decode(bytes).expect("decodes"),
            )),
            _ => None,
        })
        .collect()
}

fn peer_announcement(id: &str, seq: u64, queue: u64) -> Bytes {
    peer_app(id, seq, "echo", 1, queue, AppState::Running)
        .encode()
        .unwrap()
}

fn peers(h: &mut Harness) -> Value {
    control_reply(h, CONTROL, r#"{"version": 1, "action": "peers"}"#)["ok"].clone()
}

fn from(addr: &str) -> SocketAddr {
    addr.parse().unwrap()
}

#[test]
fn the_node_opens_unicast_on_its_control_port_and_joins_the_group() {
    let mut h = Harness::with_config(config(true, None));
    h.pump();
    let opened = open_udp(&mut h);
    assert_eq!(opened.len(), 2);
    assert_eq!(opened[0].1, "udp://127.0.0.2:5000");
    assert_eq!(opened[0].2, None);
    assert_eq!(opened[1].1, "udp://239.192.74.66:5001");
    assert_eq!(
        opened[1].2,
        Some(Multicast {
            group: SocketAddrV4::new([239, 192, 74, 66].into(), 5001),
            interface: None,
            ttl: 1,
            loopback: true,
        })
    );
}

#[test]
fn the_node_announces_every_interval_to_the_group_and_each_static_peer() {
    let mut h = Harness::with_config(config(true, None));
    h.pump();
    let opened = open_udp(&mut h);
    h.deploy(
        "echo",
        r#"{"type": "python", "args": "local:///srv/x", "version": 7,
            "engine": {"pool-limit": 3, "queue-limit": 30},
            "tasks": {"hello": {"type": "native-server", "endpoint": "tcp://*:9110"},
                      "tick": {"type": "recurring-timer", "interval": 60000}}}"#,
    );
    h.advance(INTERVAL * 3);
    let sent = datagrams(&h.all());
    // At start (once per endpoint up), then every interval: to the group and to the peer.
    let to_peer: Vec<_> = sent.iter().filter(|(_, to, _)| *to == from(PEER)).collect();
    let to_group: Vec<_> = sent
        .iter()
        .filter(|(_, to, _)| *to == from("239.192.74.66:5001"))
        .collect();
    assert!(to_peer.len() >= 4, "{}", to_peer.len());
    assert_eq!(to_peer.len(), to_group.len());
    assert_eq!(to_peer[0].0, opened[0].0);
    assert_eq!(to_group[0].0, opened[1].0);
    let seqs: Vec<u64> = to_peer.iter().map(|(_, _, a)| a.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{seqs:?}");
    assert!(seqs[0] >= 1_000);
    let last = &to_peer.last().unwrap().2;
    assert_eq!(last.node_id, "node-a");
    assert_eq!(last.control, CONTROL);
    assert_eq!(last.sig, None);
    let echo = &last.apps["echo"];
    assert_eq!(echo.version, 7);
    assert_eq!(echo.state, AppState::Running);
    assert_eq!(echo.tasks.len(), 1, "only tasks with an endpoint");
    assert_eq!(echo.tasks["hello"], "tcp://*:9110");
    assert_eq!((echo.load.pool_limit, echo.load.queue_limit), (3, 30));
    assert_eq!(
        (echo.load.workers, echo.load.busy, echo.load.queue),
        (0, 0, 0)
    );

    // Work that never finishes: the next announcement shows busy workers and a queue.
    h.default.answer = Answer::Manual;
    let hello = h.endpoint("tcp://*:9110");
    for sid in 1..=20 {
        h.receive(hello, vec![b(b"client"), open(sid, "hello"), choke(sid)]);
    }
    h.fresh();
    h.advance(INTERVAL);
    let sent = datagrams(&h.fresh());
    let load = sent.last().unwrap().2.apps["echo"].load;
    assert!(load.workers >= 1 && load.busy >= 1, "{load:?}");
    assert!(load.busy <= load.workers && load.workers <= 3, "{load:?}");
    assert!(load.queue >= 1, "{load:?}");
}

#[test]
fn peers_are_taken_in_shown_and_forgotten_after_three_silent_intervals() {
    let mut h = Harness::with_config(config(false, None));
    h.pump();
    let opened = open_udp(&mut h);
    let udp = opened[0].0;
    h.input(Input::Datagram {
        endpoint: udp,
        from: from("127.0.0.3:5000"),
        bytes: peer_announcement("node-b", 10, 3),
    });
    let listing = peers(&mut h);
    assert_eq!(listing["node_id"], "node-a");
    assert_eq!(listing["control"], CONTROL);
    let b = &listing["peers"][0];
    assert_eq!(b["node_id"], "node-b");
    assert_eq!(b["control"], "tcp://127.0.0.3:5000", "wildcard resolved");
    assert_eq!(b["apps"]["echo"]["tasks"]["hello"], "tcp://127.0.0.3:9110");
    assert_eq!(b["apps"]["echo"]["queue"], 3);
    assert_eq!(b["apps"]["echo"]["state"], "running");
    assert_eq!(b["apps"]["echo"]["version"], 4);
    assert!(h.node.peer_table().unwrap().running("echo").count() == 1);

    // Heard again just before the end of its third interval: kept.
    h.advance(INTERVAL * 3 - Duration::from_millis(1));
    h.input(Input::Datagram {
        endpoint: udp,
        from: from("127.0.0.3:5000"),
        bytes: peer_announcement("node-b", 11, 0),
    });
    h.advance(INTERVAL * 3 - Duration::from_millis(1));
    assert_eq!(peers(&mut h)["peers"].as_array().unwrap().len(), 1);
    // Then silent: forgotten at three intervals after it was last heard, by the node's own
    // timer (no input needed but time).
    h.advance(Duration::from_millis(1));
    let forgot = logs(&h.all())
        .into_iter()
        .any(|(_, m)| m.contains("forgot peer node-b"));
    assert!(forgot);
    let listing = peers(&mut h);
    assert_eq!(listing["peers"], json!([]));
    assert_eq!(listing["stats"]["forgotten"], 1);
    assert_eq!(listing["stats"]["accepted"], 2);
}

#[test]
fn malformed_stale_and_own_datagrams_are_dropped_and_counted() {
    let mut h = Harness::with_config(config(false, None));
    h.pump();
    let udp = open_udp(&mut h)[0].0;
    let good = peer_announcement("node-b", 10, 0);
    let own = Announcement::decode(&peer_announcement("node-a", 99, 0)).unwrap();
    let mut inputs: Vec<Bytes> = vec![
        Bytes::from_static(b""),
        Bytes::from_static(b"\xff\xff\xff"),
        Bytes::from(vec![0x96; 70_000]),
        good.slice(..good.len() - 1),
        good.clone(),
        good.clone(),
        own.encode().unwrap(),
    ];
    inputs.push(peer_announcement("node-b", 3, 0));
    for bytes in inputs {
        h.input(Input::Datagram {
            endpoint: udp,
            from: from("10.0.0.9:4444"),
            bytes,
        });
    }
    let stats = peers(&mut h)["stats"].clone();
    assert_eq!(stats["received"], 8);
    assert_eq!(stats["malformed"], 4);
    assert_eq!(stats["accepted"], 1);
    assert_eq!(stats["stale"], 2);
    assert_eq!(stats["own"], 1);
    let warned = logs(&h.all())
        .into_iter()
        .filter(|(_, m)| m.contains("malformed announcement"))
        .count();
    assert_eq!(warned, 4);
}

#[test]
fn host_binds_every_wildcard_endpoint_on_that_address() {
    let mut h = Harness::with_config(config(false, Some("127.0.0.2")));
    h.pump();
    open_udp(&mut h);
    h.deploy(
        "echo",
        r#"{"type": "python", "args": "local:///srv/x",
            "pubsub": {"endpoint": "tcp://*:9120"},
            "tasks": {"hello": {"type": "native-server", "endpoint": "tcp://*:9110"},
                      "fixed": {"type": "zeromq-server", "endpoint": "tcp://127.0.0.1:9111"}}}"#,
    );
    let binds: Vec<(SocketKind, String)> =
        h.binds.iter().map(|(_, k, a)| (*k, a.clone())).collect();
    assert!(binds.contains(&(SocketKind::Router, "tcp://127.0.0.2:9110".into())));
    assert!(binds.contains(&(SocketKind::Router, "tcp://127.0.0.1:9111".into())));
    assert!(binds.contains(&(SocketKind::Pub, "tcp://127.0.0.2:9120".into())));
    h.advance(INTERVAL);
    let sent = datagrams(&h.all());
    let echo = &sent.last().unwrap().2.apps["echo"];
    assert_eq!(echo.tasks["hello"], "tcp://127.0.0.2:9110");
}

#[test]
fn discovery_without_a_control_endpoint_is_fatal() {
    let mut h = Harness::with_config(NodeConfig {
        discovery: Some(discovery(true)),
        ..NodeConfig::default()
    });
    h.pump();
    assert!(h
        .all()
        .iter()
        .any(|o| matches!(o, Output::Fatal { reason } if reason.contains("control endpoint"))));
}

#[test]
fn a_discovery_socket_that_cannot_open_is_fatal() {
    let mut h = Harness::with_config(config(false, None));
    h.pump();
    let endpoint = udp_endpoint(h.fresh()).unwrap();
    h.input(Input::Bound {
        endpoint,
        result: Err(cocaine_core::node::BindError::AddressInUse("in use".into())),
    });
    assert!(h
        .all()
        .iter()
        .any(|o| matches!(o, Output::Fatal { reason } if reason.contains("static peers: in use"))));
}

#[test]
fn peers_answers_without_discovery() {
    let mut h = Harness::with_config(NodeConfig {
        control: vec![CONTROL.to_owned()],
        ..NodeConfig::default()
    });
    h.pump();
    let listing = peers(&mut h);
    assert_eq!(listing["peers"], json!([]));
    assert_eq!(listing["discovery"], Value::Null);
}

#[test]
fn a_registry_feeds_the_same_table_through_inputs() {
    let mut h = Harness::with_config(config(false, None));
    h.pump();
    open_udp(&mut h);
    let record = Announcement::decode(&peer_announcement("node-r", 1, 2)).unwrap();
    h.input(Input::PeerRecord {
        announcement: Box::new(record.clone()),
    });
    let listing = peers(&mut h);
    let r = &listing["peers"][0];
    assert_eq!(r["node_id"], "node-r");
    assert_eq!(r["source"], "registry");
    assert_eq!(
        r["control"], "tcp://*:5000",
        "no sender address to resolve with"
    );
    assert_eq!(r["apps"]["echo"]["queue"], 2);

    // A record is checked like a datagram.
    let mut bad = record.clone();
    bad.node_id = "no spaces allowed".into();
    bad.seq = 2;
    h.input(Input::PeerRecord {
        announcement: Box::new(bad),
    });
    assert_eq!(peers(&mut h)["stats"]["malformed"], 1);

    h.input(Input::PeerGone {
        node_id: "node-r".into(),
    });
    let listing = peers(&mut h);
    assert_eq!(listing["peers"], json!([]));
    assert_eq!(listing["stats"]["forgotten"], 1);
    assert!(logs(&h.all())
        .iter()
        .any(|(_, m)| m.contains("forgot peer node-r: the registry says it left")));
}

fn registry_announcements(outputs: &[Output]) -> Vec<Announcement> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Announce { bytes } => Some(Announcement::decode(bytes).expect("decodes")),
            _ => None,
        })
        .collect()
}

#[test]
fn with_a_registry_alone_the_node_hands_its_announcement_out_every_interval() {
    let mut h = Harness::with_config(NodeConfig {
        control: vec![CONTROL.to_owned()],
        discovery: Some(DiscoveryConfig {
            interval: INTERVAL,
            registry: true,
            ..DiscoveryConfig::new("node-a".into(), 1_000)
        }),
        ..NodeConfig::default()
    });
    h.pump();
    let first = h.fresh();
    assert!(
        !first.iter().any(|o| matches!(o, Output::OpenUdp { .. })),
        "no socket for a registry: {first:?}"
    );
    let sent = registry_announcements(&first);
    assert_eq!(sent.len(), 1, "the first one at once: {first:?}");
    assert_eq!(sent[0].node_id, "node-a");
    assert_eq!(sent[0].control, CONTROL);
    assert_eq!(sent[0].seq, 1_000);

    h.advance(INTERVAL / 2);
    assert!(registry_announcements(&h.fresh()).is_empty());
    h.advance(INTERVAL / 2);
    let next = registry_announcements(&h.fresh());
    assert_eq!(next.iter().map(|a| a.seq).collect::<Vec<_>>(), [1_001]);
    assert_eq!(peers(&mut h)["discovery"]["registry"], true);
}

#[test]
fn a_registry_beside_static_peers_gets_the_same_bytes_they_do() {
    let mut h = Harness::with_config(NodeConfig {
        discovery: Some(DiscoveryConfig {
            registry: true,
            ..discovery(false)
        }),
        ..config(false, None)
    });
    h.pump();
    open_udp(&mut h);
    let out = h.fresh();
    let udp: Vec<Bytes> = out
        .iter()
        .filter_map(|o| match o {
            Output::SendTo { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .collect();
    let registry: Vec<Bytes> = out
        .iter()
        .filter_map(|o| match o {
            Output::Announce { bytes } => Some(bytes.clone()),
            _ => None,
        })
        .collect();
    assert!(!udp.is_empty(), "{out:?}");
    assert_eq!(registry.len(), 1, "{out:?}");
    // One announcement per interval, whatever carries it: not one for the registry before
    // the sockets are up and another after.
    assert_eq!(udp[0], registry[0]);
}
