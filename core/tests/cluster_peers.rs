//! The peer table with time driven by hand: joining, seq order, restarts, expiry after three
//! silent intervals, bounds, wildcard endpoints, counters.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use cocaine_core::cluster::announcement::{AppAnnouncement, AppState, Load};
use cocaine_core::cluster::{
    Announcement, DropReason, Observed, PeerTable, PeerTableConfig, Source,
};
use cocaine_core::Now;

const INTERVAL: Duration = Duration::from_secs(1);

fn table(max_peers: usize) -> PeerTable {
    PeerTable::new(PeerTableConfig {
        own_id: "me".into(),
        interval: INTERVAL,
        max_peers,
    })
}

fn start() -> Now {
    Now::new(
        Instant::now(),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    )
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn app(state: AppState, queue: u64) -> AppAnnouncement {
    AppAnnouncement {
        version: 1,
        hash: "00ff".into(),
        tasks: BTreeMap::from([("hello".into(), "tcp://*:9110".into())]),
        load: Load {
            queue,
            busy: 0,
            workers: 1,
            pool_limit: 4,
            queue_limit: 10,
        },
        state,
    }
}

fn ann(id: &str, seq: u64, control: &str, apps: &[(&str, AppAnnouncement)]) -> Announcement {
    Announcement {
        node_id: id.into(),
        seq,
        control: control.into(),
        apps: apps
            .iter()
            .map(|(n, a)| ((*n).to_owned(), a.clone()))
            .collect(),
        sig: None,
    }
}

fn udp(from: &str) -> Source {
    Source::Datagram(addr(from))
}

#[test]
fn a_peer_joins_updates_and_its_endpoints_are_resolved() {
    let mut t = table(16);
    let now = start();
    let a = ann(
        "b",
        10,
        "tcp://*:5000",
        &[("echo", app(AppState::Running, 0))],
    );
    assert_eq!(t.observe(now, udp("127.0.0.2:5000"), a), Observed::New);
    let peer = t.peer("b").unwrap();
    assert_eq!(peer.control, "tcp://127.0.0.2:5000");
    assert_eq!(peer.apps["echo"].tasks["hello"], "tcp://127.0.0.2:9110");
    assert_eq!(peer.last_seen_unix_ms, 1_700_000_000_000);

    let later = now + INTERVAL;
    let a = ann(
        "b",
        11,
        "tcp://*:5000",
        &[("echo", app(AppState::Running, 5))],
    );
    assert_eq!(
        t.observe(later, udp("127.0.0.2:5000"), a),
        Observed::Updated
    );
    let peer = t.peer("b").unwrap();
    assert_eq!(peer.apps["echo"].load.queue, 5);
    assert_eq!(peer.first_seen, now.mono);
    assert_eq!(peer.last_seen, later.mono);
}

#[test]
fn stale_duplicate_and_own_announcements_are_dropped_and_counted() {
    let mut t = table(16);
    let now = start();
    let src = udp("10.0.0.2:5000");
    assert_eq!(
        t.observe(now, src, ann("b", 10, "tcp://10.0.0.2:5000", &[])),
        Observed::New
    );
    for seq in [10, 9, 0] {
        assert_eq!(
            t.observe(now, src, ann("b", seq, "tcp://10.0.0.2:5000", &[])),
            Observed::Dropped(DropReason::Stale { seq, last: 10 })
        );
    }
    assert_eq!(
        t.observe(now, src, ann("me", 99, "tcp://10.0.0.1:5000", &[])),
        Observed::Dropped(DropReason::Own)
    );
    assert!(matches!(
        t.receive(now, addr("10.0.0.9:1"), b"\x96\x01garbage"),
        Observed::Dropped(DropReason::Malformed(_))
    ));
    let s = t.stats();
    assert_eq!(
        (s.received, s.accepted, s.stale, s.own, s.malformed),
        (6, 1, 3, 1, 1)
    );
    assert_eq!(t.peer("b").unwrap().seq, 10);
}

#[test]
fn a_peer_silent_for_three_intervals_is_forgotten() {
    let mut t = table(16);
    let now = start();
    t.observe(
        now,
        udp("10.0.0.2:5000"),
        ann("b", 1, "tcp://10.0.0.2:5000", &[]),
    );
    t.observe(
        now + INTERVAL,
        udp("10.0.0.3:5000"),
        ann("c", 1, "tcp://10.0.0.3:5000", &[]),
    );
    assert_eq!(t.poll_timeout(), Some(now.mono + INTERVAL * 3));

    assert!(t
        .expire(now.mono + INTERVAL * 3 - Duration::from_millis(1))
        .is_empty());
    let gone = t.expire(now.mono + INTERVAL * 3);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].node_id, "b");
    assert_eq!(
        t.peers().map(|p| p.node_id.as_str()).collect::<Vec<_>>(),
        ["c"]
    );
    assert_eq!(t.poll_timeout(), Some(now.mono + INTERVAL * 4));
    assert_eq!(t.expire(now.mono + INTERVAL * 4).len(), 1);
    assert!(t.is_empty());
    assert_eq!(t.poll_timeout(), None);
    assert_eq!(t.stats().forgotten, 2);
}

#[test]
fn hearing_from_a_peer_pushes_its_expiry_back() {
    let mut t = table(16);
    let now = start();
    let src = udp("10.0.0.2:5000");
    for i in 0..10u32 {
        let at = now + INTERVAL * (2 * i);
        t.observe(at, src, ann("b", u64::from(i), "tcp://10.0.0.2:5000", &[]));
        assert!(t.expire(at.mono + INTERVAL * 2).is_empty());
    }
    assert_eq!(t.len(), 1);
}

#[test]
fn a_forgotten_peer_comes_back_whatever_its_seq() {
    let mut t = table(16);
    let now = start();
    let src = udp("10.0.0.2:5000");
    t.observe(now, src, ann("b", 50, "tcp://10.0.0.2:5000", &[]));
    // The node restarted with a clock set back: its seq is lower, but the old entry has
    // expired by the time it is heard again, so it is a new peer.
    let later = now + INTERVAL * 3;
    assert_eq!(
        t.observe(later, src, ann("b", 3, "tcp://10.0.0.2:5000", &[])),
        Observed::New
    );
    assert_eq!(t.peer("b").unwrap().seq, 3);
}

#[test]
fn a_restart_under_a_new_id_replaces_the_old_entry() {
    let mut t = table(16);
    let now = start();
    let src = udp("10.0.0.2:5000");
    t.observe(now, src, ann("old", 5, "tcp://*:5000", &[]));
    assert_eq!(
        t.observe(now, src, ann("new", 1, "tcp://*:5000", &[])),
        Observed::Replaced {
            old_id: "old".into()
        }
    );
    assert_eq!(
        t.peers().map(|p| p.node_id.as_str()).collect::<Vec<_>>(),
        ["new"]
    );
    // The same control port on another host is another node.
    assert_eq!(
        t.observe(
            now,
            udp("10.0.0.3:5000"),
            ann("third", 1, "tcp://*:5000", &[])
        ),
        Observed::New
    );
}

#[test]
fn the_table_is_bounded() {
    let mut t = table(2);
    let now = start();
    for (i, id) in ["a", "b"].iter().enumerate() {
        let control = format!("tcp://10.0.0.{i}:5000");
        assert_eq!(
            t.observe(now, udp("10.0.0.9:1"), ann(id, 1, &control, &[])),
            Observed::New
        );
    }
    assert_eq!(
        t.observe(
            now,
            udp("10.0.0.9:1"),
            ann("c", 1, "tcp://10.0.0.5:5000", &[])
        ),
        Observed::Dropped(DropReason::Full(2))
    );
    // Known peers still update.
    assert_eq!(
        t.observe(
            now,
            udp("10.0.0.9:1"),
            ann("a", 2, "tcp://10.0.0.0:5000", &[])
        ),
        Observed::Updated
    );
    assert_eq!(t.stats().full, 1);
}

#[test]
fn nodes_running_an_app_are_found_with_their_entries() {
    let mut t = table(16);
    let now = start();
    t.observe(
        now,
        udp("10.0.0.2:1"),
        ann(
            "b",
            1,
            "tcp://10.0.0.2:5000",
            &[("echo", app(AppState::Running, 1))],
        ),
    );
    t.observe(
        now,
        udp("10.0.0.3:1"),
        ann(
            "c",
            1,
            "tcp://10.0.0.3:5000",
            &[("echo", app(AppState::Broken, 0))],
        ),
    );
    t.observe(
        now,
        udp("10.0.0.4:1"),
        ann(
            "d",
            1,
            "tcp://10.0.0.4:5000",
            &[("other", app(AppState::Running, 0))],
        ),
    );
    let with: Vec<_> = t
        .with_app("echo")
        .map(|(p, _)| p.node_id.as_str())
        .collect();
    assert_eq!(with, ["b", "c"]);
    let running: Vec<_> = t
        .running("echo")
        .map(|(p, a)| (p.node_id.as_str(), a.load.queue))
        .collect();
    assert_eq!(running, [("b", 1)]);
    assert_eq!(t.running("nothing").count(), 0);
}

#[test]
fn a_registry_feeds_the_same_table_and_can_remove_a_node() {
    let mut t = table(16);
    let now = start();
    let a = ann("b", 1, "tcp://*:5000", &[]);
    assert_eq!(t.observe(now, Source::Registry, a), Observed::New);
    // No sender address: the wildcard stays as announced.
    assert_eq!(t.peer("b").unwrap().control, "tcp://*:5000");
    assert!(t.forget("b"));
    assert!(!t.forget("b"));
    assert!(t.is_empty());
}

#[test]
fn wildcards_resolve_to_the_senders_address() {
    use cocaine_core::cluster::resolve_wildcard;
    let v4 = Some(addr("10.1.2.3:9").ip());
    let v6 = Some(addr("[fe80::1]:9").ip());
    assert_eq!(resolve_wildcard("tcp://*:80", v4), "tcp://10.1.2.3:80");
    assert_eq!(
        resolve_wildcard("tcp://0.0.0.0:80", v4),
        "tcp://10.1.2.3:80"
    );
    assert_eq!(resolve_wildcard("tcp://[::]:80", v6), "tcp://[fe80::1]:80");
    assert_eq!(
        resolve_wildcard("tcp://10.9.9.9:80", v4),
        "tcp://10.9.9.9:80"
    );
    assert_eq!(resolve_wildcard("ipc:///tmp/x", v4), "ipc:///tmp/x");
    assert_eq!(resolve_wildcard("tcp://*:80", None), "tcp://*:80");
}

mod props {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// One step: a node (of 6) announces with a seq moved by `delta` from its last, from one
    /// of two control endpoints, after `wait_ms` of silence.
    #[derive(Debug, Clone)]
    struct Step {
        node: u8,
        delta: i8,
        control: bool,
        wait_ms: u16,
    }

    fn step() -> impl Strategy<Value = Step> {
        (0u8..6, any::<i8>(), any::<bool>(), 0u16..2500).prop_map(
            |(node, delta, control, wait_ms)| Step {
                node,
                delta,
                control,
                wait_ms,
            },
        )
    }

    proptest! {
        /// Whatever the order, timing and seqs: the table stays within its bound, holds no
        /// peer silent for three intervals after `expire`, takes from a known node only a
        /// seq past the last it took, never holds two peers with one control endpoint, and
        /// counts every announcement once.
        #[test]
        fn the_table_keeps_its_rules(steps in prop::collection::vec(step(), 1..200)) {
            let mut t = table(4);
            let mut now = start();
            let mut seqs: BTreeMap<u8, u64> = BTreeMap::new();
            for s in &steps {
                now = now + Duration::from_millis(u64::from(s.wait_ms));
                let last = seqs.get(&s.node).copied().unwrap_or(1000);
                let seq = last.saturating_add_signed(i64::from(s.delta));
                seqs.insert(s.node, seq);
                let id = format!("n{}", s.node);
                // Two endpoints per pair of nodes: ids collide on them (restarts, moves).
                let control = format!("tcp://10.0.{}.{}:5000", s.node / 2, u8::from(s.control));
                let before = t.peer(&id).filter(|p| p.expires_at(INTERVAL) > now.mono).map(|p| p.seq);
                let observed = t.observe(now, udp("10.0.0.1:1"), ann(&id, seq, &control, &[]));
                match (&observed, before) {
                    (Observed::Updated, Some(last)) => prop_assert!(seq > last),
                    (Observed::Dropped(DropReason::Stale { .. }), Some(last)) => prop_assert!(seq <= last),
                    (Observed::Dropped(DropReason::Stale { .. }), None) => prop_assert!(false, "stale from an unknown node"),
                    _ => {}
                }
                t.expire(now.mono);
                prop_assert!(t.len() <= 4);
                for p in t.peers() {
                    prop_assert!(p.expires_at(INTERVAL) > now.mono, "{} kept too long", p.node_id);
                }
                let mut controls: Vec<&str> = t.peers().map(|p| p.control.as_str()).collect();
                controls.sort_unstable();
                let n = controls.len();
                controls.dedup();
                prop_assert_eq!(controls.len(), n, "two peers with one control endpoint");
                if let Some(due) = t.poll_timeout() {
                    let earliest = t.peers().map(|p| p.expires_at(INTERVAL)).min();
                    prop_assert!(earliest.is_none_or(|e| due <= e), "the timer would fire late");
                }
                let st = t.stats();
                prop_assert_eq!(st.received, st.accepted + st.malformed + st.stale + st.own + st.full);
            }
        }
    }
}
