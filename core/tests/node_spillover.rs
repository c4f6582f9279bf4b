//! Spillover (docs/cluster.md, "Spillover") through two hand-driven nodes wired together:
//! node A's link (a DEALER) delivers to node B's native-server endpoint, and B's replies come
//! back on the link. A request that finds A's queue full goes to B once, marked `hop = 1`;
//! B never hands it on; the caller's chunks and cancel follow it; replies come back with the
//! caller's sid; a peer that leaves, goes silent or misses the deadline ends the request
//! with an error; everything is counted in `info`.

use crate::harness;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cocaine_core::cluster::announcement::{AppAnnouncement, AppState, Load};
use cocaine_core::cluster::Announcement;
use cocaine_core::codec::native::{NativeMessage, Policy};
use cocaine_core::node::{BindError, DiscoveryConfig, Input, NodeConfig, Output, SocketKind};
use cocaine_core::EndpointId;
use harness::*;
use serde_json::{json, Value};

const INTERVAL: Duration = Duration::from_millis(500);
const A_CONTROL: &str = "tcp://127.0.0.2:5000";
const B_CONTROL: &str = "tcp://127.0.0.3:5000";
const A_EP: &str = "tcp://127.0.0.2:9110";
const B_EP: &str = "tcp://127.0.0.3:9110";
const C_EP: &str = "tcp://127.0.0.4:9110";
/// The identity B's ROUTER gives A's link.
const LINK_ID: &[u8] = b"link-from-a";

fn app(endpoint: &str, spillover: bool) -> String {
    format!(
        r#"{{"type": "python", "args": "local:///srv/x",
            "engine": {{"pool-limit": 1, "pool-min": 1, "queue-limit": 1}},
            "cluster": {{"spillover": {spillover}}},
            "tasks": {{"work": {{"type": "native-server", "endpoint": "{endpoint}"}}}}}}"#
    )
}

fn node(id: &str, control: &str, peer: &str) -> Harness {
    let mut h = Harness::with_config(NodeConfig {
        control: vec![control.to_owned()],
        discovery: Some(DiscoveryConfig {
            interval: INTERVAL,
            peers: vec![peer.parse().unwrap()],
            ..DiscoveryConfig::new(id.into(), 1_000)
        }),
        ..NodeConfig::default()
    });
    h.pump();
    h
}

fn udp(h: &Harness) -> EndpointId {
    udp_endpoint(h.all()).expect("a UDP endpoint")
}

/// `h` hears `id` at `from` announce the app at `endpoint` with this queue.
fn hear(h: &mut Harness, id: &str, from: &str, seq: u64, endpoint: &str, queue: u64) {
    let bytes = Announcement {
        node_id: id.into(),
        seq,
        control: "tcp://*:5000".into(),
        apps: [(
            "x".to_owned(),
            AppAnnouncement {
                version: 1,
                hash: String::new(),
                tasks: [("work".to_owned(), endpoint.to_owned())].into(),
                load: Load {
                    queue,
                    busy: 1,
                    workers: 1,
                    pool_limit: 1,
                    queue_limit: 10,
                },
                state: AppState::Running,
            },
        )]
        .into(),
        sig: None,
    }
    .encode()
    .unwrap();
    let endpoint = udp(h);
    let from: SocketAddr = from.parse().unwrap();
    h.input(Input::Datagram {
        endpoint,
        from,
        bytes,
    });
}

/// Node A (spillover on) with one worker that holds every request, its queue of one filled:
/// the next request finds it full. A knows peers B and C, B the less loaded.
fn full_a() -> (Harness, EndpointId) {
    let mut a = node("node-a", A_CONTROL, "127.0.0.3:5000");
    a.default.answer = Answer::Manual;
    a.deploy("x", &app(A_EP, true));
    hear(&mut a, "node-b", "127.0.0.3:5000", 10, B_EP, 0);
    hear(&mut a, "node-c", "127.0.0.4:5000", 10, C_EP, 5);
    let ep = a.endpoint(A_EP);
    a.receive(ep, vec![b(b"early"), open(1, ""), choke(1)]);
    a.receive(ep, vec![b(b"early"), open(2, ""), choke(2)]);
    a.fresh();
    (a, ep)
}

/// Node B, echoing, with spillover on too, knowing A as a peer running the app.
fn node_b() -> (Harness, EndpointId) {
    let mut nb = node("node-b", B_CONTROL, "127.0.0.2:5000");
    nb.deploy("x", &app(B_EP, true));
    hear(&mut nb, "node-a", "127.0.0.2:5000", 10, A_EP, 0);
    let ep = nb.endpoint(B_EP);
    nb.fresh();
    (nb, ep)
}

/// The DEALER link A opened, if any.
fn link(a: &Harness) -> Option<(EndpointId, String)> {
    a.binds
        .iter()
        .find(|(_, kind, _)| *kind == SocketKind::Dealer)
        .map(|(e, _, addr)| (*e, addr.clone()))
}

/// Carries what A sent on its link to B, and B's replies back to A, until both are quiet.
fn wire(a: &mut Harness, nb: &mut Harness, link: EndpointId, b_ep: EndpointId) {
    for _ in 0..10 {
        let to_b = sends(&a.fresh(), link);
        for frames in &to_b {
            let mut with_id = vec![b(LINK_ID)];
            with_id.extend(frames.iter().cloned());
            nb.receive(b_ep, with_id);
        }
        let to_a: Vec<Vec<Bytes>> = sends(&nb.fresh(), b_ep)
            .into_iter()
            .filter(|f| f.first().map(|p| &p[..]) == Some(LINK_ID))
            .collect();
        for frames in &to_a {
            a.receive(link, frames[1..].to_vec());
        }
        if to_b.is_empty() && to_a.is_empty() {
            return;
        }
    }
    panic!("the nodes do not stop talking");
}

fn info(h: &mut Harness, control: &str, app: Option<&str>) -> Value {
    let mut request = json!({"version": 1, "action": "info"});
    if let Some(app) = app {
        request["app"] = json!(app);
    }
    control_reply(h, control, &request.to_string())
}

fn replies_to(h: &Harness, ep: EndpointId, peer: &[u8]) -> Vec<NativeMessage> {
    native_replies(&h.all(), ep, peer)
}

/// Every message A sent on `link`, decoded.
fn on_link(a: &Harness, link: EndpointId) -> Vec<NativeMessage> {
    sends(&a.all(), link)
        .concat()
        .iter()
        .map(|f| decode_native(f))
        .collect()
}

/// How many DEALER links A opened.
fn dealers(a: &Harness) -> usize {
    a.binds
        .iter()
        .filter(|(_, k, _)| *k == SocketKind::Dealer)
        .count()
}

/// `caller` sends a whole request of `sid` to A, which finds its queue full and hands it on;
/// the link it went on.
fn spill(a: &mut Harness, a_ep: EndpointId, sid: u64) -> EndpointId {
    a.receive(a_ep, vec![b(b"caller"), open(sid, ""), choke(sid)]);
    link(a).expect("A opened a link").0
}

/// `got` is exactly one error, for `sid` with `code`, its message containing `says`.
fn assert_error(got: &[NativeMessage], sid: u64, code: u32, says: &str) {
    assert!(
        matches!(got, [NativeMessage::Error { sid: s, code: c, message }]
            if *s == sid && *c == code && message.contains(says)),
        "{got:?}"
    );
}

/// A whole reply of `sid`: one chunk of `data` and the end.
fn reply(sid: u64, data: &[u8]) -> Vec<NativeMessage> {
    vec![
        NativeMessage::Chunk { sid, data: b(data) },
        NativeMessage::Choke { sid },
    ]
}

/// A with one worker that holds every request and spillover as given, hearing node-b announce
/// this queue, answers the third request of a full queue with a 503 and opens no link.
fn full_queue_answers_503(spillover: bool, peer_queue: u64) {
    let mut a = node("node-a", A_CONTROL, "127.0.0.3:5000");
    a.default.answer = Answer::Manual;
    a.deploy("x", &app(A_EP, spillover));
    hear(&mut a, "node-b", "127.0.0.3:5000", 10, B_EP, peer_queue);
    let ep = a.endpoint(A_EP);
    for sid in 1..=3 {
        a.receive(ep, vec![b(b"c"), open(sid, ""), choke(sid)]);
    }
    assert!(link(&a).is_none());
    assert_error(&replies_to(&a, ep, b"c"), 3, 503, "");
}

#[test]
fn a_full_queue_hands_the_request_once_to_the_least_loaded_peer_and_relays_its_reply() {
    let (mut a, a_ep) = full_a();
    let (mut nb, b_ep) = node_b();
    let policy = Policy {
        deadline_ms: Some(60_000),
        timeout_ms: Some(30_000),
        ..Policy::default()
    };
    a.receive(
        a_ep,
        vec![
            b(b"caller"),
            Bytes::new(),
            open_with(7, "", policy),
            chunk(7, b"hello"),
        ],
    );
    // One more chunk and the end, in a later message.
    a.receive(
        a_ep,
        vec![b(b"caller"), Bytes::new(), chunk(7, b" there"), choke(7)],
    );
    let (link, address) = link(&a).expect("A opened a link");
    assert_eq!(address, B_EP, "the less loaded peer");
    // What went on the link: the open marked hop 1 with the caller's policy, then the body.
    let sent = on_link(&a, link);
    let NativeMessage::Open { sid, policy, .. } = &sent[0] else {
        panic!("{sent:?}")
    };
    assert_eq!(policy.hop, 1);
    assert_eq!(policy.deadline_ms, Some(60_000));
    assert_eq!(policy.timeout_ms, Some(30_000));
    assert_eq!(
        sent[1..],
        [
            NativeMessage::Chunk {
                sid: *sid,
                data: b(b"hello")
            },
            NativeMessage::Chunk {
                sid: *sid,
                data: b(b" there")
            },
            NativeMessage::Choke { sid: *sid },
        ]
    );
    wire(&mut a, &mut nb, link, b_ep);
    // B ran it (its worker echoes) and the caller got the reply on its own sid, delimiter kept.
    let got = replies_to(&a, a_ep, b"caller");
    assert_eq!(
        got,
        vec![
            NativeMessage::Chunk {
                sid: 7,
                data: b(b"hello")
            },
            NativeMessage::Chunk {
                sid: 7,
                data: b(b" there")
            },
            NativeMessage::Choke { sid: 7 },
        ]
    );
    assert!(sends(&a.all(), a_ep)
        .iter()
        .filter(|f| f[0] == b(b"caller"))
        .all(|f| f[1].is_empty()));

    let a_info = info(&mut a, A_CONTROL, Some("x"));
    assert_eq!(
        a_info["ok"]["spillover"],
        json!({"forwarded_out": 1, "forwarded_in": 0, "forward_failures": 0})
    );
    let b_info = info(&mut nb, B_CONTROL, Some("x"));
    assert_eq!(
        b_info["ok"]["spillover"],
        json!({"forwarded_out": 0, "forwarded_in": 1, "forward_failures": 0})
    );
    let node_info = info(&mut a, A_CONTROL, None);
    assert_eq!(node_info["ok"]["spillover"]["open"], 0);
    assert_eq!(node_info["ok"]["spillover"]["links"], 1);

    // A second spill reuses the link: one DEALER per peer endpoint, a new link sid.
    a.receive(a_ep, vec![b(b"other"), open(1, ""), choke(1)]);
    assert_eq!(dealers(&a), 1);
    let NativeMessage::Open { sid: second, .. } = decode_native(&sends(&a.fresh(), link)[0][0])
    else {
        panic!("no open")
    };
    assert_ne!(second, *sid);
}

#[test]
fn a_forwarded_request_is_never_forwarded_again() {
    let (mut a, a_ep) = full_a();
    let (mut nb, b_ep) = node_b();
    // B's queue is full too: a hung worker, one request running and one waiting.
    nb.default.answer = Answer::Manual;
    nb.receive(b_ep, vec![b(b"local"), open(1, ""), choke(1)]);
    nb.receive(b_ep, vec![b(b"local"), open(2, ""), choke(2)]);
    // B would hand its own overflow to A (it announces room), so spillover is armed there.
    nb.receive(b_ep, vec![b(b"local"), open(3, ""), choke(3)]);
    assert!(link(&nb).is_some(), "B hands its own clients' overflow on");
    let b_links_before = nb.binds.len();

    let link = spill(&mut a, a_ep, 5);
    wire(&mut a, &mut nb, link, b_ep);
    let got = replies_to(&a, a_ep, b"caller");
    assert_error(&got, 5, 503, "queue");
    // B answered the hop-1 request itself: nothing more went out on any link of B's.
    assert_eq!(nb.binds.len(), b_links_before);
    let b_info = info(&mut nb, B_CONTROL, Some("x"));
    assert_eq!(b_info["ok"]["spillover"]["forwarded_in"], 1);
    assert_eq!(
        b_info["ok"]["spillover"]["forwarded_out"], 1,
        "only its own client's"
    );
}

#[test]
fn with_spillover_off_or_no_peer_with_room_a_full_queue_answers_503() {
    full_queue_answers_503(false, 0);
    // Spillover on, but the only peer's queue is full too (as announced).
    full_queue_answers_503(true, 10);
}

#[test]
fn a_callers_cancel_reaches_the_peer_and_its_answer_comes_back() {
    let (mut a, a_ep) = full_a();
    let (mut nb, b_ep) = node_b();
    nb.default.answer = Answer::Manual;
    a.receive(a_ep, vec![b(b"caller"), open(9, ""), chunk(9, b"x")]);
    let (link, _) = link(&a).unwrap();
    wire(&mut a, &mut nb, link, b_ep);
    a.receive(a_ep, vec![b(b"caller"), cancel(9)]);
    let sent = on_link(&a, link);
    assert!(
        matches!(sent.last(), Some(NativeMessage::Cancel { .. })),
        "{sent:?}"
    );
    wire(&mut a, &mut nb, link, b_ep);
    let got = replies_to(&a, a_ep, b"caller");
    assert_error(&got, 9, 499, "");
    // The sid is free again on the caller's connection.
    assert_eq!(info(&mut a, A_CONTROL, None)["ok"]["spillover"]["open"], 0);
}

#[test]
fn a_peer_that_leaves_the_cluster_fails_its_requests_with_502() {
    let (mut a, a_ep) = full_a();
    spill(&mut a, a_ep, 4);
    // node-b stays silent (no pong, no announcement); node-c keeps announcing.
    let mut failed_at = None;
    for (seq, step) in (11..).zip(1..=8) {
        a.advance(INTERVAL / 2);
        hear(&mut a, "node-c", "127.0.0.4:5000", seq, C_EP, 5);
        if !replies_to(&a, a_ep, b"caller").is_empty() {
            failed_at = Some(step);
            break;
        }
    }
    let got = replies_to(&a, a_ep, b"caller");
    assert_error(&got, 4, 502, "node-b");
    // Within three intervals (plus one step), never before two.
    let step = failed_at.unwrap();
    assert!((4..=7).contains(&step), "failed at step {step}");
    let stats = &info(&mut a, A_CONTROL, Some("x"))["ok"]["spillover"];
    assert_eq!(stats["forward_failures"], 1);
    assert_eq!(stats["forwarded_out"], 1);
    // The link went with it.
    assert!(a.all().iter().any(
        |o| matches!(o, Output::Unbind { endpoint } if Some(*endpoint) == link(&a).map(|l| l.0))
    ));
}

#[test]
fn a_peer_gone_from_the_registry_fails_its_requests_at_once() {
    let (mut a, a_ep) = full_a();
    a.receive(a_ep, vec![b(b"caller"), open(4, ""), choke(4)]);
    a.input(Input::PeerGone {
        node_id: "node-b".into(),
    });
    let got = replies_to(&a, a_ep, b"caller");
    assert_error(&got, 4, 502, "left the cluster");
}

#[test]
fn a_peer_that_announces_but_does_not_answer_pings_fails_its_requests() {
    let (mut a, a_ep) = full_a();
    let link = spill(&mut a, a_ep, 4);
    for seq in 11..19 {
        a.advance(INTERVAL / 2);
        hear(&mut a, "node-b", "127.0.0.3:5000", seq, B_EP, 0);
    }
    let pings = on_link(&a, link)
        .iter()
        .filter(|m| matches!(m, NativeMessage::Ping { .. }))
        .count();
    assert!(pings >= 1);
    let got = replies_to(&a, a_ep, b"caller");
    assert_error(&got, 4, 502, "did not answer pings");
}

#[test]
fn a_peer_that_answers_pings_keeps_a_long_request_open() {
    let (mut a, a_ep) = full_a();
    let (mut nb, b_ep) = node_b();
    nb.default.answer = Answer::Manual;
    let link = spill(&mut a, a_ep, 4);
    for seq in 11..23 {
        a.advance(INTERVAL / 2);
        hear(&mut a, "node-b", "127.0.0.3:5000", seq, B_EP, 0);
        wire(&mut a, &mut nb, link, b_ep);
    }
    assert!(replies_to(&a, a_ep, b"caller").is_empty());
    // B's worker answers at last: the reply comes through.
    let w = nb.last_worker("x");
    let job = nb.worker(w).invoked[0];
    nb.worker_replies(w, job, &[b"late"]);
    wire(&mut a, &mut nb, link, b_ep);
    let got = replies_to(&a, a_ep, b"caller");
    assert_eq!(got, reply(4, b"late"));
}

#[test]
fn past_the_deadline_without_the_peers_answer_the_caller_gets_520_and_the_peer_a_cancel() {
    let (mut a, a_ep) = full_a();
    let policy = Policy {
        deadline_ms: Some(200),
        ..Policy::default()
    };
    a.receive(a_ep, vec![b(b"caller"), open_with(4, "", policy), choke(4)]);
    let (link, _) = link(&a).unwrap();
    a.advance(Duration::from_millis(200) + cocaine_core::node::DEADLINE_GRACE / 2);
    assert!(replies_to(&a, a_ep, b"caller").is_empty());
    a.advance(cocaine_core::node::DEADLINE_GRACE);
    let got = replies_to(&a, a_ep, b"caller");
    assert_error(&got, 4, 520, "");
    let sent = on_link(&a, link);
    assert!(sent
        .iter()
        .any(|m| matches!(m, NativeMessage::Cancel { .. })));
}

#[test]
fn a_link_that_cannot_be_set_up_answers_503_at_once() {
    let (mut a, a_ep) = full_a();
    a.auto_bind = false;
    let link = spill(&mut a, a_ep, 4);
    a.input(Input::Bound {
        endpoint: link,
        result: Err(BindError::InvalidAddress("no such host".into())),
    });
    let got = replies_to(&a, a_ep, b"caller");
    assert_error(&got, 4, 503, "cannot connect");
}

#[test]
fn replies_from_a_peer_for_unknown_sids_and_garbage_are_dropped() {
    let (mut a, a_ep) = full_a();
    let link = spill(&mut a, a_ep, 4);
    a.receive(
        link,
        vec![
            chunk(999, b"stray"),
            choke(999),
            b(b"\xc1garbage"),
            Bytes::new(),
            b(&[0x92, 0x05]),
        ],
    );
    assert!(replies_to(&a, a_ep, b"caller").is_empty());
    // The real answer still comes through.
    let sid = match decode_native(&sends(&a.all(), link)[0][0]) {
        NativeMessage::Open { sid, .. } => sid,
        other => panic!("{other:?}"),
    };
    a.receive(link, vec![chunk(sid, b"ok"), choke(sid)]);
    assert_eq!(replies_to(&a, a_ep, b"caller"), reply(4, b"ok"));
}

#[test]
fn a_sid_handed_on_is_still_in_use_for_its_caller() {
    let (mut a, a_ep) = full_a();
    a.receive(a_ep, vec![b(b"caller"), open(4, ""), choke(4)]);
    a.receive(a_ep, vec![b(b"caller"), open(4, "")]);
    let got = replies_to(&a, a_ep, b"caller");
    assert_error(&got, 4, 400, "");
}

#[test]
fn a_peer_that_restarts_with_its_id_fails_the_requests_it_had() {
    let (mut a, a_ep) = full_a();
    spill(&mut a, a_ep, 4);
    // Announcements one per interval (a lost one in between) are the same node.
    a.advance(INTERVAL);
    hear(&mut a, "node-b", "127.0.0.3:5000", 11, B_EP, 0);
    a.advance(INTERVAL);
    hear(&mut a, "node-b", "127.0.0.3:5000", 13, B_EP, 0);
    assert!(replies_to(&a, a_ep, b"caller").is_empty());
    // node-b restarts from its store (same id): its seq is now its new start time in ms.
    a.advance(INTERVAL / 5);
    hear(
        &mut a,
        "node-b",
        "127.0.0.3:5000",
        1_700_000_000_000,
        B_EP,
        0,
    );
    let got = replies_to(&a, a_ep, b"caller");
    assert_error(&got, 4, 502, "restarted");
    // A new request goes to the restarted node over a new link.
    a.receive(a_ep, vec![b(b"next"), open(1, ""), choke(1)]);
    assert_eq!(dealers(&a), 2);
}

/// What a hostile or broken peer (and the caller, and time) may do to requests handed on.
#[derive(Debug, Clone)]
enum Step {
    /// A message from the peer on the link, for a link sid (some never used).
    Peer(u8, u64, Vec<u8>),
    /// Bytes from the peer that are not a message.
    Garbage(Vec<u8>),
    CallerChunk(u64),
    CallerCancel(u64),
    /// Time passes; the peer announces itself (or not).
    Wait(u64, bool),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        (
            0u8..6,
            0u64..7,
            proptest::collection::vec(any::<u8>(), 0..8)
        )
            .prop_map(|(k, s, d)| Step::Peer(k, s, d)),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Step::Garbage),
        (1u64..5).prop_map(Step::CallerChunk),
        (1u64..5).prop_map(Step::CallerCancel),
        (0u64..1500, any::<bool>()).prop_map(|(ms, heard)| Step::Wait(ms, heard)),
    ]
}

fn peer_message(kind: u8, sid: u64, data: &[u8]) -> Bytes {
    use cocaine_core::codec::native as n;
    match kind {
        0 => n::encode_chunk(sid, data),
        1 => n::encode_choke(sid),
        2 => n::encode_error(
            sid,
            500 + u32::from(data.first().copied().unwrap_or(0)),
            "x",
        ),
        3 => n::encode_pong(sid),
        4 => n::encode_ping(sid),
        _ => n::encode_open(sid, "", &Policy::default(), None),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

    /// Whatever the peer sends and whenever, each request handed on gets at most one
    /// terminal message, nothing after it, only on its caller's sids; and once the peer is
    /// gone, every one has ended.
    #[test]
    fn every_request_handed_on_ends_exactly_once(steps in proptest::collection::vec(step(), 0..40)) {
        let (mut a, a_ep) = full_a();
        for sid in 1..=4 {
            a.receive(a_ep, vec![b(b"caller"), open(sid, ""), chunk(sid, b"q")]);
        }
        let (link, _) = link(&a).expect("a link");
        let mut seq = 11;
        for s in steps {
            match s {
                Step::Peer(kind, sid, data) => a.receive(link, vec![peer_message(kind, sid, &data)]),
                Step::Garbage(bytes) => a.receive(link, vec![Bytes::from(bytes)]),
                Step::CallerChunk(sid) => a.receive(a_ep, vec![b(b"caller"), chunk(sid, b"more")]),
                Step::CallerCancel(sid) => a.receive(a_ep, vec![b(b"caller"), cancel(sid)]),
                Step::Wait(ms, heard) => {
                    a.advance(Duration::from_millis(ms));
                    if heard {
                        seq += 1;
                        hear(&mut a, "node-b", "127.0.0.3:5000", seq, B_EP, 0);
                    }
                }
            }
        }
        a.input(Input::PeerGone { node_id: "node-b".into() });
        let mut ended = std::collections::BTreeSet::new();
        for m in replies_to(&a, a_ep, b"caller") {
            let sid = match m {
                NativeMessage::Chunk { sid, .. } => sid,
                NativeMessage::Choke { sid } | NativeMessage::Error { sid, .. } => {
                    proptest::prop_assert!(ended.insert(sid), "sid {} ended twice", sid);
                    sid
                }
                other => panic!("unexpected reply {other:?}"),
            };
            proptest::prop_assert!((1..=4).contains(&sid), "reply on sid {}", sid);
            if matches!(m, NativeMessage::Chunk { .. }) {
                proptest::prop_assert!(!ended.contains(&sid), "a chunk after the end of {}", sid);
            }
        }
        proptest::prop_assert_eq!(ended.len(), 4);
        proptest::prop_assert_eq!(&info(&mut a, A_CONTROL, None)["ok"]["spillover"]["open"], 0);
    }
}

#[test]
fn each_forward_gives_up_at_its_own_deadline_and_one_answered_in_time_never_does() {
    use cocaine_core::node::DEADLINE_GRACE;
    let (mut a, a_ep) = full_a();
    let (mut nb, b_ep) = node_b();
    nb.default.answer = Answer::Manual;
    // Deadlines short enough that B, silent from here on, is still a member at the last
    // give-up.
    let start = a.elapsed();
    let open = |a: &mut Harness, sid: u64, ms: u64| {
        let policy = Policy {
            deadline_ms: Some(ms),
            ..Policy::default()
        };
        a.receive(
            a_ep,
            vec![b(b"caller"), open_with(sid, "", policy), choke(sid)],
        );
    };
    // Opened in an order unlike their deadlines', so the soonest is not simply the first.
    open(&mut a, 5, 600);
    open(&mut a, 4, 100);
    let (link, _) = link(&a).unwrap();
    wire(&mut a, &mut nb, link, b_ep);
    // B answers sid 5's request (the first handed on, B's first job) before its deadline.
    let w = nb.last_worker("x");
    let job = nb.worker(w).invoked[0];
    nb.worker_replies(w, job, &[b"in time"]);
    wire(&mut a, &mut nb, link, b_ep);
    assert_eq!(replies_to(&a, a_ep, b"caller"), reply(5, b"in time"));
    a.fresh();
    // What the caller got since the last look.
    let new_replies = |a: &mut Harness| native_replies(&a.fresh(), a_ep, b"caller");
    open(&mut a, 6, 250);
    let got = new_replies(&mut a);
    assert!(got.is_empty(), "sid 6 was not handed on: {got:?}");

    let give_up = |ms: u64| start + Duration::from_millis(ms) + DEADLINE_GRACE;
    for (sid, ms) in [(4, 100), (6, 250)] {
        // The node asks to be woken by this forward's give-up at the latest.
        let due = a.node.poll_timeout().expect("a forward is waiting");
        assert!(
            due <= a.now.mono + (give_up(ms) - a.elapsed()),
            "wakes too late"
        );
        a.advance_to(give_up(ms) - Duration::from_millis(1));
        let got = new_replies(&mut a);
        assert!(got.is_empty(), "sid {sid} failed early: {got:?}");
        a.advance_to(give_up(ms));
        assert_error(&new_replies(&mut a), sid, 520, "");
    }
    a.advance(Duration::from_secs(5));
    assert!(new_replies(&mut a).is_empty());
}
