//! A node with thousands of tombstones and dozens of apps (docs/cluster.md, "Deletes and
//! restarts"): every announcement it sends fits one datagram, signed or not, holds every live
//! app, and as many tombstones as fit (the young ones, newest first); `peers` counts what was
//! announced and what waits.

use crate::harness;
use crate::native_auth;

use std::time::Duration;

use bytes::Bytes;
use cocaine_core::auth::{NodeKey, NodeKeyHandle, SignError};
use cocaine_core::cluster::tombstone::{self, Tombstone};
use cocaine_core::cluster::{Announcement, AppState, MAX_ANNOUNCEMENT};
use cocaine_core::node::auth::AuthMode;
use cocaine_core::node::{DiscoveryConfig, Input, NodeConfig, Output};
use harness::*;
use rsa::pkcs8::DecodePrivateKey;
use serde_json::{json, Value};

const CONTROL: &str = "tcp://127.0.0.2:5000";
const INTERVAL: Duration = Duration::from_millis(500);
const TOMBSTONES: usize = 3_000;
const APPS: usize = 40;

/// A 3072-bit throw-away key over the `rsa` crate (a test tool; nodes sign with OpenSSL).
struct TestKey(rsa::RsaPrivateKey);

impl NodeKey for TestKey {
    fn public_pem(&self) -> Result<String, SignError> {
        Err(SignError("not needed here".into()))
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(native_auth::pss_sign(&self.0, message))
    }
}

fn node(mode: AuthMode) -> Harness {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("data/auth/carol3072.key")).unwrap();
    let mut h = Harness::with_config(NodeConfig {
        control: vec![CONTROL.to_owned()],
        discovery: Some(DiscoveryConfig {
            interval: INTERVAL,
            peers: vec!["127.0.0.3:5000".parse().unwrap()],
            ..DiscoveryConfig::new("node-a".into(), 1_000)
        }),
        cluster_auth: mode,
        own_key: Some(NodeKeyHandle::new(TestKey(key))),
        ..NodeConfig::default()
    });
    h.pump();
    let now = h.now.unix_ms();
    for i in 0..TOMBSTONES {
        let app = format!("a-deleted-app-with-a-rather-long-name-{i:05}");
        let record = tombstone::encode(
            &app,
            Tombstone {
                version: 1_000_000 + i as u64,
                // Deleted over the last minutes, the highest number last.
                at_unix_ms: now - (TOMBSTONES - i) as u64 * 50,
            },
        );
        h.input(Input::RestoreTombstone {
            app,
            record: Ok(record),
        });
    }
    for i in 0..APPS {
        let manifest = json!({
            "type": "python", "args": "local:///srv/x", "version": 3,
            "tasks": {
                "one": {"type": "native-server", "endpoint": format!("tcp://*:{}", 20_000 + 3 * i)},
                "two": {"type": "native-server", "endpoint": format!("tcp://*:{}", 20_001 + 3 * i)},
                "three": {"type": "native-server", "endpoint": format!("tcp://*:{}", 20_002 + 3 * i)},
            },
        });
        h.deploy(&format!("live-app-number-{i:03}"), &manifest.to_string());
    }
    let outputs = h.all();
    bind_udp(&mut h, outputs);
    h
}

fn peers(h: &mut Harness) -> Value {
    control_reply(h, CONTROL, r#"{"version": 1, "action": "peers"}"#)["ok"].clone()
}

#[test]
fn thousands_of_tombstones_never_make_an_oversized_announcement() {
    for mode in [AuthMode::Off, AuthMode::Required] {
        let mut h = node(mode);
        h.fresh();
        h.advance(INTERVAL * 2);
        let datagrams: Vec<Bytes> = h
            .all()
            .into_iter()
            .filter_map(|o| match o {
                Output::SendTo { bytes, .. } => Some(bytes),
                _ => None,
            })
            .collect();
        assert!(datagrams.len() >= 2, "{mode:?}: {}", datagrams.len());
        let stats = peers(&mut h)["stats"].clone();
        assert_eq!(stats["too_large"], 0, "{stats}");
        assert_eq!(stats["sign_failed"], 0, "{stats}");
        let announced = stats["tombstones_announced"].as_u64().unwrap() as usize;
        let deferred = stats["tombstones_deferred"].as_u64().unwrap() as usize;
        assert_eq!(announced + deferred, TOMBSTONES, "{stats}");
        assert!(announced >= 100 && deferred > 0, "{stats}");
        for bytes in datagrams {
            assert!(bytes.len() <= MAX_ANNOUNCEMENT, "{} bytes", bytes.len());
            let a = Announcement::decode(&bytes).unwrap();
            assert_eq!(a.sig.is_some(), mode == AuthMode::Required);
            let live = a
                .apps
                .values()
                .filter(|e| e.state != AppState::Deleted)
                .count();
            assert_eq!(live, APPS, "every live app is announced");
            let dead: Vec<&String> = a
                .apps
                .iter()
                .filter(|(_, e)| e.state == AppState::Deleted)
                .map(|(n, _)| n)
                .collect();
            assert_eq!(dead.len(), announced);
            // The newest deletions went in: the highest numbers.
            let newest = format!(
                "a-deleted-app-with-a-rather-long-name-{:05}",
                TOMBSTONES - 1
            );
            assert!(dead.contains(&&newest), "the newest tombstone is announced");
            let oldest = "a-deleted-app-with-a-rather-long-name-00000".to_owned();
            assert!(!dead.contains(&&oldest), "the oldest waits");
        }
    }
}
