//! Fitting an announcement into one datagram. A node's live apps always go in (a node with
//! more than a datagram holds cannot announce at all, and says so); its tombstones go in after
//! them, in the order given, for as long as they fit. A tombstone left out is announced at a
//! later interval, once the ones before it are no longer needed (docs/cluster.md, "Deletes and
//! restarts"), so the datagram never outgrows [`MAX_ANNOUNCEMENT`] however many apps were
//! deleted.

use std::collections::BTreeMap;

use super::announcement::{self, Announcement, AppAnnouncement, MAX_ANNOUNCEMENT, MAX_SIG};

/// Bytes kept for `sig` when the announcement will be signed: the longest signature and its
/// `bin 16` header.
pub const SIG_RESERVE: usize = MAX_SIG + 3;

/// What fitted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fitted {
    /// Entries added to the announcement.
    pub added: usize,
    /// Entries left out for want of room.
    pub deferred: usize,
}

/// Adds `extra` entries (tombstones, in priority order) to `announcement` while the whole, with
/// `sig` of up to `sig_reserve` bytes, stays within [`MAX_ANNOUNCEMENT`]. An entry whose name
/// the announcement holds already is skipped (a live app wins over its own tombstone).
pub fn fit(
    announcement: &mut Announcement,
    extra: impl IntoIterator<Item = (String, AppAnnouncement)>,
    sig_reserve: usize,
) -> Fitted {
    // The apps map's header grows from 1 to at most 5 bytes as entries are added.
    const MAP_HEADER_GROWTH: usize = 4;
    let mut used = announcement.signed_part().len() + MAP_HEADER_GROWTH + sig_reserve.max(1);
    let mut fitted = Fitted::default();
    let mut added: BTreeMap<String, AppAnnouncement> = BTreeMap::new();
    for (name, entry) in extra {
        if announcement.apps.contains_key(&name) || added.contains_key(&name) {
            continue;
        }
        let size = announcement::entry_len(&name, &entry);
        if used + size > MAX_ANNOUNCEMENT {
            fitted.deferred += 1;
            continue;
        }
        used += size;
        fitted.added += 1;
        added.insert(name, entry);
    }
    announcement.apps.extend(added);
    fitted
}
