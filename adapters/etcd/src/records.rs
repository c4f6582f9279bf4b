//! What the node hears from etcd, judged before it reaches the node: a member's value is its
//! announcement, an app's value its registry record; anything else is dropped and counted.
//! And what this node writes to the registry: its replicated apps and tombstones, read off
//! its own announcement.

use std::collections::BTreeMap;

use cocaine_core::cluster::etcd::{self, AppRecord, Key, Layout, RecordError};
use cocaine_core::cluster::{Announcement, AppState};

/// One key-value read from etcd, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    Member(Box<Announcement>),
    App(AppRecord),
    /// An app key whose value is unreadable: its revision still matters (this node may
    /// write over it).
    BadApp(String, RecordError),
    Dropped(RecordError),
}

pub fn judge(layout: &Layout, key: &[u8], value: &[u8]) -> Judged {
    match layout.parse(key) {
        Ok(Key::Member(id)) => match etcd::decode_member(&id, value) {
            Ok(a) => Judged::Member(Box::new(a)),
            Err(e) => Judged::Dropped(e),
        },
        Ok(Key::App(app)) => match etcd::decode_app(&app, value) {
            Ok(r) => Judged::App(r),
            Err(e) => Judged::BadApp(app, e),
        },
        Err(e) => Judged::Dropped(e),
    }
}

/// The registry records this node's announcement stands for: each replicated app it serves
/// (a non-empty hash) and each tombstone (state `deleted`). Local apps (no hash) are not the
/// cluster's. A tombstone's `deleted_at` is `now_unix_ms`: the announcement does not carry it.
pub fn own_records(announcement: &Announcement, now_unix_ms: u64) -> Vec<AppRecord> {
    announcement
        .apps
        .iter()
        .filter_map(|(name, a)| {
            let deleted = a.state == AppState::Deleted;
            (deleted || !a.hash.is_empty()).then(|| AppRecord {
                app: name.clone(),
                version: a.version,
                hash: if deleted {
                    String::new()
                } else {
                    a.hash.clone()
                },
                deleted_at: deleted.then_some(now_unix_ms),
            })
        })
        .collect()
}

/// The registry as last read: each app's record (none when its value is unreadable) and the
/// revision it was written at, for compare-and-swap.
#[derive(Debug, Default)]
pub struct Registry {
    apps: BTreeMap<String, (Option<AppRecord>, i64)>,
}

impl Registry {
    pub fn clear(&mut self) {
        self.apps.clear();
    }

    pub fn set(&mut self, app: String, record: Option<AppRecord>, mod_revision: i64) {
        self.apps.insert(app, (record, mod_revision));
    }

    pub fn remove(&mut self, app: &str) {
        self.apps.remove(app);
    }

    /// Whether `record` should be written, and the revision the key must still be at for the
    /// write to go through (0: the key must not exist).
    pub fn should_write(&self, record: &AppRecord) -> Option<i64> {
        match self.apps.get(&record.app) {
            None => Some(0),
            Some((None, revision)) => Some(*revision),
            Some((Some(current), revision)) => record.supersedes(current).then_some(*revision),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cocaine_core::cluster::etcd::DEFAULT_PREFIX;
    use cocaine_core::cluster::{AppAnnouncement, Load};

    fn app(version: u64, hash: &str, state: AppState) -> AppAnnouncement {
        AppAnnouncement {
            version,
            hash: hash.into(),
            tasks: Default::default(),
            load: Load::default(),
            state,
        }
    }

    fn own() -> Announcement {
        Announcement {
            node_id: "node-a".into(),
            seq: 1,
            control: "tcp://127.0.0.2:5000".into(),
            apps: [
                ("local".to_owned(), app(1, "", AppState::Running)),
                ("echo".to_owned(), app(3, "abcd", AppState::Running)),
                ("gone".to_owned(), app(2, "", AppState::Deleted)),
            ]
            .into(),
            sig: None,
        }
    }

    #[test]
    fn values_are_judged_by_their_key() {
        let layout = Layout::new(DEFAULT_PREFIX).unwrap();
        let a = own();
        let bytes = a.encode().unwrap();
        assert_eq!(
            judge(&layout, b"/cocaine/members/node-a", &bytes),
            Judged::Member(Box::new(a))
        );
        assert!(matches!(
            judge(&layout, b"/cocaine/members/node-b", &bytes),
            Judged::Dropped(RecordError::OtherNode { .. })
        ));
        assert!(matches!(
            judge(&layout, b"/cocaine/members/node-a", b"garbage"),
            Judged::Dropped(RecordError::Announcement(_))
        ));
        assert!(matches!(
            judge(&layout, b"/cocaine/members/node-a", &vec![0; 70_000]),
            Judged::Dropped(RecordError::TooLarge { .. })
        ));
        assert!(matches!(
            judge(&layout, b"/cocaine/elsewhere", b""),
            Judged::Dropped(RecordError::Key(_))
        ));
        assert!(matches!(
            judge(&layout, b"/cocaine/apps/echo", b"{"),
            Judged::BadApp(name, _) if name == "echo"
        ));
    }

    #[test]
    fn own_records_are_the_replicated_apps_and_tombstones() {
        let records = own_records(&own(), 99);
        assert_eq!(
            records,
            [
                AppRecord {
                    app: "echo".into(),
                    version: 3,
                    hash: "abcd".into(),
                    deleted_at: None
                },
                AppRecord {
                    app: "gone".into(),
                    version: 2,
                    hash: String::new(),
                    deleted_at: Some(99)
                },
            ]
        );
    }

    #[test]
    fn the_registry_only_moves_up() {
        let mut registry = Registry::default();
        let live = own_records(&own(), 99).remove(0);
        assert_eq!(registry.should_write(&live), Some(0), "absent: create");
        registry.set("echo".into(), Some(live.clone()), 7);
        assert_eq!(registry.should_write(&live), None, "in sync");
        let other = AppRecord {
            hash: "ffff".into(),
            ..live.clone()
        };
        assert_eq!(registry.should_write(&other), None, "a conflict: no flip");
        let deleted = AppRecord {
            hash: String::new(),
            deleted_at: Some(5),
            ..live.clone()
        };
        assert_eq!(registry.should_write(&deleted), Some(7));
        registry.set("echo".into(), Some(deleted), 8);
        assert_eq!(registry.should_write(&live), None, "never back to live");
        registry.set("echo".into(), None, 9);
        assert_eq!(
            registry.should_write(&live),
            Some(9),
            "garbage is written over"
        );
    }
}
