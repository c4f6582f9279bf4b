//! The peer table: every node this one has heard from, what it runs and how loaded it is,
//! kept fresh by announcements and emptied of the silent.
//!
//! Every discovery mode feeds the same table: announcements from UDP (multicast or unicast to
//! static peers) come in with [`PeerTable::receive`] as bytes; a source that already holds
//! typed records (a registry such as etcd, later) calls [`PeerTable::observe`] and
//! [`PeerTable::forget`]. The table decides what to keep; nothing here does IO or reads a clock.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::announcement::{Announcement, AppAnnouncement, AppState};
use super::signing::SigRefusal;
use crate::codec::DecodeError;
use crate::time::{after, Now};

/// Announcement intervals a peer may stay silent before it is forgotten.
pub const SILENT_INTERVALS: u32 = 3;
/// The default [`PeerTableConfig::max_peers`].
pub const DEFAULT_MAX_PEERS: usize = 1024;

/// How the table judges what it hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerTableConfig {
    /// This node's id: announcements carrying it (our own, looped back) are not peers.
    pub own_id: String,
    /// The announcement interval; a peer silent for [`SILENT_INTERVALS`] of them is forgotten.
    pub interval: Duration,
    /// The most peers kept; announcements from new nodes past it are dropped and counted.
    pub max_peers: usize,
}

/// Where an announcement came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A UDP datagram from this address (multicast or unicast).
    Datagram(SocketAddr),
    /// A registry that stores announcements for nodes (etcd, later): no sender address, and
    /// entries leave with [`PeerTable::forget`] as well as by silence.
    Registry,
}

/// One peer as last heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub node_id: String,
    /// Its control endpoint, wildcard host replaced by the sender's address.
    pub control: String,
    /// Where its last announcement came from.
    pub source: Source,
    /// The `seq` of its last accepted announcement.
    pub seq: u64,
    /// Its apps, task endpoints resolved like `control`.
    pub apps: BTreeMap<String, AppAnnouncement>,
    pub first_seen: Instant,
    pub last_seen: Instant,
    /// `last_seen` on the wall clock, for people.
    pub last_seen_unix_ms: u64,
}

impl Peer {
    /// When it is forgotten unless heard from again.
    pub fn expires_at(&self, interval: Duration) -> Instant {
        after(self.last_seen, interval * SILENT_INTERVALS)
    }
}

/// What became of one announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// A node not in the table until now.
    New,
    /// A known node's newer announcement.
    Updated,
    /// A node announcing the control endpoint of another known one (a new id, usually: the
    /// node restarted with a new id): the other entry (`old_id`) is gone.
    Replaced { old_id: String },
    /// Not taken in.
    Dropped(DropReason),
}

/// Why an announcement was not taken in. Each has its counter in [`MembershipStats`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// Bytes that are not an announcement (or not a sensible one).
    #[error("malformed announcement: {0}")]
    Malformed(DecodeError),
    /// Our own announcement, looped back.
    #[error("our own announcement")]
    Own,
    /// Its `seq` is not past the last one accepted from that node: a duplicate, a datagram
    /// reordered on the way, or a replay.
    #[error("stale announcement (seq {seq}, already at {last})")]
    Stale { seq: u64, last: u64 },
    /// The table holds `max_peers` nodes already.
    #[error("peer table full ({0} peers)")]
    Full(usize),
    /// Its signature is missing where required, from an unknown key, or bad
    /// ([`PeerTable::receive_checked`]).
    #[error("announcement refused: {0}")]
    Signature(SigRefusal),
}

/// Counters of everything the table heard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MembershipStats {
    /// Announcements (datagrams or records) that reached the table.
    pub received: u64,
    /// Taken in: new, updated or replacing.
    pub accepted: u64,
    /// Dropped: not an announcement, or not a sensible one.
    pub malformed: u64,
    /// Dropped: not newer than what the node last said.
    pub stale: u64,
    /// Dropped: our own.
    pub own: u64,
    /// Dropped: the table was full.
    pub full: u64,
    /// Peers forgotten after falling silent (or removed by their registry).
    pub forgotten: u64,
    /// Dropped: unsigned where signatures are required (`--cluster-auth required`).
    pub unsigned: u64,
    /// Dropped: signed by a node id with no key in the key folder.
    pub unknown_key: u64,
    /// Dropped: a signature that does not verify (forged or tampered).
    pub bad_signature: u64,
}

/// Every peer heard from, by node id.
#[derive(Debug, Clone)]
pub struct PeerTable {
    config: PeerTableConfig,
    peers: BTreeMap<String, Peer>,
    stats: MembershipStats,
    /// No peer expires before this (it may be early, never late): expiring and the node's
    /// timer cost nothing per input until then, however many peers there are.
    due: Option<Instant>,
}

impl PeerTable {
    pub fn new(config: PeerTableConfig) -> Self {
        Self {
            config,
            peers: BTreeMap::new(),
            stats: MembershipStats::default(),
            due: None,
        }
    }

    pub fn config(&self) -> &PeerTableConfig {
        &self.config
    }

    pub fn stats(&self) -> MembershipStats {
        self.stats
    }

    /// Takes in one datagram from `from`: decodes it, then [`PeerTable::observe`]s it.
    pub fn receive(&mut self, now: Now, from: SocketAddr, datagram: &[u8]) -> Observed {
        match Announcement::decode(datagram) {
            Ok(announcement) => self.observe(now, Source::Datagram(from), announcement),
            Err(e) => {
                self.stats.received += 1;
                self.stats.malformed += 1;
                Observed::Dropped(DropReason::Malformed(e))
            }
        }
    }

    /// [`PeerTable::receive`] with a signature check: an announcement that passes every cheap
    /// check (decoding, not our own, not stale) is given to `check` with the bytes its
    /// signature covers, and taken in only if `check` accepts it. So a duplicate or a replay
    /// never costs a signature check (see [`super::signing`]).
    pub fn receive_checked(
        &mut self,
        now: Now,
        from: SocketAddr,
        datagram: &[u8],
        check: impl FnOnce(&Announcement, &[u8]) -> Result<(), SigRefusal>,
    ) -> Observed {
        let (announcement, signed_len) = match Announcement::decode_signed(datagram) {
            Ok(decoded) => decoded,
            Err(e) => {
                self.stats.received += 1;
                self.stats.malformed += 1;
                return Observed::Dropped(DropReason::Malformed(e));
            }
        };
        if let Some(reason) = self.cheap_refusal(now, &announcement) {
            self.stats.received += 1;
            self.count_drop(&reason);
            return Observed::Dropped(reason);
        }
        if let Err(refusal) = check(&announcement, &datagram[..signed_len]) {
            self.stats.received += 1;
            let reason = DropReason::Signature(refusal);
            self.count_drop(&reason);
            return Observed::Dropped(reason);
        }
        self.observe(now, Source::Datagram(from), announcement)
    }

    /// Our own, or not newer than what a peer still in the table last said.
    fn cheap_refusal(&self, now: Now, a: &Announcement) -> Option<DropReason> {
        if a.node_id == self.config.own_id {
            return Some(DropReason::Own);
        }
        let known = self.peers.get(&a.node_id)?;
        let alive = known.expires_at(self.config.interval) > now.mono;
        (alive && a.seq <= known.seq).then_some(DropReason::Stale {
            seq: a.seq,
            last: known.seq,
        })
    }

    /// Takes in one announcement, from any source: checked ([`Announcement::validate`]) like
    /// a decoded datagram, then judged. A sender silent too long is forgotten first, so an
    /// announcement after a long silence counts as a new node.
    pub fn observe(&mut self, now: Now, source: Source, announcement: Announcement) -> Observed {
        if let Err(e) = announcement.validate() {
            self.stats.received += 1;
            self.stats.malformed += 1;
            return Observed::Dropped(DropReason::Malformed(e));
        }
        let interval = self.config.interval;
        if self
            .peers
            .get(&announcement.node_id)
            .is_some_and(|p| p.expires_at(interval) <= now.mono)
        {
            self.forget(&announcement.node_id);
        }
        self.stats.received += 1;
        let ip = match source {
            Source::Datagram(addr) => Some(addr.ip()),
            Source::Registry => None,
        };
        let control = resolve_wildcard(&announcement.control, ip);
        let observed = self.judge(&announcement, &control);
        match &observed {
            Observed::Dropped(reason) => {
                self.count_drop(reason);
                return observed;
            }
            Observed::Replaced { old_id } => {
                self.peers.remove(old_id);
            }
            Observed::New | Observed::Updated => {}
        }
        self.stats.accepted += 1;
        self.store(now, source, ip, control, announcement);
        observed
    }

    /// Removes a node at once (its registry says it left). True if it was known.
    pub fn forget(&mut self, node_id: &str) -> bool {
        let known = self.peers.remove(node_id).is_some();
        if known {
            self.stats.forgotten += 1;
        }
        known
    }

    /// Forgets every peer silent for [`SILENT_INTERVALS`] intervals by `now`, and returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<Peer> {
        if self.due.is_none_or(|due| due > now) {
            return Vec::new();
        }
        let interval = self.config.interval;
        let silent: Vec<String> = self
            .peers
            .values()
            .filter(|p| p.expires_at(interval) <= now)
            .map(|p| p.node_id.clone())
            .collect();
        let gone: Vec<Peer> = silent
            .iter()
            .filter_map(|id| self.peers.remove(id))
            .collect();
        self.stats.forgotten += gone.len() as u64;
        self.due = self.peers.values().map(|p| p.expires_at(interval)).min();
        gone
    }

    /// When the next peer may fall silent for good, if any: call [`PeerTable::expire`] then.
    /// It may come early (the peer was heard since), never late.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.due
    }

    /// Every known peer, by node id.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values()
    }

    pub fn peer(&self, node_id: &str) -> Option<&Peer> {
        self.peers.get(node_id)
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Every peer that has `app`, in any state, with its entry for it.
    pub fn with_app<'a>(
        &'a self,
        app: &'a str,
    ) -> impl Iterator<Item = (&'a Peer, &'a AppAnnouncement)> + 'a {
        self.peers
            .values()
            .filter_map(move |p| p.apps.get(app).map(|a| (p, a)))
    }

    /// Every peer serving `app` (state `running`), with its entry for it.
    pub fn running<'a>(
        &'a self,
        app: &'a str,
    ) -> impl Iterator<Item = (&'a Peer, &'a AppAnnouncement)> + 'a {
        self.with_app(app)
            .filter(|(_, a)| a.state == AppState::Running)
    }

    /// `control` is the announcement's control endpoint, resolved.
    fn judge(&self, a: &Announcement, control: &str) -> Observed {
        if a.node_id == self.config.own_id {
            return Observed::Dropped(DropReason::Own);
        }
        let known = self.peers.get(&a.node_id);
        if let Some(known) = known {
            if a.seq <= known.seq {
                return Observed::Dropped(DropReason::Stale {
                    seq: a.seq,
                    last: known.seq,
                });
            }
        }
        // One control endpoint is one node: another id holding it is that node's past
        // (looked for only when the endpoint is new for this id, so a steady peer costs
        // nothing here).
        if known.is_none_or(|k| k.control != control) {
            let old = self
                .peers
                .values()
                .find(|p| p.control == control && p.node_id != a.node_id);
            if let Some(old) = old {
                return Observed::Replaced {
                    old_id: old.node_id.clone(),
                };
            }
        }
        if known.is_some() {
            return Observed::Updated;
        }
        if self.peers.len() >= self.config.max_peers {
            return Observed::Dropped(DropReason::Full(self.config.max_peers));
        }
        Observed::New
    }

    fn count_drop(&mut self, reason: &DropReason) {
        let counter = match reason {
            DropReason::Malformed(_) => &mut self.stats.malformed,
            DropReason::Own => &mut self.stats.own,
            DropReason::Stale { .. } => &mut self.stats.stale,
            DropReason::Full(_) => &mut self.stats.full,
            DropReason::Signature(SigRefusal::Unsigned) => &mut self.stats.unsigned,
            DropReason::Signature(SigRefusal::UnknownKey) => &mut self.stats.unknown_key,
            DropReason::Signature(SigRefusal::BadSignature) => &mut self.stats.bad_signature,
        };
        *counter += 1;
    }

    fn store(
        &mut self,
        now: Now,
        source: Source,
        ip: Option<IpAddr>,
        control: String,
        a: Announcement,
    ) {
        let first_seen = self
            .peers
            .get(&a.node_id)
            .map_or(now.mono, |p| p.first_seen);
        let apps = a
            .apps
            .into_iter()
            .map(|(name, mut app)| {
                for endpoint in app.tasks.values_mut() {
                    *endpoint = resolve_wildcard(endpoint, ip);
                }
                (name, app)
            })
            .collect();
        let peer = Peer {
            control,
            node_id: a.node_id,
            source,
            seq: a.seq,
            apps,
            first_seen,
            last_seen: now.mono,
            last_seen_unix_ms: now.unix_ms(),
        };
        let expires = peer.expires_at(self.config.interval);
        self.due = Some(self.due.map_or(expires, |due| due.min(expires)));
        self.peers.insert(peer.node_id.clone(), peer);
    }
}

/// `tcp://*:PORT` (or `0.0.0.0`, `[::]`) with the host replaced by `ip`, so a peer's endpoints
/// can be connected to; any other endpoint, or no `ip`, as it is.
pub fn resolve_wildcard(endpoint: &str, ip: Option<IpAddr>) -> String {
    let Some(ip) = ip else {
        return endpoint.to_owned();
    };
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return endpoint.to_owned();
    };
    let Some((host, port)) = rest.rsplit_once(':') else {
        return endpoint.to_owned();
    };
    if !matches!(host, "*" | "0.0.0.0" | "[::]" | "::") {
        return endpoint.to_owned();
    }
    match ip {
        IpAddr::V4(v4) => format!("{scheme}://{v4}:{port}"),
        IpAddr::V6(v6) => format!("{scheme}://[{v6}]:{port}"),
    }
}
