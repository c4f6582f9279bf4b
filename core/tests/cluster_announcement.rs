//! The announcement codec: an interop vector, every error class, bounds, and properties.

use std::collections::BTreeMap;

use bytes::Bytes;
use cocaine_core::cluster::announcement::{AppAnnouncement, AppState, Load};
use cocaine_core::cluster::{Announcement, EncodeError, MAX_ANNOUNCEMENT};
use cocaine_core::codec::DecodeError;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn echo_app() -> AppAnnouncement {
    AppAnnouncement {
        version: 3,
        hash: "ab12".into(),
        tasks: BTreeMap::from([("hello".into(), "tcp://*:9110".into())]),
        load: Load {
            queue: 2,
            busy: 1,
            workers: 2,
            pool_limit: 10,
            queue_limit: 100,
        },
        state: AppState::Running,
    }
}

fn sample() -> Announcement {
    Announcement {
        node_id: "node-a".into(),
        seq: 7,
        control: "tcp://127.0.0.2:5000".into(),
        apps: BTreeMap::from([("echo".into(), echo_app())]),
        sig: None,
    }
}

/// Python's `msgpack.packb([1, "node-a", 7, "tcp://127.0.0.2:5000", {"echo": {...}}, None],
/// use_bin_type=True)`, keys in the order written.
const PYTHON: &str = "9601a66e6f64652d6107b47463703a2f2f3132372e302e302e323a3530303081a46563686f89a776657273696f6e03a468617368a461623132a57461736b7381a568656c6c6fac7463703a2f2f2a3a39313130a5717565756502a46275737901a7776f726b65727302aa706f6f6c5f6c696d69740aab71756575655f6c696d697464a57374617465a772756e6e696e67c0";

#[test]
fn python_vector_decodes_and_encodes_byte_for_byte() {
    let bytes = hex(PYTHON);
    assert_eq!(Announcement::decode(&bytes), Ok(sample()));
    assert_eq!(&sample().encode().unwrap()[..], &bytes[..]);
}

#[test]
fn a_signature_travels_as_bin() {
    let mut a = sample();
    a.sig = Some(Bytes::from_static(&[1, 2, 3]));
    let bytes = a.encode().unwrap();
    assert_eq!(&bytes[bytes.len() - 5..], &[0xc4, 3, 1, 2, 3]);
    assert_eq!(Announcement::decode(&bytes), Ok(a));
}

fn patched(from: &str, to: &str) -> Vec<u8> {
    let s = PYTHON.replacen(from, to, 1);
    assert_ne!(s, PYTHON, "the patch must apply");
    hex(&s)
}

#[test]
fn every_error_class_is_named() {
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (vec![], DecodeError::Truncated),
        (vec![0xc0], DecodeError::NotAnArray),
        (vec![0x90], DecodeError::MissingKind),
        (vec![0x91, 0x02], DecodeError::UnknownKind(2)),
        (
            vec![0x92, 0x01, 0xa1, b'a'],
            DecodeError::WrongArity {
                kind: 1,
                expected: 6,
                got: 2,
            },
        ),
        (
            patched("9601a6", "9601c4"),
            DecodeError::WrongType {
                field: "node_id",
                expected: "a string",
            },
        ),
        (
            // seq as a negative fixint
            patched("2d6107", "2d61ff"),
            DecodeError::OutOfRange {
                field: "seq",
                expected: "an unsigned integer",
            },
        ),
        (
            // "state": "running" -> "runninX"
            patched("72756e6e696e67c0", "72756e6e696e58c0"),
            DecodeError::Invalid {
                field: "apps.state",
                reason: "not one of starting, running, broken, stopping",
            },
        ),
        (
            // "busy" -> "bus!"
            patched("a462757379", "a462757321"),
            DecodeError::UnknownKey {
                map: "apps.*",
                key: "bus!".into(),
            },
        ),
        (
            // "queue" -> "state": state twice, and queue missing
            patched("a57175657565", "a57374617465"),
            DecodeError::WrongType {
                field: "apps.state",
                expected: "a string",
            },
        ),
        (
            [hex(PYTHON), vec![0xc0]].concat(),
            DecodeError::TrailingBytes(1),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(Announcement::decode(&bytes), Err(expected), "{bytes:02x?}");
    }
}

#[test]
fn missing_and_duplicate_keys_are_refused() {
    assert_eq!(
        Announcement::decode(&patched("a5717565756502", "a46275737902")),
        Err(DecodeError::DuplicateKey {
            map: "apps.*",
            key: "busy"
        })
    );
    // An app map with 8 keys (queue left out) written by hand.
    let mut bytes = hex(PYTHON);
    let at = bytes.iter().position(|&b| b == 0x89).unwrap();
    bytes[at] = 0x88;
    let queue = hex("a5717565756502");
    let start = bytes
        .windows(queue.len())
        .position(|w| w == queue.as_slice())
        .unwrap();
    bytes.drain(start..start + queue.len());
    assert_eq!(
        Announcement::decode(&bytes),
        Err(DecodeError::MissingKey {
            map: "apps.*",
            key: "queue"
        })
    );
}

#[test]
fn senseless_announcements_are_invalid() {
    let invalid = |a: Announcement| match Announcement::decode(&a.encode().unwrap()) {
        Err(DecodeError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    };
    let mut a = sample();
    a.node_id = String::new();
    assert_eq!(invalid(a), "node_id");
    let mut a = sample();
    a.node_id = "a b".into();
    assert_eq!(invalid(a), "node_id");
    let mut a = sample();
    a.node_id = "n".repeat(65);
    assert_eq!(invalid(a), "node_id");
    let mut a = sample();
    a.control = "127.0.0.1:5000".into();
    assert_eq!(invalid(a), "control");
    let mut a = sample();
    a.apps.insert("../etc".into(), echo_app());
    assert_eq!(invalid(a), "apps");
    let mut a = sample();
    a.apps.get_mut("echo").unwrap().load.busy = 3;
    assert_eq!(invalid(a), "apps.busy");
    let mut a = sample();
    a.apps.get_mut("echo").unwrap().hash = "not hex!".into();
    assert_eq!(invalid(a), "apps.hash");
    let mut a = sample();
    a.apps
        .get_mut("echo")
        .unwrap()
        .tasks
        .insert("bad task".into(), "tcp://*:1".into());
    assert_eq!(invalid(a), "apps.tasks");
    let mut a = sample();
    a.sig = Some(Bytes::from(vec![0; 2000]));
    assert_eq!(invalid(a), "sig");
}

#[test]
fn oversized_datagrams_are_refused_both_ways() {
    let big = vec![0x90; MAX_ANNOUNCEMENT + 1];
    assert_eq!(
        Announcement::decode(&big),
        Err(DecodeError::TooLarge {
            size: MAX_ANNOUNCEMENT + 1,
            limit: MAX_ANNOUNCEMENT
        })
    );
    let mut a = sample();
    for i in 0..2000 {
        a.apps.insert(format!("app-{i:05}"), echo_app());
    }
    assert!(matches!(
        a.encode(),
        Err(EncodeError::TooLarge {
            limit: MAX_ANNOUNCEMENT,
            ..
        })
    ));
}

#[test]
fn every_truncation_of_a_valid_announcement_is_an_error() {
    let bytes = hex(PYTHON);
    for len in 0..bytes.len() {
        assert!(Announcement::decode(&bytes[..len]).is_err(), "{len} bytes");
    }
}

fn arb_app() -> impl Strategy<Value = AppAnnouncement> {
    (
        any::<u64>(),
        "[0-9a-f]{0,64}",
        prop::collection::btree_map(
            "[a-z][a-z0-9_-]{0,10}",
            "tcp://[*a-z0-9.]{1,12}:[0-9]{1,5}",
            0..4,
        ),
        (any::<u64>(), 0u64..50, 0u64..50, any::<u64>(), any::<u64>()),
        prop::sample::select(AppState::ALL.to_vec()),
    )
        .prop_map(
            |(version, hash, tasks, (queue, busy, extra, pool_limit, queue_limit), state)| {
                AppAnnouncement {
                    version,
                    hash,
                    tasks,
                    load: Load {
                        queue,
                        busy,
                        workers: busy + extra,
                        pool_limit,
                        queue_limit,
                    },
                    state,
                }
            },
        )
}

fn arb_announcement() -> impl Strategy<Value = Announcement> {
    (
        "[A-Za-z0-9._-]{1,64}",
        any::<u64>(),
        "tcp://[a-z0-9.*]{1,20}:[0-9]{1,5}",
        prop::collection::btree_map("[A-Za-z0-9_-][A-Za-z0-9._-]{0,20}", arb_app(), 0..5),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..300)),
    )
        .prop_map(|(node_id, seq, control, apps, sig)| Announcement {
            node_id,
            seq,
            control,
            apps,
            sig: sig.map(Bytes::from),
        })
}

proptest! {
    /// What is encoded decodes to itself.
    #[test]
    fn round_trip(a in arb_announcement()) {
        let bytes = a.encode().unwrap();
        prop_assert_eq!(Announcement::decode(&bytes), Ok(a));
    }

    /// A valid announcement cut short or with a byte changed is an error or a valid
    /// announcement, never a panic.
    #[test]
    fn damaged_announcements_never_panic(a in arb_announcement(), cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
        let bytes = a.encode().unwrap().to_vec();
        let at = cut.index(bytes.len());
        prop_assert!(Announcement::decode(&bytes[..at]).is_err());
        let mut damaged = bytes.clone();
        damaged[at] ^= flip.max(1);
        cocaine_core::cluster::fuzzing::check_announcement(&damaged);
    }

    #[test]
    fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        cocaine_core::cluster::fuzzing::check_announcement(&bytes);
    }
}
