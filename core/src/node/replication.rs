//! The node's side of replication (docs/cluster.md, "Replication"): its registry of
//! replicated apps, the content it serves to peers with `fetch`, the apps it pulls from peers
//! and the tombstones it keeps.
//!
//! An app is replicated when it was deployed over control (or pulled, or restored from the
//! store) and its manifest says `cluster.replicate: true`. Everything else on the node is
//! local: announced with an empty hash, never fetched, replaced nor deleted by a peer.
//!
//! Pulling: when a peer announces a record that ranks above the node's own, the node sends
//! `fetch` to the peer's control endpoint over a DEALER of its own (one per peer, a token
//! frame before the delimiter tells replies apart), verifies the reply against the announced
//! hash, stores it like a control deploy and starts it. A fetch unanswered within
//! [`FETCH_TIMEOUT`] is dropped with its connection; the next announcement tries again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};

use super::control::{Requester, StoreWait};
use super::io::{AppOrigin, Output, SocketKind, StoreDone, StoreError, StoreOp, StoredApp};
use super::Node;
use crate::cluster::fetch::{self, Fetched};
use crate::cluster::registry::{
    content_hash, package_digest, ContentHash, Decision, Record, Registry,
};
use crate::cluster::tombstone::{self, Tombstone};
use crate::cluster::{AppAnnouncement, AppState, Load};
use crate::ids::EndpointId;
use crate::manifest::Manifest;
use crate::process::LogLevel;
use crate::status;
use crate::time::Now;

/// How long a peer has to answer `fetch` (a package may be tens of megabytes).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// How long after a delete its tombstone is announced even when no peer needs it (so that a
/// node joining in that time learns it, and refuses a deploy of the deleted version). After
/// that it is announced only while a peer announces the app at a version it covers.
pub const TOMBSTONE_HORIZON: Duration = Duration::from_secs(24 * 60 * 60);

/// A replicated app's content as this node holds it: what `fetch` answers with.
#[derive(Debug, Clone)]
struct Held {
    version: u64,
    manifest_json: Bytes,
    package: Option<Bytes>,
}

/// A `fetch` in flight.
#[derive(Debug, Clone)]
struct Pull {
    token: u64,
    peer: String,
    link: EndpointId,
    version: u64,
    hash: ContentHash,
    deadline: Instant,
}

/// Replication's state inside the node.
#[derive(Debug, Default)]
pub(super) struct Replication {
    registry: Registry,
    held: BTreeMap<String, Held>,
    /// A DEALER per peer control endpoint the node has fetched from.
    links: BTreeMap<String, EndpointId>,
    /// Fetches in flight, by app.
    pulls: BTreeMap<String, Pull>,
    next_token: u64,
}

impl Replication {
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pulls.values().map(|p| p.deadline).min()
    }

    pub fn owns(&self, endpoint: EndpointId) -> bool {
        self.links.values().any(|e| *e == endpoint)
    }
}

/// A peer's announced entry as a registry record: a tombstone, a live replicated app (a valid
/// hash), or nothing for an app the peer keeps to itself (no hash).
pub(super) fn peer_record(version: u64, hash: &str, deleted: bool, now: Now) -> Option<Record> {
    if deleted {
        return Some(Record::Deleted {
            version,
            at_unix_ms: now.unix_ms(),
        });
    }
    ContentHash::from_hex(hash).map(|hash| Record::Live { version, hash })
}

fn replicated(manifest: &Manifest) -> bool {
    manifest.cluster.is_some_and(|c| c.replicate)
}

impl Node {
    /// Whether a control deploy of `manifest` may go ahead as far as the cluster is concerned.
    pub(super) fn replication_check_deploy(&self, manifest: &Manifest) -> Result<(), String> {
        if !replicated(manifest) {
            return Ok(());
        }
        self.replication
            .registry
            .check_deploy(&manifest.app, manifest.version)
            .map_err(|e| e.to_string())
    }

    /// A stored app (deployed over control, pulled, or restored) runs `manifest` from these
    /// bytes now: a replicated one is recorded and served to peers; one that stopped being
    /// replicated is forgotten.
    pub(super) fn replication_stored(
        &mut self,
        manifest: &Manifest,
        manifest_json: &[u8],
        package: Option<Bytes>,
    ) {
        let r = &mut self.replication;
        let app = manifest.app.as_str();
        if !replicated(manifest) {
            r.registry.forget_live(app);
            r.held.remove(app);
            return;
        }
        let digest = package.as_deref().map(package_digest);
        let Some(hash) = content_hash(manifest_json, digest.as_ref()) else {
            return;
        };
        r.registry.set_live(app, manifest.version, hash);
        r.held.insert(
            app.to_owned(),
            Held {
                version: manifest.version,
                manifest_json: Bytes::copy_from_slice(manifest_json),
                package,
            },
        );
    }

    /// A stored app was deleted here (over control, or by a peer's tombstone): a replicated
    /// one leaves a tombstone, persisted, so that no peer brings it back.
    pub(super) fn replication_deleted(&mut self, now: Now, app: &str) {
        self.replication.held.remove(app);
        if let Some(Record::Deleted {
            version,
            at_unix_ms,
        }) = self.replication.registry.delete(app, now.unix_ms())
        {
            self.persist_tombstone(app, version, at_unix_ms);
        }
    }

    fn persist_tombstone(&mut self, app: &str, version: u64, at_unix_ms: u64) {
        let record = tombstone::encode(
            app,
            Tombstone {
                version,
                at_unix_ms,
            },
        );
        self.store(
            StoreOp::PutTombstone {
                app: app.to_owned(),
                record,
            },
            StoreWait::Tidy {
                what: format!("{app}: cannot store its tombstone (version {version})"),
            },
        );
    }

    /// A tombstone read from the store at start.
    pub(super) fn restore_tombstone(&mut self, app: String, record: Result<Bytes, String>) {
        let read = record.and_then(|b| tombstone::decode(&app, &b).map_err(|e| e.to_string()));
        match read {
            Ok(t) => self
                .replication
                .registry
                .restore_tombstone(&app, t.version, t.at_unix_ms),
            Err(reason) => self.log(
                LogLevel::Warn,
                format!("{app}: its stored tombstone is ignored: {reason}"),
            ),
        }
    }

    /// Whether a stored app read at start was deleted in the cluster at its version or later
    /// (the node stopped between storing the tombstone and deleting the app): then it is not
    /// started, and leaves the store.
    pub(super) fn restored_but_deleted(&mut self, manifest: &Manifest) -> bool {
        if !replicated(manifest) {
            return false;
        }
        let deleted = matches!(
            self.replication.registry.get(&manifest.app),
            Some(Record::Deleted { version, .. }) if *version >= manifest.version
        );
        if deleted {
            let app = manifest.app.clone();
            self.log(
                LogLevel::Info,
                format!(
                    "{app}: version {} was deleted in the cluster; not started",
                    manifest.version
                ),
            );
            self.store(
                StoreOp::DeleteApp { app: app.clone() },
                StoreWait::Tidy {
                    what: format!("{app}: cannot remove the deleted app from the store"),
                },
            );
        }
        deleted
    }

    /// An app read from the store at start and started: recorded like a deploy.
    pub(super) fn replication_restored(&mut self, manifest: &Manifest, stored: &StoredApp) {
        self.replication_stored(manifest, &stored.manifest_json, stored.package.clone());
    }

    /// The hash to announce for `app` serving `version`: empty unless it is replicated and
    /// the registry holds that version.
    pub(super) fn replicated_hash(&self, app: &str, version: u64) -> String {
        match self.replication.registry.get(app) {
            Some(Record::Live { version: v, hash }) if *v == version => hash.to_hex(),
            _ => String::new(),
        }
    }

    /// The tombstones to announce, each as an entry of state `deleted`, most needed first:
    /// those a peer still needs (it announces the app at a version the tombstone covers, or
    /// an older tombstone of it), then those younger than the horizon (`tombstone_horizon`,
    /// [`TOMBSTONE_HORIZON`] by default), newest
    /// first. Older ones no peer needs stay stored and unannounced: a node that comes back
    /// with the app (it was down during the delete) announces it, which makes it needed
    /// again, so it is never resurrected; and the announcement stays small however many apps
    /// were ever deleted (docs/cluster.md, "Deletes and restarts").
    pub(super) fn announced_tombstones(&self, now: Now) -> Vec<(String, AppAnnouncement)> {
        let mut needed = Vec::new();
        let mut young = Vec::new();
        let horizon = now
            .unix_ms()
            .saturating_sub(self.config.tombstone_horizon.as_millis() as u64);
        for (app, record) in self.replication.registry.records() {
            let Record::Deleted {
                version,
                at_unix_ms,
            } = record
            else {
                continue;
            };
            let entry = AppAnnouncement {
                version: *version,
                hash: String::new(),
                tasks: BTreeMap::new(),
                load: Load::default(),
                state: AppState::Deleted,
            };
            if self.a_peer_ranks_below(app, record.rank()) {
                needed.push((app.to_owned(), entry));
            } else if *at_unix_ms >= horizon {
                young.push((*at_unix_ms, app.to_owned(), entry));
            }
        }
        young.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        needed
            .into_iter()
            .chain(young.into_iter().map(|(_, app, entry)| (app, entry)))
            .collect()
    }

    /// Whether a peer announces `app` as a replicated record ranking below `rank`.
    fn a_peer_ranks_below(&self, app: &str, rank: (u64, bool)) -> bool {
        self.peer_table().is_some_and(|table| {
            table.with_app(app).any(|(_, a)| {
                let deleted = a.state == AppState::Deleted;
                let replicated = deleted || !a.hash.is_empty();
                replicated && (a.version, deleted) < rank
            })
        })
    }

    /// A peer's announcement from `from` was taken into the peer table: its records are
    /// merged.
    pub(super) fn replicate_from_datagram(&mut self, now: Now, from: std::net::SocketAddr) {
        let source = crate::cluster::Source::Datagram(from);
        let id = self.peer_table().and_then(|t| {
            t.peers()
                .find(|p| p.source == source && p.last_seen == now.mono)
                .map(|p| p.node_id.clone())
        });
        if let Some(id) = id {
            self.replicate_from_peer(now, &id);
        }
    }

    /// Peer `id`'s announcement (from a datagram or a registry) was taken into the peer
    /// table: its records are merged.
    pub(super) fn replicate_from_peer(&mut self, now: Now, id: &str) {
        let Some(peer) = self.peer_table().and_then(|t| t.peer(id)) else {
            return;
        };
        let records: Vec<(String, Record)> = peer
            .apps
            .iter()
            .filter_map(|(name, a)| {
                let deleted = a.state == AppState::Deleted;
                Some((name.clone(), peer_record(a.version, &a.hash, deleted, now)?))
            })
            .collect();
        let control = peer.control.clone();
        self.replicate_from(now, id, &control, records);
    }

    /// Whether the node runs (or failed to start) an app of this name that peers must leave
    /// alone: anything but a replicated app of the store.
    fn is_local(&self, app: &str) -> bool {
        let exists = self.live(app).is_some() || self.failed.contains_key(app);
        exists
            && !matches!(
                self.replication.registry.get(app),
                Some(Record::Live { .. })
            )
    }

    /// A peer announced these records (`peer` is its node id, `control` its control
    /// endpoint): merge them and act on what the registry decides.
    pub(super) fn replicate_from(
        &mut self,
        now: Now,
        peer: &str,
        control: &str,
        records: Vec<(String, Record)>,
    ) {
        for (app, record) in records {
            let local = self.is_local(&app);
            let decision = self.replication.registry.merge(peer, &app, record, local);
            match decision {
                Some(Decision::Fetch {
                    app,
                    peer,
                    version,
                    hash,
                }) => self.start_pull(now, &app, &peer, control, version, hash),
                Some(Decision::Delete {
                    app,
                    version,
                    at_unix_ms,
                }) => self.delete_by_peer(&app, peer, version, at_unix_ms),
                Some(Decision::Remember {
                    app,
                    version,
                    at_unix_ms,
                }) => self.persist_tombstone(&app, version, at_unix_ms),
                None => {}
            }
        }
    }

    /// A peer's tombstone covers the version that runs here: the tombstone is stored, then
    /// the app is deleted as over control.
    fn delete_by_peer(&mut self, app: &str, peer: &str, version: u64, at: u64) {
        self.persist_tombstone(app, version, at);
        self.replication.held.remove(app);
        self.replication.pulls.remove(app);
        if self.control.busy.contains(app) {
            // A control change is in flight; the tombstone is recorded, and the app goes when
            // the peer announces it again.
            return;
        }
        self.log(
            LogLevel::Info,
            format!("{app}: deleted at version {version} by peer {peer}"),
        );
        self.control.busy.insert(app.to_owned());
        self.store(
            StoreOp::DeleteApp {
                app: app.to_owned(),
            },
            StoreWait::PeerDelete {
                app: app.to_owned(),
            },
        );
    }

    /// The store removed an app a peer deleted: it stops.
    pub(super) fn peer_delete_written(
        &mut self,
        now: Now,
        app: String,
        result: Result<StoreDone, StoreError>,
    ) {
        self.control.busy.remove(&app);
        match result {
            Ok(_) => {
                self.remove(now, &app, None);
                self.failed.remove(&app);
                self.unschedule_app(&app);
            }
            Err(error) => self.log(
                LogLevel::Error,
                format!("{app}: a peer deleted it, but it cannot leave the store: {error}"),
            ),
        }
    }

    /// Asks `peer` for `app` at `version`, unless a fetch of it is in flight or a control
    /// change to it is.
    fn start_pull(
        &mut self,
        now: Now,
        app: &str,
        peer: &str,
        control: &str,
        version: u64,
        hash: ContentHash,
    ) {
        if self.replication.pulls.contains_key(app) || self.control.busy.contains(app) {
            return;
        }
        let token = self.replication.next_token;
        let request = match self.fetch_request(now, app, token) {
            Ok(frames) => frames,
            Err(error) => {
                self.log(
                    LogLevel::Error,
                    format!("{app}: cannot fetch from peer {peer}: {error}"),
                );
                return;
            }
        };
        self.replication.next_token += 1;
        let link = self.link(control);
        let mut frames = vec![Bytes::copy_from_slice(&token.to_be_bytes()), Bytes::new()];
        frames.extend(request);
        self.out.push_back(Output::Send {
            endpoint: link,
            frames,
        });
        self.replication.pulls.insert(
            app.to_owned(),
            Pull {
                token,
                peer: peer.to_owned(),
                link,
                version,
                hash,
                deadline: now.mono + FETCH_TIMEOUT,
            },
        );
        self.log(
            LogLevel::Info,
            format!("{app}: fetching version {version} from peer {peer} ({control})"),
        );
    }

    /// The frames of a `fetch` request: signed by the node's key as user `<node_id>` when the
    /// cluster's security is on (`--cluster-auth`), so that a peer whose control endpoint
    /// requires signatures serves it (docs/cluster.md); plain JSON otherwise. The nonce is the
    /// node's first `seq` (its start time) and the fetch's token: unique for the node id.
    fn fetch_request(
        &self,
        now: Now,
        app: &str,
        token: u64,
    ) -> Result<Vec<Bytes>, crate::auth::SignError> {
        let request = json!({"version": 1, "action": "fetch", "app": app}).to_string();
        if self.config.cluster_auth == crate::auth::AuthMode::Off {
            return Ok(vec![Bytes::from(request)]);
        }
        let (Some(key), Some(node_id), Some(start)) = (
            &self.config.own_key,
            self.node_id(),
            self.config.discovery.as_ref().map(|d| d.seq_start),
        ) else {
            return Err(crate::auth::SignError(
                "the node has no key pair to sign it (no state folder)".into(),
            ));
        };
        let stamp = crate::auth::Stamp {
            ts: now.unix_ms(),
            nonce: format!("{start:016x}{token:016x}"),
        };
        let (json, signature) =
            crate::auth::sign_control(request.as_bytes(), &stamp, &key.signer(node_id))?;
        Ok(vec![Bytes::from(json), Bytes::from(signature)])
    }

    /// The DEALER to a peer's control endpoint, asked for the first time it is needed.
    fn link(&mut self, control: &str) -> EndpointId {
        if let Some(endpoint) = self.replication.links.get(control) {
            return *endpoint;
        }
        let endpoint = EndpointId(self.next_endpoint);
        self.next_endpoint += 1;
        self.replication.links.insert(control.to_owned(), endpoint);
        self.out.push_back(Output::Bind {
            endpoint,
            kind: SocketKind::Dealer,
            address: control.to_owned(),
            subscribe: Vec::new(),
            max_message: None,
        });
        endpoint
    }

    /// A link could not be set up: its fetches fail now, and the next announcement tries a
    /// new one.
    pub(super) fn link_bound(
        &mut self,
        endpoint: EndpointId,
        result: Result<(), super::io::BindError>,
    ) {
        let Err(error) = result else { return };
        self.drop_link(endpoint);
        self.log(
            LogLevel::Warn,
            format!("replication: cannot connect to a peer: {error}"),
        );
    }

    fn drop_link(&mut self, endpoint: EndpointId) {
        let r = &mut self.replication;
        r.links.retain(|_, e| *e != endpoint);
        r.pulls.retain(|_, p| p.link != endpoint);
        self.out.push_back(Output::Unbind { endpoint });
    }

    /// Fetches past their deadline are given up, with their links.
    pub(super) fn replication_timers(&mut self, now: Now) {
        let late: Vec<(String, Pull)> = self
            .replication
            .pulls
            .iter()
            .filter(|(_, p)| p.deadline <= now.mono)
            .map(|(a, p)| (a.clone(), p.clone()))
            .collect();
        for (app, pull) in late {
            self.log(
                LogLevel::Warn,
                format!(
                    "{app}: peer {} did not answer fetch within {} s; trying again later",
                    pull.peer,
                    FETCH_TIMEOUT.as_secs()
                ),
            );
            if self.replication.links.values().any(|e| *e == pull.link) {
                self.drop_link(pull.link);
            }
            self.replication.pulls.remove(&app);
        }
    }

    /// A reply on a link: `[token, "", json, package?]`.
    pub(super) fn link_received(&mut self, frames: Vec<Bytes>) {
        let token = frames
            .first()
            .and_then(|f| <[u8; 8]>::try_from(f.as_ref()).ok())
            .map(u64::from_be_bytes);
        let found = self
            .replication
            .pulls
            .iter()
            .find(|(_, p)| Some(p.token) == token)
            .map(|(a, _)| a.clone());
        let Some(app) = found else {
            return; // A late answer to a fetch given up.
        };
        let Some(pull) = self.replication.pulls.remove(&app) else {
            return;
        };
        let body = frames.get(2..).unwrap_or_default();
        let checked = fetch::decode_reply(body, self.config.control_max_message)
            .map_err(|e| e.to_string())
            .and_then(|f| check_pulled(&app, &pull, f));
        match checked {
            Ok(fetched) => self.store_pulled(fetched, &pull.peer),
            Err(reason) => self.log(
                LogLevel::Warn,
                format!("{app}: fetch from peer {} refused: {reason}", pull.peer),
            ),
        }
    }

    /// A verified copy: stored, then started, like a control deploy.
    fn store_pulled(&mut self, fetched: Fetched, peer: &str) {
        let app = fetched.app.clone();
        let base = fetched
            .package
            .as_ref()
            .map(|_| std::path::Path::new("/package"));
        let parsed = Manifest::parse(&app, &fetched.manifest_json, base);
        let problem = match &parsed {
            Err(error) => Some(error.to_string()),
            Ok(m) if !replicated(m) => Some("its manifest does not replicate".to_owned()),
            Ok(m) if m.version != fetched.version => Some(format!(
                "its manifest is version {}, announced {}",
                m.version, fetched.version
            )),
            Ok(_) if self.is_local(&app) => Some("an app of that name runs here".to_owned()),
            Ok(_) if self.control.busy.contains(&app) => {
                Some("a control change to it is in progress".to_owned())
            }
            Ok(_) => None,
        };
        let still_wanted = self.replication.registry.get(&app).is_none_or(|r| {
            r.rank()
                < (Record::Live {
                    version: fetched.version,
                    hash: fetched.hash,
                })
                .rank()
        });
        if let Some(problem) = problem {
            self.log(
                LogLevel::Warn,
                format!(
                    "{app}: version {} from peer {peer} not deployed: {problem}",
                    fetched.version
                ),
            );
            return;
        }
        if !still_wanted {
            return;
        }
        self.control.busy.insert(app.clone());
        self.store(
            StoreOp::PutApp {
                app: app.clone(),
                manifest_json: fetched.manifest_json.clone(),
                package: fetched.package.clone(),
            },
            StoreWait::Pulled {
                app,
                manifest_json: fetched.manifest_json,
                package: fetched.package,
                peer: peer.to_owned(),
            },
        );
    }

    /// The store wrote a pulled app: it starts, and the node announces its new version.
    pub(super) fn pulled_written(
        &mut self,
        now: Now,
        app: String,
        manifest_json: Bytes,
        package: Option<Bytes>,
        peer: String,
        result: Result<StoreDone, StoreError>,
    ) {
        self.control.busy.remove(&app);
        let done = match result {
            Ok(done) => done,
            Err(error) => {
                self.log(
                    LogLevel::Error,
                    format!("{app}: the copy from peer {peer} cannot be stored: {error}"),
                );
                return;
            }
        };
        match Manifest::parse(&app, &manifest_json, done.package_dir.as_deref()) {
            Ok(manifest) => {
                let version = manifest.version;
                self.replication_stored(&manifest, &manifest_json, package);
                self.log(
                    LogLevel::Info,
                    format!("{app}: version {version} copied from peer {peer}"),
                );
                self.deploy(now, manifest, AppOrigin::Store, done.revision, None);
            }
            Err(error) => self.log(
                LogLevel::Error,
                format!("{app}: the copy from peer {peer} cannot start: {error}"),
            ),
        }
    }

    /// Control `fetch`: the manifest and package of a replicated app.
    pub(super) fn control_fetch(&mut self, requester: &Requester, app: &str) {
        let Some(held) = self.replication.held.get(app) else {
            let message = if self.live(app).is_some() || self.failed.contains_key(app) {
                format!(
                    "{app:?} is not replicated: it was not deployed over control with \
                     `cluster.replicate: true`"
                )
            } else {
                format!("no replicated app named {app:?}")
            };
            self.reply_error(requester, status::NOT_FOUND, message);
            return;
        };
        match fetch::encode_reply(
            app,
            held.version,
            &held.manifest_json,
            held.package.as_ref(),
        ) {
            Some(frames) => self.reply_frames(requester, frames),
            None => self.reply_error(
                requester,
                status::INTERNAL_ERROR,
                format!("{app:?}: its stored manifest is not JSON"),
            ),
        }
    }

    /// What `info` says about replication: every record and the conflicts.
    pub(super) fn replication_info(&self) -> Value {
        let r = &self.replication;
        let apps: serde_json::Map<String, Value> = r
            .registry
            .records()
            .map(|(app, record)| (app.to_owned(), record_json(record)))
            .collect();
        let conflicts: serde_json::Map<String, Value> = r
            .registry
            .conflicts()
            .map(|(app, c)| {
                let value = json!({
                    "version": c.version,
                    "ours": c.ours.to_hex(),
                    "theirs": c.theirs.to_hex(),
                    "peer": c.peer,
                });
                (app.to_owned(), value)
            })
            .collect();
        let fetching: serde_json::Map<String, Value> = r
            .pulls
            .iter()
            .map(|(app, p)| (app.clone(), json!({"version": p.version, "peer": p.peer})))
            .collect();
        json!({"apps": apps, "conflicts": conflicts, "fetching": fetching})
    }

    /// What `info APP` says about the app's replication, if it is replicated.
    pub(super) fn app_replication_info(&self, app: &str) -> Value {
        let r = &self.replication;
        let Some(record) = r.registry.get(app) else {
            return Value::Null;
        };
        let mut value = record_json(record);
        let conflict = r.registry.conflicts().find(|(a, _)| *a == app).map(|(_, c)| {
            json!({"version": c.version, "ours": c.ours.to_hex(), "theirs": c.theirs.to_hex(), "peer": c.peer})
        });
        value["conflict"] = conflict.unwrap_or(Value::Null);
        value
    }
}

fn record_json(record: &Record) -> Value {
    match record {
        Record::Live { version, hash } => json!({"version": version, "hash": hash.to_hex()}),
        Record::Deleted {
            version,
            at_unix_ms,
        } => json!({"version": version, "deleted_at": at_unix_ms}),
    }
}

/// The reply is the app, version and content that were announced.
fn check_pulled(app: &str, pull: &Pull, fetched: Fetched) -> Result<Fetched, String> {
    if fetched.app != app {
        return Err(format!("the reply is for {:?}", fetched.app));
    }
    if fetched.version != pull.version || fetched.hash != pull.hash {
        return Err(format!(
            "the reply is version {} with hash {}, announced version {} with hash {}",
            fetched.version, fetched.hash, pull.version, pull.hash
        ));
    }
    Ok(fetched)
}
