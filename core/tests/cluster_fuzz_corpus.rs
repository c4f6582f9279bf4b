//! Replays the committed seeds of the `announcement` fuzz target (`fuzz/corpus/announcement/`)
//! through the checks the target runs. `seeds_are_current` checks the committed seeds against
//! their generator; `COCAINE_WRITE_CORPUS=1` rewrites them instead.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use cocaine_core::cluster::announcement::{AppAnnouncement, AppState, Load};
use cocaine_core::cluster::fuzzing::check_announcement;
use cocaine_core::cluster::Announcement;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/announcement")
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let app = AppAnnouncement {
        version: 2,
        hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        tasks: BTreeMap::from([
            ("hello".into(), "tcp://*:9110".into()),
            ("http".into(), "tcp://127.0.0.2:8080".into()),
        ]),
        load: Load {
            queue: 3,
            busy: 2,
            workers: 4,
            pool_limit: 10,
            queue_limit: 100,
        },
        state: AppState::Running,
    };
    let full = Announcement {
        node_id: "n-1".into(),
        seq: 1_700_000_000_000,
        control: "tcp://127.0.0.2:5000".into(),
        apps: BTreeMap::from([
            ("echo".into(), app.clone()),
            (
                "broken".into(),
                AppAnnouncement {
                    state: AppState::Broken,
                    tasks: BTreeMap::new(),
                    ..app.clone()
                },
            ),
        ]),
        sig: None,
    };
    let empty = Announcement {
        apps: BTreeMap::new(),
        ..full.clone()
    };
    let signed = Announcement {
        sig: Some(Bytes::from_static(&[7; 32])),
        ..empty.clone()
    };
    let full_bytes = full.encode().unwrap().to_vec();
    let signed_full = Announcement {
        sig: Some(Bytes::from(vec![0x5a; 384])),
        ..full.clone()
    };
    // A sig longer than any signature, and a sig that is a string, not bytes.
    let mut long_sig = empty.encode().unwrap().to_vec();
    long_sig.pop();
    long_sig.extend_from_slice(&[0xc5, 0x04, 0x01]);
    long_sig.extend(std::iter::repeat_n(1u8, 1025));
    let mut str_sig = empty.encode().unwrap().to_vec();
    str_sig.pop();
    str_sig.extend_from_slice(b"\xa3sig");
    // A full datagram: live apps and as many tombstones as fit with a signature's room.
    let mut crowded = full.clone();
    let tombstones = (0..2_000).map(|i| {
        (
            format!("deleted-{i:05}"),
            AppAnnouncement {
                version: i,
                hash: String::new(),
                tasks: BTreeMap::new(),
                load: Load::default(),
                state: AppState::Deleted,
            },
        )
    });
    cocaine_core::cluster::budget::fit(
        &mut crowded,
        tombstones,
        cocaine_core::cluster::budget::SIG_RESERVE,
    );
    crowded.sig = Some(Bytes::from(vec![0x11; 384]));
    vec![
        ("tombstones-full", crowded.encode().unwrap().to_vec()),
        ("signed-full", signed_full.encode().unwrap().to_vec()),
        ("sig-too-long", long_sig),
        ("sig-not-bin", str_sig),
        ("full", full_bytes.clone()),
        ("empty-apps", empty.encode().unwrap().to_vec()),
        ("signed", signed.encode().unwrap().to_vec()),
        ("truncated", full_bytes[..full_bytes.len() / 2].to_vec()),
        (
            "wrong-kind",
            [&[0x96u8, 0x02][..], &full_bytes[2..]].concat(),
        ),
        ("not-an-array", b"hello, cocaine".to_vec()),
    ]
}

#[test]
fn seeds_are_current() {
    let write = std::env::var_os("COCAINE_WRITE_CORPUS").is_some();
    for (name, bytes) in seeds() {
        let path = dir().join(name);
        if write {
            fs::create_dir_all(dir()).unwrap();
            fs::write(&path, &bytes).unwrap();
        } else {
            let committed = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                committed,
                bytes,
                "{} is stale (COCAINE_WRITE_CORPUS=1)",
                path.display()
            );
        }
    }
}

#[test]
fn replay_announcement_corpus() {
    let mut files: Vec<_> = fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "seeds missing in {}", dir().display());
    for path in files {
        eprintln!("{}", path.display());
        check_announcement(&fs::read(&path).unwrap());
    }
}
