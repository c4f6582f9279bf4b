//! The worker channel codec and the frame decoder: interop vectors, every error class,
//! and properties.

use bytes::{Bytes, BytesMut};
use cocaine_core::codec::fuzzing::{check_worker_frame, check_worker_stream};
use cocaine_core::codec::http_wire::{HttpMeta, ReplyHead};
use cocaine_core::codec::worker::{self, JobMeta, WorkerMessage, PROTOCOL_VERSION};
use cocaine_core::codec::{write_frame, DecodeError, FrameDecoder};
use proptest::prelude::*;

/// Bytes from space-separated hex, as `bytes.hex(' ')` prints them in Python.
fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("test vector is hex"))
        .collect()
}

fn decode(s: &str) -> Result<WorkerMessage, DecodeError> {
    WorkerMessage::decode(&hex(s))
}

fn framed(msg: &WorkerMessage) -> BytesMut {
    let mut out = BytesMut::new();
    msg.encode_framed(&mut out);
    out
}

/// The body of a single encoded frame, checking the prefix on the way.
fn body(framed: &[u8]) -> &[u8] {
    let (prefix, body) = framed.split_at(4);
    let len = u32::from_be_bytes(prefix.try_into().unwrap());
    assert_eq!(len as usize, body.len());
    body
}

fn full_meta() -> JobMeta {
    JobMeta {
        urgent: true,
        timeout_ms: Some(5000),
        deadline_ms: Some(70000),
        user: Some("alice".into()),
        peer: Some("127.0.0.1:5555".into()),
        task: Some("http".into()),
        http: None,
    }
}

/// Vectors written by Python's `msgpack.packb(obj, use_bin_type=True)`; our encoder picks the
/// same (shortest) encodings, so each must both decode to the message and encode to the bytes.
#[test]
fn python_vectors_decode_and_encode_identically() {
    let vectors = [
        (
            "94 03 07 a4 65 63 68 6f 80",
            WorkerMessage::Invoke {
                sid: 7,
                event: "echo".into(),
                meta: JobMeta::default(),
            },
        ),
        (
            "94 03 07 a4 65 63 68 6f 86 a6 75 72 67 65 6e 74 c3 a7 74 69 6d 65 6f 75 74 cd 13 88 \
             a8 64 65 61 64 6c 69 6e 65 ce 00 01 11 70 a4 75 73 65 72 a5 61 6c 69 63 65 a4 70 65 \
             65 72 ae 31 32 37 2e 30 2e 30 2e 31 3a 35 35 35 35 a4 74 61 73 6b a4 68 74 74 70",
            WorkerMessage::Invoke {
                sid: 7,
                event: "echo".into(),
                meta: full_meta(),
            },
        ),
        (
            "93 04 07 c4 05 68 65 6c 6c 6f",
            WorkerMessage::Chunk {
                sid: 7,
                data: Bytes::from_static(b"hello"),
            },
        ),
        (
            "92 05 cf ff ff ff ff ff ff ff ff",
            WorkerMessage::Choke { sid: u64::MAX },
        ),
        (
            "94 06 07 cd 01 f6 a4 62 6f 6f 6d",
            WorkerMessage::Error {
                sid: 7,
                code: 502,
                message: "boom".into(),
            },
        ),
        (
            "94 01 a3 77 2d 31 01 cd 10 92",
            WorkerMessage::Handshake {
                worker_id: "w-1".into(),
                version: PROTOCOL_VERSION,
                pid: 4242,
            },
        ),
        ("91 02", WorkerMessage::Heartbeat),
        (
            "92 08 a4 69 64 6c 65",
            WorkerMessage::Terminate {
                reason: "idle".into(),
            },
        ),
        ("92 07 ce 00 01 00 00", WorkerMessage::Cancel { sid: 65536 }),
    ];
    for (bytes, msg) in vectors {
        assert_eq!(decode(bytes), Ok(msg.clone()), "decoding {bytes}");
        assert_eq!(body(&framed(&msg)), hex(bytes), "encoding {msg:?}");
    }
}

#[test]
fn lenient_but_valid_encodings_decode() {
    // A str chunk (Python 2 style), as bytes.
    assert_eq!(
        decode("93 04 cd 01 2c a0"),
        Ok(WorkerMessage::Chunk {
            sid: 300,
            data: Bytes::new()
        })
    );
    // Non-negative signed ints and oversized unsigned encodings of small numbers.
    for sid in [
        "d0 07",
        "d1 00 07",
        "d2 00 00 00 07",
        "d3 00 00 00 00 00 00 00 07",
        "cc 07",
        "cd 00 07",
        "ce 00 00 00 07",
        "cf 00 00 00 00 00 00 00 07",
    ] {
        assert_eq!(
            decode(&format!("92 05 {sid}")),
            Ok(WorkerMessage::Choke { sid: 7 })
        );
    }
    // array16 header, bin16 data, str8 event, map16 meta with urgent false.
    assert_eq!(
        decode("dc 00 03 04 01 c5 00 02 61 62"),
        Ok(WorkerMessage::Chunk {
            sid: 1,
            data: Bytes::from_static(b"ab")
        })
    );
    assert_eq!(
        decode("94 03 01 d9 01 65 de 00 01 a6 75 72 67 65 6e 74 c2"),
        Ok(WorkerMessage::Invoke {
            sid: 1,
            event: "e".into(),
            meta: JobMeta::default()
        })
    );
}

#[test]
fn every_message_round_trips() {
    let messages = [
        WorkerMessage::Handshake {
            worker_id: "wörker".into(),
            version: u32::MAX,
            pid: 0,
        },
        WorkerMessage::Heartbeat,
        WorkerMessage::Invoke {
            sid: 0,
            event: String::new(),
            meta: JobMeta::default(),
        },
        WorkerMessage::Invoke {
            sid: u64::MAX,
            event: "x".repeat(300),
            meta: full_meta(),
        },
        WorkerMessage::Chunk {
            sid: 1,
            data: Bytes::new(),
        },
        WorkerMessage::Choke { sid: 2 },
        WorkerMessage::Error {
            sid: 3,
            code: 404,
            message: "no handler".into(),
        },
        WorkerMessage::Cancel { sid: 4 },
        WorkerMessage::Terminate {
            reason: String::new(),
        },
    ];
    for msg in messages {
        assert_eq!(WorkerMessage::decode(body(&framed(&msg))), Ok(msg));
    }
}

/// Payload sizes on both sides of every msgpack length class.
#[test]
fn length_class_boundaries_round_trip() {
    for len in [0, 1, 15, 31, 32, 255, 256, 65535, 65536, 70000] {
        let data = Bytes::from(vec![0xa5; len]);
        let text = "é".repeat(len / 2) + &"a".repeat(len % 2);
        for msg in [
            WorkerMessage::Chunk {
                sid: len as u64,
                data: data.clone(),
            },
            WorkerMessage::Terminate { reason: text },
        ] {
            assert_eq!(WorkerMessage::decode(body(&framed(&msg))), Ok(msg));
        }
    }
}

/// A free encoder with its arguments bound.
type Encoder = dyn Fn(&mut BytesMut);

#[test]
fn free_encoders_match_encode_framed() {
    let meta = full_meta();
    let cases: Vec<(WorkerMessage, Box<Encoder>)> = vec![
        (
            WorkerMessage::Invoke {
                sid: 9,
                event: "ev".into(),
                meta: meta.clone(),
            },
            Box::new(move |o| worker::encode_invoke(o, 9, "ev", &meta)),
        ),
        (
            WorkerMessage::Chunk {
                sid: 9,
                data: Bytes::from_static(b"abc"),
            },
            Box::new(|o| worker::encode_chunk(o, 9, b"abc")),
        ),
        (
            WorkerMessage::Choke { sid: 9 },
            Box::new(|o| worker::encode_choke(o, 9)),
        ),
        (
            WorkerMessage::Error {
                sid: 9,
                code: 500,
                message: "m".into(),
            },
            Box::new(|o| worker::encode_error(o, 9, 500, "m")),
        ),
        (
            WorkerMessage::Cancel { sid: 9 },
            Box::new(|o| worker::encode_cancel(o, 9)),
        ),
        (WorkerMessage::Heartbeat, Box::new(worker::encode_heartbeat)),
        (
            WorkerMessage::Terminate { reason: "r".into() },
            Box::new(|o| worker::encode_terminate(o, "r")),
        ),
        (
            WorkerMessage::Handshake {
                worker_id: "w".into(),
                version: 1,
                pid: 2,
            },
            Box::new(|o| worker::encode_handshake(o, "w", 1, 2)),
        ),
    ];
    for (msg, encode) in cases {
        // Encoders append: start from a non-empty buffer.
        let mut out = BytesMut::from(&b"xy"[..]);
        encode(&mut out);
        assert_eq!(&out[..2], b"xy");
        assert_eq!(&out[2..], &framed(&msg)[..], "{msg:?}");
    }
}

#[test]
fn error_not_an_array() {
    assert_eq!(decode("a3 61 62 63"), Err(DecodeError::NotAnArray));
    assert_eq!(decode("80"), Err(DecodeError::NotAnArray));
    assert_eq!(decode("02"), Err(DecodeError::NotAnArray));
    assert_eq!(decode("90"), Err(DecodeError::MissingKind));
}

#[test]
fn error_unknown_kind() {
    // Kind 9 is the HTTP reply head now; 10 is the first unknown kind.
    assert_eq!(decode("91 0a"), Err(DecodeError::UnknownKind(10)));
    assert_eq!(
        decode("91 09"),
        Err(DecodeError::WrongArity {
            kind: 9,
            expected: 3,
            got: 1
        })
    );
    assert_eq!(decode("91 00"), Err(DecodeError::UnknownKind(0)));
    assert_eq!(
        decode("91 cf ff ff ff ff ff ff ff ff"),
        Err(DecodeError::UnknownKind(u64::MAX))
    );
    assert_eq!(
        decode("91 0a").unwrap_err().to_string(),
        "unknown message kind 10"
    );
}

#[test]
fn error_wrong_arity() {
    let err = decode("92 02 00").unwrap_err();
    assert_eq!(
        err,
        DecodeError::WrongArity {
            kind: 2,
            expected: 1,
            got: 2
        }
    );
    assert_eq!(err.to_string(), "message kind 2 takes 1 elements, got 2");
    assert_eq!(
        decode("94 04 01 c4 00 00"),
        Err(DecodeError::WrongArity {
            kind: 4,
            expected: 3,
            got: 4
        })
    );
    // A huge declared arity is rejected before anything is read.
    assert_eq!(
        decode("dd ff ff ff ff 05"),
        Err(DecodeError::WrongArity {
            kind: 5,
            expected: 2,
            got: u32::MAX as usize
        })
    );
}

#[test]
fn error_wrong_type() {
    let wrong = |field, expected| Err(DecodeError::WrongType { field, expected });
    assert_eq!(decode("91 a1 32"), wrong("kind", "an unsigned integer"));
    assert_eq!(decode("92 05 a1 78"), wrong("sid", "an unsigned integer"));
    assert_eq!(
        decode("92 05 cb 40 1c 00 00 00 00 00 00"),
        wrong("sid", "an unsigned integer")
    );
    assert_eq!(decode("93 04 07 c3"), wrong("data", "binary or a string"));
    assert_eq!(decode("92 08 c4 01 61"), wrong("reason", "a string"));
    assert_eq!(decode("94 03 07 a1 65 90"), wrong("meta", "a map"));
    assert_eq!(
        decode("94 03 07 a1 65 81 a6 75 72 67 65 6e 74 01"),
        wrong("meta.urgent", "a boolean")
    );
    assert_eq!(
        decode("94 03 07 a1 65 81 a4 75 73 65 72 c4 01 61"),
        wrong("meta.user", "a string")
    );
    assert_eq!(
        decode("94 03 07 a1 65 81 a7 74 69 6d 65 6f 75 74 a1 31"),
        wrong("meta.timeout", "an unsigned integer")
    );
    assert_eq!(
        decode("92 05 a1 78").unwrap_err().to_string(),
        "field `sid`: expected an unsigned integer"
    );
}

#[test]
fn error_out_of_range() {
    let range = |field, expected| Err(DecodeError::OutOfRange { field, expected });
    assert_eq!(decode("92 05 ff"), range("sid", "an unsigned integer"));
    assert_eq!(decode("92 05 d0 ff"), range("sid", "an unsigned integer"));
    assert_eq!(
        decode("92 05 d3 80 00 00 00 00 00 00 00"),
        range("sid", "an unsigned integer")
    );
    assert_eq!(
        decode("94 01 a1 77 01 cf 00 00 00 01 00 00 00 00"),
        range("pid", "u32")
    );
    assert_eq!(
        decode("94 06 01 cf 00 00 00 01 00 00 00 00 a0"),
        range("code", "u32")
    );
}

#[test]
fn error_invalid_utf8() {
    let err = decode("92 08 a2 c3 28").unwrap_err();
    assert_eq!(err, DecodeError::InvalidUtf8 { field: "reason" });
    assert_eq!(err.to_string(), "field `reason` is not valid UTF-8");
    assert_eq!(
        decode("94 03 07 a1 ff 80"),
        Err(DecodeError::InvalidUtf8 { field: "event" })
    );
    // Chunk data sent as str is bytes to us: no UTF-8 check.
    assert_eq!(
        decode("93 04 07 a1 ff"),
        Ok(WorkerMessage::Chunk {
            sid: 7,
            data: Bytes::from_static(b"\xff")
        })
    );
}

#[test]
fn error_truncated_at_every_prefix() {
    let meta = full_meta();
    let msgs = [
        WorkerMessage::Invoke {
            sid: 1 << 40,
            event: "echo".into(),
            meta,
        },
        WorkerMessage::Chunk {
            sid: 7,
            data: Bytes::from(vec![1; 300]),
        },
        WorkerMessage::Error {
            sid: 7,
            code: 70000,
            message: "m".into(),
        },
        WorkerMessage::Handshake {
            worker_id: "w".into(),
            version: 1,
            pid: 99999,
        },
    ];
    for msg in msgs {
        let encoded = framed(&msg);
        let body = body(&encoded);
        for end in 0..body.len() {
            assert_eq!(
                WorkerMessage::decode(&body[..end]),
                Err(DecodeError::Truncated),
                "{msg:?} cut at {end}"
            );
        }
    }
    assert_eq!(
        decode("93 04 07 c4 05 68 65").unwrap_err().to_string(),
        "truncated input"
    );
}

#[test]
fn error_trailing_bytes() {
    let err = decode("91 02 00 00").unwrap_err();
    assert_eq!(err, DecodeError::TrailingBytes(2));
    assert_eq!(err.to_string(), "2 trailing bytes after the message");
}

#[test]
fn error_map_keys() {
    let err = decode("94 03 07 a1 65 81 a3 66 6f 6f 01").unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnknownKey {
            map: "meta",
            key: "foo".into()
        }
    );
    assert_eq!(err.to_string(), "`meta` has unknown key \"foo\"");
    assert_eq!(
        decode("94 03 07 a1 65 81 01 01"),
        Err(DecodeError::InvalidMapKey { map: "meta" })
    );
    assert_eq!(
        decode("94 03 07 a1 65 81 a1 ff 01"),
        Err(DecodeError::InvalidMapKey { map: "meta" })
    );
    assert_eq!(
        decode("94 03 07 a1 65 82 a4 74 61 73 6b a0 a4 74 61 73 6b a0"),
        Err(DecodeError::DuplicateKey {
            map: "meta",
            key: "task"
        })
    );
    // Long keys are shortened in the error, at a char boundary.
    let key = "é".repeat(100);
    let mut msg = hex("94 03 07 a1 65 81 d9");
    msg.push(key.len() as u8);
    msg.extend_from_slice(key.as_bytes());
    msg.push(0x01);
    match WorkerMessage::decode(&msg) {
        Err(DecodeError::UnknownKey { key, .. }) => {
            assert!(key.len() <= 64 + '…'.len_utf8());
            assert!(key.ends_with('…'));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn decode_bytes_shares_the_frame_buffer() {
    let mut out = BytesMut::new();
    worker::encode_chunk(&mut out, 1, &[7; 4096]);
    let frame = out.freeze().slice(4..);
    let msg = WorkerMessage::decode_bytes(&frame).unwrap();
    let WorkerMessage::Chunk { data, .. } = &msg else {
        panic!("{msg:?}")
    };
    let range = frame.as_ptr_range();
    assert!(range.contains(&data.as_ptr()), "chunk data was copied");
    assert_eq!(Ok(msg), WorkerMessage::decode(&frame));
    // Empty chunks too.
    let mut out = BytesMut::new();
    worker::encode_chunk(&mut out, 1, b"");
    let frame = out.freeze().slice(4..);
    assert_eq!(
        WorkerMessage::decode_bytes(&frame),
        Ok(WorkerMessage::Chunk {
            sid: 1,
            data: Bytes::new()
        })
    );
}

#[test]
fn frame_decoder_splits_and_joins() {
    let mut stream = BytesMut::new();
    write_frame(&mut stream, b"one");
    write_frame(&mut stream, b"");
    write_frame(&mut stream, b"three");
    let expected: Vec<&[u8]> = vec![b"one", b"", b"three"];

    let mut all = FrameDecoder::new(16);
    all.push(&stream);
    let mut got = Vec::new();
    while let Some(f) = all.next_frame().unwrap() {
        got.push(f);
    }
    assert_eq!(got, expected);
    assert_eq!(all.buffered(), 0);

    let mut bytewise = FrameDecoder::new(16);
    let mut got = Vec::new();
    for b in stream.iter() {
        bytewise.push(&[*b]);
        while let Some(f) = bytewise.next_frame().unwrap() {
            got.push(f);
        }
    }
    assert_eq!(got, expected);
    assert_eq!(bytewise.next_frame(), Ok(None));
}

#[test]
fn frame_decoder_too_large_poisons() {
    let mut d = FrameDecoder::new(5);
    let mut stream = BytesMut::new();
    write_frame(&mut stream, b"12345");
    write_frame(&mut stream, b"123456");
    write_frame(&mut stream, b"1");
    d.push(&stream);
    assert_eq!(d.next_frame(), Ok(Some(Bytes::from_static(b"12345"))));
    let err = DecodeError::TooLarge { size: 6, limit: 5 };
    assert_eq!(d.next_frame(), Err(err.clone()));
    assert!(d.is_poisoned());
    d.push(&[0, 0, 0, 0]);
    assert_eq!(d.next_frame(), Err(err.clone()));
    assert_eq!(
        err.to_string(),
        "message of 6 bytes exceeds the limit of 5 bytes"
    );
    // The prefix alone is enough to refuse: no need to wait for the body.
    let mut d = FrameDecoder::new(1024);
    d.push(&[0xff, 0xff, 0xff, 0xff]);
    assert_eq!(
        d.next_frame(),
        Err(DecodeError::TooLarge {
            size: u32::MAX as usize,
            limit: 1024
        })
    );
}

/// A big frame arriving in tiny reads must not be copied once per read.
#[test]
fn frame_decoder_is_linear_on_small_reads() {
    let body = vec![3u8; 4 << 20];
    let mut stream = BytesMut::new();
    write_frame(&mut stream, &body);
    write_frame(&mut stream, b"tail");
    let mut d = FrameDecoder::new(8 << 20);
    let mut frames = Vec::new();
    let started = std::time::Instant::now();
    for piece in stream.chunks(7) {
        d.push(piece);
        while let Some(f) = d.next_frame().unwrap() {
            frames.push(f);
        }
    }
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0], body);
    // Quadratic copying of 4 MiB in 7-byte reads would take minutes.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

fn arb_meta() -> impl Strategy<Value = JobMeta> {
    (
        any::<bool>(),
        any::<Option<u64>>(),
        any::<Option<u64>>(),
        any::<Option<String>>(),
        any::<Option<String>>(),
        any::<Option<String>>(),
        proptest::option::of(arb_http_meta().prop_map(Box::new)),
    )
        .prop_map(
            |(urgent, timeout_ms, deadline_ms, user, peer, task, http)| JobMeta {
                urgent,
                timeout_ms,
                deadline_ms,
                user,
                peer,
                task,
                http,
            },
        )
}

fn arb_http_meta() -> impl Strategy<Value = HttpMeta> {
    let pairs = proptest::collection::vec((any::<String>(), any::<String>()), 0..4);
    (
        any::<String>(),
        any::<String>(),
        any::<String>(),
        any::<String>(),
        pairs,
    )
        .prop_map(|(method, path, query, version, headers)| HttpMeta {
            method,
            path,
            query,
            version,
            headers,
        })
}

fn arb_reply_head() -> impl Strategy<Value = ReplyHead> {
    let pairs =
        proptest::collection::vec(("[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,20}", "[ -~]{0,40}"), 0..4);
    (200u16..600, pairs).prop_map(|(status, headers)| ReplyHead { status, headers })
}

fn arb_message() -> impl Strategy<Value = WorkerMessage> {
    let data = proptest::collection::vec(any::<u8>(), 0..600).prop_map(Bytes::from);
    prop_oneof![
        (any::<String>(), any::<u32>(), any::<u32>()).prop_map(|(worker_id, version, pid)| {
            WorkerMessage::Handshake {
                worker_id,
                version,
                pid,
            }
        }),
        Just(WorkerMessage::Heartbeat),
        (any::<u64>(), any::<String>(), arb_meta())
            .prop_map(|(sid, event, meta)| WorkerMessage::Invoke { sid, event, meta }),
        (any::<u64>(), data).prop_map(|(sid, data)| WorkerMessage::Chunk { sid, data }),
        any::<u64>().prop_map(|sid| WorkerMessage::Choke { sid }),
        (any::<u64>(), any::<u32>(), any::<String>())
            .prop_map(|(sid, code, message)| WorkerMessage::Error { sid, code, message }),
        any::<u64>().prop_map(|sid| WorkerMessage::Cancel { sid }),
        any::<String>().prop_map(|reason| WorkerMessage::Terminate { reason }),
        (any::<u64>(), arb_reply_head()).prop_map(|(sid, head)| WorkerMessage::Head { sid, head }),
    ]
}

proptest! {
    #[test]
    fn prop_messages_round_trip(msg in arb_message()) {
        let encoded = framed(&msg);
        prop_assert_eq!(WorkerMessage::decode(body(&encoded)), Ok(msg));
        check_worker_frame(&Bytes::copy_from_slice(body(&encoded)));
    }

    #[test]
    fn prop_any_split_yields_the_same_frames(
        msgs in proptest::collection::vec(arb_message(), 0..20),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let mut stream = BytesMut::new();
        for m in &msgs {
            m.encode_framed(&mut stream);
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.push(0);
        cuts.push(stream.len());
        cuts.sort_unstable();
        let mut d = FrameDecoder::new(1 << 20);
        let mut got = Vec::new();
        for w in cuts.windows(2) {
            d.push(&stream[w[0]..w[1]]);
            while let Some(frame) = d.next_frame().unwrap() {
                got.push(WorkerMessage::decode_bytes(&frame).unwrap());
            }
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn prop_decode_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = WorkerMessage::decode(&bytes);
        check_worker_stream(&bytes);
    }

    /// Corrupting one byte of a valid message must give an error or another valid message,
    /// never a panic, and whatever decodes must round-trip.
    #[test]
    fn prop_corrupted_messages_never_panic(
        msg in arb_message(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let encoded = framed(&msg);
        let mut body = body(&encoded).to_vec();
        let i = at.index(body.len());
        body[i] = byte;
        check_worker_frame(&Bytes::from(body));
    }
}
