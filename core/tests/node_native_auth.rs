//! Signed native-protocol requests through a hand-driven node (docs/security.md): the task's
//! `security` section (`auth`, `users`), every field of a signed open tampered with, replays,
//! expired and future-dated requests, unknown and not-allowed users, the body checked against
//! its signed digest before any worker sees the request, and what a handler sees (`user` in
//! the job's meta). Every refusal is proven to reach no worker.

use crate::harness;
use crate::native_auth;

use std::time::Duration;

use bytes::Bytes;
use cocaine_core::auth::{body_digest, sign_open, Invoke, Stamp};
use cocaine_core::codec::native::{self, Auth, NativeMessage, Policy};
use cocaine_core::manifest::Manifest;
use cocaine_core::node::{Input, NodeConfig};
use cocaine_core::EndpointId;
use harness::*;
use native_auth::*;
use serde_json::Value;

const EP: &str = "tcp://127.0.0.1:9301";
const CONTROL: &str = "tcp://127.0.0.1:5997";

/// A node with the control endpoint, alice's and bob's keys, and app `echo` whose native-server
/// task `call` has `security` (JSON, or nothing).
fn node(section: Option<&str>) -> (Harness, EndpointId) {
    let mut h = Harness::with_config(NodeConfig {
        control: vec![CONTROL.to_owned()],
        ..NodeConfig::default()
    });
    h.pump();
    add_users(&mut h);
    let ep = deploy_echo(&mut h, EP, None, &security(section));
    (h, ep)
}

/// The signed open of `sid` with `body`, by `signer`, for app `app`.
fn signed_open(signer: &TestKey, stamp: &Stamp, sid: u64, app: &str, body: &[u8]) -> Bytes {
    signed_open_with(signer, stamp, sid, app, &Policy::default(), body)
}

fn auth_stats(h: &mut Harness) -> Value {
    keys_reply(h, CONTROL)["stats"].clone()
}

#[test]
fn a_signed_call_runs_and_the_handler_sees_its_user() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    let open = signed_open(
        &alice(),
        &stamp(&h, "nonce-signed-000001"),
        1,
        "echo",
        b"hi",
    );
    let replies = call(&mut h, ep, open, 1, b"hi");
    assert_eq!(
        replies,
        vec![
            NativeMessage::Chunk {
                sid: 1,
                data: b(b"hi")
            },
            NativeMessage::Choke { sid: 1 }
        ]
    );
    assert_eq!(invoked_users(&h), vec![Some("alice".to_owned())]);
    assert_eq!(auth_stats(&mut h)["accepted"], 1);
}

#[test]
fn a_signed_stream_is_held_until_its_end() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    let body: [&[u8]; 3] = [b"one ", b"two ", b"three"];
    let policy = Policy::default();
    let invoke = Invoke {
        sid: 4,
        app: "echo",
        event: "",
        policy: &policy,
        body: body_digest(body),
    };
    let open = sign_open(&invoke, &stamp(&h, "nonce-stream-000001"), &alice()).unwrap();
    h.receive(ep, vec![b(b"client"), open]);
    for piece in body {
        h.receive(ep, vec![b(b"client"), chunk(4, piece)]);
    }
    assert!(h.invokes.is_empty(), "no job before the body's end");
    h.fresh();
    h.receive(ep, vec![b(b"client"), choke(4)]);
    let replies = native_replies(&h.fresh(), ep, b"client");
    assert_eq!(replies.last(), Some(&NativeMessage::Choke { sid: 4 }));
    let echoed: Vec<u8> = replies
        .iter()
        .filter_map(|m| match m {
            NativeMessage::Chunk { data, .. } => Some(data.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(echoed, b"one two three");
    assert_eq!(h.invokes.len(), 1);
}

/// Re-encodes a signed open with one field changed, keeping the signature.
fn tampered(
    frame: &Bytes,
    change: impl FnOnce(&mut u64, &mut String, &mut Policy, &mut Auth),
) -> Bytes {
    let NativeMessage::Open {
        mut sid,
        mut event,
        mut policy,
        auth: Some(mut auth),
    } = NativeMessage::decode(frame, usize::MAX).unwrap()
    else {
        panic!("not a signed open");
    };
    change(&mut sid, &mut event, &mut policy, &mut auth);
    native::encode_open(sid, &event, &policy, Some(&auth))
}

#[test]
fn every_field_tampered_with_is_refused_before_any_worker() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    let good = signed_open(&alice(), &stamp(&h, "nonce-tamper-000001"), 1, "echo", b"x");
    type Change = Box<dyn Fn(&mut u64, &mut String, &mut Policy, &mut Auth)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        ("sid", Box::new(|s, _, _, _| *s = 2), "bad signature"),
        (
            "event",
            Box::new(|_, e, _, _| *e = "other".into()),
            "bad signature",
        ),
        (
            "urgent",
            Box::new(|_, _, p, _| p.urgent = true),
            "bad signature",
        ),
        (
            "timeout",
            Box::new(|_, _, p, _| p.timeout_ms = Some(9)),
            "bad signature",
        ),
        ("ts", Box::new(|_, _, _, a| a.ts += 1), "bad signature"),
        (
            "nonce",
            Box::new(|_, _, _, a| a.nonce = b(b"nonce-tamper-000002")),
            "bad signature",
        ),
        (
            "body",
            Box::new(|_, _, _, a| a.body = Some(b(&[0; 32]))),
            "bad signature",
        ),
        (
            "user",
            Box::new(|_, _, _, a| a.user = "bob".into()),
            "bad signature",
        ),
        (
            "unknown user",
            Box::new(|_, _, _, a| a.user = "carol".into()),
            "unknown user",
        ),
        (
            "app",
            Box::new(|_, _, _, a| a.app = Some("other".into())),
            "signed for app",
        ),
        (
            "no app",
            Box::new(|_, _, _, a| a.app = None),
            "must name its app",
        ),
        (
            "no body",
            Box::new(|_, _, _, a| a.body = None),
            "must name its app",
        ),
        (
            "sig",
            Box::new(|_, _, _, a| {
                let mut sig = a.sig.to_vec();
                sig[10] ^= 1;
                a.sig = Bytes::from(sig);
            }),
            "bad signature",
        ),
    ];
    for (what, change, expected) in cases {
        let frame = tampered(&good, change);
        let sid = NativeMessage::decode(&frame, usize::MAX)
            .map(|m| match m {
                NativeMessage::Open { sid, .. } => sid,
                _ => 0,
            })
            .unwrap();
        let (code, message) = refusal(&call(&mut h, ep, frame, sid, b"x"), sid);
        assert_eq!(code, 401, "{what}: {message}");
        assert!(message.contains(expected), "{what}: {message}");
    }
    assert!(h.invokes.is_empty(), "a worker saw a refused request");
    // The untouched request still goes through: no refusal burnt its nonce.
    let replies = call(&mut h, ep, good, 1, b"x");
    assert_eq!(replies.last(), Some(&NativeMessage::Choke { sid: 1 }));
    let stats = auth_stats(&mut h);
    assert_eq!(stats["bad_signature"], 9, "{stats}");
    assert_eq!(
        (
            stats["unknown_user"].clone(),
            stats["wrong_app"].clone(),
            stats["incomplete"].clone()
        ),
        (1.into(), 1.into(), 2.into()),
        "{stats}"
    );
}

#[test]
fn a_body_other_than_the_signed_one_is_refused_at_its_end() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    let open = signed_open(
        &alice(),
        &stamp(&h, "nonce-body-0000001"),
        1,
        "echo",
        b"pay 10",
    );
    let (code, message) = refusal(&call(&mut h, ep, open, 1, b"pay 1000"), 1);
    assert_eq!(
        (code, message.as_str()),
        (401, "the body does not match its signed digest")
    );
    assert!(h.invokes.is_empty());
    assert_eq!(auth_stats(&mut h)["bad_body"], 1);
}

#[test]
fn replayed_expired_and_future_dated_requests_are_refused() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    let open = signed_open(&alice(), &stamp(&h, "nonce-replay-000001"), 1, "echo", b"x");
    let first = call(&mut h, ep, open.clone(), 1, b"x");
    assert_eq!(first.last(), Some(&NativeMessage::Choke { sid: 1 }));
    let (code, message) = refusal(&call(&mut h, ep, open, 1, b"x"), 1);
    assert_eq!(code, 401);
    assert!(message.starts_with("replayed"), "{message}");

    let now = h.now.unix_ms();
    let old = Stamp {
        ts: now - 30_001,
        nonce: "nonce-expired-00001".into(),
    };
    let (code, message) = refusal(
        &call(
            &mut h,
            ep,
            signed_open(&alice(), &old, 2, "echo", b"x"),
            2,
            b"x",
        ),
        2,
    );
    assert_eq!(code, 401);
    assert!(
        message.starts_with("expired: signed 30001 ms ago"),
        "{message}"
    );
    let ahead = Stamp {
        ts: now + 30_001,
        nonce: "nonce-future-000001".into(),
    };
    let (code, message) = refusal(
        &call(
            &mut h,
            ep,
            signed_open(&alice(), &ahead, 3, "echo", b"x"),
            3,
            b"x",
        ),
        3,
    );
    assert_eq!(code, 401);
    assert!(message.starts_with("from the future"), "{message}");
    // At the window's edge it is still fresh.
    let edge = Stamp {
        ts: now - 30_000,
        nonce: "nonce-edge-00000001".into(),
    };
    let replies = call(
        &mut h,
        ep,
        signed_open(&alice(), &edge, 4, "echo", b"x"),
        4,
        b"x",
    );
    assert_eq!(replies.last(), Some(&NativeMessage::Choke { sid: 4 }));
    assert_eq!(h.invokes.len(), 2);
    let stats = auth_stats(&mut h);
    assert_eq!(
        (
            stats["replayed"].clone(),
            stats["expired"].clone(),
            stats["future"].clone()
        ),
        (1.into(), 1.into(), 1.into())
    );
}

#[test]
fn a_task_window_narrower_than_the_node_s_applies() {
    let (mut h, ep) = node(Some(r#"{"auth": "required", "window": 5}"#));
    let old = Stamp {
        ts: h.now.unix_ms() - 5_001,
        nonce: "nonce-window-000001".into(),
    };
    let (code, message) = refusal(
        &call(
            &mut h,
            ep,
            signed_open(&alice(), &old, 1, "echo", b"x"),
            1,
            b"x",
        ),
        1,
    );
    assert_eq!(code, 401);
    assert!(message.contains("the window is 5000 ms"), "{message}");
    assert!(h.invokes.is_empty());
}

#[test]
fn users_limits_who_may_call_403_for_the_others() {
    let (mut h, ep) = node(Some(r#"{"users": ["alice"]}"#));
    let open = signed_open(&bob(), &stamp(&h, "nonce-users-0000001"), 1, "echo", b"x");
    let (code, message) = refusal(&call(&mut h, ep, open, 1, b"x"), 1);
    assert_eq!(
        (code, message.as_str()),
        (403, "user \"bob\" may not call this task")
    );
    let (code, _) = refusal(&call(&mut h, ep, open_unsigned(2), 2, b"x"), 2);
    assert_eq!(code, 401, "users implies auth required");
    assert!(h.invokes.is_empty());
    let open = signed_open(&alice(), &stamp(&h, "nonce-users-0000002"), 3, "echo", b"x");
    let replies = call(&mut h, ep, open, 3, b"x");
    assert_eq!(replies.last(), Some(&NativeMessage::Choke { sid: 3 }));
    assert_eq!(invoked_users(&h), vec![Some("alice".to_owned())]);
    assert_eq!(auth_stats(&mut h)["not_allowed"], 1);
}

fn open_unsigned(sid: u64) -> Bytes {
    open(sid, "")
}

#[test]
fn required_refuses_unsigned_optional_passes_it_without_a_user() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    let (code, message) = refusal(&call(&mut h, ep, open_unsigned(1), 1, b"x"), 1);
    assert_eq!(
        (code, message.as_str()),
        (401, "this endpoint requires a signed request")
    );
    assert!(h.invokes.is_empty());
    assert_eq!(auth_stats(&mut h)["unsigned"], 1);

    // No security section: optional. Unsigned passes with no user; signed is checked.
    let (mut h, ep) = node(None);
    let replies = call(&mut h, ep, open_unsigned(1), 1, b"x");
    assert_eq!(replies.last(), Some(&NativeMessage::Choke { sid: 1 }));
    assert_eq!(invoked_users(&h), vec![None]);
    let open = signed_open(&alice(), &stamp(&h, "nonce-optional-0001"), 2, "echo", b"x");
    assert_eq!(
        call(&mut h, ep, open, 2, b"x").last(),
        Some(&NativeMessage::Choke { sid: 2 })
    );
    assert_eq!(invoked_users(&h), vec![None, Some("alice".to_owned())]);
    let forged = signed_open(&bob(), &stamp(&h, "nonce-optional-0002"), 3, "echo", b"x");
    let forged = tampered(&forged, |_, _, _, a| a.user = "alice".into());
    let (code, _) = refusal(&call(&mut h, ep, forged, 3, b"x"), 3);
    assert_eq!(code, 401);
    assert_eq!(h.invokes.len(), 2);
}

#[test]
fn off_ignores_signatures_and_passes_no_user() {
    let (mut h, ep) = node(Some(r#"{"auth": "off"}"#));
    let forged = signed_open(&bob(), &stamp(&h, "nonce-off-000000001"), 1, "echo", b"x");
    let forged = tampered(&forged, |_, _, _, a| a.user = "alice".into());
    let replies = call(&mut h, ep, forged, 1, b"x");
    assert_eq!(replies.last(), Some(&NativeMessage::Choke { sid: 1 }));
    assert_eq!(
        invoked_users(&h),
        vec![None],
        "an unchecked signature names no user"
    );
}

#[test]
fn a_key_removed_while_the_node_runs_is_refused_and_others_still_served() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    h.input(Input::KeyRemoved {
        user: "alice".into(),
    });
    let open = signed_open(&alice(), &stamp(&h, "nonce-removed-00001"), 1, "echo", b"x");
    let (code, message) = refusal(&call(&mut h, ep, open, 1, b"x"), 1);
    assert_eq!(code, 401);
    assert!(message.contains("unknown user \"alice\""), "{message}");
    let open = signed_open(&bob(), &stamp(&h, "nonce-removed-00002"), 2, "echo", b"x");
    assert_eq!(
        call(&mut h, ep, open, 2, b"x").last(),
        Some(&NativeMessage::Choke { sid: 2 })
    );
    assert_eq!(invoked_users(&h), vec![Some("bob".to_owned())]);
}

#[test]
fn a_held_request_can_be_cancelled_and_is_bounded_by_max_message() {
    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    let open = signed_open(&alice(), &stamp(&h, "nonce-cancel-000001"), 1, "echo", b"x");
    h.receive(ep, vec![b(b"client"), open, chunk(1, b"x")]);
    h.fresh();
    h.receive(ep, vec![b(b"client"), cancel(1)]);
    assert_eq!(
        native_replies(&h.fresh(), ep, b"client"),
        vec![NativeMessage::Error {
            sid: 1,
            code: 499,
            message: "cancelled".into()
        }]
    );
    // The sid is free again, and a held request counts as open: a second open of it is 400.
    let open = signed_open(&alice(), &stamp(&h, "nonce-cancel-000002"), 1, "echo", b"x");
    h.receive(ep, vec![b(b"client"), open.clone()]);
    h.fresh();
    h.receive(ep, vec![b(b"client"), open]);
    let (code, message) = refusal(&native_replies(&h.fresh(), ep, b"client"), 1);
    assert_eq!(code, 400, "{message}");
    assert!(h.invokes.is_empty());

    let (mut h, ep) = node(Some(r#"{"auth": "required"}"#));
    // The engine's default max-message: a held body may not grow past it.
    let limit = 64 * 1024 * 1024;
    let big = vec![0u8; 1024 * 1024];
    let open = signed_open(&alice(), &stamp(&h, "nonce-large-0000001"), 1, "echo", b"x");
    h.receive(ep, vec![b(b"client"), open]);
    h.fresh();
    let mut sent = 0;
    let mut replies = Vec::new();
    while replies.is_empty() && sent <= limit {
        h.receive(ep, vec![b(b"client"), chunk(1, &big)]);
        sent += big.len();
        replies = native_replies(&h.fresh(), ep, b"client");
    }
    let (code, message) = refusal(&replies, 1);
    assert_eq!(code, 413, "{message}");
    assert!(sent > limit - big.len());
    assert!(h.invokes.is_empty());
}

#[test]
fn the_security_section_reads_per_task_and_app_wide() {
    let parse = |json: &str| Manifest::parse("a", json.as_bytes(), None);
    let m = parse(
        r#"{"type": "python", "args": "local:///a", "security": {"auth": "required"},
            "tasks": {"open": {"type": "native-server", "endpoint": "tcp://127.0.0.1:9401",
                               "security": {"auth": "off"}},
                      "closed": {"type": "native-server", "endpoint": "tcp://127.0.0.1:9402"},
                      "sink": {"type": "native-sink", "endpoint": "tcp://127.0.0.1:9403",
                               "security": {"users": ["alice", "bob"]}}}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let security = |task: &str| match &m.task(task).unwrap().kind {
        cocaine_core::manifest::TaskKind::NativeServer { security, .. }
        | cocaine_core::manifest::TaskKind::NativeSink { security, .. } => {
            security.clone().unwrap()
        }
        other => panic!("{other:?}"),
    };
    use cocaine_core::auth::AuthMode;
    assert_eq!(security("open").auth, AuthMode::Off);
    assert_eq!(security("closed").auth, AuthMode::Required);
    assert!(security("closed").sign);
    assert_eq!(security("sink").auth, AuthMode::Required);
    assert_eq!(
        security("sink").users,
        Some(vec!["alice".to_owned(), "bob".to_owned()])
    );

    let bad = [
        (r#"{"auth": "maybe"}"#, "security.auth"),
        (
            r#"{"auth": "optional", "users": ["a"]}"#,
            "\"users\" needs \"auth\": \"required\"",
        ),
        (r#"{"users": ["../x"]}"#, "security.users[0]"),
        (r#"{"users": "alice"}"#, "an array of strings"),
        (r#"{"sign": true, "auth": "off"}"#, "\"sign\": true needs"),
        (r#"{"user": ["a"]}"#, "users"),
    ];
    for (section, expected) in bad {
        let json = format!(
            r#"{{"type": "python", "args": "local:///a", "security": {section},
                "tasks": {{"t": {{"type": "native-server", "endpoint": "tcp://127.0.0.1:9404"}}}}}}"#
        );
        let e = parse(&json).expect_err(section).to_string();
        assert!(e.contains(expected), "{section}: {e}");
    }
}

#[test]
fn an_app_naming_its_own_key_folder_is_refused_at_start() {
    let mut h = Harness::new();
    h.deploy(
        "echo",
        r#"{"type": "python", "args": "local:///srv/echo", "security": {"keys": "/etc/keys"},
            "tasks": {"call": {"type": "native-server", "endpoint": "tcp://127.0.0.1:9405"}}}"#,
    );
    let logged = logs(&h.fresh());
    assert!(
        logged
            .iter()
            .any(|(_, m)| m.contains("a key folder per app is not supported")),
        "{logged:?}"
    );
    assert!(h.binds.is_empty());
}

#[test]
fn a_signed_native_sink_request_publishes_only_when_it_verifies() {
    let mut h = Harness::new();
    for (user, pem) in [("alice", ALICE_PEM), ("bob", BOB_PEM)] {
        h.input(Input::KeySet {
            user: user.into(),
            pem: Bytes::from_static(pem),
        });
    }
    h.deploy(
        "echo",
        r#"{"type": "python", "args": "local:///srv/echo",
            "tasks": {"sink": {"type": "native-sink", "endpoint": "tcp://127.0.0.1:9406",
                               "security": {"users": ["alice"]}}}}"#,
    );
    let ep = h.endpoint("tcp://127.0.0.1:9406");
    h.fresh();
    let send = |h: &mut Harness, open: Bytes, body: &[u8]| {
        h.receive(ep, vec![open, chunk(1, body), choke(1)]);
    };
    send(&mut h, open_unsigned(1), b"x");
    let forged = signed_open(&alice(), &stamp(&h, "nonce-sink-00000001"), 1, "echo", b"x");
    send(&mut h, forged, b"y");
    let bob_open = signed_open(&bob(), &stamp(&h, "nonce-sink-00000002"), 1, "echo", b"x");
    send(&mut h, bob_open, b"x");
    assert!(h.invokes.is_empty());
    let refused = logs(&h.fresh());
    for expected in [
        "401 this endpoint requires",
        "401 the body does not match",
        "403 user \"bob\"",
    ] {
        assert!(
            refused.iter().any(|(_, m)| m.contains(expected)),
            "{expected}: {refused:?}"
        );
    }
    let good = signed_open(&alice(), &stamp(&h, "nonce-sink-00000003"), 1, "echo", b"x");
    send(&mut h, good, b"x");
    h.advance(Duration::from_millis(10));
    assert_eq!(invoked_users(&h), vec![Some("alice".to_owned())]);
}
