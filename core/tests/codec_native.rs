//! The native protocol codec: interop vectors, every error class, and properties.

use bytes::Bytes;
use cocaine_core::codec::fuzzing::check_native_message;
use cocaine_core::codec::native::{self, Auth, NativeMessage, Policy};
use cocaine_core::codec::DecodeError;
use proptest::prelude::*;

const MAX: usize = 64 << 20;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("test vector is hex"))
        .collect()
}

fn decode(s: &str) -> Result<NativeMessage, DecodeError> {
    NativeMessage::decode(&hex(s), MAX)
}

fn auth() -> Auth {
    Auth {
        user: "bob".into(),
        ts: 1_700_000_000_000,
        nonce: Bytes::from_static(b"abc"),
        app: None,
        body: None,
        sig: Bytes::from_static(&[1, 2]),
    }
}

/// Vectors from Python's `msgpack.packb(obj, use_bin_type=True)`.
#[test]
fn python_vectors_decode() {
    // [3, 1, "", {"timeout": 100}, None]
    let open = NativeMessage::Open {
        sid: 1,
        event: String::new(),
        policy: Policy {
            timeout_ms: Some(100),
            ..Policy::default()
        },
        auth: None,
    };
    let bytes = "95 03 01 a0 81 a7 74 69 6d 65 6f 75 74 64 c0";
    assert_eq!(decode(bytes), Ok(open.clone()));
    assert_eq!(open.encode(), hex(bytes));

    // [3, 1, "ping", {"urgent": False}, {"user": "bob", "ts": 1700000000000, "nonce": "abc",
    // "sig": b"\x01\x02"}]: nonce as str, urgent false spelt out.
    assert_eq!(
        decode(
            "95 03 01 a4 70 69 6e 67 81 a6 75 72 67 65 6e 74 c2 84 a4 75 73 65 72 a3 62 6f 62 \
             a2 74 73 cf 00 00 01 8b cf e5 68 00 a5 6e 6f 6e 63 65 a3 61 62 63 a3 73 69 67 c4 \
             02 01 02"
        ),
        Ok(NativeMessage::Open {
            sid: 1,
            event: "ping".into(),
            policy: Policy::default(),
            auth: Some(auth()),
        })
    );

    let canonical = [
        (
            "93 04 07 c4 05 68 65 6c 6c 6f",
            NativeMessage::Chunk {
                sid: 7,
                data: Bytes::from_static(b"hello"),
            },
        ),
        (
            "92 05 cf ff ff ff ff ff ff ff ff",
            NativeMessage::Choke { sid: u64::MAX },
        ),
        (
            "94 06 00 cd 01 90 a3 62 61 64",
            NativeMessage::Error {
                sid: 0,
                code: 400,
                message: "bad".into(),
            },
        ),
        ("92 07 ce 00 01 00 00", NativeMessage::Cancel { sid: 65536 }),
        (
            "92 09 cf 00 00 00 02 df dc 1c 35",
            NativeMessage::Ping { token: 12345678901 },
        ),
        ("92 0a 00", NativeMessage::Pong { token: 0 }),
    ];
    for (bytes, msg) in canonical {
        assert_eq!(decode(bytes), Ok(msg.clone()), "decoding {bytes}");
        assert_eq!(msg.encode(), hex(bytes), "encoding {msg:?}");
    }
}

#[test]
fn every_message_round_trips() {
    let messages = [
        NativeMessage::Open {
            sid: 0,
            event: String::new(),
            policy: Policy::default(),
            auth: None,
        },
        NativeMessage::Open {
            sid: u64::MAX,
            event: "événement".into(),
            policy: Policy {
                urgent: true,
                timeout_ms: Some(0),
                deadline_ms: Some(u64::MAX),
                hop: 0,
                sealed: true,
            },
            auth: Some(auth()),
        },
        NativeMessage::Chunk {
            sid: 1,
            data: Bytes::from(vec![0; 70000]),
        },
        NativeMessage::Choke { sid: 2 },
        NativeMessage::Error {
            sid: 3,
            code: u32::MAX,
            message: "m".into(),
        },
        NativeMessage::Cancel { sid: 4 },
        NativeMessage::Ping { token: 5 },
        NativeMessage::Pong { token: 6 },
    ];
    for msg in messages {
        assert_eq!(NativeMessage::decode(&msg.encode(), MAX), Ok(msg));
    }
}

#[test]
fn free_encoders_match_encode() {
    let policy = Policy {
        urgent: true,
        timeout_ms: Some(1),
        deadline_ms: None,
        hop: 0,
        sealed: false,
    };
    let a = auth();
    assert_eq!(
        native::encode_open(1, "e", &policy, Some(&a)),
        NativeMessage::Open {
            sid: 1,
            event: "e".into(),
            policy,
            auth: Some(a)
        }
        .encode()
    );
    assert_eq!(
        native::encode_chunk(1, b"x"),
        NativeMessage::Chunk {
            sid: 1,
            data: Bytes::from_static(b"x")
        }
        .encode()
    );
    assert_eq!(
        native::encode_choke(1),
        NativeMessage::Choke { sid: 1 }.encode()
    );
    assert_eq!(
        native::encode_error(1, 503, "busy"),
        NativeMessage::Error {
            sid: 1,
            code: 503,
            message: "busy".into()
        }
        .encode()
    );
    assert_eq!(
        native::encode_cancel(1),
        NativeMessage::Cancel { sid: 1 }.encode()
    );
    assert_eq!(
        native::encode_ping(1),
        NativeMessage::Ping { token: 1 }.encode()
    );
    assert_eq!(
        native::encode_pong(1),
        NativeMessage::Pong { token: 1 }.encode()
    );
}

#[test]
fn error_classes() {
    assert_eq!(decode(""), Err(DecodeError::Truncated));
    assert_eq!(decode("81 a1 61 01"), Err(DecodeError::NotAnArray));
    assert_eq!(decode("90"), Err(DecodeError::MissingKind));
    // Kinds that exist only on the worker channel are unknown here.
    for kind in [1, 2, 8, 11] {
        assert_eq!(
            decode(&format!("91 {kind:02x}")),
            Err(DecodeError::UnknownKind(kind))
        );
    }
    // An open without its auth element.
    assert_eq!(
        decode("94 03 01 a0 80"),
        Err(DecodeError::WrongArity {
            kind: 3,
            expected: 5,
            got: 4
        })
    );
    assert_eq!(
        decode("91 09"),
        Err(DecodeError::WrongArity {
            kind: 9,
            expected: 2,
            got: 1
        })
    );
    assert_eq!(
        decode("92 09 a0"),
        Err(DecodeError::WrongType {
            field: "token",
            expected: "an unsigned integer"
        })
    );
    assert_eq!(
        decode("92 0a ff"),
        Err(DecodeError::OutOfRange {
            field: "token",
            expected: "an unsigned integer"
        })
    );
    assert_eq!(
        decode("94 06 01 ce ff ff ff ff a0"),
        Ok(NativeMessage::Error {
            sid: 1,
            code: u32::MAX,
            message: String::new()
        })
    );
    assert_eq!(
        decode("94 06 01 cf 00 00 00 01 00 00 00 00 a0"),
        Err(DecodeError::OutOfRange {
            field: "code",
            expected: "u32"
        })
    );
    assert_eq!(
        decode("94 06 01 01 a1 80"),
        Err(DecodeError::InvalidUtf8 { field: "message" })
    );
    assert_eq!(decode("93 04 01 c4 03 61"), Err(DecodeError::Truncated));
    assert_eq!(decode("92 05 01 c0"), Err(DecodeError::TrailingBytes(1)));
}

#[test]
fn error_too_large() {
    let frame = native::encode_chunk(1, &[0; 100]);
    let err = NativeMessage::decode(&frame, 50).unwrap_err();
    assert_eq!(
        err,
        DecodeError::TooLarge {
            size: frame.len(),
            limit: 50
        }
    );
    assert!(err.to_string().contains("exceeds the limit of 50 bytes"));
    assert!(NativeMessage::decode(&frame, frame.len()).is_ok());
}

#[test]
fn error_policy_and_auth() {
    let open = |policy: &str, auth: &str| decode(&format!("95 03 01 a0 {policy} {auth}"));
    let err = open("81 a4 6d 6f 64 65 01", "c0").unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnknownKey {
            map: "policy",
            key: "mode".into()
        }
    );
    assert_eq!(err.to_string(), "`policy` has unknown key \"mode\"");
    assert_eq!(
        open("90", "c0"),
        Err(DecodeError::WrongType {
            field: "policy",
            expected: "a map"
        })
    );
    assert_eq!(
        open("81 c0 c0", "c0"),
        Err(DecodeError::InvalidMapKey { map: "policy" })
    );
    assert_eq!(
        open("81 a8 64 65 61 64 6c 69 6e 65 c3", "c0"),
        Err(DecodeError::WrongType {
            field: "policy.deadline",
            expected: "an unsigned integer"
        })
    );
    assert_eq!(
        open("82 a6 75 72 67 65 6e 74 c3 a6 75 72 67 65 6e 74 c2", "c0"),
        Err(DecodeError::DuplicateKey {
            map: "policy",
            key: "urgent"
        })
    );
    // auth: neither map nor nil, unknown key, missing key, sig not bin.
    assert_eq!(
        open("80", "a0"),
        Err(DecodeError::WrongType {
            field: "auth",
            expected: "a map"
        })
    );
    assert_eq!(
        open("80", "81 a3 6b 65 79 01"),
        Err(DecodeError::UnknownKey {
            map: "auth",
            key: "key".into()
        })
    );
    let missing = open("80", "81 a4 75 73 65 72 a1 62").unwrap_err();
    assert_eq!(
        missing,
        DecodeError::MissingKey {
            map: "auth",
            key: "ts"
        }
    );
    assert_eq!(missing.to_string(), "`auth` lacks key \"ts\"");
    assert_eq!(
        open(
            "80",
            "84 a4 75 73 65 72 a1 62 a2 74 73 01 a5 6e 6f 6e 63 65 c4 00 a3 73 69 67 a0"
        ),
        Err(DecodeError::WrongType {
            field: "auth.sig",
            expected: "binary"
        })
    );
    assert_eq!(
        open(
            "80",
            "84 a4 75 73 65 72 a1 62 a2 74 73 01 a5 6e 6f 6e 63 65 c4 01 6e a3 73 69 67 c4 00"
        ),
        Ok(NativeMessage::Open {
            sid: 1,
            event: String::new(),
            policy: Policy::default(),
            auth: Some(Auth {
                user: "b".into(),
                ts: 1,
                nonce: Bytes::from_static(b"n"),
                app: None,
                body: None,
                sig: Bytes::new()
            })
        })
    );
}

#[test]
fn truncated_at_every_prefix() {
    let msg = NativeMessage::Open {
        sid: 1 << 33,
        event: "echo".into(),
        policy: Policy {
            urgent: true,
            timeout_ms: Some(1000),
            deadline_ms: Some(1 << 20),
            hop: 0,
            sealed: true,
        },
        auth: Some(auth()),
    };
    let encoded = msg.encode();
    for end in 0..encoded.len() {
        assert_eq!(
            NativeMessage::decode(&encoded[..end], MAX),
            Err(DecodeError::Truncated),
            "cut at {end}"
        );
    }
}

fn arb_auth() -> impl Strategy<Value = Auth> {
    (
        any::<String>(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::option::of(any::<String>()),
        proptest::option::of(any::<[u8; 32]>()),
    )
        .prop_map(|(user, ts, nonce, sig, app, body)| Auth {
            user,
            ts,
            nonce: nonce.into(),
            app,
            body: body.map(|b| Bytes::copy_from_slice(&b)),
            sig: sig.into(),
        })
}

fn arb_message() -> impl Strategy<Value = NativeMessage> {
    let policy = (
        any::<bool>(),
        any::<Option<u64>>(),
        any::<Option<u64>>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(urgent, timeout_ms, deadline_ms, sealed, hop)| Policy {
            urgent,
            timeout_ms,
            deadline_ms,
            hop,
            sealed,
        });
    prop_oneof![
        (
            any::<u64>(),
            any::<String>(),
            policy,
            proptest::option::of(arb_auth())
        )
            .prop_map(|(sid, event, policy, auth)| NativeMessage::Open {
                sid,
                event,
                policy,
                auth
            }),
        (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..600)).prop_map(|(sid, data)| {
            NativeMessage::Chunk {
                sid,
                data: data.into(),
            }
        }),
        any::<u64>().prop_map(|sid| NativeMessage::Choke { sid }),
        (any::<u64>(), any::<u32>(), any::<String>())
            .prop_map(|(sid, code, message)| NativeMessage::Error { sid, code, message }),
        any::<u64>().prop_map(|sid| NativeMessage::Cancel { sid }),
        any::<u64>().prop_map(|token| NativeMessage::Ping { token }),
        any::<u64>().prop_map(|token| NativeMessage::Pong { token }),
    ]
}

proptest! {
    #[test]
    fn prop_messages_round_trip(msg in arb_message()) {
        let encoded = msg.encode();
        prop_assert_eq!(NativeMessage::decode(&encoded, MAX), Ok(msg));
        check_native_message(&encoded);
    }

    #[test]
    fn prop_decode_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_native_message(&bytes);
    }

    #[test]
    fn prop_corrupted_messages_never_panic(
        msg in arb_message(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut encoded = msg.encode().to_vec();
        let i = at.index(encoded.len());
        encoded[i] = byte;
        check_native_message(&encoded);
    }
}

/// `policy.hop` (spillover's marker, docs/protocol.md §2): byte for byte, only sent when not
/// 0, and refused when it is not an unsigned integer or comes twice.
#[test]
fn policy_hop_marks_a_forwarded_open() {
    let policy = Policy {
        hop: 1,
        ..Policy::default()
    };
    let frame = native::encode_open(2, "", &policy, None);
    // [3, 2, "", {"hop": 1}, nil]
    assert_eq!(frame.as_ref(), &hex("95 03 02 a0 81 a3 68 6f 70 01 c0")[..]);
    let NativeMessage::Open { policy: back, .. } =
        decode("95 03 02 a0 81 a3 68 6f 70 01 c0").unwrap()
    else {
        panic!("not an open")
    };
    assert_eq!(back.hop, 1);
    // hop 0 is not written: an open from a client is as before.
    let plain = native::encode_open(2, "", &Policy::default(), None);
    assert_eq!(plain.as_ref(), &hex("95 03 02 a0 80 c0")[..]);
    let open = |policy: &str| decode(&format!("95 03 01 a0 {policy} c0"));
    assert_eq!(
        open("81 a3 68 6f 70 c3"),
        Err(DecodeError::WrongType {
            field: "policy.hop",
            expected: "an unsigned integer"
        })
    );
    assert!(open("82 a3 68 6f 70 01 a3 68 6f 70 01").is_err());
    assert!(open("81 a3 68 6f 70 ff").is_err());
    assert!(open("81 a3 68 6f 70").is_err());
}
