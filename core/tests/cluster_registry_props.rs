//! Properties of the replicated registry, on a model cluster of registries that gossip their
//! records in any order: they converge, a peer never makes a record go back or flip, and a
//! deleted version never comes back.

use std::collections::BTreeMap;

use cocaine_core::cluster::registry::{ContentHash, Decision, Record, Registry};
use proptest::prelude::*;

const NODES: usize = 4;
const APPS: [&str; 2] = ["echo", "web"];

#[derive(Debug, Clone)]
enum Op {
    /// An operator deploys `app` at `version` on `node`.
    Deploy {
        node: usize,
        app: usize,
        version: u64,
    },
    /// An operator deletes `app` on `node`.
    Delete { node: usize, app: usize },
    /// `from` announces its records to `to`.
    Gossip { from: usize, to: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..NODES, 0..APPS.len(), 0u64..6).prop_map(|(node, app, version)| Op::Deploy {
            node,
            app,
            version
        }),
        (0..NODES, 0..APPS.len()).prop_map(|(node, app)| Op::Delete { node, app }),
        (0..NODES, 0..NODES).prop_map(|(from, to)| Op::Gossip { from, to }),
        (0..NODES, 0..NODES).prop_map(|(from, to)| Op::Gossip { from, to }),
    ]
}

/// The content of a version; with `conflicts`, each node writes its own content.
fn content(version: u64, node: usize, conflicts: bool) -> ContentHash {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&version.to_be_bytes());
    if conflicts {
        bytes[8] = node as u8;
    }
    ContentHash(bytes)
}

struct Cluster {
    nodes: Vec<Registry>,
    /// Per node and app, the highest tombstone it has held, to check that no peer brings a
    /// deleted version back (an operator may deploy any version not under its tombstone).
    deleted_at: Vec<BTreeMap<String, u64>>,
    conflicts: bool,
}

impl Cluster {
    fn new(conflicts: bool) -> Self {
        Cluster {
            nodes: (0..NODES).map(|_| Registry::new()).collect(),
            deleted_at: vec![BTreeMap::new(); NODES],
            conflicts,
        }
    }

    fn apply(&mut self, op: &Op, clock: u64) {
        match *op {
            Op::Deploy { node, app, version } => {
                let app = APPS[app];
                if self.nodes[node].check_deploy(app, version).is_ok() {
                    let hash = content(version, node, self.conflicts);
                    self.nodes[node].set_live(app, version, hash);
                }
            }
            Op::Delete { node, app } => {
                self.nodes[node].delete(APPS[app], clock);
            }
            Op::Gossip { from, to } => self.gossip(from, to),
        }
        self.note_tombstones();
    }

    /// One announcement from `from` to `to`, with the fetches it causes done at once (the
    /// fetched content is the announcer's).
    fn gossip(&mut self, from: usize, to: usize) {
        if from == to {
            return;
        }
        let records: Vec<(String, Record)> = self.nodes[from]
            .records()
            .map(|(app, r)| (app.to_owned(), *r))
            .collect();
        for (app, theirs) in records {
            let before = self.nodes[to].get(&app).copied();
            let decision = self.nodes[to].merge(&from.to_string(), &app, theirs, false);
            if let Some(Decision::Fetch { version, hash, .. }) = decision {
                self.nodes[to].set_live(&app, version, hash);
            }
            let after = self.nodes[to].get(&app).copied();
            check_never_back(before, after);
            if let (Some(Record::Live { version, .. }), true) = (after, before != after) {
                if let Some(deleted) = self.deleted_at[to].get(&app) {
                    assert!(
                        version > *deleted,
                        "node {to} fetched {app} v{version}, deleted at v{deleted}"
                    );
                }
            }
        }
    }

    fn note_tombstones(&mut self) {
        for (node, registry) in self.nodes.iter().enumerate() {
            for (app, record) in registry.records() {
                if let Record::Deleted { version, .. } = record {
                    let seen = self.deleted_at[node].entry(app.to_owned()).or_default();
                    *seen = (*seen).max(*version);
                }
            }
        }
    }

    /// Everybody tells everybody, until nothing changes.
    fn settle(&mut self) {
        for _ in 0..NODES + 1 {
            for from in 0..NODES {
                for to in 0..NODES {
                    self.gossip(from, to);
                }
            }
            self.note_tombstones();
        }
    }

    fn snapshot(&self, node: usize) -> Vec<(String, Record)> {
        self.nodes[node]
            .records()
            .map(|(a, r)| (a.to_owned(), *r))
            .collect()
    }
}

/// A peer's record moves a node's record only up, and never changes the content of a version.
/// (A tombstone may take an earlier time of the same version.)
fn check_never_back(before: Option<Record>, after: Option<Record>) {
    match (before, after) {
        (Some(b), Some(a)) => {
            assert!(a.rank() >= b.rank(), "went back from {b:?} to {a:?}");
            match (b, a) {
                (Record::Live { .. }, Record::Live { .. }) if a.rank() == b.rank() => {
                    assert_eq!(a, b, "flipped at one rank")
                }
                // Tombstones of one version agree on the earliest time.
                (
                    Record::Deleted {
                        at_unix_ms: was, ..
                    },
                    Record::Deleted { at_unix_ms: is, .. },
                ) if a.rank() == b.rank() => {
                    assert!(is <= was, "a tombstone's time went forward")
                }
                _ => {}
            }
        }
        (Some(b), None) => panic!("forgot {b:?}"),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Without conflicting contents, every order of announcements ends in one registry: the
    /// highest record of each app.
    #[test]
    fn gossip_in_any_order_converges(ops in proptest::collection::vec(op(), 0..60)) {
        let mut cluster = Cluster::new(false);
        for (clock, op) in ops.iter().enumerate() {
            cluster.apply(op, clock as u64);
        }
        cluster.settle();
        let first = cluster.snapshot(0);
        for node in 1..NODES {
            prop_assert_eq!(&cluster.snapshot(node), &first);
        }
        for registry in &cluster.nodes {
            prop_assert_eq!(registry.conflicts().count(), 0);
        }
    }

    /// With contents that differ per node, records still never go back or flip (checked on
    /// every merge), deleted versions never come back, and every node ends at one rank per app.
    #[test]
    fn conflicts_never_flip_flop(ops in proptest::collection::vec(op(), 0..60)) {
        let mut cluster = Cluster::new(true);
        for (clock, op) in ops.iter().enumerate() {
            cluster.apply(op, clock as u64);
        }
        cluster.settle();
        let ranks = |node: usize| -> Vec<(String, (u64, bool))> {
            cluster.snapshot(node).into_iter().map(|(a, r)| (a, r.rank())).collect()
        };
        let first = ranks(0);
        for node in 1..NODES {
            prop_assert_eq!(&ranks(node), &first);
        }
        // Nodes that ended with different contents at one version report it.
        for app in APPS {
            let contents: Vec<Option<Record>> =
                cluster.nodes.iter().map(|r| r.get(app).copied()).collect();
            for (i, a) in contents.iter().enumerate() {
                let differs = contents.iter().any(|b| matches!((a, b),
                    (Some(Record::Live { hash: x, .. }), Some(Record::Live { hash: y, .. })) if x != y));
                if differs {
                    prop_assert!(cluster.nodes[i].conflicts().any(|(n, _)| n == app));
                }
            }
        }
    }
}
