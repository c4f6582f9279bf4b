//! Signed announcements through a hand-driven node (`NodeConfig::cluster_auth`): the node signs
//! what it sends with its key handle, and takes in a peer's announcement only when its
//! signature verifies under `<node_id>.pem` of the key store (`required` also refuses unsigned
//! ones; `optional` takes them; `off` checks nothing). Forged, tampered, unknown-key, unsigned,
//! replayed and duplicated announcements are dropped and counted; a key removed while the node
//! runs stops its node's announcements.

use crate::harness;
use crate::native_auth;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cocaine_core::auth::{NodeKey, NodeKeyHandle, PublicKey, SignError};
use cocaine_core::cluster::announcement::AppState;
use cocaine_core::cluster::{signing, Announcement};
use cocaine_core::node::auth::AuthMode;
use cocaine_core::node::{DiscoveryConfig, Input, NodeConfig, Output};
use cocaine_core::EndpointId;
use harness::*;
use native_auth::pss_sign as rsa_sign;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};

const CONTROL: &str = "tcp://127.0.0.2:5000";
const PEER: &str = "127.0.0.3:5000";
const INTERVAL: Duration = Duration::from_millis(500);
// Throw-away test keys (core/tests/data/auth/): alice's pair is this node's, bob's is node-b's.
const ALICE_KEY: &str = include_str!("data/auth/alice.key");
const ALICE_PEM: &[u8] = include_bytes!("data/auth/alice.pem");
const BOB_KEY: &str = include_str!("data/auth/bob.key");
const BOB_PEM: &[u8] = include_bytes!("data/auth/bob.pem");

/// A node key over the `rsa` crate, as a test tool only (the node's real one is OpenSSL's).
struct TestKey(RsaPrivateKey);

impl NodeKey for TestKey {
    fn public_pem(&self) -> Result<String, SignError> {
        self.0
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .map_err(|e| SignError(e.to_string()))
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(rsa_sign(&self.0, message))
    }
}

fn key(pem: &str) -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_pem(pem).unwrap()
}

fn config(mode: AuthMode, own_key: bool) -> NodeConfig {
    NodeConfig {
        control: vec![CONTROL.to_owned()],
        discovery: Some(DiscoveryConfig {
            interval: INTERVAL,
            peers: vec![PEER.parse().unwrap()],
            ..DiscoveryConfig::new("node-a".into(), 1_000)
        }),
        cluster_auth: mode,
        own_key: own_key.then(|| NodeKeyHandle::new(TestKey(key(ALICE_KEY)))),
        ..NodeConfig::default()
    }
}

/// A node up with its discovery socket bound, node-b's key in its key store.
fn node(mode: AuthMode) -> (Harness, EndpointId) {
    let mut h = Harness::with_config(config(mode, true));
    h.pump();
    let outputs = h.fresh();
    let udp = bind_udp(&mut h, outputs);
    h.input(Input::KeySet {
        user: "node-b".into(),
        pem: Bytes::from_static(BOB_PEM),
    });
    (h, udp)
}

fn announcement(id: &str, seq: u64) -> Announcement {
    peer_app(id, seq, "echo", 1, 0, AppState::Running)
}

fn signed_by(mut a: Announcement, signer: &RsaPrivateKey) -> Bytes {
    signing::sign(&mut a, |bytes| Ok(rsa_sign(signer, bytes))).unwrap();
    a.encode().unwrap()
}

/// A datagram from its node's own address (each test node has one: a shared control endpoint
/// would make one replace the other).
fn hear(h: &mut Harness, udp: EndpointId, bytes: Bytes) {
    let id = Announcement::decode(&bytes).map_or_else(|_| "node-b".to_owned(), |a| a.node_id);
    let host = match id.as_str() {
        "node-b" => 3,
        "node-c" => 4,
        _ => 5,
    };
    h.input(Input::Datagram {
        endpoint: udp,
        from: from(&format!("127.0.0.{host}:5000")),
        bytes,
    });
}

fn from(addr: &str) -> SocketAddr {
    addr.parse().unwrap()
}

fn peers(h: &mut Harness) -> Value {
    control_reply(h, CONTROL, r#"{"version": 1, "action": "peers"}"#)["ok"].clone()
}

fn sent(outputs: &[Output]) -> Vec<Bytes> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::SendTo { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .collect()
}

fn known(h: &mut Harness) -> Vec<String> {
    let listing = peers(h);
    listing["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["node_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_node_signs_its_announcements_with_its_key_and_they_verify_over_their_own_bytes() {
    let (mut h, _) = node(AuthMode::Required);
    h.advance(INTERVAL * 2);
    let datagrams = sent(&h.all());
    assert!(datagrams.len() >= 2, "{}", datagrams.len());
    let public = PublicKey::from_pem(ALICE_PEM).unwrap();
    for bytes in &datagrams {
        let (a, signed_len) = Announcement::decode_signed(bytes).unwrap();
        let sig = a.sig.clone().expect("signed");
        assert_eq!(&bytes[..signed_len], &a.signed_part()[..]);
        assert!(cocaine_core::auth::signature::verify(
            &public,
            &bytes[..signed_len],
            &sig
        ));
        // The signature covers the seq: another seq does not verify.
        let mut other = a.clone();
        other.seq += 1;
        assert!(!cocaine_core::auth::signature::verify(
            &public,
            &other.signed_part(),
            &sig
        ));
    }
    assert_eq!(peers(&mut h)["discovery"]["auth"], "required");
}

#[test]
fn required_takes_only_announcements_signed_by_the_senders_key() {
    let (mut h, udp) = node(AuthMode::Required);
    let bob = key(BOB_KEY);
    let alice = key(ALICE_KEY);

    // Unsigned: refused.
    hear(&mut h, udp, announcement("node-b", 10).encode().unwrap());
    // Signed by another key than node-b's (a forgery by someone holding a key): refused.
    hear(&mut h, udp, signed_by(announcement("node-b", 11), &alice));
    // Signed by a node whose key the store lacks: refused.
    hear(&mut h, udp, signed_by(announcement("node-c", 12), &bob));
    // Tampered after signing (the queue changed, a byte of the signed part): refused.
    let good = signed_by(announcement("node-b", 13), &bob);
    let (decoded, signed_len) = Announcement::decode_signed(&good).unwrap();
    let mut tampered = decoded.clone();
    tampered.apps.get_mut("echo").unwrap().load.queue = 49;
    hear(&mut h, udp, tampered.encode().unwrap());
    // The signature itself changed: refused.
    let mut bad_sig = good.to_vec();
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 1;
    hear(&mut h, udp, Bytes::from(bad_sig));
    assert!(known(&mut h).is_empty());
    let stats = peers(&mut h)["stats"].clone();
    assert_eq!(stats["unsigned"], 1, "{stats}");
    assert_eq!(stats["bad_signature"], 3, "{stats}");
    assert_eq!(stats["unknown_key"], 1, "{stats}");
    assert_eq!(stats["accepted"], 0, "{stats}");
    assert_eq!(signed_len, decoded.signed_part().len());

    // Signed by node-b's key: taken.
    hear(&mut h, udp, good.clone());
    assert_eq!(known(&mut h), ["node-b"]);
    // The same datagram again (multicast and unicast both, or a replay): stale, not checked.
    hear(&mut h, udp, good);
    let stats = peers(&mut h)["stats"].clone();
    assert_eq!(
        (stats["accepted"].as_u64(), stats["stale"].as_u64()),
        (Some(1), Some(1)),
        "{stats}"
    );
    // A forged newer seq does not move node-b's seq on (the next real one is still taken).
    let mut forged = announcement("node-b", 1_000_000).encode().unwrap().to_vec();
    forged.pop();
    forged.extend_from_slice(&[0xc4, 1, 0]);
    hear(&mut h, udp, Bytes::from(forged));
    hear(&mut h, udp, signed_by(announcement("node-b", 14), &bob));
    let listing = peers(&mut h);
    assert_eq!(listing["peers"][0]["seq"], 14, "{listing}");
    assert_eq!(listing["stats"]["bad_signature"], 4);

    // node-b's key leaves the key folder: its announcements are refused from then on, and it
    // is forgotten after three silent intervals.
    h.input(Input::KeyRemoved {
        user: "node-b".into(),
    });
    hear(&mut h, udp, signed_by(announcement("node-b", 15), &bob));
    assert_eq!(peers(&mut h)["stats"]["unknown_key"], 2);
    h.advance(INTERVAL * 4);
    assert!(known(&mut h).is_empty());
}

#[test]
fn optional_takes_unsigned_announcements_but_checks_signed_ones() {
    let (mut h, udp) = node(AuthMode::Optional);
    let bob = key(BOB_KEY);
    hear(&mut h, udp, announcement("node-c", 10).encode().unwrap());
    hear(
        &mut h,
        udp,
        signed_by(announcement("node-b", 10), &key(ALICE_KEY)),
    );
    hear(&mut h, udp, signed_by(announcement("node-d", 10), &bob));
    assert_eq!(known(&mut h), ["node-c"]);
    hear(&mut h, udp, signed_by(announcement("node-b", 11), &bob));
    assert_eq!(known(&mut h), ["node-b", "node-c"]);
    let stats = peers(&mut h)["stats"].clone();
    assert_eq!(stats["bad_signature"], 1, "{stats}");
    assert_eq!(stats["unknown_key"], 1, "{stats}");
    // It signs its own.
    let datagrams = sent(&h.all());
    assert!(datagrams
        .iter()
        .all(|d| Announcement::decode(d).unwrap().sig.is_some()));
}

#[test]
fn off_signs_nothing_and_checks_nothing() {
    let (mut h, udp) = node(AuthMode::Off);
    hear(
        &mut h,
        udp,
        signed_by(announcement("node-b", 10), &key(ALICE_KEY)),
    );
    hear(&mut h, udp, announcement("node-c", 10).encode().unwrap());
    assert_eq!(known(&mut h), ["node-b", "node-c"]);
    h.advance(INTERVAL);
    let datagrams = sent(&h.all());
    assert!(!datagrams.is_empty());
    assert!(datagrams
        .iter()
        .all(|d| Announcement::decode(d).unwrap().sig.is_none()));
}

#[test]
fn a_node_that_cannot_sign_sends_nothing_and_says_why_once() {
    let mut h = Harness::with_config(config(AuthMode::Required, false));
    h.pump();
    let outputs = h.fresh();
    bind_udp(&mut h, outputs);
    h.advance(INTERVAL * 3);
    let outputs = h.all();
    assert!(sent(&outputs).is_empty());
    let said: Vec<_> = logs(&outputs)
        .into_iter()
        .filter(|(_, m)| m.contains("announcement not sent") && m.contains("no key pair"))
        .collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(peers(&mut h)["stats"]["sign_failed"].as_u64().unwrap() >= 3);
}

#[test]
fn the_pubkey_action_answers_from_the_key_handle() {
    let (mut h, _) = node(AuthMode::Off);
    let control = h.endpoint(CONTROL);
    h.fresh();
    let request = json!({"version": 1, "action": "pubkey"}).to_string();
    h.receive(control, vec![b(b"op"), Bytes::new(), Bytes::from(request)]);
    let replies = sends(&h.fresh(), control);
    let reply: Value = serde_json::from_slice(replies[0].last().unwrap()).unwrap();
    let alice = PublicKey::from_pem(ALICE_PEM).unwrap();
    assert_eq!(reply["ok"]["fingerprint"], alice.fingerprint(), "{reply}");
    assert_eq!(reply["ok"]["bits"], 2048);
}
