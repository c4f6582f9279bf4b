//! ZMTP 3.x as the node's ROUTER endpoints speak it: handshake, framing under every split of
//! the stream, limits, and hostile peers (`cocaine_core::zmtp`).

use std::fs;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use cocaine_core::zmtp::fuzzing::{check_zmtp_stream, dealer_handshake, run, FUZZ_MAX_MESSAGE};
use cocaine_core::zmtp::{encode_command, encode_message, Command, Connection, ZmtpError};
use proptest::prelude::*;

fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

/// A greeting with the given version and mechanism, and a READY with these properties.
fn handshake(major: u8, minor: u8, mechanism: &[u8], properties: &[(&str, &[u8])]) -> Vec<u8> {
    let mut g = [0u8; 64];
    g[0] = 0xFF;
    g[8] = 1;
    g[9] = 0x7F;
    g[10] = major;
    g[11] = minor;
    g[12..12 + mechanism.len()].copy_from_slice(mechanism);
    let mut out = BytesMut::from(&g[..]);
    let metadata = properties
        .iter()
        .map(|(name, value)| ((*name).to_owned(), b(value)))
        .collect();
    encode_command(&Command::Ready(metadata), &mut out);
    out.to_vec()
}

fn message(frames: &[&[u8]]) -> Vec<u8> {
    let frames: Vec<Bytes> = frames.iter().map(|f| b(f)).collect();
    let mut out = BytesMut::new();
    encode_message(&frames, &mut out);
    out.to_vec()
}

fn error_of(stream: &[u8], max: usize) -> Option<ZmtpError> {
    run(stream, &[stream.len().max(1)], max).1
}

#[test]
fn a_dealer_handshakes_and_sends_multipart_messages() {
    let mut stream = dealer_handshake();
    stream.extend(message(&[b"", b"hello", &[7u8; 300]]));
    stream.extend(message(&[b"second"]));
    let (messages, error, written) = run(&stream, &[stream.len()], 1 << 20);
    assert_eq!(error, None);
    assert_eq!(
        messages,
        vec![
            vec![b(b""), b(b"hello"), b(&[7u8; 300])],
            vec![b(b"second")]
        ]
    );
    // Our greeting says 3.1 NULL, then READY names us a ROUTER.
    assert_eq!(&written[..2], &[0xFF, 0]);
    assert_eq!(written[9..12], [0x7F, 3, 1]);
    assert_eq!(&written[12..16], b"NULL");
    let ready = &written[64..];
    assert_eq!(ready[0], 0x04);
    assert!(ready.windows(6).any(|w| w == b"ROUTER"));
}

#[test]
fn req_router_and_zmtp_3_0_peers_are_accepted_and_their_identity_read() {
    for (major, minor, kind) in [
        (3, 0, "REQ"),
        (3, 1, "ROUTER"),
        (3, 0, "DEALER"),
        (4, 0, "req"),
    ] {
        let stream = handshake(
            major,
            minor,
            b"NULL",
            &[("Socket-Type", kind.as_bytes()), ("Identity", b"me")],
        );
        let mut conn = Connection::new(1024);
        conn.push(&stream);
        assert_eq!(conn.poll(), Ok(None), "{kind}");
        let peer = conn.peer().expect("open");
        assert_eq!(peer.version, (major, minor));
        assert_eq!(peer.identity.as_deref(), Some(&b"me"[..]));
        assert_eq!(conn.finish(), Ok(()));
    }
}

#[test]
fn hostile_handshakes_fail_with_a_clear_error() {
    let dealer: &[(&str, &[u8])] = &[("Socket-Type", b"DEALER")];
    let mut bad_signature = dealer_handshake();
    bad_signature[0] = 0x00;
    assert_eq!(error_of(&bad_signature, 64), Some(ZmtpError::BadSignature));
    let mut zmtp_1 = dealer_handshake();
    zmtp_1[9] = 0x7E;
    assert_eq!(error_of(&zmtp_1, 64), Some(ZmtpError::BadSignature));
    assert_eq!(
        error_of(&handshake(2, 0, b"NULL", dealer), 64),
        Some(ZmtpError::OldVersion { major: 2 })
    );
    assert_eq!(
        error_of(&handshake(3, 1, b"CURVE", dealer), 64),
        Some(ZmtpError::Mechanism("CURVE".to_owned()))
    );
    for kind in ["PUB", "SUB", "PUSH", "PULL", "PAIR", "REP", "STREAM"] {
        assert_eq!(
            error_of(
                &handshake(3, 1, b"NULL", &[("Socket-Type", kind.as_bytes())]),
                64
            ),
            Some(ZmtpError::SocketType(kind.to_owned()))
        );
    }
    assert_eq!(
        error_of(&handshake(3, 1, b"NULL", &[("Identity", b"x")]), 64),
        Some(ZmtpError::NoSocketType)
    );
    // A message before READY.
    let mut early = dealer_handshake()[..64].to_vec();
    early.extend(message(&[b"hi"]));
    assert_eq!(
        error_of(&early, 64),
        Some(ZmtpError::ExpectedReady("a message frame".to_owned()))
    );
    // A property whose value runs past the frame.
    let mut malformed = dealer_handshake()[..64].to_vec();
    malformed.extend([
        0x04, 12, 5, b'R', b'E', b'A', b'D', b'Y', 1, b'a', 0, 0, 0, 9,
    ]);
    assert!(matches!(
        error_of(&malformed, 64),
        Some(ZmtpError::Malformed(_))
    ));
    // An unknown command, before and after the handshake.
    let mut unknown = dealer_handshake()[..64].to_vec();
    unknown.extend([0x04, 5, 4, b'H', b'U', b'H', b'?']);
    assert_eq!(
        error_of(&unknown, 64),
        Some(ZmtpError::UnknownCommand("HUH?".to_owned()))
    );
    let mut after = dealer_handshake();
    after.extend([0x04, 5, 4, b'H', b'U', b'H', b'?']);
    assert_eq!(
        error_of(&after, 64),
        Some(ZmtpError::UnknownCommand("HUH?".to_owned()))
    );
    // Reserved flag bits, a command with MORE, a huge command.
    let mut reserved = dealer_handshake();
    reserved.extend([0x10, 0]);
    assert_eq!(
        error_of(&reserved, 64),
        Some(ZmtpError::ReservedFlags(0x10))
    );
    let mut more = dealer_handshake();
    more.extend([0x05, 0]);
    assert!(matches!(error_of(&more, 64), Some(ZmtpError::Malformed(_))));
    let mut huge = dealer_handshake()[..64].to_vec();
    huge.extend([0x06, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert!(matches!(
        error_of(&huge, 64),
        Some(ZmtpError::CommandTooLarge { .. })
    ));
}

#[test]
fn a_hostile_peer_is_told_why_after_the_greeting() {
    let mut unknown = dealer_handshake();
    unknown.extend([0x04, 5, 4, b'H', b'U', b'H', b'?']);
    let (_, _, written) = run(&unknown, &[unknown.len()], 64);
    assert!(written.windows(5).any(|w| w == b"ERROR"));
}

#[test]
fn truncated_streams_are_errors_at_the_end() {
    let whole = {
        let mut s = dealer_handshake();
        s.extend(message(&[b"a", b"bcd"]));
        s
    };
    let hs = dealer_handshake().len();
    for cut in [10, 64, hs - 1, hs + 1, whole.len() - 1, hs + 3] {
        let error = error_of(&whole[..cut], 1024);
        assert!(
            matches!(error, Some(ZmtpError::Truncated(_))),
            "cut at {cut}: {error:?}"
        );
    }
    assert_eq!(error_of(&whole, 1024), None);
}

#[test]
fn an_oversized_frame_is_refused_from_its_header() {
    let mut conn = Connection::new(1000);
    conn.push(&dealer_handshake());
    assert_eq!(conn.poll(), Ok(None));
    // A long frame announcing 1 GiB: refused before a byte of it arrives.
    conn.push(&[0x02, 0, 0, 0, 0, 0x40, 0, 0, 0]);
    assert!(matches!(
        conn.poll(),
        Err(ZmtpError::TooLarge { limit: 1000, .. })
    ));
    // Poisoned: more bytes are not kept, the error stays.
    conn.push(&[0; 4096]);
    assert!(matches!(conn.poll(), Err(ZmtpError::TooLarge { .. })));
    // Frames each under the limit whose message is over it.
    let mut stream = dealer_handshake();
    stream.extend(message(&[&[1; 600], &[2; 600]]));
    assert!(matches!(
        error_of(&stream, 1000),
        Some(ZmtpError::TooLarge { .. })
    ));
    // So are many empty frames: headers count.
    let mut stream = dealer_handshake();
    stream.extend(message(&[&b""[..]; 600]));
    assert!(matches!(
        error_of(&stream, 1000),
        Some(ZmtpError::TooLarge { .. })
    ));
}

#[test]
fn a_frame_over_the_frame_limit_is_refused_from_its_header() {
    let mut conn = Connection::new(1 << 20).with_max_frame(1000);
    conn.push(&dealer_handshake());
    assert_eq!(conn.poll(), Ok(None));
    // Frames up to the limit pass, however many of them the message has.
    conn.push(&message(&[&[1; 1000], &[2; 1000], &[3; 1000]]));
    assert_eq!(conn.poll().unwrap().map(|m| m.len()), Some(3));
    // The header of a frame one byte over: refused before its body comes.
    conn.push(&[0x02, 0, 0, 0, 0, 0, 0, 0x03, 0xE9]);
    assert_eq!(
        conn.poll(),
        Err(ZmtpError::FrameTooLarge {
            size: 1001,
            limit: 1000
        })
    );
    // New limits apply to what comes next.
    let mut conn = Connection::new(1 << 20).with_max_frame(1000);
    conn.push(&dealer_handshake());
    assert_eq!(conn.poll(), Ok(None));
    conn.set_limits(2000, 1 << 20);
    conn.push(&message(&[&[1; 1500]]));
    assert_eq!(conn.poll().unwrap().map(|m| m.len()), Some(1));
    conn.set_limits(100, 1 << 20);
    conn.push(&message(&[&[1; 101]]));
    assert!(matches!(
        conn.poll(),
        Err(ZmtpError::FrameTooLarge { limit: 100, .. })
    ));
}

#[test]
fn ping_is_answered_with_pong_and_its_context() {
    let mut stream = dealer_handshake();
    let mut ping = BytesMut::new();
    encode_command(
        &Command::Ping {
            ttl: 30,
            context: b(b"ctx"),
        },
        &mut ping,
    );
    stream.extend_from_slice(&ping);
    stream.extend(message(&[b"x"]));
    let (messages, error, written) = run(&stream, &[7], 64);
    assert_eq!(error, None);
    assert_eq!(messages, vec![vec![b(b"x")]]);
    assert!(written.ends_with(&[0x04, 8, 4, b'P', b'O', b'N', b'G', b'c', b't', b'x']));
}

#[test]
fn a_peer_error_ends_the_connection() {
    let mut stream = dealer_handshake();
    encode_command(&Command::Error("bye".to_owned()), &mut BytesMut::new());
    let mut error = BytesMut::new();
    encode_command(&Command::Error("bye".to_owned()), &mut error);
    stream.extend_from_slice(&error);
    assert_eq!(
        error_of(&stream, 64),
        Some(ZmtpError::Peer("bye".to_owned()))
    );
}

fn frames_strategy() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
    let frame = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..8),
        proptest::collection::vec(any::<u8>(), 250..300),
    ];
    proptest::collection::vec(proptest::collection::vec(frame, 1..4), 0..6)
}

proptest! {
    /// Any split of a valid stream decodes to the messages that were encoded.
    #[test]
    fn every_split_decodes_the_same(
        messages in frames_strategy(),
        sizes in proptest::collection::vec(1usize..80, 1..6),
    ) {
        let mut stream = dealer_handshake();
        for m in &messages {
            let frames: Vec<&[u8]> = m.iter().map(Vec::as_slice).collect();
            stream.extend(message(&frames));
        }
        let (got, error, _) = run(&stream, &sizes, 1 << 20);
        prop_assert_eq!(error, None);
        let want: Vec<Vec<Bytes>> = messages
            .iter()
            .map(|m| m.iter().map(|f| b(f)).collect())
            .collect();
        prop_assert_eq!(got, want);
    }

    /// Hostile bytes, after a valid handshake or not, in any split: the same outcome as
    /// whole, never a message over the limit, never a panic.
    #[test]
    fn hostile_bytes_in_any_split(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_zmtp_stream(&data);
    }
}

fn corpus() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/zmtp_stream")
}

/// Seeds for the fuzz target: a valid conversation and the hostile cases above.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let with_handshake = |split: u8, rest: Vec<u8>| {
        let mut s = vec![8 | 1, split];
        s.extend(rest);
        s
    };
    let mut ping = BytesMut::new();
    encode_command(
        &Command::Ping {
            ttl: 1,
            context: b(b"c"),
        },
        &mut ping,
    );
    vec![
        (
            "messages",
            with_handshake(3, {
                let mut m = message(&[b"", b"hello", &[1; 300]]);
                m.extend(message(&[b"x"]));
                m
            }),
        ),
        ("ping", with_handshake(0, ping.to_vec())),
        (
            "oversized",
            with_handshake(5, vec![0x02, 0, 0, 0, 0, 0, 0, 0x20, 0]),
        ),
        ("reserved_flags", with_handshake(1, vec![0x80, 1, 0])),
        (
            "unknown_command",
            with_handshake(2, vec![4, 3, 2, b'H', b'I']),
        ),
        ("greeting_only", {
            let mut s = vec![0];
            s.extend_from_slice(&dealer_handshake()[..64]);
            s
        }),
        ("old_version", {
            let mut s = vec![0];
            s.extend(handshake(2, 0, b"NULL", &[("Socket-Type", b"REQ")]));
            s
        }),
        ("pub_peer", {
            let mut s = vec![0];
            s.extend(handshake(3, 0, b"NULL", &[("Socket-Type", b"PUB")]));
            s
        }),
    ]
}

#[test]
fn zmtp_corpus_is_current_and_replays() {
    let dir = corpus();
    let write = std::env::var_os("COCAINE_WRITE_CORPUS").is_some();
    if write {
        fs::create_dir_all(&dir).unwrap();
    }
    for (name, data) in seeds() {
        let path = dir.join(name);
        if write {
            fs::write(&path, &data).unwrap();
        } else {
            let committed = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                committed,
                data,
                "{} is stale (COCAINE_WRITE_CORPUS=1)",
                path.display()
            );
        }
    }
    let mut replayed = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let data = fs::read(entry.unwrap().path()).unwrap();
        check_zmtp_stream(&data);
        replayed += 1;
    }
    assert!(replayed >= seeds().len());
    const { assert!(FUZZ_MAX_MESSAGE < 8192) };
}
