//! Replays the committed seeds of the `etcd_record` fuzz target (`fuzz/corpus/etcd_record`)
//! through the check the target runs, and keeps the seeds current: with
//! `COCAINE_WRITE_CORPUS=1` it rewrites them from their generators.

use crate::corpus;

use cocaine_core::cluster::announcement::{AppAnnouncement, AppState, Load};
use cocaine_core::cluster::etcd::{decode_app, decode_member, AppRecord};
use cocaine_core::cluster::etcd_fuzzing::check_etcd_record;
use cocaine_core::cluster::Announcement;
use proptest::prelude::*;

fn member(bytes: &[u8]) -> Vec<u8> {
    [&[0u8][..], bytes].concat()
}

fn app(bytes: &[u8]) -> Vec<u8> {
    [&[1u8][..], bytes].concat()
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let announcement = Announcement {
        node_id: "node-a".into(),
        seq: 5,
        control: "tcp://127.0.0.2:5000".into(),
        apps: [(
            "echo".to_owned(),
            AppAnnouncement {
                version: 2,
                hash: "ab".repeat(32),
                tasks: [("hello".to_owned(), "tcp://127.0.0.2:9110".to_owned())].into(),
                load: Load::default(),
                state: AppState::Running,
            },
        )]
        .into(),
        sig: None,
    };
    let encoded = announcement.encode().unwrap();
    let other = Announcement {
        node_id: "node-b".into(),
        ..announcement
    }
    .encode()
    .unwrap();
    let live = AppRecord {
        app: "echo".into(),
        version: 3,
        hash: "0f".repeat(32),
        deleted_at: None,
    };
    let deleted = AppRecord {
        hash: String::new(),
        deleted_at: Some(1_700_000_000_000),
        ..live.clone()
    };
    vec![
        ("member.bin", member(&encoded)),
        ("member-other-node.bin", member(&other)),
        (
            "member-truncated.bin",
            member(&encoded[..encoded.len() / 2]),
        ),
        ("app-live.bin", app(&live.encode())),
        ("app-deleted.bin", app(&deleted.encode())),
        (
            "app-both.bin",
            app(br#"{"app":"echo","version":3,"hash":"ab","state":"deleted","deleted_at":1}"#),
        ),
        ("app-not-json.bin", app(b"{\"app\":")),
        ("key.bin", app(b"/cocaine/members/node-a\0")),
    ]
}

#[test]
fn replay_etcd_record_corpus() {
    let seeds = seeds();
    corpus::replay("etcd_record", &seeds, check_etcd_record);
    // The seeds reach both the accepting paths and the errors.
    let accepted: Vec<bool> = seeds
        .iter()
        .map(|(_, d)| match d[0] {
            0 => decode_member("node-a", &d[1..]).is_ok(),
            _ => decode_app("echo", &d[1..]).is_ok(),
        })
        .collect();
    assert_eq!(
        accepted,
        [true, false, false, true, true, false, false, false]
    );
}

proptest! {
    #[test]
    fn arbitrary_etcd_values_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
        check_etcd_record(&data);
    }
}
