//! The replicated app registry: which version of each replicated app a node holds, and what
//! to do when a peer announces another one (docs/cluster.md, "Replication").
//!
//! Every replicated app has one *record* per node: a live version (its `version` and the
//! content hash of its manifest and package) or a tombstone (the version it was deleted at).
//! Records are ordered by [`Record::rank`]: by version, and at one version a tombstone above
//! the live app it deleted. A node adopts a peer's record only when it ranks strictly higher
//! than its own, so records only ever grow: nothing flips back and forth, and a deleted app
//! comes back only as a newer version. Two live records of one version with different hashes
//! are a *conflict*: neither replaces the other; it is reported until an operator deploys a
//! higher version.
//!
//! Pure: no clock, no IO. The node feeds it its own deploys and deletes and its peers'
//! announced records, and carries out the [`Decision`]s it returns.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

/// The SHA-256 content hash of a replicated app: its manifest's canonical bytes and its
/// package's digest ([`content_hash`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Reads 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<ContentHash> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let high = (pair[0] as char).to_digit(16)?;
            let low = (pair[1] as char).to_digit(16)?;
            out[i] = (high * 16 + low) as u8;
        }
        Some(ContentHash(out))
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.to_hex())
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// SHA-256 of a package (the tar archive as deployed).
pub fn package_digest(package: &[u8]) -> ContentHash {
    ContentHash(Sha256::digest(package).into())
}

/// The content hash of an app: SHA-256 over the manifest's canonical JSON (keys sorted, no
/// spaces: how `serde_json` writes a parsed value), a zero byte, and the package's digest
/// (nothing when there is no package). `None` if the manifest is not JSON.
pub fn content_hash(manifest_json: &[u8], package: Option<&ContentHash>) -> Option<ContentHash> {
    let canonical = canonical_manifest(manifest_json)?;
    let mut hasher = Sha256::new();
    hasher.update(canonical.as_bytes());
    hasher.update([0u8]);
    if let Some(digest) = package {
        hasher.update(digest.0);
    }
    Some(ContentHash(hasher.finalize().into()))
}

/// The manifest as canonical JSON text: the same manifest gives the same bytes on every node
/// whatever its key order or spacing was.
pub fn canonical_manifest(manifest_json: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(manifest_json)
        .ok()
        .map(|v| v.to_string())
}

/// One node's record of one replicated app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// The app runs (or is stored) at this version with this content.
    Live { version: u64, hash: ContentHash },
    /// The app was deleted at this version, at this wall-clock time (unix ms).
    Deleted { version: u64, at_unix_ms: u64 },
}

impl Record {
    /// The order records replace each other in: by version, then a tombstone above the live
    /// app of its version.
    pub fn rank(&self) -> (u64, bool) {
        match *self {
            Record::Live { version, .. } => (version, false),
            Record::Deleted { version, .. } => (version, true),
        }
    }

    pub fn version(&self) -> u64 {
        self.rank().0
    }

    pub fn is_deleted(&self) -> bool {
        matches!(self, Record::Deleted { .. })
    }
}

/// Two live records of one version with different contents: neither wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub version: u64,
    pub ours: ContentHash,
    pub theirs: ContentHash,
    /// The peer that announced the other content (the first one seen).
    pub peer: String,
}

/// What the node must do after a peer's record was merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Fetch `app` at `version` from `peer`, check it has `hash`, and deploy it.
    Fetch {
        app: String,
        peer: String,
        version: u64,
        hash: ContentHash,
    },
    /// Delete `app` here: a tombstone at `version` covers what runs. The tombstone is already
    /// recorded; the node persists it and stops the app.
    Delete {
        app: String,
        version: u64,
        at_unix_ms: u64,
    },
    /// Remember a tombstone for an app this node does not hold, so that it is never fetched
    /// at that version or older (persist it).
    Remember {
        app: String,
        version: u64,
        at_unix_ms: u64,
    },
}

/// Why a local change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "{app:?} was deleted at version {deleted} in the cluster; deploy version {} or higher",
        deleted + 1
    )]
    Deleted { app: String, deleted: u64 },
    #[error(
        "{app:?} runs version {running} in the cluster, newer than {version}: peers would bring \
         {running} back; deploy version {running} or higher"
    )]
    Older {
        app: String,
        version: u64,
        running: u64,
    },
}

/// One node's records of every replicated app, plus the conflicts it sees.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    records: BTreeMap<String, Record>,
    conflicts: BTreeMap<String, Conflict>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The node's record of `app`.
    pub fn get(&self, app: &str) -> Option<&Record> {
        self.records.get(app)
    }

    /// Every record, by app name: what the node announces.
    pub fn records(&self) -> impl Iterator<Item = (&str, &Record)> {
        self.records.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Conflicts seen and not yet resolved by a higher version.
    pub fn conflicts(&self) -> impl Iterator<Item = (&str, &Conflict)> {
        self.conflicts.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether a local deploy of `app` at `version` may go ahead: not over a tombstone of
    /// that version or newer (the cluster would delete it again at once), nor under a newer
    /// live version (the cluster would bring that one back). The same version is allowed: with
    /// other contents it is a conflict, reported until a higher version settles it.
    pub fn check_deploy(&self, app: &str, version: u64) -> Result<(), RegistryError> {
        let app = app.to_owned();
        match self.records.get(&app) {
            Some(Record::Deleted {
                version: deleted, ..
            }) if *deleted >= version => Err(RegistryError::Deleted {
                app,
                deleted: *deleted,
            }),
            Some(Record::Live {
                version: running, ..
            }) if *running > version => Err(RegistryError::Older {
                app,
                version,
                running: *running,
            }),
            _ => Ok(()),
        }
    }

    /// The node runs `app` at `version` with `hash` now (deployed over control, fetched from
    /// a peer, or restored from the store). The operator's own deploy wins over whatever the
    /// node had: it is what the cluster will adopt if its version is the highest.
    pub fn set_live(&mut self, app: &str, version: u64, hash: ContentHash) {
        self.records
            .insert(app.to_owned(), Record::Live { version, hash });
        if self
            .conflicts
            .get(app)
            .is_some_and(|c| c.version < version || c.ours != hash)
        {
            self.conflicts.remove(app);
        }
    }

    /// The node deleted `app`; returns the tombstone to persist, or `None` when the app was
    /// not replicated (no record). The tombstone's version is the one that ran.
    pub fn delete(&mut self, app: &str, at_unix_ms: u64) -> Option<Record> {
        let version = match self.records.get(app)? {
            Record::Live { version, .. } => *version,
            Record::Deleted { .. } => return None,
        };
        let tombstone = Record::Deleted {
            version,
            at_unix_ms,
        };
        self.records.insert(app.to_owned(), tombstone);
        self.conflicts.remove(app);
        Some(tombstone)
    }

    /// A tombstone read back from the store at start: kept unless the node holds something
    /// newer.
    pub fn restore_tombstone(&mut self, app: &str, version: u64, at_unix_ms: u64) {
        let tombstone = Record::Deleted {
            version,
            at_unix_ms,
        };
        let keep = self
            .records
            .get(app)
            .is_none_or(|r| r.rank() < tombstone.rank());
        if keep {
            self.records.insert(app.to_owned(), tombstone);
        }
    }

    /// The app stopped being replicated here (deleted with `replicate: false`, or given on
    /// the command line): the node forgets its live record. Tombstones stay.
    pub fn forget_live(&mut self, app: &str) {
        if self.records.get(app).is_some_and(|r| !r.is_deleted()) {
            self.records.remove(app);
        }
        self.conflicts.remove(app);
    }

    /// Merges `peer`'s record of `app` and says what to do, if anything. `local` is false
    /// when the node runs an app of that name that is not replicated (given on the command
    /// line, watched, or `replicate: false`): such an app is never replaced nor deleted by a
    /// peer.
    pub fn merge(
        &mut self,
        peer: &str,
        app: &str,
        theirs: Record,
        local: bool,
    ) -> Option<Decision> {
        if local {
            return None;
        }
        let ours = self.records.get(app).copied();
        match ours {
            Some(ours) if theirs.rank() < ours.rank() => None,
            Some(ours) if theirs.rank() == ours.rank() => self.same_rank(peer, app, ours, theirs),
            _ => Some(self.adopt(peer, app, ours, theirs)),
        }
    }

    /// A peer's record ranks above ours (or we have none).
    fn adopt(&mut self, peer: &str, app: &str, ours: Option<Record>, theirs: Record) -> Decision {
        match theirs {
            Record::Live { version, hash } => Decision::Fetch {
                app: app.to_owned(),
                peer: peer.to_owned(),
                version,
                hash,
            },
            Record::Deleted {
                version,
                at_unix_ms,
            } => {
                self.records.insert(app.to_owned(), theirs);
                self.conflicts.remove(app);
                let app = app.to_owned();
                match ours {
                    Some(Record::Live { .. }) => Decision::Delete {
                        app,
                        version,
                        at_unix_ms,
                    },
                    _ => Decision::Remember {
                        app,
                        version,
                        at_unix_ms,
                    },
                }
            }
        }
    }

    /// Records of one rank: two tombstones agree on the earlier time (so every node ends with
    /// the same one; the new time is to be persisted); two live contents may conflict.
    fn same_rank(
        &mut self,
        peer: &str,
        app: &str,
        ours: Record,
        theirs: Record,
    ) -> Option<Decision> {
        match (ours, theirs) {
            (
                Record::Deleted {
                    at_unix_ms: mine, ..
                },
                Record::Deleted {
                    version,
                    at_unix_ms,
                },
            ) if at_unix_ms < mine => {
                self.records.insert(app.to_owned(), theirs);
                Some(Decision::Remember {
                    app: app.to_owned(),
                    version,
                    at_unix_ms,
                })
            }
            (
                Record::Live {
                    version,
                    hash: ours,
                },
                Record::Live { hash: theirs, .. },
            ) => {
                self.note_conflict(peer, app, version, ours, theirs);
                None
            }
            _ => None,
        }
    }

    fn note_conflict(
        &mut self,
        peer: &str,
        app: &str,
        version: u64,
        ours: ContentHash,
        theirs: ContentHash,
    ) {
        if ours == theirs || self.conflicts.contains_key(app) {
            return;
        }
        self.conflicts.insert(
            app.to_owned(),
            Conflict {
                version,
                ours,
                theirs,
                peer: peer.to_owned(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> ContentHash {
        ContentHash([n; 32])
    }

    fn live(version: u64, n: u8) -> Record {
        Record::Live {
            version,
            hash: h(n),
        }
    }

    fn dead(version: u64) -> Record {
        Record::Deleted {
            version,
            at_unix_ms: 7,
        }
    }

    #[test]
    fn a_newer_version_is_fetched_an_older_one_ignored() {
        let mut r = Registry::new();
        r.set_live("echo", 2, h(2));
        assert_eq!(r.merge("b", "echo", live(1, 1), false), None);
        assert_eq!(
            r.merge("b", "echo", live(3, 3), false),
            Some(Decision::Fetch {
                app: "echo".into(),
                peer: "b".into(),
                version: 3,
                hash: h(3)
            })
        );
        // Nothing changes until the fetched version is deployed.
        assert_eq!(r.get("echo"), Some(&live(2, 2)));
    }

    #[test]
    fn an_unknown_app_is_fetched() {
        let mut r = Registry::new();
        assert!(matches!(
            r.merge("b", "echo", live(0, 1), false),
            Some(Decision::Fetch { version: 0, .. })
        ));
    }

    #[test]
    fn equal_versions_with_different_contents_are_a_stable_conflict() {
        let mut r = Registry::new();
        r.set_live("echo", 2, h(1));
        for _ in 0..3 {
            assert_eq!(r.merge("b", "echo", live(2, 9), false), None);
            assert_eq!(r.get("echo"), Some(&live(2, 1)));
        }
        let conflicts: Vec<_> = r.conflicts().collect();
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].1.theirs, h(9));
        assert_eq!(conflicts[0].1.peer, "b");
        // The same content is no conflict; a higher version resolves it.
        let mut same = Registry::new();
        same.set_live("echo", 2, h(1));
        assert_eq!(same.merge("b", "echo", live(2, 1), false), None);
        assert_eq!(same.conflicts().count(), 0);
        r.set_live("echo", 3, h(3));
        assert_eq!(r.conflicts().count(), 0);
    }

    #[test]
    fn a_tombstone_deletes_its_version_and_older_but_not_newer() {
        let mut r = Registry::new();
        r.set_live("echo", 2, h(2));
        assert_eq!(
            r.merge("c", "echo", dead(2), false),
            Some(Decision::Delete {
                app: "echo".into(),
                version: 2,
                at_unix_ms: 7
            })
        );
        assert_eq!(r.get("echo"), Some(&dead(2)));
        // The deleted version never comes back; a newer one does.
        assert_eq!(r.merge("a", "echo", live(2, 2), false), None);
        assert_eq!(r.merge("a", "echo", live(1, 1), false), None);
        assert!(matches!(
            r.merge("a", "echo", live(3, 3), false),
            Some(Decision::Fetch { version: 3, .. })
        ));
        let mut newer = Registry::new();
        newer.set_live("echo", 5, h(5));
        assert_eq!(newer.merge("c", "echo", dead(4), false), None);
    }

    #[test]
    fn a_tombstone_for_an_unknown_app_is_remembered() {
        let mut r = Registry::new();
        assert!(matches!(
            r.merge("c", "echo", dead(1), false),
            Some(Decision::Remember { version: 1, .. })
        ));
        assert_eq!(r.merge("c", "echo", dead(1), false), None);
        assert_eq!(r.merge("a", "echo", live(1, 1), false), None);
    }

    #[test]
    fn local_apps_are_never_touched_by_peers() {
        let mut r = Registry::new();
        assert_eq!(r.merge("b", "echo", live(9, 9), true), None);
        assert_eq!(r.merge("b", "echo", dead(9), true), None);
        assert_eq!(r.get("echo"), None);
    }

    #[test]
    fn deploying_over_a_tombstone_needs_a_higher_version() {
        let mut r = Registry::new();
        r.set_live("echo", 2, h(2));
        assert_eq!(r.delete("echo", 10), Some(dead_at(2, 10)));
        assert!(r.check_deploy("echo", 2).is_err());
        assert!(r.check_deploy("echo", 1).is_err());
        assert!(r.check_deploy("echo", 3).is_ok());
        assert_eq!(
            r.check_deploy("echo", 2).unwrap_err().to_string(),
            "\"echo\" was deleted at version 2 in the cluster; deploy version 3 or higher"
        );
        r.set_live("echo", 3, h(3));
        assert!(r.check_deploy("echo", 3).is_ok());
        assert!(matches!(
            r.check_deploy("echo", 2),
            Err(RegistryError::Older { running: 3, .. })
        ));
        // Deleting what is not replicated leaves no tombstone.
        assert_eq!(r.delete("other", 10), None);
    }

    fn dead_at(version: u64, at_unix_ms: u64) -> Record {
        Record::Deleted {
            version,
            at_unix_ms,
        }
    }

    #[test]
    fn restored_tombstones_keep_the_highest_record() {
        let mut r = Registry::new();
        r.set_live("echo", 3, h(3));
        r.restore_tombstone("echo", 2, 1);
        assert_eq!(r.get("echo"), Some(&live(3, 3)));
        r.restore_tombstone("echo", 3, 1);
        assert_eq!(r.get("echo"), Some(&dead_at(3, 1)));
    }

    #[test]
    fn hashes_ignore_key_order_and_spacing_and_see_the_package() {
        let a = content_hash(br#"{"type": "python", "args": "x", "version": 1}"#, None);
        let b = content_hash(br#"{"version":1,"args":"x","type":"python"}"#, None);
        assert_eq!(a, b);
        let p = package_digest(b"tar");
        assert_ne!(
            a,
            content_hash(br#"{"version":1,"args":"x","type":"python"}"#, Some(&p))
        );
        assert_eq!(content_hash(b"not json", None), None);
        let hex = p.to_hex();
        assert_eq!(ContentHash::from_hex(&hex), Some(p));
        assert_eq!(ContentHash::from_hex(&hex.to_uppercase()), Some(p));
        assert_eq!(ContentHash::from_hex(&hex[1..]), None);
        assert_eq!(ContentHash::from_hex(&format!("{}g", &hex[1..])), None);
        assert_eq!(ContentHash::from_hex("é"), None);
    }
}
