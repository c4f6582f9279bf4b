//! What a cluster keeps in etcd (docs/cluster.md, "etcd"): the key layout under a prefix and
//! the codec of every value. Pure: the etcd adapter (`cocaine-etcd`) does the IO and hands
//! what it reads here first. A value in etcd was written by anyone who can reach etcd, so it
//! is judged like a datagram: anything not exactly right is an error, which the adapter
//! counts and drops.
//!
//! - `<prefix>members/<node_id>`: the node's announcement, the same msgpack bytes the UDP
//!   modes send, under the node's lease.
//! - `<prefix>apps/<app>`: the highest record the cluster has seen of a replicated app, as
//!   JSON `{"app", "version", "hash", "state": "live" | "deleted", "deleted_at"}`.

use serde_json::{json, Value};

use super::announcement::{check_node_id, Announcement, MAX_ANNOUNCEMENT, MAX_HASH};
use crate::codec::DecodeError;
use crate::control::check_app_name;

/// The prefix unless the node is given another.
pub const DEFAULT_PREFIX: &str = "/cocaine/";
/// The largest app record accepted: a few dozen bytes in practice.
pub const MAX_APP_RECORD: usize = 4096;
/// The longest prefix accepted (etcd keys are bytes; this keeps them readable and bounded).
pub const MAX_PREFIX: usize = 256;

const MEMBERS: &str = "members/";
const APPS: &str = "apps/";

/// Why a prefix cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("the prefix must start and end with '/' (such as /cocaine/)")]
    Slashes,
    #[error("the prefix is over {MAX_PREFIX} characters")]
    TooLong,
    #[error("the prefix must be printable ASCII")]
    NotPrintable,
}

/// Why a key or value read from etcd was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A key under the prefix that names no member or app (or an invalid one).
    #[error("key {0:?} is not <prefix>members/<node id> or <prefix>apps/<app>")]
    Key(String),
    #[error("{size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    /// A member's value is not an announcement.
    #[error("not an announcement: {0}")]
    Announcement(DecodeError),
    /// A member's announcement is another node's.
    #[error("the announcement of {found:?} under the key of {key:?}")]
    OtherNode { key: String, found: String },
    /// An app's value is not an app record.
    #[error("not an app record: {0}")]
    AppRecord(String),
}

/// Where things are in etcd, under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    prefix: String,
}

/// A key read from etcd, by what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Member(String),
    App(String),
}

impl Layout {
    pub fn new(prefix: &str) -> Result<Layout, PrefixError> {
        if prefix.len() > MAX_PREFIX {
            return Err(PrefixError::TooLong);
        }
        if !prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(PrefixError::NotPrintable);
        }
        if !prefix.starts_with('/') || !prefix.ends_with('/') {
            return Err(PrefixError::Slashes);
        }
        Ok(Layout {
            prefix: prefix.to_owned(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn members(&self) -> String {
        format!("{}{MEMBERS}", self.prefix)
    }

    pub fn apps(&self) -> String {
        format!("{}{APPS}", self.prefix)
    }

    pub fn member(&self, node_id: &str) -> String {
        format!("{}{MEMBERS}{node_id}", self.prefix)
    }

    pub fn app(&self, app: &str) -> String {
        format!("{}{APPS}{app}", self.prefix)
    }

    /// What a key under the prefix names; an error for anything else (a key another program
    /// wrote, a name that breaks the rules).
    pub fn parse(&self, key: &[u8]) -> Result<Key, RecordError> {
        let bad = || RecordError::Key(String::from_utf8_lossy(&key[..key.len().min(300)]).into());
        let key = std::str::from_utf8(key).map_err(|_| bad())?;
        let rest = key.strip_prefix(self.prefix.as_str()).ok_or_else(bad)?;
        if let Some(id) = rest.strip_prefix(MEMBERS) {
            check_node_id(id).map_err(|_| bad())?;
            return Ok(Key::Member(id.to_owned()));
        }
        if let Some(app) = rest.strip_prefix(APPS) {
            check_app_name(app).map_err(|_| bad())?;
            return Ok(Key::App(app.to_owned()));
        }
        Err(bad())
    }
}

/// A member's value: the announcement of the node its key names, decoded and checked like a
/// datagram.
pub fn decode_member(node_id: &str, value: &[u8]) -> Result<Announcement, RecordError> {
    if value.len() > MAX_ANNOUNCEMENT {
        return Err(RecordError::TooLarge {
            size: value.len(),
            limit: MAX_ANNOUNCEMENT,
        });
    }
    let announcement = Announcement::decode(value).map_err(RecordError::Announcement)?;
    announcement.validate().map_err(RecordError::Announcement)?;
    if announcement.node_id != node_id {
        return Err(RecordError::OtherNode {
            key: node_id.to_owned(),
            found: announcement.node_id,
        });
    }
    Ok(announcement)
}

/// A replicated app's record in the registry: its highest version the cluster has seen, and
/// whether that version was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRecord {
    pub app: String,
    pub version: u64,
    /// The content hash (docs/cluster.md); empty for a deleted version.
    pub hash: String,
    /// When the version was deleted (unix ms, as the writer's clock said); none while live.
    pub deleted_at: Option<u64>,
}

impl AppRecord {
    /// Records are ordered by version; at one version a tombstone ranks above the live app
    /// it deleted (the order replication uses).
    pub fn rank(&self) -> (u64, bool) {
        (self.version, self.deleted_at.is_some())
    }

    /// Whether `self` should replace `other` in the registry: strictly higher only, so the
    /// registry never moves down and one version's two contents never flip.
    pub fn supersedes(&self, other: &AppRecord) -> bool {
        self.rank() > other.rank()
    }

    pub fn encode(&self) -> Vec<u8> {
        let state = if self.deleted_at.is_some() {
            "deleted"
        } else {
            "live"
        };
        json!({
            "app": self.app,
            "version": self.version,
            "hash": self.hash,
            "state": state,
            "deleted_at": self.deleted_at,
        })
        .to_string()
        .into_bytes()
    }
}

/// An app's value, read under the key of `app`. Strict: every key, no other, the types and
/// rules of each.
pub fn decode_app(app: &str, value: &[u8]) -> Result<AppRecord, RecordError> {
    if value.len() > MAX_APP_RECORD {
        return Err(RecordError::TooLarge {
            size: value.len(),
            limit: MAX_APP_RECORD,
        });
    }
    let bad = |why: &str| RecordError::AppRecord(why.to_owned());
    let value = crate::json::parse(value)
        .map_err(|e| RecordError::AppRecord(format!("not JSON: {}", e.position_error())))?;
    let Value::Object(object) = value else {
        return Err(bad("not an object"));
    };
    if let Some(key) = object.keys().find(|k| {
        !matches!(
            k.as_str(),
            "app" | "version" | "hash" | "state" | "deleted_at"
        )
    }) {
        return Err(RecordError::AppRecord(format!("unknown key {key:?}")));
    }
    let found = object
        .get("app")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("`app` must be a string"))?;
    if found != app {
        return Err(RecordError::AppRecord(format!(
            "the record of {found:?} under the key of {app:?}"
        )));
    }
    let version = object
        .get("version")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("`version` must be an unsigned integer"))?;
    let hash = object
        .get("hash")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("`hash` must be a string"))?;
    if hash.len() > MAX_HASH || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad("`hash` must be lowercase hex, at most 128 characters"));
    }
    let deleted_at = match (
        object.get("state").and_then(Value::as_str),
        object.get("deleted_at"),
    ) {
        (Some("live"), Some(Value::Null)) if !hash.is_empty() => None,
        (Some("deleted"), Some(at)) if hash.is_empty() => Some(
            at.as_u64()
                .ok_or_else(|| bad("`deleted_at` must be unix milliseconds"))?,
        ),
        _ => {
            return Err(bad(
                "`state` must be \"live\" (with a hash, `deleted_at` null) or \"deleted\" \
                 (no hash, `deleted_at` in unix ms)",
            ))
        }
    };
    Ok(AppRecord {
        app: app.to_owned(),
        version,
        hash: hash.to_owned(),
        deleted_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::announcement::{AppAnnouncement, AppState, Load};

    fn layout() -> Layout {
        Layout::new(DEFAULT_PREFIX).unwrap()
    }

    fn announcement(id: &str) -> Announcement {
        Announcement {
            node_id: id.into(),
            seq: 7,
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
        }
    }

    #[test]
    fn keys_round_trip_and_anything_else_is_refused() {
        let l = layout();
        assert_eq!(l.member("node-a"), "/cocaine/members/node-a");
        assert_eq!(l.app("echo"), "/cocaine/apps/echo");
        assert_eq!(l.members(), "/cocaine/members/");
        assert_eq!(l.apps(), "/cocaine/apps/");
        assert_eq!(
            l.parse(l.member("node-a").as_bytes()),
            Ok(Key::Member("node-a".into()))
        );
        assert_eq!(
            l.parse(l.app("echo").as_bytes()),
            Ok(Key::App("echo".into()))
        );
        for bad in [
            &b"/cocaine/members/"[..],
            b"/cocaine/members/has space",
            b"/cocaine/members/a/b",
            b"/cocaine/apps/../etc",
            b"/cocaine/apps/",
            b"/cocaine/other/x",
            b"/elsewhere/members/a",
            b"/cocaine/members/\xff",
            b"",
        ] {
            assert!(matches!(l.parse(bad), Err(RecordError::Key(_))), "{bad:?}");
        }
        let long = format!("/cocaine/members/{}", "a".repeat(65));
        assert!(l.parse(long.as_bytes()).is_err());
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(Layout::new("/cocaine/").is_ok());
        assert!(Layout::new("/a/b/").is_ok());
        assert_eq!(Layout::new("cocaine/"), Err(PrefixError::Slashes));
        assert_eq!(Layout::new("/cocaine"), Err(PrefixError::Slashes));
        assert_eq!(Layout::new("/co caine/"), Err(PrefixError::NotPrintable));
        assert_eq!(
            Layout::new(&format!("/{}/", "x".repeat(300))),
            Err(PrefixError::TooLong)
        );
    }

    #[test]
    fn a_member_value_is_its_nodes_announcement() {
        let a = announcement("node-a");
        let bytes = a.encode().unwrap();
        assert_eq!(decode_member("node-a", &bytes), Ok(a));
        assert!(matches!(
            decode_member("node-b", &bytes),
            Err(RecordError::OtherNode { .. })
        ));
    }

    #[test]
    fn hostile_member_values_are_errors() {
        let bytes = announcement("node-a").encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(
                decode_member("node-a", &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert!(matches!(
            decode_member("node-a", &vec![0x90; MAX_ANNOUNCEMENT + 1]),
            Err(RecordError::TooLarge { .. })
        ));
        for garbage in [&b"garbage"[..], b"\xff\xff\xff", b"{}", b"\x96\x01"] {
            assert!(decode_member("node-a", garbage).is_err(), "{garbage:?}");
        }
        // Well formed but senseless: checked like a datagram.
        let mut senseless = announcement("node-a");
        senseless.apps.get_mut("echo").unwrap().load.busy = 5;
        let bytes = senseless.encode().unwrap();
        assert!(matches!(
            decode_member("node-a", &bytes),
            Err(RecordError::Announcement(_))
        ));
    }

    #[test]
    fn app_records_round_trip() {
        let live = AppRecord {
            app: "echo".into(),
            version: 3,
            hash: "0f".repeat(32),
            deleted_at: None,
        };
        assert_eq!(decode_app("echo", &live.encode()), Ok(live.clone()));
        let deleted = AppRecord {
            hash: String::new(),
            deleted_at: Some(1_700_000_000_000),
            ..live.clone()
        };
        assert_eq!(decode_app("echo", &deleted.encode()), Ok(deleted.clone()));
        assert!(deleted.supersedes(&live));
        assert!(!live.supersedes(&deleted));
        let newer = AppRecord {
            version: 4,
            ..live.clone()
        };
        assert!(newer.supersedes(&deleted));
        let other_content = AppRecord {
            hash: "1f".repeat(32),
            ..live.clone()
        };
        assert!(!other_content.supersedes(&live), "no flip at one version");
    }

    #[test]
    fn hostile_app_values_are_errors() {
        let good = br#"{"app":"echo","version":3,"hash":"ab","state":"live","deleted_at":null}"#;
        assert!(decode_app("echo", good).is_ok());
        for cut in 0..good.len() {
            assert!(decode_app("echo", &good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(
            decode_app("other", good),
            Err(RecordError::AppRecord(_))
        ));
        let oversized = format!(
            r#"{{"app":"echo","version":3,"hash":"{}","state":"live","deleted_at":null}}"#,
            "a".repeat(MAX_APP_RECORD)
        );
        assert!(matches!(
            decode_app("echo", oversized.as_bytes()),
            Err(RecordError::TooLarge { .. })
        ));
        for bad in [
            &br#"[]"#[..],
            br#"{"app":"echo","version":-1,"hash":"ab","state":"live","deleted_at":null}"#,
            br#"{"app":"echo","version":3,"hash":"AB","state":"live","deleted_at":null}"#,
            br#"{"app":"echo","version":3,"hash":"","state":"live","deleted_at":null}"#,
            br#"{"app":"echo","version":3,"hash":"ab","state":"deleted","deleted_at":1}"#,
            br#"{"app":"echo","version":3,"hash":"","state":"deleted","deleted_at":null}"#,
            br#"{"app":"echo","version":3,"hash":"ab","state":"gone","deleted_at":null}"#,
            br#"{"app":"echo","version":3,"hash":"ab","state":"live"}"#,
            br#"{"app":"echo","version":3,"hash":"ab","state":"live","deleted_at":null,"x":1}"#,
            br#"{"app":"echo","app":"echo","version":3,"hash":"ab","state":"live","deleted_at":null}"#,
            b"\xff\xfe",
            b"",
        ] {
            assert!(decode_app("echo", bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
