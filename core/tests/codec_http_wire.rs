//! The worker channel's HTTP additions: `[9, sid, head]` and the invoke's `meta.http`, with
//! Python's bytes, and every way a head can be wrong.

use bytes::BytesMut;
use cocaine_core::codec::http_wire::{HttpMeta, ReplyHead};
use cocaine_core::codec::worker::{JobMeta, WorkerMessage};
use cocaine_core::codec::DecodeError;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("test vector is hex"))
        .collect()
}

fn encoded(msg: &WorkerMessage) -> Vec<u8> {
    let mut out = BytesMut::new();
    msg.encode_framed(&mut out);
    out[4..].to_vec()
}

/// Written by the Python SDK's msgpack codec.
#[test]
fn python_vectors_decode_and_encode_identically() {
    let head = WorkerMessage::Head {
        sid: 7,
        head: ReplyHead {
            status: 201,
            headers: vec![("content-type".into(), "text/plain".into())],
        },
    };
    let head_bytes = "93 09 07 82 a6 73 74 61 74 75 73 cc c9 a7 68 65 61 64 65 72 73 91 92 \
        ac 63 6f 6e 74 65 6e 74 2d 74 79 70 65 aa 74 65 78 74 2f 70 6c 61 69 6e";
    let invoke = WorkerMessage::Invoke {
        sid: 7,
        event: "web".into(),
        meta: JobMeta {
            http: Some(Box::new(HttpMeta {
                method: "GET".into(),
                path: "/".into(),
                query: "a=1".into(),
                version: "1.1".into(),
                headers: vec![("host".into(), "h".into())],
            })),
            ..JobMeta::default()
        },
    };
    let invoke_bytes = "94 03 07 a3 77 65 62 81 a4 68 74 74 70 85 a6 6d 65 74 68 6f 64 a3 47 \
        45 54 a4 70 61 74 68 a1 2f a5 71 75 65 72 79 a3 61 3d 31 a7 76 65 72 73 69 6f 6e a3 \
        31 2e 31 a7 68 65 61 64 65 72 73 91 92 a4 68 6f 73 74 a1 68";
    for (bytes, msg) in [(head_bytes, head), (invoke_bytes, invoke)] {
        assert_eq!(WorkerMessage::decode(&hex(bytes)), Ok(msg.clone()));
        assert_eq!(encoded(&msg), hex(bytes));
    }
}

#[test]
fn a_head_may_leave_out_status_and_headers() {
    // [9, 1, {}]
    assert_eq!(
        WorkerMessage::decode(&hex("93 09 01 80")),
        Ok(WorkerMessage::Head {
            sid: 1,
            head: ReplyHead::default()
        })
    );
    // [9, 1, {"status": 404}]
    let msg = WorkerMessage::decode(&hex("93 09 01 81 a6 73 74 61 74 75 73 cd 01 94")).unwrap();
    assert!(matches!(msg, WorkerMessage::Head { head, .. } if head.status == 404));
}

fn head_with(entries: &[u8], count: u8) -> Vec<u8> {
    [&[0x93, 0x09, 0x01, 0x80 | count][..], entries].concat()
}

fn pack_str(s: &str) -> Vec<u8> {
    assert!(s.len() < 32);
    [&[0xa0 | s.len() as u8][..], s.as_bytes()].concat()
}

fn headers_entry(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = pack_str("headers");
    out.push(0x90 | pairs.len() as u8);
    for (n, v) in pairs {
        out.push(0x92);
        out.extend(pack_str(n));
        out.extend(pack_str(v));
    }
    out
}

#[test]
fn bad_heads_are_rejected_with_a_clear_error() {
    let status = |v: &[u8]| [pack_str("status"), v.to_vec()].concat();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (head_with(&status(&[0x63]), 1), "200 to 599"), // 99
        (head_with(&status(&[0xcd, 0x02, 0x58]), 1), "200 to 599"), // 600
        (
            head_with(&status(&[0xa2, b'o', b'k']), 1),
            "unsigned integer",
        ),
        (head_with(&status(&[0xff]), 1), "out of range"), // -1
        (
            head_with(&headers_entry(&[("bad name", "v")]), 1),
            "non-empty token",
        ),
        (
            head_with(&headers_entry(&[("", "v")]), 1),
            "non-empty token",
        ),
        (
            head_with(&headers_entry(&[("x", "a\r\nSet-Cookie: y")]), 1),
            "CR, LF or NUL",
        ),
        (
            head_with(&headers_entry(&[("x", "a\0")]), 1),
            "CR, LF or NUL",
        ),
        (
            head_with(
                &[pack_str("headers"), vec![0x91, 0x91, 0xa1, b'x']].concat(),
                1,
            ),
            "[name, value] pair",
        ),
        (
            head_with(&[pack_str("headers"), vec![0x81]].concat(), 1),
            "an array",
        ),
        (
            head_with(&[pack_str("color"), vec![0x01]].concat(), 1),
            "unknown key",
        ),
        (
            head_with(&[status(&[0xcc, 0xc8]), status(&[0xcc, 0xc8])].concat(), 2),
            "twice",
        ),
        (hex("92 09 01"), "takes 3 elements"),
        (hex("93 09 01 c0"), "a map"),
        (hex("93 09 01 81"), "truncated"),
    ];
    for (bytes, needle) in cases {
        let err = WorkerMessage::decode(&bytes).expect_err("a bad head");
        assert!(
            err.to_string().contains(needle),
            "{err} should mention {needle:?}"
        );
    }
    // 257 headers: too many.
    let mut many = pack_str("headers");
    many.extend([0xdc, 0x01, 0x01]);
    for _ in 0..257 {
        many.extend([0x92, 0xa1, b'x', 0xa0]);
    }
    let err = WorkerMessage::decode(&head_with(&many, 1)).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Invalid {
            field: "head.headers",
            reason: "more than 256 headers"
        }
    );
}

#[test]
fn bad_http_meta_is_rejected() {
    // meta.http without a method: [3, 1, "e", {"http": {"path": "/", "version": "1.1"}}]
    let mut bytes = hex("94 03 01 a1 65 81");
    bytes.extend(pack_str("http"));
    bytes.push(0x82);
    bytes.extend(pack_str("path"));
    bytes.extend(pack_str("/"));
    bytes.extend(pack_str("version"));
    bytes.extend(pack_str("1.1"));
    let err = WorkerMessage::decode(&bytes).unwrap_err();
    assert_eq!(
        err,
        DecodeError::MissingKey {
            map: "meta.http",
            key: "method"
        }
    );
}
