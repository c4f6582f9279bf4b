//! Replays the committed seeds of the replication fuzz targets (`fuzz/corpus/fetch_reply`,
//! `fuzz/corpus/tombstone`) through the checks the targets run, and keeps the seeds current:
//! with `COCAINE_WRITE_CORPUS=1` it rewrites them from their generators.

use crate::corpus;

use bytes::Bytes;
use cocaine_core::cluster::fetch::{decode_reply, encode_reply};
use cocaine_core::cluster::replication_fuzzing::{
    check_fetch_reply, check_tombstone, FUZZ_MAX_MESSAGE,
};
use cocaine_core::cluster::tombstone::{self, Tombstone};
use proptest::prelude::*;

/// Frames joined for the fuzz target: a separator byte first, then the frames split by it.
fn joined(frames: &[Bytes]) -> Vec<u8> {
    let separator = (0..=255u8)
        .find(|b| frames.iter().all(|f| !f.contains(b)))
        .expect("a free byte");
    let mut out = vec![separator];
    for (i, frame) in frames.iter().enumerate() {
        if i > 0 {
            out.push(separator);
        }
        out.extend_from_slice(frame);
    }
    out
}

fn fetch_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let manifest = br#"{"type":"binary","args":"worker","version":2,"cluster":{"replicate":true}}"#;
    let package = Bytes::from_static(b"a package archive");
    let with = encode_reply("echo", 2, manifest, Some(&package)).unwrap();
    let without = encode_reply("echo", 2, manifest, None).unwrap();
    let mut tampered = with.clone();
    tampered[1] = Bytes::from_static(b"another archive!!");
    vec![
        ("with-package.bin", joined(&with)),
        ("without-package.bin", joined(&without)),
        ("tampered-package.bin", joined(&tampered)),
        ("missing-package.bin", joined(&with[..1])),
        (
            "refused.bin",
            joined(&[Bytes::from_static(
                br#"{"error":{"code":404,"message":"no app named \"echo\""}}"#,
            )]),
        ),
        ("not-json.bin", joined(&[Bytes::from_static(b"{\"ok\":")])),
    ]
}

fn tombstone_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let t = Tombstone {
        version: 3,
        at_unix_ms: 1_700_000_000_000,
    };
    vec![
        ("valid.json", tombstone::encode("echo", t).to_vec()),
        ("other-app.json", tombstone::encode("web", t).to_vec()),
        (
            "negative.json",
            br#"{"app":"echo","version":-1,"deleted_at":0}"#.to_vec(),
        ),
        ("truncated.json", br#"{"app":"echo","vers"#.to_vec()),
    ]
}

#[test]
fn replay_fetch_reply_corpus() {
    corpus::replay("fetch_reply", &fetch_seeds(), check_fetch_reply);
    // The seeds reach both the accepting path and the errors.
    let decoded: Vec<bool> = fetch_seeds()
        .iter()
        .map(|(_, data)| {
            let frames = cocaine_core::control::fuzzing::frames(data);
            decode_reply(&frames, FUZZ_MAX_MESSAGE).is_ok()
        })
        .collect();
    assert_eq!(decoded, [true, true, false, false, false, false]);
}

#[test]
fn replay_tombstone_corpus() {
    corpus::replay("tombstone", &tombstone_seeds(), check_tombstone);
}

proptest! {
    #[test]
    fn arbitrary_fetch_replies_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        check_fetch_reply(&data);
    }

    #[test]
    fn arbitrary_tombstones_never_panic(data in prop::collection::vec(any::<u8>(), 0..200)) {
        check_tombstone(&data);
    }
}
