//! Signed control requests through a hand-driven node: the control auth modes, keys added,
//! replaced and removed while the node runs (`Input::KeySet`/`KeyRemoved`), the `keys`
//! listing and its counters, and a refused request changing nothing.

use crate::harness;

use std::time::Duration;

use bytes::Bytes;
use cocaine_core::node::auth::{is_local_address, AuthMode};
use cocaine_core::node::{Input, NodeConfig};
use cocaine_core::EndpointId;
use harness::*;
use rsa::pkcs8::DecodePrivateKey;
use rsa::pss::Pss;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const CONTROL: &str = "tcp://127.0.0.1:5998";
const ALICE_PEM: &[u8] = include_bytes!("data/auth/alice.pem");
const ALICE_KEY: &str = include_str!("data/auth/alice.key");
const BOB_PEM: &[u8] = include_bytes!("data/auth/bob.pem");

fn node(mode: Option<AuthMode>) -> (Harness, EndpointId) {
    let mut h = Harness::with_config(NodeConfig {
        control: vec![CONTROL.to_owned()],
        control_auth: mode,
        ..NodeConfig::default()
    });
    h.pump();
    let control = h.endpoint(CONTROL);
    h.input(Input::KeySet {
        user: "alice".into(),
        pem: Bytes::from_static(ALICE_PEM),
    });
    (h, control)
}

fn now_ms(h: &Harness) -> u64 {
    h.now.unix_ms()
}

/// A signed `list` as a client makes it: JSON with user, ts, nonce; the signature frame last.
fn signed_list(user: &str, ts: u64, nonce: &str) -> Vec<Bytes> {
    let json =
        json!({"version": 1, "action": "list", "user": user, "ts": ts, "nonce": nonce}).to_string();
    let key = RsaPrivateKey::from_pkcs8_pem(ALICE_KEY).unwrap();
    let sig = key
        .sign_with_rng(
            &mut rsa::rand_core::OsRng,
            Pss::new_with_salt::<Sha256>(32),
            &Sha256::digest(json.as_bytes()),
        )
        .unwrap();
    vec![b(b"op"), Bytes::new(), Bytes::from(json), Bytes::from(sig)]
}

fn ask(h: &mut Harness, control: EndpointId, frames: Vec<Bytes>) -> Value {
    h.fresh();
    h.receive(control, frames);
    let replies = sends(&h.fresh(), control);
    assert_eq!(replies.len(), 1, "one reply per request: {replies:?}");
    serde_json::from_slice(&replies[0][2]).expect("the reply is JSON")
}

fn unsigned(action: &str) -> Vec<Bytes> {
    let json = json!({"version": 1, "action": action}).to_string();
    vec![b(b"op"), Bytes::new(), Bytes::from(json)]
}

fn code(reply: &Value) -> u64 {
    reply["error"]["code"].as_u64().unwrap_or(200)
}

fn message(reply: &Value) -> String {
    reply["error"]["message"].as_str().unwrap_or("").to_owned()
}

#[test]
fn the_default_mode_follows_the_control_addresses() {
    for local in [
        "tcp://127.0.0.1:1",
        "tcp://localhost:2",
        "tcp://[::1]:3",
        "ipc:///tmp/x",
        "inproc://c",
    ] {
        assert!(is_local_address(local), "{local}");
    }
    for open in [
        "tcp://*:1",
        "tcp://0.0.0.0:1",
        "tcp://10.0.0.1:1",
        "tcp://eth0:1",
        "udp://x",
    ] {
        assert!(!is_local_address(open), "{open}");
    }
    assert_eq!(
        AuthMode::default_for(["tcp://127.0.0.1:1", "ipc:///x"]),
        AuthMode::Optional
    );
    assert_eq!(
        AuthMode::default_for(["tcp://127.0.0.1:1", "tcp://*:2"]),
        AuthMode::Required
    );
    assert_eq!(AuthMode::parse("required"), Some(AuthMode::Required));
    assert_eq!(AuthMode::parse("Required"), None);
}

#[test]
fn optional_passes_unsigned_and_checks_signed() {
    let (mut h, control) = node(None);
    assert_eq!(code(&ask(&mut h, control, unsigned("list"))), 200);
    let ts = now_ms(&h);
    let frames = signed_list("alice", ts, "nonce-optional-0001");
    assert_eq!(code(&ask(&mut h, control, frames.clone())), 200);
    let replay = ask(&mut h, control, frames);
    assert_eq!(code(&replay), 401);
    assert!(message(&replay).contains("replayed"), "{replay}");
    let mallory = ask(
        &mut h,
        control,
        signed_list("mallory", ts, "nonce-optional-0002"),
    );
    assert_eq!(code(&mallory), 401);
    assert!(message(&mallory).contains("unknown user"), "{mallory}");
}

#[test]
fn required_refuses_unsigned_expired_future_and_tampered() {
    let (mut h, control) = node(Some(AuthMode::Required));
    let reply = ask(&mut h, control, unsigned("list"));
    assert_eq!(code(&reply), 401);
    assert!(message(&reply).contains("requires a signed request"));
    let ts = now_ms(&h);
    let old = ask(
        &mut h,
        control,
        signed_list("alice", ts - 30_001, "nonce-required-0001"),
    );
    assert!(message(&old).starts_with("expired"), "{old}");
    let ahead = ask(
        &mut h,
        control,
        signed_list("alice", ts + 30_001, "nonce-required-0002"),
    );
    assert!(message(&ahead).starts_with("from the future"), "{ahead}");
    let mut tampered = signed_list("alice", ts, "nonce-required-0003");
    tampered[2] = Bytes::from(
        String::from_utf8(tampered[2].to_vec())
            .unwrap()
            .replace("list", "info"),
    );
    let reply = ask(&mut h, control, tampered);
    assert!(message(&reply).starts_with("bad signature"), "{reply}");
    // The real one, after all that, is served.
    let ok = ask(
        &mut h,
        control,
        signed_list("alice", ts, "nonce-required-0003"),
    );
    assert_eq!(code(&ok), 200, "{ok}");
    // The counters, in the `keys` listing (itself signed).
    let keys = ask(&mut h, control, {
        let json = json!({"version": 1, "action": "keys", "user": "alice", "ts": ts, "nonce": "nonce-required-0004"}).to_string();
        let key = RsaPrivateKey::from_pkcs8_pem(ALICE_KEY).unwrap();
        let sig = key
            .sign_with_rng(
                &mut rsa::rand_core::OsRng,
                Pss::new_with_salt::<Sha256>(32),
                &Sha256::digest(json.as_bytes()),
            )
            .unwrap();
        vec![b(b"op"), Bytes::new(), Bytes::from(json), Bytes::from(sig)]
    });
    let value = &keys["ok"];
    assert_eq!(value["control_auth"], "required", "{keys}");
    assert_eq!(value["users"][0]["user"], "alice");
    assert!(value["users"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("SHA256:"));
    let stats = &value["stats"];
    assert_eq!(
        (
            stats["accepted"].as_u64(),
            stats["unsigned"].as_u64(),
            stats["expired"].as_u64(),
            stats["future"].as_u64(),
            stats["bad_signature"].as_u64()
        ),
        (Some(2), Some(1), Some(1), Some(1), Some(1)),
        "{keys}"
    );
}

#[test]
fn a_key_removed_or_replaced_while_running_takes_effect_at_once() {
    let (mut h, control) = node(Some(AuthMode::Required));
    let ts = now_ms(&h);
    assert_eq!(
        code(&ask(
            &mut h,
            control,
            signed_list("alice", ts, "nonce-removed-00001")
        )),
        200
    );
    h.input(Input::KeyRemoved {
        user: "alice".into(),
    });
    let reply = ask(
        &mut h,
        control,
        signed_list("alice", ts, "nonce-removed-00002"),
    );
    assert!(message(&reply).contains("unknown user"), "{reply}");
    // A broken file does not install anything; a wrong key refuses Alice's signatures.
    h.input(Input::KeySet {
        user: "alice".into(),
        pem: Bytes::from_static(b"garbage"),
    });
    assert!(logs(&h.fresh())
        .iter()
        .any(|(_, m)| m.contains("not taken")));
    h.input(Input::KeySet {
        user: "alice".into(),
        pem: Bytes::from_static(BOB_PEM),
    });
    let reply = ask(
        &mut h,
        control,
        signed_list("alice", ts, "nonce-removed-00003"),
    );
    assert!(message(&reply).starts_with("bad signature"), "{reply}");
    h.input(Input::KeySet {
        user: "alice".into(),
        pem: Bytes::from_static(ALICE_PEM),
    });
    h.advance(Duration::from_millis(5));
    assert_eq!(
        code(&ask(
            &mut h,
            control,
            signed_list("alice", ts, "nonce-removed-00003")
        )),
        200
    );
}

#[test]
fn off_ignores_signatures_and_a_refused_deploy_changes_nothing() {
    let (mut h, control) = node(Some(AuthMode::Off));
    let ts = now_ms(&h);
    let forged = {
        let mut f = signed_list("mallory", ts, "nonce-offmode-00001");
        f[3] = b(b"not a signature");
        f
    };
    assert_eq!(code(&ask(&mut h, control, forged)), 200);

    let (mut h, control) = node(Some(AuthMode::Required));
    let manifest = json!({"type": "python", "args": "local://app", "tasks": {"t": {"type": "manual-scheduler"}}});
    let deploy =
        json!({"version": 1, "action": "deploy", "app": "x", "manifest": manifest}).to_string();
    h.fresh();
    h.receive(control, vec![b(b"op"), Bytes::new(), Bytes::from(deploy)]);
    let out = h.fresh();
    let replies = sends(&out, control);
    assert_eq!(replies.len(), 1);
    // Only the 401 went out: no store operation, no spawn.
    assert_eq!(out.len(), 1, "{out:?}");
    let reply: Value = serde_json::from_slice(&replies[0][2]).unwrap();
    assert_eq!(code(&reply), 401);
}
