//! Property checks for the `announcement` fuzz target, kept here so that `cargo test` replays
//! its committed corpus (`tests/cluster_fuzz_corpus.rs`) with the same checks.
//!
//! These functions panic on purpose when a property fails: that is how a fuzzer learns of it.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use super::announcement::Announcement;
use super::peers::{Observed, PeerTable, PeerTableConfig};
use crate::time::Now;

/// Any bytes as an announcement datagram: decoding never panics; what decodes re-encodes to
/// bytes no longer than the input that decode to the same announcement; and a peer table fed
/// the datagram accounts for it in exactly one counter.
///
/// # Panics
///
/// When a property fails.
pub fn check_announcement(data: &[u8]) {
    if let Ok(announcement) = Announcement::decode(data) {
        let bytes = announcement
            .encode()
            .expect("an announcement that decoded must encode");
        assert!(
            bytes.len() <= data.len(),
            "re-encoding grew the announcement from {} to {} bytes",
            data.len(),
            bytes.len()
        );
        assert_eq!(
            Announcement::decode(&bytes).as_ref(),
            Ok(&announcement),
            "re-encoded announcement decodes differently"
        );
    }
    let mut table = PeerTable::new(PeerTableConfig {
        own_id: "self".to_owned(),
        interval: Duration::from_secs(1),
        max_peers: 4,
    });
    let now = Now::new(Instant::now(), SystemTime::UNIX_EPOCH);
    let from = SocketAddr::from((Ipv4Addr::LOCALHOST, 5001));
    let first = table.receive(now, from, data);
    let again = table.receive(now, from, data);
    let s = table.stats();
    assert_eq!(s.received, 2);
    assert_eq!(
        s.received,
        s.accepted + s.malformed + s.stale + s.own + s.full,
        "every announcement is counted once: {s:?}"
    );
    if matches!(first, Observed::New) {
        assert!(
            matches!(again, Observed::Dropped(_)),
            "the same announcement twice must be stale"
        );
        assert_eq!(table.len(), 1);
    }
}
