//! Property checks for the `announcement` fuzz target, kept here so that `cargo test` replays
//! its committed corpus (`tests/cluster_fuzz_corpus.rs`) with the same checks.
//!
//! These functions panic on purpose when a property fails: that is how a fuzzer learns of it.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use super::announcement::Announcement;
use super::peers::{DropReason, Observed, PeerTable, PeerTableConfig};
use super::signing::SigRefusal;
use crate::time::Now;

/// Any bytes as an announcement datagram: decoding never panics; what decodes re-encodes to
/// bytes no longer than the input that decode to the same announcement; the signed part
/// ([`Announcement::decode_signed`]) is a prefix of the datagram that, completed with a nil
/// `sig`, decodes to the same announcement unsigned, and is what the encoder signs; a peer
/// table fed the datagram accounts for it in exactly one counter, and one that checks
/// signatures checks a datagram at most once (a repeat is stale before its check).
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
        let (again, signed_len) =
            Announcement::decode_signed(data).expect("decode_signed agrees with decode");
        assert_eq!(again, announcement);
        assert!(signed_len < data.len(), "the sig is after the signed part");
        let unsigned = [&data[..signed_len], &[0xc0][..]].concat();
        let expected = Announcement {
            sig: None,
            ..announcement.clone()
        };
        assert_eq!(
            Announcement::decode(&unsigned).as_ref(),
            Ok(&expected),
            "the signed part with a nil sig is the same announcement"
        );
        let (_, encoded_len) = Announcement::decode_signed(&bytes).expect("re-encoded decodes");
        assert_eq!(
            &bytes[..encoded_len],
            &announcement.signed_part()[..],
            "the encoder signs what the decoder checks"
        );
    }
    check_signed_table(data);
    let (mut table, now, from) = small_table();
    let first = table.receive(now, from, data);
    let again = table.receive(now, from, data);
    assert_eq!(table.stats().received, 2);
    assert_counted_once(&table);
    if matches!(first, Observed::New) {
        assert!(
            matches!(again, Observed::Dropped(_)),
            "the same announcement twice must be stale"
        );
        assert_eq!(table.len(), 1);
    }
}

/// A table that checks signatures (any signed announcement is refused as bad, any unsigned
/// one taken): every datagram counted once, and the check never run twice for the same bytes.
fn check_signed_table(data: &[u8]) {
    let (mut table, now, from) = small_table();
    let mut checks = 0;
    let mut check = |a: &Announcement, signed: &[u8]| {
        checks += 1;
        assert!(signed.len() < data.len());
        if a.sig.is_some() {
            Err(SigRefusal::BadSignature)
        } else {
            Ok(())
        }
    };
    let first = table.receive_checked(now, from, data, &mut check);
    let second = table.receive_checked(now, from, data, &mut check);
    if matches!(first, Observed::New) {
        assert!(
            matches!(second, Observed::Dropped(DropReason::Stale { .. })),
            "a repeat of a taken announcement is stale: {second:?}"
        );
        assert_eq!(checks, 1, "a stale repeat is never checked");
    }
    if matches!(first, Observed::Dropped(DropReason::Signature(_))) {
        assert_eq!(table.len(), 0);
    }
    assert_counted_once(&table);
}

/// A table of four peers at most, a clock and a sender for it.
fn small_table() -> (PeerTable, Now, SocketAddr) {
    let table = PeerTable::new(PeerTableConfig {
        own_id: "self".to_owned(),
        interval: Duration::from_secs(1),
        max_peers: 4,
    });
    let now = Now::new(Instant::now(), SystemTime::UNIX_EPOCH);
    (table, now, SocketAddr::from((Ipv4Addr::LOCALHOST, 5001)))
}

/// Every datagram the table received is in exactly one of its counters.
fn assert_counted_once(table: &PeerTable) {
    let s = table.stats();
    assert_eq!(
        s.received,
        s.accepted
            + s.malformed
            + s.stale
            + s.own
            + s.full
            + s.unsigned
            + s.unknown_key
            + s.bad_signature,
        "every announcement is counted once: {s:?}"
    );
}
