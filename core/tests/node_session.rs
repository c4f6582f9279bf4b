//! Session keys through a hand-driven node (docs/security.md, "Session keys"): a signed
//! session-open answered with a session whose key only the user's private key unwraps,
//! requests in it served with the user in the job's meta, and every refusal (wrong key,
//! tampered fields, replayed and too-old sequence numbers, unknown and expired sessions, a
//! removed or replaced key, another app, a user the task does not list, a bad session-open)
//! answered with its code before any worker sees the request. Time is driven by hand.

use crate::harness;
use crate::native_auth;

use std::time::Duration;

use bytes::Bytes;
use cocaine_core::auth::session::{ClientSession, Seed, SessionLimits};
use cocaine_core::auth::{body_digest, sign_open, Invoke};
use cocaine_core::codec::native::{NativeMessage, Policy};
use cocaine_core::codec::native_session::{decode_grant, SessionAuth};
use cocaine_core::node::{Input, NodeConfig};
use cocaine_core::EndpointId;
use harness::*;
use native_auth::*;
use serde_json::Value;

const EP: &str = "tcp://127.0.0.1:9311";
const SINK: &str = "tcp://127.0.0.1:9312";
const CONTROL: &str = "tcp://127.0.0.1:5987";

fn config(limits: SessionLimits, seed: Option<Seed>) -> NodeConfig {
    NodeConfig {
        control: vec![CONTROL.to_owned()],
        sessions: limits,
        session_seed: seed,
        ..NodeConfig::default()
    }
}

/// A node with alice's and bob's keys and app `echo`: native-server `call` with `security`
/// (JSON, or nothing) and a native-sink `sink`.
fn node_with(section: Option<&str>, config: NodeConfig) -> (Harness, EndpointId) {
    let mut h = Harness::with_config(config);
    h.pump();
    add_users(&mut h);
    let ep = deploy_echo(&mut h, EP, Some(SINK), &security(section));
    (h, ep)
}

fn node(security: Option<&str>) -> (Harness, EndpointId) {
    node_with(
        security,
        config(SessionLimits::default(), Some(Seed([7; 32]))),
    )
}

/// Sends frames as one message from `client` and returns the node's replies to it.
fn send(h: &mut Harness, ep: EndpointId, frames: Vec<Bytes>) -> Vec<NativeMessage> {
    h.fresh();
    let mut message = vec![b(b"client")];
    message.extend(frames);
    h.receive(ep, message);
    native_replies(&h.fresh(), ep, b"client")
}

/// The replies to a session-open of `sid` signed by `user` with `nonce`.
fn session_open(
    h: &mut Harness,
    ep: EndpointId,
    user: &TestKey,
    sid: u64,
    nonce: &str,
) -> Vec<NativeMessage> {
    let open =
        cocaine_core::auth::session::open_session_request(sid, "echo", &stamp(h, nonce), user)
            .unwrap();
    send(h, ep, vec![open, choke(sid)])
}

/// A session for `user`, opened on request `sid`.
fn session(
    h: &mut Harness,
    ep: EndpointId,
    user: &TestKey,
    sid: u64,
    nonce: &str,
) -> ClientSession {
    let replies = session_open(h, ep, user, sid, nonce);
    let [NativeMessage::Chunk { data, .. }, NativeMessage::Choke { .. }] = &replies[..] else {
        panic!("expected a grant, got {replies:?}");
    };
    let grant = decode_grant(data).unwrap();
    ClientSession::from_grant(&grant, user).unwrap()
}

/// A call in `session` of `sid` with `body` for `app`.
fn in_session(s: &mut ClientSession, sid: u64, app: &str, body: &[u8]) -> Vec<Bytes> {
    let open = s.open(sid, app, "", &Policy::default(), body_digest([body]));
    vec![open, chunk(sid, body), choke(sid)]
}

fn echoed(replies: &[NativeMessage], sid: u64, body: &[u8]) {
    assert_eq!(
        replies,
        &[
            NativeMessage::Chunk {
                sid,
                data: Bytes::copy_from_slice(body)
            },
            NativeMessage::Choke { sid }
        ],
    );
}

fn keys(h: &mut Harness) -> Value {
    keys_reply(h, CONTROL)
}

/// Re-encodes a request in a session with one field changed, keeping the MAC.
fn tampered(frame: &Bytes, change: impl FnOnce(&mut u64, &mut String, &mut SessionAuth)) -> Bytes {
    let NativeMessage::OpenInSession {
        mut sid,
        mut event,
        policy,
        mut auth,
    } = NativeMessage::decode(frame, usize::MAX).unwrap()
    else {
        panic!("not an open in a session");
    };
    change(&mut sid, &mut event, &mut auth);
    NativeMessage::OpenInSession {
        sid,
        event,
        policy,
        auth,
    }
    .encode()
}

#[test]
fn a_session_serves_many_calls_with_the_user_in_the_meta() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    let mut s = session(&mut h, ep, &alice(), 1, "nonce-session-0001");
    assert!(
        h.invokes.is_empty(),
        "a session-open never reaches a worker"
    );
    assert!(s.expires_ms() > h.now.unix_ms() + 599_000);
    for sid in 2..12 {
        let replies = send(&mut h, ep, in_session(&mut s, sid, "echo", b"hi"));
        echoed(&replies, sid, b"hi");
    }
    assert_eq!(invoked_users(&h), vec![Some("alice".to_owned()); 10]);
    let keys = keys(&mut h);
    assert_eq!(keys["sessions"]["open"], 1);
    assert_eq!(keys["sessions"]["stats"]["opened"], 1);
    assert_eq!(keys["sessions"]["stats"]["accepted"], 10);
    assert_eq!(keys["stats"]["accepted"], 1, "one RSA check: the open");
}

#[test]
fn a_session_streams_are_held_until_their_end_and_checked() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    let mut s = session(&mut h, ep, &alice(), 1, "nonce-session-0002");
    let body: [&[u8]; 2] = [b"one ", b"two"];
    let open = s.open(2, "echo", "", &Policy::default(), body_digest(body));
    assert!(send(&mut h, ep, vec![open, chunk(2, body[0])]).is_empty());
    assert!(send(&mut h, ep, vec![chunk(2, body[1])]).is_empty());
    assert!(h.invokes.is_empty(), "no job before the body's end");
    let replies = send(&mut h, ep, vec![choke(2)]);
    assert_eq!(replies.last(), Some(&NativeMessage::Choke { sid: 2 }));

    // Another body than the one whose digest was MAC'd.
    let open = s.open(
        3,
        "echo",
        "",
        &Policy::default(),
        body_digest([&b"this"[..]]),
    );
    let replies = send(&mut h, ep, vec![open, chunk(3, b"that"), choke(3)]);
    assert_eq!(refusal(&replies, 3).0, 401);
    assert_eq!(h.invokes.len(), 1);
}

#[test]
fn a_wrong_session_key_is_refused() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    let good = session(&mut h, ep, &alice(), 1, "nonce-session-0003");
    let mut forged = ClientSession::new(good.id().clone(), [9; 32], good.expires_ms());
    let replies = send(&mut h, ep, in_session(&mut forged, 2, "echo", b"x"));
    let (code, message) = refusal(&replies, 2);
    assert_eq!(code, 401);
    assert!(message.starts_with("bad session MAC"), "{message}");
    assert!(h.invokes.is_empty());
    assert_eq!(keys(&mut h)["sessions"]["stats"]["bad_mac"], 1);
    // The real key still works: the forgery burnt no sequence number.
    let mut good = good;
    echoed(
        &send(&mut h, ep, in_session(&mut good, 3, "echo", b"x")),
        3,
        b"x",
    );
}

#[test]
fn every_field_tampered_with_is_refused() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    let mut s = session(&mut h, ep, &alice(), 1, "nonce-session-0004");
    let frames = in_session(&mut s, 5, "echo", b"x");
    type Change = Box<dyn Fn(&mut u64, &mut String, &mut SessionAuth)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        ("sid", Box::new(|sid, _, _| *sid = 6), "bad session MAC"),
        (
            "event",
            Box::new(|_, e, _| *e = "x".into()),
            "bad session MAC",
        ),
        ("seq", Box::new(|_, _, a| a.seq = 9), "bad session MAC"),
        (
            "body",
            Box::new(|_, _, a| a.body = Bytes::from(vec![0; 32])),
            "bad session MAC",
        ),
        (
            "mac",
            Box::new(|_, _, a| a.mac = Bytes::from(vec![0; 32])),
            "bad session MAC",
        ),
        (
            "app",
            Box::new(|_, _, a| a.app = "other".into()),
            "made for app \"other\"",
        ),
        (
            "session",
            Box::new(|_, _, a| a.session = Bytes::from(vec![1; 16])),
            "unknown session",
        ),
    ];
    for (field, change, expected) in cases {
        let open = tampered(&frames[0], change);
        let NativeMessage::OpenInSession { sid, .. } =
            NativeMessage::decode(&open, 1 << 20).unwrap()
        else {
            unreachable!()
        };
        let replies = send(&mut h, ep, vec![open, chunk(sid, b"x"), choke(sid)]);
        let (code, message) = refusal(&replies, sid);
        assert_eq!(code, 401, "{field}");
        assert!(message.starts_with(expected), "{field}: {message}");
    }
    assert!(h.invokes.is_empty(), "nothing tampered reached a worker");
    // The untampered request still goes through: no refusal took its sequence number.
    echoed(&send(&mut h, ep, frames), 5, b"x");
}

#[test]
fn a_replayed_or_too_old_seq_is_refused_and_reordering_is_fine() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    let mut s = session(&mut h, ep, &alice(), 1, "nonce-session-0005");
    let first = in_session(&mut s, 2, "echo", b"a"); // seq 1
    let second = in_session(&mut s, 3, "echo", b"b"); // seq 2
                                                      // Out of order within the window: both served.
    echoed(&send(&mut h, ep, second.clone()), 3, b"b");
    echoed(&send(&mut h, ep, first.clone()), 2, b"a");
    // Replayed (the sid is free again, so only the seq tells).
    let (code, message) = refusal(&send(&mut h, ep, first), 2);
    assert_eq!(code, 401);
    assert!(message.starts_with("replayed: seq 1"), "{message}");
    let kept = in_session(&mut s, 4, "echo", b"c"); // seq 3, held back
    for sid in 5..(5 + 128) {
        send(&mut h, ep, in_session(&mut s, sid, "echo", b"d"));
    }
    let (code, message) = refusal(&send(&mut h, ep, kept), 4);
    assert_eq!(code, 401);
    assert!(message.contains("more than 128 behind"), "{message}");
    assert_eq!(h.invokes.len(), 2 + 128);
    assert_eq!(keys(&mut h)["sessions"]["stats"]["replayed"], 2);
}

#[test]
fn sessions_expire_by_lifetime_and_by_idleness() {
    let limits = SessionLimits {
        lifetime: Duration::from_secs(60),
        idle: Duration::from_secs(20),
        ..SessionLimits::default()
    };
    let (mut h, ep) = node_with(
        Some(r#"{"auth": "required"}"#),
        config(limits, Some(Seed([3; 32]))),
    );
    let mut s = session(&mut h, ep, &alice(), 1, "nonce-session-0006");
    // Busy every 15 s: never idle, but the lifetime ends it.
    for (i, sid) in (2..6).enumerate() {
        h.advance(Duration::from_secs(15));
        let replies = send(&mut h, ep, in_session(&mut s, sid, "echo", b"x"));
        if i < 3 {
            echoed(&replies, sid, b"x");
        } else {
            assert_eq!(refusal(&replies, sid), (401, "session expired".into()));
        }
    }
    // Forgotten once expired: now it is unknown.
    let replies = send(&mut h, ep, in_session(&mut s, 9, "echo", b"x"));
    assert_eq!(refusal(&replies, 9), (401, "unknown session".into()));

    let mut idle = session(&mut h, ep, &alice(), 10, "nonce-session-0007");
    h.advance(Duration::from_secs(19));
    echoed(
        &send(&mut h, ep, in_session(&mut idle, 11, "echo", b"x")),
        11,
        b"x",
    );
    h.advance(Duration::from_secs(20));
    let replies = send(&mut h, ep, in_session(&mut idle, 12, "echo", b"x"));
    assert_eq!(refusal(&replies, 12), (401, "session expired".into()));
    assert_eq!(h.invokes.len(), 4);
    assert_eq!(keys(&mut h)["sessions"]["stats"]["expired"], 2);
}

#[test]
fn removing_or_replacing_a_key_drops_its_sessions_and_spares_others() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    let mut a = session(&mut h, ep, &alice(), 1, "nonce-session-0008");
    let mut b_ = session(&mut h, ep, &bob(), 2, "nonce-session-0009");
    h.input(Input::KeyRemoved {
        user: "alice".into(),
    });
    let replies = send(&mut h, ep, in_session(&mut a, 3, "echo", b"x"));
    assert_eq!(refusal(&replies, 3), (401, "unknown session".into()));
    echoed(
        &send(&mut h, ep, in_session(&mut b_, 4, "echo", b"y")),
        4,
        b"y",
    );
    // Nor can alice open a new one.
    let (code, _) = refusal(
        &session_open(&mut h, ep, &alice(), 5, "nonce-session-0010"),
        5,
    );
    assert_eq!(code, 401);

    // Bob's key replaced by alice's: his session goes; set again unchanged, nothing goes.
    let mut b2 = session(&mut h, ep, &bob(), 6, "nonce-session-0011");
    h.input(Input::KeySet {
        user: "bob".into(),
        pem: Bytes::from_static(BOB_PEM),
    });
    echoed(
        &send(&mut h, ep, in_session(&mut b2, 7, "echo", b"z")),
        7,
        b"z",
    );
    h.input(Input::KeySet {
        user: "bob".into(),
        pem: Bytes::from_static(ALICE_PEM),
    });
    let replies = send(&mut h, ep, in_session(&mut b2, 8, "echo", b"z"));
    assert_eq!(refusal(&replies, 8), (401, "unknown session".into()));
    let keys = keys(&mut h);
    assert_eq!(keys["sessions"]["open"], 0);
    assert_eq!(keys["sessions"]["stats"]["dropped"], 3);
    assert_eq!(h.invokes.len(), 2);
}

#[test]
fn a_session_open_must_be_signed_empty_and_on_a_checking_task() {
    let (mut h, ep) = node(Some(r#"{"auth": "optional"}"#));
    // Unsigned.
    let replies = send(&mut h, ep, vec![open(1, "cocaine.session"), choke(1)]);
    let (code, message) = refusal(&replies, 1);
    assert_eq!(
        (code, message.contains("must be signed")),
        (401, true),
        "{message}"
    );
    // With a body.
    let policy = Policy::default();
    let invoke = Invoke {
        sid: 2,
        app: "echo",
        event: "cocaine.session",
        policy: &policy,
        body: body_digest([&b"ttl=1"[..]]),
    };
    let signed = sign_open(&invoke, &stamp(&h, "nonce-session-0012"), &alice()).unwrap();
    let replies = send(&mut h, ep, vec![signed, chunk(2, b"ttl=1"), choke(2)]);
    assert_eq!(refusal(&replies, 2).0, 400);
    // Opened by a session: a session cannot extend itself.
    let mut s = session(&mut h, ep, &alice(), 3, "nonce-session-0013");
    let open = s.open(4, "echo", "cocaine.session", &policy, body_digest([]));
    let (code, message) = refusal(&send(&mut h, ep, vec![open, choke(4)]), 4);
    assert_eq!(
        (code, message.contains("must be signed")),
        (401, true),
        "{message}"
    );
    // A bad signature is the signature's refusal.
    let forged = cocaine_core::auth::session::open_session_request(
        5,
        "echo",
        &stamp(&h, "nonce-session-0014"),
        &TestKey {
            user: "alice",
            key: bob().key,
        },
    )
    .unwrap();
    let (code, message) = refusal(&send(&mut h, ep, vec![forged, choke(5)]), 5);
    assert_eq!(
        (code, message.starts_with("bad signature")),
        (401, true),
        "{message}"
    );
    assert!(h.invokes.is_empty());
    assert_eq!(keys(&mut h)["sessions"]["stats"]["bad_open"], 3);

    let (mut h, ep) = node(Some(r#"{"auth": "off"}"#));
    let replies = session_open(&mut h, ep, &alice(), 1, "nonce-session-0015");
    assert_eq!(refusal(&replies, 1).0, 403);
    assert!(h.invokes.is_empty());
}

#[test]
fn a_node_without_a_seed_cannot_open_sessions() {
    let (mut h, ep) = node_with(None, config(SessionLimits::default(), None));
    let replies = session_open(&mut h, ep, &alice(), 1, "nonce-session-0016");
    let (code, message) = refusal(&replies, 1);
    assert_eq!(code, 503);
    assert!(message.contains("no random seed"), "{message}");
}

#[test]
fn the_task_decides_who_and_whether() {
    let (mut h, ep) = node(Some(r#"{"auth": "required", "users": ["alice"]}"#));
    let mut s = session(&mut h, ep, &alice(), 1, "nonce-session-0017");
    echoed(
        &send(&mut h, ep, in_session(&mut s, 2, "echo", b"x")),
        2,
        b"x",
    );
    // Bob may not even open one here (the open is checked as any signed request).
    let (code, _) = refusal(
        &session_open(&mut h, ep, &bob(), 3, "nonce-session-0018"),
        3,
    );
    assert_eq!(code, 403);

    // A session opened on a task that lets bob in is still refused by one that does not.
    let (mut h2, ep2) = node(Some(r#"{"auth": "required"}"#));
    let mut bobs = session(&mut h2, ep2, &bob(), 1, "nonce-session-0019");
    echoed(
        &send(&mut h2, ep2, in_session(&mut bobs, 2, "echo", b"x")),
        2,
        b"x",
    );
    h2.deploy(
        "echo",
        &format!(
            r#"{{"type": "python", "args": "local:///srv/echo",
                "tasks": {{"call": {{"type": "native-server", "endpoint": "{EP}"}}}},
                "security": {{"auth": "required", "users": ["alice"]}}}}"#
        ),
    );
    h2.pump();
    let ep2 = h2.endpoint(EP);
    let (code, message) = refusal(
        &send(&mut h2, ep2, in_session(&mut bobs, 3, "echo", b"x")),
        3,
    );
    assert_eq!(code, 403, "{message}");
    assert_eq!(keys(&mut h2)["sessions"]["stats"]["not_allowed"], 1);
}

#[test]
fn a_session_on_a_task_that_does_not_check_is_served_without_a_user() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    let mut s = session(&mut h, ep, &alice(), 1, "nonce-session-0020");
    let (mut off, off_ep) = node(Some(r#"{"auth": "off"}"#));
    echoed(
        &send(&mut off, off_ep, in_session(&mut s, 2, "echo", b"x")),
        2,
        b"x",
    );
    assert_eq!(invoked_users(&off), vec![None]);
}

#[test]
fn a_native_sink_takes_requests_in_a_session_but_opens_none() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    let mut s = session(&mut h, ep, &alice(), 1, "nonce-session-0021");
    let sink = h.endpoint(SINK);
    h.fresh();
    h.receive(sink, in_session(&mut s, 2, "echo", b"to the sink"));
    assert_eq!(invoked_users(&h), vec![Some("alice".to_owned())]);
    // A replay is dropped (and logged): no second job.
    let mut replayed = ClientSession::new(s.id().clone(), [0; 32], 0);
    h.receive(sink, in_session(&mut replayed, 2, "echo", b"forged"));
    let open = cocaine_core::auth::session::open_session_request(
        3,
        "echo",
        &stamp(&h, "nonce-session-0022"),
        &alice(),
    )
    .unwrap();
    h.receive(sink, vec![open, choke(3)]);
    assert_eq!(h.invokes.len(), 1);
    let logs = logs(&h.fresh());
    assert!(
        logs.iter().any(|(_, m)| m.contains("cannot open sessions")),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|(_, m)| m.contains("401 bad session MAC")),
        "{logs:?}"
    );
}

#[test]
fn too_many_sessions_are_refused_and_a_users_oldest_goes_first() {
    let limits = SessionLimits {
        per_user: 2,
        total: 3,
        ..SessionLimits::default()
    };
    let (mut h, ep) = node_with(
        Some(r#"{"auth": "required"}"#),
        config(limits, Some(Seed([5; 32]))),
    );
    let mut a1 = session(&mut h, ep, &alice(), 1, "nonce-session-0023");
    h.advance(Duration::from_millis(10));
    let mut a2 = session(&mut h, ep, &alice(), 2, "nonce-session-0024");
    h.advance(Duration::from_millis(10));
    echoed(
        &send(&mut h, ep, in_session(&mut a1, 3, "echo", b"x")),
        3,
        b"x",
    );
    h.advance(Duration::from_millis(10));
    // A third of alice's pushes out her least recently used: a2.
    let mut a3 = session(&mut h, ep, &alice(), 4, "nonce-session-0025");
    let replies = send(&mut h, ep, in_session(&mut a2, 5, "echo", b"x"));
    assert_eq!(refusal(&replies, 5), (401, "unknown session".into()));
    echoed(
        &send(&mut h, ep, in_session(&mut a1, 6, "echo", b"x")),
        6,
        b"x",
    );
    echoed(
        &send(&mut h, ep, in_session(&mut a3, 7, "echo", b"x")),
        7,
        b"x",
    );
    let _b1 = session(&mut h, ep, &bob(), 8, "nonce-session-0026");
    // The node is full: bob's second is refused, nobody else's pushed out.
    let (code, message) = refusal(
        &session_open(&mut h, ep, &bob(), 9, "nonce-session-0027"),
        9,
    );
    assert_eq!(code, 503);
    assert!(message.starts_with("too many sessions"), "{message}");
    echoed(
        &send(&mut h, ep, in_session(&mut a1, 10, "echo", b"x")),
        10,
        b"x",
    );
    let keys = keys(&mut h);
    assert_eq!(keys["sessions"]["open"], 3);
    assert_eq!(keys["sessions"]["stats"]["evicted"], 1);
    assert_eq!(keys["sessions"]["stats"]["too_many"], 1);
    // Once they expire there is room again.
    h.advance(Duration::from_secs(121));
    let _b2 = session(&mut h, ep, &bob(), 11, "nonce-session-0028");
}

#[test]
fn sealed_requests_are_not_made_in_a_session() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    let mut s = session(&mut h, ep, &alice(), 1, "nonce-session-0040");
    let sealed = Policy {
        sealed: true,
        ..Policy::default()
    };
    // A sealed open in a session: its body would be bound to a nonce it does not carry.
    let open = s.open(2, "echo", "", &sealed, body_digest([&b"sealed?"[..]]));
    let replies = send(&mut h, ep, vec![open, chunk(2, b"sealed?"), choke(2)]);
    let (code, message) = refusal(&replies, 2);
    assert_eq!(
        (code, message.contains("cannot be made in a session")),
        (400, true),
        "{message}"
    );
    // A sealed session-open, signed as any session-open.
    let invoke = Invoke {
        sid: 3,
        app: "echo",
        event: "cocaine.session",
        policy: &sealed,
        body: body_digest([]),
    };
    let signed = sign_open(&invoke, &stamp(&h, "nonce-session-0041"), &alice()).unwrap();
    let (code, message) = refusal(&send(&mut h, ep, vec![signed, choke(3)]), 3);
    assert_eq!(
        (code, message.contains("nor open one")),
        (400, true),
        "{message}"
    );
    assert!(h.invokes.is_empty(), "no refused request reached a worker");
    // The session itself is unharmed: an unsealed call in it goes through.
    let replies = send(&mut h, ep, in_session(&mut s, 4, "echo", b"plain"));
    echoed(&replies, 4, b"plain");
    let keys = keys(&mut h);
    assert_eq!(keys["sessions"]["stats"]["bad_open"], 2);
    assert_eq!(keys["sessions"]["stats"]["opened"], 1);
    assert_eq!(keys["sessions"]["stats"]["accepted"], 1);
}
