//! Sealed native-protocol requests through a hand-driven node (docs/security.md, "Sealed
//! bodies"): the body sealed for the node's key is opened before any worker sees it, the
//! reply is gathered and sealed for the caller's key, and every tampered, truncated, garbage,
//! oversized, misbound or unsigned sealed request is refused with its reason while the node
//! goes on serving. The node's private key is a test unwrapper over the `rsa` crate with a
//! throw-away key (the real node unwraps with OpenSSL through `cocaine-keys`).

use crate::harness;
use crate::native_auth;

use std::sync::Arc;

use bytes::Bytes;
use cocaine_core::auth::seal::{self, Direction, SealError, TestRandom};
use cocaine_core::auth::{PublicKey, Stamp};
use cocaine_core::codec::native::{NativeMessage, Policy};
use cocaine_core::codec::worker::WorkerMessage;
use cocaine_core::node::NodeConfig;
use cocaine_core::sim::Answer;
use cocaine_core::EndpointId;
use harness::*;
use native_auth::*;
use serde_json::Value;

const EP: &str = "tcp://127.0.0.1:9311";
const SINK: &str = "tcp://127.0.0.1:9312";
const CONTROL: &str = "tcp://127.0.0.1:5987";
/// The node's own pair in these tests.
const NODE_PEM: &[u8] = include_bytes!("data/auth/carol3072.pem");
const NODE_KEY: &str = include_str!("data/auth/carol3072.key");
/// The wrapped key's length for the node's 3072-bit key.
const WRAPPED: usize = 384;
/// The app's `max-message`: what a held body and a gathered reply may reach.
const MAX_MESSAGE: usize = 65536;

fn node_public() -> PublicKey {
    PublicKey::from_pem(NODE_PEM).unwrap()
}

/// A node with alice's and bob's keys, the node's key pair (unless `sealing` is false), app
/// `echo` with a native-server `call` (`security` as given) and a native-sink `sink`.
fn node_with(security: &str, sealing: bool) -> (Harness, EndpointId) {
    let mut h = Harness::with_config(NodeConfig {
        control: vec![CONTROL.to_owned()],
        node_key: Some(String::from_utf8(NODE_PEM.to_vec()).unwrap()),
        ..NodeConfig::default()
    });
    if sealing {
        h.node.set_sealing(
            Arc::new(key("node", NODE_KEY)),
            Box::new(TestRandom::new(7)),
        );
    }
    h.pump();
    add_users(&mut h);
    let more = format!(r#", "engine": {{"max-message": {MAX_MESSAGE}}}, "security": {security}"#);
    let ep = deploy_echo(&mut h, EP, Some(SINK), &more);
    (h, ep)
}

fn node() -> (Harness, EndpointId) {
    node_with(r#"{"auth": "required"}"#, true)
}

/// How a test request is sealed: for which key, bound to what.
struct Sealing<'a> {
    node: PublicKey,
    user: &'a str,
    app: &'a str,
    nonce: &'a str,
}

/// `plain` sealed as a client seals it for the node.
fn seal_body(s: &Sealing<'_>, plain: &[u8]) -> Vec<u8> {
    let aad = seal::associated_data(Direction::Request, s.user, s.app, s.nonce.as_bytes());
    seal::seal(&s.node, plain, &aad, &mut TestRandom::new(99)).unwrap()
}

/// The signed, sealed open of `sid` over the wire body `body`.
fn sealed_open(signer: &TestKey, stamp: &Stamp, sid: u64, body: &[u8]) -> Bytes {
    let policy = Policy {
        sealed: true,
        ..Policy::default()
    };
    signed_open_with(signer, stamp, sid, "echo", &policy, body)
}

/// A well-formed sealed call by alice: the nonce, the wire body and the node's replies.
fn sealed_call(
    h: &mut Harness,
    ep: EndpointId,
    sid: u64,
    nonce: &str,
    plain: &[u8],
) -> Vec<NativeMessage> {
    let st = stamp(h, nonce);
    let body = seal_body(&alice_sealing(nonce), plain);
    let open = sealed_open(&alice(), &st, sid, &body);
    call(h, ep, open, sid, &body)
}

fn alice_sealing(nonce: &str) -> Sealing<'_> {
    Sealing {
        node: node_public(),
        user: "alice",
        app: "echo",
        nonce,
    }
}

/// The reply of `sid` as one sealed chunk and its end; the sealed bytes.
fn sealed_reply(replies: &[NativeMessage], sid: u64) -> Vec<u8> {
    match replies {
        [NativeMessage::Chunk { sid: s, data }, NativeMessage::Choke { sid: e }]
            if *s == sid && *e == sid =>
        {
            data.to_vec()
        }
        other => panic!("expected one sealed chunk and the end for sid {sid}, got {other:?}"),
    }
}

fn open_reply(
    opener: &TestKey,
    user: &str,
    nonce: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, SealError> {
    let aad = seal::associated_data(Direction::Reply, user, "echo", nonce.as_bytes());
    seal::open(sealed, &aad, opener, &mut TestRandom::new(5))
}

/// The request chunks workers were handed, in order.
fn worker_bodies(h: &Harness) -> Vec<Bytes> {
    h.spawned
        .iter()
        .flat_map(|w| h.worker(*w).messages())
        .filter_map(|m| match m {
            WorkerMessage::Chunk { data, .. } => Some(data),
            _ => None,
        })
        .collect()
}

fn seal_stats(h: &mut Harness) -> Value {
    keys_reply(h, CONTROL)["sealed"].clone()
}

#[test]
fn a_sealed_call_is_opened_for_the_worker_and_its_reply_sealed_for_the_caller() {
    let (mut h, ep) = node();
    let nonce = "nonce-sealed-0000001";
    let replies = sealed_call(&mut h, ep, 1, nonce, b"top secret");
    // The worker got the plaintext, never the sealed bytes.
    assert_eq!(worker_bodies(&h), vec![b(b"top secret")]);
    let sealed = sealed_reply(&replies, 1);
    assert!(
        !sealed.windows(10).any(|w| w == b"top secret"),
        "the reply is not in the clear"
    );
    assert_eq!(
        open_reply(&alice(), "alice", nonce, &sealed).unwrap(),
        b"top secret"
    );
    // Only alice can read it, and only as the reply to this request.
    assert_eq!(
        open_reply(&bob(), "alice", nonce, &sealed),
        Err(SealError::NotOpened)
    );
    assert_eq!(
        open_reply(&alice(), "alice", "nonce-sealed-0000002", &sealed),
        Err(SealError::NotOpened)
    );
    let aad = seal::associated_data(Direction::Request, "alice", "echo", nonce.as_bytes());
    let as_request = seal::open(&sealed, &aad, &alice(), &mut TestRandom::new(1));
    assert_eq!(as_request, Err(SealError::NotOpened));
    let stats = seal_stats(&mut h);
    assert_eq!(
        (stats["opened"].clone(), stats["replies_sealed"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(keys_reply(&mut h, CONTROL)["stats"]["accepted"], 1);
}

#[test]
fn a_reply_of_many_chunks_is_gathered_and_sealed_as_one() {
    let (mut h, ep) = node();
    h.behaviours.insert(
        "echo".into(),
        Behaviour {
            answer: Answer::Chunks(vec![b(b"one "), b(b"two "), b(b"three")]),
            ..Behaviour::default()
        },
    );
    let nonce = "nonce-gathered-00001";
    let replies = sealed_call(&mut h, ep, 3, nonce, b"x");
    let sealed = sealed_reply(&replies, 3);
    assert_eq!(
        open_reply(&alice(), "alice", nonce, &sealed).unwrap(),
        b"one two three"
    );
}

#[test]
fn an_empty_body_and_an_empty_reply_are_sealed_too() {
    let (mut h, ep) = node();
    let nonce = "nonce-empty-00000001";
    let replies = sealed_call(&mut h, ep, 2, nonce, b"");
    let sealed = sealed_reply(&replies, 2);
    // Alice's key has 2048 bits: the wrapped key, a nonce, a bare tag and their headers.
    assert_eq!(sealed.len(), 2 + 3 + 256 + 2 + 12 + 2 + 16);
    assert_eq!(open_reply(&alice(), "alice", nonce, &sealed).unwrap(), b"");
}

#[test]
fn an_error_reply_goes_out_as_an_error_unsealed() {
    let (mut h, ep) = node();
    h.behaviours.insert(
        "echo".into(),
        Behaviour {
            answer: Answer::Fail(500, "handler failed".into()),
            ..Behaviour::default()
        },
    );
    let replies = sealed_call(&mut h, ep, 5, "nonce-fails-00000001", b"x");
    assert_eq!(refusal(&replies, 5), (500, "handler failed".into()));
}

/// Sends a sealed request whose wire body is `body` (signed by alice over it) and checks
/// it is refused with 400 and `reason` in the message, and no worker saw anything.
fn refused_400(h: &mut Harness, ep: EndpointId, sid: u64, nonce: &str, body: &[u8], reason: &str) {
    let open = sealed_open(&alice(), &stamp(h, nonce), sid, body);
    let replies = call(h, ep, open, sid, body);
    let (code, message) = refusal(&replies, sid);
    assert_eq!(code, 400, "{message}");
    assert!(message.contains(reason), "{message:?} lacks {reason:?}");
    assert!(
        h.invokes.is_empty(),
        "a refused sealed request reached a worker"
    );
}

#[test]
fn every_tampered_part_of_a_sealed_body_is_refused_before_any_worker() {
    let (mut h, ep) = node();
    let nonce = |i: usize| format!("nonce-tamper-{i:08}");
    let good = |n: &str| seal_body(&alice_sealing(n), b"attack at dawn");
    // Where each part lies in [1, bin16 wrapped, bin8 nonce(12), bin8 ct(14 + 16)].
    let wrapped_at = 1 + 1 + 3;
    let nonce_at = wrapped_at + WRAPPED + 2;
    let ct_at = nonce_at + 12 + 2;
    let cases: [(&str, usize); 5] = [
        ("wrapped key, first byte", wrapped_at),
        ("wrapped key, last byte", wrapped_at + WRAPPED - 1),
        ("nonce", nonce_at + 3),
        ("ciphertext", ct_at + 2),
        ("tag", ct_at + 14 + 15),
    ];
    for (i, (what, at)) in cases.into_iter().enumerate() {
        let n = nonce(i);
        let mut body = good(&n);
        assert_eq!(body.len(), ct_at + 30, "layout");
        body[at] ^= 0x01;
        eprintln!("tampered: {what}");
        refused_400(&mut h, ep, 10 + i as u64, &n, &body, "does not open");
    }
    assert_eq!(seal_stats(&mut h)["not_opened"], 5);
    // The untouched body still opens: the node keeps serving.
    let n = nonce(99);
    let replies = sealed_call(&mut h, ep, 99, &n, b"attack at dawn");
    assert_eq!(
        open_reply(&alice(), "alice", &n, &sealed_reply(&replies, 99)).unwrap(),
        b"attack at dawn"
    );
}

#[test]
fn a_body_sealed_for_another_key_or_bound_to_another_request_does_not_open() {
    let (mut h, ep) = node();
    let bob_key = PublicKey::from_pem(BOB_PEM).unwrap();
    let cases: Vec<(&str, Sealing<'_>)> = vec![
        (
            "another node's key",
            Sealing {
                node: bob_key,
                ..alice_sealing("nonce-bound-00000001")
            },
        ),
        (
            "another user",
            Sealing {
                user: "bob",
                ..alice_sealing("nonce-bound-00000002")
            },
        ),
        (
            "another app",
            Sealing {
                app: "other",
                ..alice_sealing("nonce-bound-00000003")
            },
        ),
        (
            "another nonce",
            Sealing {
                nonce: "nonce-bound-elsewhere",
                ..alice_sealing("nonce-bound-00000004")
            },
        ),
    ];
    let nonces = [
        "nonce-bound-00000001",
        "nonce-bound-00000002",
        "nonce-bound-00000003",
        "nonce-bound-00000004",
    ];
    for (i, ((what, sealing), n)) in cases.iter().zip(nonces).enumerate() {
        eprintln!("bound to {what}");
        let body = seal_body(sealing, b"secret");
        refused_400(&mut h, ep, 20 + i as u64, n, &body, "does not open");
    }
    assert_eq!(seal_stats(&mut h)["not_opened"], 4);
}

#[test]
fn another_users_sealed_body_cannot_be_replayed_under_their_own_signature() {
    // Bob captured alice's sealed body; signing it himself would get its reply sealed for
    // him, so the body is bound to alice and does not open for bob's request.
    let (mut h, ep) = node();
    let n = "nonce-stolen-0000001";
    let body = seal_body(&alice_sealing(n), b"alice's secret");
    let open = sealed_open(&bob(), &stamp(&h, n), 30, &body);
    let (code, message) = refusal(&call(&mut h, ep, open, 30, &body), 30);
    assert_eq!(code, 400, "{message}");
    assert!(h.invokes.is_empty());
}

#[test]
fn garbage_truncated_and_malformed_sealed_bodies_are_400_with_a_reason() {
    let (mut h, ep) = node();
    let n = |i: usize| format!("nonce-garbage-{i:07}");
    let good = seal_body(&alice_sealing(&n(0)), b"payload");
    let mut extra = good.clone();
    extra.push(0xc0);
    let mut version2 = good.clone();
    version2[1] = 2;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "not a sealed payload"),
        (b"plain text, not sealed".to_vec(), "not a sealed payload"),
        (good[..good.len() / 2].to_vec(), "not a sealed payload"),
        (good[..good.len() - 1].to_vec(), "not a sealed payload"),
        (extra, "not a sealed payload"),
        (version2, "version 2"),
        (
            rmp_array(&[&[0u8; 100], &[0; 12], &[0; 16]]),
            "wrapped key of 100 bytes",
        ),
        (
            rmp_array(&[&[0u8; 600], &[0; 12], &[0; 16]]),
            "wrapped key of 600 bytes",
        ),
        (
            rmp_array(&[&[0u8; 256], &[0; 11], &[0; 16]]),
            "nonce of 11 bytes",
        ),
        (
            rmp_array(&[&[0u8; 256], &[0; 12], &[0; 15]]),
            "shorter than its 16-byte tag",
        ),
    ];
    for (i, (body, reason)) in cases.iter().enumerate() {
        let nonce = n(i + 1);
        refused_400(&mut h, ep, 40 + i as u64, &nonce, body, reason);
    }
    assert_eq!(seal_stats(&mut h)["malformed"], cases.len() as u64);
    // And a valid one afterwards.
    let replies = sealed_call(&mut h, ep, 60, &n(60), b"still here");
    assert_eq!(
        open_reply(&alice(), "alice", &n(60), &sealed_reply(&replies, 60)).unwrap(),
        b"still here"
    );
}

/// `[1, bin, bin, bin]` with the given binaries.
fn rmp_array(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![0x94, 0x01];
    for part in parts {
        rmp::encode::write_bin(&mut out, part).unwrap();
    }
    out
}

#[test]
fn a_sealed_body_changed_after_signing_is_a_401_for_its_digest() {
    let (mut h, ep) = node();
    let n = "nonce-after-00000001";
    let body = seal_body(&alice_sealing(n), b"x");
    let open = sealed_open(&alice(), &stamp(&h, n), 70, &body);
    let mut changed = body.clone();
    *changed.last_mut().unwrap() ^= 1;
    let (code, message) = refusal(&call(&mut h, ep, open, 70, &changed), 70);
    assert_eq!(
        (code, message.as_str()),
        (401, "the body does not match its signed digest")
    );
    assert!(h.invokes.is_empty());
}

#[test]
fn the_sealed_flag_is_signed_and_cannot_be_stripped_or_added() {
    let (mut h, ep) = node();
    let n = "nonce-strip-00000001";
    let body = seal_body(&alice_sealing(n), b"x");
    let open = sealed_open(&alice(), &stamp(&h, n), 71, &body);
    // `sealed` is the policy's last entry: `true` (0xc3) to `false` (0xc2) in place.
    let mut stripped = open.to_vec();
    let at = stripped
        .windows(7)
        .position(|w| w == b"\xa6sealed")
        .unwrap()
        + 7;
    assert_eq!(stripped[at], 0xc3);
    stripped[at] = 0xc2;
    let (code, message) = refusal(&call(&mut h, ep, Bytes::from(stripped), 71, &body), 71);
    assert_eq!(code, 401, "{message}");
    assert!(message.starts_with("bad signature"), "{message}");
    assert!(h.invokes.is_empty());
}

#[test]
fn an_unsigned_sealed_request_is_401_and_so_is_one_to_a_task_that_checks_nothing() {
    let (mut h, ep) = node_with(r#"{"auth": "optional"}"#, true);
    let policy = Policy {
        sealed: true,
        ..Policy::default()
    };
    let body = seal_body(&alice_sealing("nonce-unsigned-00001"), b"x");
    let open = cocaine_core::codec::native::encode_open(80, "", &policy, None);
    let (code, message) = refusal(&call(&mut h, ep, open, 80, &body), 80);
    assert_eq!(code, 401);
    assert!(
        message.starts_with("a sealed request must be signed"),
        "{message}"
    );

    let (mut h2, ep2) = node_with(r#"{"auth": "off"}"#, true);
    let n = "nonce-off-0000000001";
    let body = seal_body(&alice_sealing(n), b"x");
    let open = sealed_open(&alice(), &stamp(&h2, n), 81, &body);
    let (code, _) = refusal(&call(&mut h2, ep2, open, 81, &body), 81);
    assert_eq!(code, 401);
    assert!(h.invokes.is_empty() && h2.invokes.is_empty());
    assert_eq!(seal_stats(&mut h)["unsigned"], 1);
}

#[test]
fn a_node_without_a_key_pair_refuses_sealed_requests_and_serves_the_rest() {
    let (mut h, ep) = node_with(r#"{"auth": "required"}"#, false);
    let n = "nonce-nokey-00000001";
    let body = seal_body(&alice_sealing(n), b"x");
    let open = sealed_open(&alice(), &stamp(&h, n), 90, &body);
    let (code, message) = refusal(&call(&mut h, ep, open, 90, &body), 90);
    assert_eq!(code, 400);
    assert!(message.contains("no key pair"), "{message}");
    assert!(h.invokes.is_empty());
    assert_eq!(seal_stats(&mut h)["no_node_key"], 1);
}

#[test]
fn a_reply_over_max_message_is_a_500_and_the_job_is_cancelled() {
    let (mut h, ep) = node();
    let big = Bytes::from(vec![7u8; MAX_MESSAGE / 2 + 1]);
    h.behaviours.insert(
        "echo".into(),
        Behaviour {
            answer: Answer::Chunks(vec![big.clone(), big]),
            ..Behaviour::default()
        },
    );
    let replies = sealed_call(&mut h, ep, 95, "nonce-toolarge-00001", b"x");
    let (code, message) = refusal(&replies, 95);
    assert_eq!(code, 500);
    assert!(message.contains("too large to seal"), "{message}");
    assert_eq!(seal_stats(&mut h)["replies_failed"], 1);
}

#[test]
fn a_native_sink_refuses_sealed_requests() {
    let (mut h, _) = node();
    let sink = h.endpoint(SINK);
    let n = "nonce-sink-000000001";
    let body = seal_body(&alice_sealing(n), b"x");
    let open = sealed_open(&alice(), &stamp(&h, n), 1, &body);
    h.receive(sink, vec![open, chunk(1, &body), choke(1)]);
    assert!(
        h.invokes.is_empty(),
        "a sealed request reached a sink's worker"
    );
}

#[test]
fn plain_and_sealed_requests_mix_on_one_connection() {
    let (mut h, ep) = node_with(r#"{"auth": "optional"}"#, true);
    let plain = call(&mut h, ep, open(1, ""), 1, b"plain");
    assert_eq!(
        plain,
        vec![
            NativeMessage::Chunk {
                sid: 1,
                data: b(b"plain")
            },
            NativeMessage::Choke { sid: 1 }
        ]
    );
    let n = "nonce-mixed-00000001";
    let replies = sealed_call(&mut h, ep, 2, n, b"sealed");
    assert_eq!(
        open_reply(&alice(), "alice", n, &sealed_reply(&replies, 2)).unwrap(),
        b"sealed"
    );
}
