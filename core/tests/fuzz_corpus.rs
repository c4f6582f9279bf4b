//! Replays the committed fuzz seed corpus (`fuzz/corpus/`) through the same checks the fuzz
//! targets run, so that `cargo test` catches regressions without cargo-fuzz.
//!
//! `seed_corpus_is_current` checks the committed seeds against their generators; with
//! `COCAINE_WRITE_CORPUS=1` it rewrites them instead (after a change of the wire format).

use std::fs;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use cocaine_core::codec::fuzzing::{check_native_message, check_raw_stream, check_worker_stream};
use cocaine_core::codec::http_wire::{self, HttpMeta, ReplyHead};
use cocaine_core::codec::native::{self, Auth, Policy};
use cocaine_core::codec::worker::{self, JobMeta};
use cocaine_core::http::fuzzing::check_http_stream;

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Every file of a target's corpus; fails if there is none, so the test cannot pass vacuously.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus(target);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let data = fs::read(&path).expect("corpus file");
            (path, data)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
}

#[test]
fn replay_worker_frame_corpus() {
    for (path, data) in inputs("worker_frame") {
        eprintln!("{}", path.display());
        check_worker_stream(&data);
    }
}

#[test]
fn replay_native_message_corpus() {
    for (path, data) in inputs("native_message") {
        eprintln!("{}", path.display());
        check_native_message(&data);
    }
}

#[test]
fn replay_http_request_corpus() {
    let now = std::time::Instant::now();
    for (path, data) in inputs("http_request") {
        eprintln!("{}", path.display());
        check_http_stream(&data, now);
    }
}

#[test]
fn replay_raw_frame_corpus() {
    for (path, data) in inputs("raw_frame") {
        eprintln!("{}", path.display());
        check_raw_stream(&data);
    }
}

#[test]
fn replay_manifest_corpus() {
    for (path, data) in inputs("manifest") {
        eprintln!("{}", path.display());
        cocaine_core::manifest::fuzzing::check_manifest(&data);
    }
}

/// Worker seeds: byte 0 is how many split sizes follow (see `check_worker_stream`).
fn worker_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let meta = JobMeta {
        urgent: true,
        timeout_ms: Some(5000),
        deadline_ms: Some(70000),
        user: Some("alice".into()),
        peer: Some("127.0.0.1:5555".into()),
        task: Some("http".into()),
        http: None,
    };
    let http_meta = JobMeta {
        task: Some("web".into()),
        http: Some(Box::new(HttpMeta {
            method: "POST".into(),
            path: "/u".into(),
            query: "x=1".into(),
            version: "1.1".into(),
            headers: vec![("host".into(), "a".into())],
        })),
        ..JobMeta::default()
    };
    let one = |f: &dyn Fn(&mut BytesMut)| {
        let mut out = BytesMut::new();
        f(&mut out);
        out.to_vec()
    };
    let frames: Vec<(&str, Vec<u8>)> = vec![
        (
            "handshake",
            one(&|o| worker::encode_handshake(o, "w-1", 1, 4242)),
        ),
        ("heartbeat", one(&worker::encode_heartbeat)),
        (
            "invoke",
            one(&|o| worker::encode_invoke(o, 7, "echo", &JobMeta::default())),
        ),
        (
            "invoke-meta",
            one(&|o| worker::encode_invoke(o, 1 << 40, "echo", &meta)),
        ),
        ("chunk", one(&|o| worker::encode_chunk(o, 7, b"hello"))),
        (
            "chunk-300",
            one(&|o| worker::encode_chunk(o, 300, &[0x5a; 300])),
        ),
        ("choke", one(&|o| worker::encode_choke(o, u64::MAX))),
        ("error", one(&|o| worker::encode_error(o, 7, 502, "boom"))),
        ("cancel", one(&|o| worker::encode_cancel(o, 65536))),
        ("terminate", one(&|o| worker::encode_terminate(o, "idle"))),
        (
            "invoke-http",
            one(&|o| worker::encode_invoke(o, 9, "web", &http_meta)),
        ),
        (
            "head",
            one(&|o| {
                let head = ReplyHead {
                    status: 201,
                    headers: vec![("content-type".into(), "text/plain".into())],
                };
                http_wire::encode_reply_head(o, 9, &head)
            }),
        ),
    ];
    let mut seeds = Vec::new();
    let mut session = vec![3u8, 0, 6, 250];
    for (name, frame) in &frames {
        session.extend_from_slice(frame);
        seeds.push((*name, [&[0u8][..], frame].concat()));
    }
    seeds.push(("session-split", session));
    // Python-style encodings: signed ints, str chunk, urgent false.
    let mut python = vec![1u8, 2];
    for body in [
        &b"\x92\x05\xd0\x07"[..],
        b"\x93\x04\x07\xa5hello",
        b"\x94\x03\x01\xa1e\x81\xa6urgent\xc2",
    ] {
        python.extend_from_slice(&(body.len() as u32).to_be_bytes());
        python.extend_from_slice(body);
    }
    seeds.push(("python-style", python));
    // Frames that fail: too large a prefix, trailing bytes, truncated stream.
    seeds.push(("too-large", vec![0, 0x00, 0x01, 0x00, 0x01, 0x91]));
    seeds.push(("trailing", vec![0, 0, 0, 0, 3, 0x91, 0x02, 0x00]));
    seeds.push(("truncated", vec![0, 0, 0, 0, 2, 0x93, 0x04]));
    seeds
}

fn native_seeds() -> Vec<(&'static str, Bytes)> {
    let policy = Policy {
        urgent: true,
        timeout_ms: Some(1000),
        deadline_ms: Some(60000),
        hop: 0,
        sealed: false,
    };
    let auth = Auth {
        user: "bob".into(),
        ts: 1_700_000_000_000,
        nonce: Bytes::from_static(b"abc"),
        app: None,
        body: None,
        sig: Bytes::from_static(&[1, 2, 3, 4]),
    };
    vec![
        (
            "open",
            native::encode_open(1, "echo", &Policy::default(), None),
        ),
        (
            "open-policy-auth",
            native::encode_open(2, "", &policy, Some(&auth)),
        ),
        ("chunk", native::encode_chunk(1, b"hello")),
        ("choke", native::encode_choke(1)),
        ("error", native::encode_error(0, 400, "bad frame")),
        ("cancel", native::encode_cancel(1)),
        ("ping", native::encode_ping(42)),
        ("pong", native::encode_pong(42)),
        // Python: [3, 1, "ping", {"urgent": False}, {... "nonce": "abc" ...}]
        (
            "python-open-str-nonce",
            Bytes::from_static(
                b"\x95\x03\x01\xa4ping\x81\xa6urgent\xc2\x84\xa4user\xa3bob\xa2ts\
                  \xcf\x00\x00\x01\x8b\xcf\xe5\x68\x00\xa5nonce\xa3abc\xa3sig\xc4\x02\x01\x02",
            ),
        ),
        (
            "unknown-policy-key",
            Bytes::from_static(b"\x95\x03\x01\xa0\x81\xa4mode\x01\xc0"),
        ),
    ]
}

/// Raw server seeds: byte 0 picks the framing (high bit: length) and how many split sizes
/// follow (low three bits; see `check_raw_stream`).
fn raw_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let length = |bodies: &[&[u8]]| {
        let mut out = Vec::new();
        for body in bodies {
            out.extend_from_slice(&(body.len() as u32).to_be_bytes());
            out.extend_from_slice(body);
        }
        out
    };
    vec![
        ("line", b"\0hello\n".to_vec()),
        ("line-crlf-empty", b"\x02\x03\x00one\r\n\ntwo\r\n".to_vec()),
        ("line-partial", b"\0done\nnot yet".to_vec()),
        ("line-at-limit", [&b"\0"[..], &[b'x'; 32], b"\r\n"].concat()),
        (
            "line-too-long",
            [&b"\x01\x05"[..], &[b'y'; 40], b"\nafter\n"].concat(),
        ),
        (
            "length",
            [&[0x80u8][..], &length(&[b"hi", b"", b"there"])].concat(),
        ),
        (
            "length-split",
            [&[0x83u8, 0, 2, 6][..], &length(&[b"abc", &[0u8; 32]])].concat(),
        ),
        (
            "length-too-large",
            [&[0x80u8][..], &length(&[b"ok"]), &[0, 0, 0, 33], &[1; 33]].concat(),
        ),
        ("length-huge-prefix", vec![0x80, 0xff, 0xff, 0xff, 0xff, 1]),
        ("length-truncated", vec![0x80, 0, 0, 0, 5, 1, 2]),
    ]
}

/// HTTP seeds: byte 0 is how many split sizes follow (bits 0-2) and the configuration
/// (bits 3-5; see `check_http_stream`).
fn http_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let seed = |flags: u8, sizes: &[u8], stream: &[u8]| {
        [&[flags << 3 | sizes.len() as u8][..], sizes, stream].concat()
    };
    let get = b"GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n";
    let post = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    let chunked = b"PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
        4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n";
    vec![
        ("get", seed(0, &[], get)),
        ("get-routes", seed(6, &[2, 9], get)),
        ("post", seed(1, &[3], post)),
        ("chunked", seed(3, &[0, 4, 1], chunked)),
        ("pipelined", seed(7, &[5], &[&get[..], post, chunked, get].concat())),
        (
            "http10-keep-alive",
            seed(2, &[], b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n"),
        ),
        (
            "expect-continue",
            seed(1, &[], b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"),
        ),
        (
            "smuggle-cl-te",
            seed(1, &[], b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ),
        (
            "chunk-bare-lf",
            seed(1, &[], b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n"),
        ),
        ("body-too-large", seed(0, &[], b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 65\r\n\r\n")),
        ("head-too-large", seed(0, &[], &[b'G'; 300])),
        ("garbage", seed(0, &[1], b"\x00\xff HTTP/9\r\n\r\n")),
    ]
}

/// The committed `fuzz/corpus/*/seed-*` files are what the generators make; with
/// `COCAINE_WRITE_CORPUS=1` they are rewritten instead.
#[test]
fn seed_corpus_is_current() {
    let write = std::env::var_os("COCAINE_WRITE_CORPUS").is_some_and(|v| v == "1");
    for (target, seeds) in [
        ("worker_frame", worker_seeds()),
        (
            "native_message",
            native_seeds()
                .into_iter()
                .map(|(n, b)| (n, b.to_vec()))
                .collect(),
        ),
        ("raw_frame", raw_seeds()),
        ("http_request", http_seeds()),
    ] {
        let dir = corpus(target);
        for (name, data) in seeds {
            let path = dir.join(format!("seed-{name}"));
            if write {
                fs::create_dir_all(&dir).expect("create corpus dir");
                fs::write(&path, &data).expect("write seed");
            } else {
                let committed =
                    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert_eq!(
                    committed,
                    data,
                    "{} is stale; regenerate with COCAINE_WRITE_CORPUS=1",
                    path.display()
                );
            }
        }
    }
}

/// The generated seeds pass the checks even before they are written out.
#[test]
fn generated_seeds_pass() {
    for (_, data) in worker_seeds() {
        check_worker_stream(&data);
    }
    for (_, data) in native_seeds() {
        check_native_message(&data);
    }
    for (_, data) in raw_seeds() {
        check_raw_stream(&data);
    }
    let now = std::time::Instant::now();
    for (_, data) in http_seeds() {
        check_http_stream(&data, now);
    }
}
