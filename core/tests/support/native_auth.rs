//! What the native-protocol security tests share: the throw-away test users, their keys on a
//! hand-driven node, signed opens, and reading refusals, users and the `keys` control reply.
//! The node never signs or unwraps with these; real clients and nodes do it with OpenSSL
//! through `cocaine-keys`.
//!
//! Declared once in tests/main.rs (after the node harness it uses); a test file uses it with
//! `use crate::native_auth;`.

#![allow(dead_code)]

use bytes::Bytes;
use cocaine_core::auth::seal::{SealError, Unsealer, KEY_LEN};
use cocaine_core::auth::session::KeyUnwrapper;
use cocaine_core::auth::{body_digest, sign_open, Invoke, SignError, Signer, Stamp};
use cocaine_core::codec::native::{NativeMessage, Policy};
use cocaine_core::codec::worker::WorkerMessage;
use cocaine_core::node::Input;
use rsa::pkcs8::DecodePrivateKey;
use rsa::pss::Pss;
use rsa::{Oaep, RsaPrivateKey};
use serde_json::Value;
use sha2::{Digest, Sha256};

use cocaine_core::EndpointId;

use crate::harness::{b, choke, chunk, control_reply, native_replies, Harness};

pub const ALICE_PEM: &[u8] = include_bytes!("../data/auth/alice.pem");
pub const ALICE_KEY: &str = include_str!("../data/auth/alice.key");
pub const BOB_PEM: &[u8] = include_bytes!("../data/auth/bob.pem");
pub const BOB_KEY: &str = include_str!("../data/auth/bob.key");

/// A test key: signs (RSA-PSS) and unwraps session and sealing keys (RSA-OAEP) with the
/// `rsa` crate.
pub struct TestKey {
    pub user: &'static str,
    pub key: RsaPrivateKey,
}

impl Signer for TestKey {
    fn user(&self) -> &str {
        self.user
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(pss_sign(&self.key, message))
    }
}

impl KeyUnwrapper for TestKey {
    fn unwrap_key(&self, wrapped: &[u8]) -> Result<Vec<u8>, SignError> {
        (self.key)
            .decrypt(Oaep::new::<Sha256>(), wrapped)
            .map_err(|e| SignError(e.to_string()))
    }
}

impl Unsealer for TestKey {
    fn unwrap_key(&self, wrapped: &[u8]) -> Result<[u8; KEY_LEN], SealError> {
        let key =
            (self.key.decrypt(Oaep::new::<Sha256>(), wrapped)).map_err(|_| SealError::NotOpened)?;
        key.try_into().map_err(|_| SealError::NotOpened)
    }
}

/// `message` signed with RSA-PSS (SHA-256, 32-byte salt), as nodes and clients sign.
pub fn pss_sign(key: &RsaPrivateKey, message: &[u8]) -> Vec<u8> {
    key.sign_with_rng(
        &mut rsa::rand_core::OsRng,
        Pss::new_with_salt::<Sha256>(32),
        &Sha256::digest(message),
    )
    .unwrap()
}

pub fn key(user: &'static str, pem: &str) -> TestKey {
    TestKey {
        user,
        key: RsaPrivateKey::from_pkcs8_pem(pem).unwrap(),
    }
}

pub fn alice() -> TestKey {
    key("alice", ALICE_KEY)
}

pub fn bob() -> TestKey {
    key("bob", BOB_KEY)
}

/// Gives the node alice's and bob's public keys.
pub fn add_users(h: &mut Harness) {
    for (user, pem) in [("alice", ALICE_PEM), ("bob", BOB_PEM)] {
        h.input(Input::KeySet {
            user: user.into(),
            pem: Bytes::from_static(pem),
        });
    }
}

/// A stamp at the node's current wall-clock time.
pub fn stamp(h: &Harness, nonce: &str) -> Stamp {
    Stamp {
        ts: h.now.unix_ms(),
        nonce: nonce.to_owned(),
    }
}

/// The open of `sid` for `app` under `policy` with `body`, signed by `signer`.
pub fn signed_open_with(
    signer: &TestKey,
    stamp: &Stamp,
    sid: u64,
    app: &str,
    policy: &Policy,
    body: &[u8],
) -> Bytes {
    let invoke = Invoke {
        sid,
        app,
        event: "",
        policy,
        body: body_digest([body]),
    };
    sign_open(&invoke, stamp, signer).unwrap()
}

/// Sends `[open, chunk, choke]` as one message from `client` and returns the node's replies.
pub fn call(
    h: &mut Harness,
    ep: EndpointId,
    open: Bytes,
    sid: u64,
    body: &[u8],
) -> Vec<NativeMessage> {
    h.fresh();
    h.receive(ep, vec![b(b"client"), open, chunk(sid, body), choke(sid)]);
    native_replies(&h.fresh(), ep, b"client")
}

/// The one error a refused request got: (code, message).
pub fn refusal(replies: &[NativeMessage], sid: u64) -> (u32, String) {
    match replies {
        [NativeMessage::Error {
            sid: s,
            code,
            message,
        }] if *s == sid => (*code, message.clone()),
        other => panic!("expected one error for sid {sid}, got {other:?}"),
    }
}

/// The user in the meta of each job workers were asked to run, in order.
pub fn invoked_users(h: &Harness) -> Vec<Option<String>> {
    h.spawned
        .iter()
        .flat_map(|w| h.worker(*w).messages())
        .filter_map(|m| match m {
            WorkerMessage::Invoke { meta, .. } => Some(meta.user),
            _ => None,
        })
        .collect()
}

/// The `ok` of the `keys` control action asked on `control`.
pub fn keys_reply(h: &mut Harness, control: &str) -> Value {
    control_reply(h, control, r#"{"version": 1, "action": "keys"}"#)["ok"].clone()
}

/// Deploys app `echo` on `h`: a native-server task `call` at `ep`, a native-sink task `sink`
/// at `sink` if given, and `more` (further manifest fields, each after a comma, or nothing).
/// Returns `call`'s endpoint with the outputs so far taken.
pub fn deploy_echo(h: &mut Harness, ep: &str, sink: Option<&str>, more: &str) -> EndpointId {
    let sink = sink.map_or(String::new(), |s| {
        format!(r#", "sink": {{"type": "native-sink", "endpoint": "{s}"}}"#)
    });
    h.deploy(
        "echo",
        &format!(
            r#"{{"type": "python", "args": "local:///srv/echo",
                "tasks": {{"call": {{"type": "native-server", "endpoint": "{ep}"}}{sink}}}{more}}}"#
        ),
    );
    let ep = h.endpoint(ep);
    h.fresh();
    ep
}

/// A `security` manifest field as `deploy_echo` takes it, or nothing.
pub fn security(section: Option<&str>) -> String {
    section.map_or(String::new(), |s| format!(r#", "security": {s}"#))
}
