//! The node's side of discovery (docs/cluster.md): its UDP endpoints, its announcement every
//! interval, the peer table fed by what arrives, and the `peers` control action. `--host`
//! lives here too, since it decides what the node binds and announces.

use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::app::{App, Phase};
use super::io::{BindError, Multicast, Output};
use super::Node;
use crate::auth::AuthMode;
use crate::cluster::{budget, signing};
use crate::cluster::{
    Announcement, AppAnnouncement, AppState, DropReason, Load, Observed, PeerTable,
    PeerTableConfig, Source, DEFAULT_MAX_PEERS,
};
use crate::engine::AppState as EngineState;
use crate::ids::EndpointId;
use crate::process::LogLevel;
use crate::time::{after, Now};

/// The announcement interval unless the node is given one.
pub const DEFAULT_ANNOUNCE_INTERVAL: Duration = Duration::from_secs(1);
/// The multicast group and port unless the node is given others.
pub const DEFAULT_MULTICAST_GROUP: SocketAddrV4 =
    SocketAddrV4::new(std::net::Ipv4Addr::new(239, 192, 74, 66), 5001);
/// Malformed announcements logged in full; past this, one line per this many more.
const MALFORMED_LOGGED: u64 = 10;
const MALFORMED_LOG_EVERY: u64 = 1000;

/// How a node finds its peers; given by the runtime's world (flags, a random id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// This node's id in the cluster (`check_node_id` rules); chosen by the adapter, random
    /// at start or kept in the store.
    pub node_id: String,
    /// The first announcement's `seq`: past anything the node sent before a restart, such as
    /// its start time in unix milliseconds (the core reads no clock).
    pub seq_start: u64,
    /// How often the node announces itself; a peer silent for three is forgotten.
    pub interval: Duration,
    /// The multicast group to announce to and listen on; none keeps multicast off.
    pub multicast: Option<SocketAddrV4>,
    /// Static peers: each gets every announcement, unicast, at its UDP address (the host and
    /// port of its control endpoint).
    pub peers: Vec<SocketAddr>,
    /// The most peers the table keeps.
    pub max_peers: usize,
    /// A registry (etcd) carries the node's announcement: every interval the node hands its
    /// encoded announcement to the runtime as `Output::Announce`, and peers' records come
    /// back as `Input::PeerRecord` (docs/cluster.md, "etcd").
    pub registry: bool,
}

impl DiscoveryConfig {
    /// A configuration with the defaults for everything but the id and the first `seq`.
    pub fn new(node_id: String, seq_start: u64) -> Self {
        Self {
            node_id,
            seq_start,
            interval: DEFAULT_ANNOUNCE_INTERVAL,
            multicast: None,
            peers: Vec::new(),
            max_peers: DEFAULT_MAX_PEERS,
            registry: false,
        }
    }
}

/// Discovery's state inside the node.
#[derive(Debug)]
pub(super) struct Membership {
    config: DiscoveryConfig,
    table: PeerTable,
    /// The socket static peers send to (the control endpoint's host and port, in UDP).
    unicast: Option<EndpointId>,
    /// The socket in the multicast group.
    multicast: Option<EndpointId>,
    /// The endpoints that are up; announcements go out only on these.
    up: Vec<EndpointId>,
    /// Where the node's control endpoint is, as announced.
    control: Option<String>,
    seq: u64,
    /// When the next announcement is due; none until an endpoint is up.
    next_announce: Option<Instant>,
    sent: u64,
    /// Announcements not sent because they would not fit a datagram.
    too_large: u64,
    /// Announcements not sent because the node's key could not sign them.
    sign_failed: u64,
    /// Tombstones in the last announcement, and those left out for want of room.
    tombstones: budget::Fitted,
}

impl Membership {
    pub fn new(config: DiscoveryConfig) -> Self {
        let table = PeerTable::new(PeerTableConfig {
            own_id: config.node_id.clone(),
            interval: config.interval,
            max_peers: config.max_peers,
        });
        Self {
            seq: config.seq_start,
            config,
            table,
            unicast: None,
            multicast: None,
            up: Vec::new(),
            control: None,
            next_announce: None,
            sent: 0,
            too_large: 0,
            sign_failed: 0,
            tombstones: budget::Fitted::default(),
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_announce, self.table.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn table(&self) -> &PeerTable {
        &self.table
    }

    /// How often the node announces itself: spillover pings its links as often.
    pub fn interval(&self) -> Duration {
        self.config.interval
    }

    fn owns(&self, endpoint: EndpointId) -> bool {
        self.unicast == Some(endpoint) || self.multicast == Some(endpoint)
    }

    /// A registry alone has no socket to wait for: the first announcement is due at once
    /// (at the first input, since the node is made without a clock).
    fn registry_only_and_not_started(&self) -> bool {
        self.config.registry
            && self.unicast.is_none()
            && self.multicast.is_none()
            && self.next_announce.is_none()
    }
}

impl Node {
    /// The peer table while discovery is on: who is in the cluster, what each peer runs and
    /// how loaded it is (for replication and balancing).
    pub fn peer_table(&self) -> Option<&PeerTable> {
        self.membership.as_ref().map(|m| &m.table)
    }

    /// This node's id in the cluster, while discovery is on.
    pub(super) fn node_id(&self) -> Option<&str> {
        self.membership.as_ref().map(|m| m.config.node_id.as_str())
    }

    /// `address` with a `*` host replaced by `--host`, if given.
    pub(super) fn on_host(&self, address: &str) -> String {
        match &self.config.host {
            Some(host) => replace_wildcard_host(address, host),
            None => address.to_owned(),
        }
    }

    /// Asks for the discovery endpoints; called once, when the node is made. Discovery needs
    /// a control endpoint: peers are told where it is, and static peers send to its port.
    pub(super) fn open_discovery(&mut self) {
        let Some(m) = &self.membership else {
            return;
        };
        let Some(control) = self.config.control.first().map(|c| self.on_host(c)) else {
            let reason =
                "discovery needs a control endpoint (peers are told where it is)".to_owned();
            self.log(LogLevel::Error, reason.clone());
            self.out.push_back(Output::Fatal { reason });
            return;
        };
        let want_unicast = !m.config.peers.is_empty();
        let group = m.config.multicast;
        let interface = self.config.host.clone();
        if want_unicast {
            let endpoint = self.next_discovery_endpoint();
            let address = control.replacen("tcp://", "udp://", 1);
            self.out.push_back(Output::OpenUdp {
                endpoint,
                address,
                multicast: None,
            });
            self.with_membership(|m| m.unicast = Some(endpoint));
        }
        if let Some(group) = group {
            let endpoint = self.next_discovery_endpoint();
            self.out.push_back(Output::OpenUdp {
                endpoint,
                address: format!("udp://{group}"),
                multicast: Some(Multicast {
                    group,
                    interface,
                    ttl: 1,
                    loopback: true,
                }),
            });
            self.with_membership(|m| m.multicast = Some(endpoint));
        }
        self.with_membership(|m| m.control = Some(control));
    }

    fn next_discovery_endpoint(&mut self) -> EndpointId {
        let endpoint = EndpointId(self.next_endpoint);
        self.next_endpoint += 1;
        endpoint
    }

    fn with_membership(&mut self, f: impl FnOnce(&mut Membership)) {
        if let Some(m) = &mut self.membership {
            f(m);
        }
    }

    pub(super) fn discovery_owns(&self, endpoint: EndpointId) -> bool {
        self.membership.as_ref().is_some_and(|m| m.owns(endpoint))
    }

    /// A discovery endpoint is up (announcing starts at once) or could not be opened, which
    /// stops the node: it was asked to join a cluster and cannot.
    pub(super) fn discovery_bound(
        &mut self,
        now: Now,
        endpoint: EndpointId,
        result: Result<(), BindError>,
    ) {
        let Some(m) = &mut self.membership else {
            return;
        };
        let what = if m.multicast == Some(endpoint) {
            "the multicast discovery socket"
        } else {
            "the discovery socket for static peers"
        };
        match result {
            Ok(()) => {
                m.up.push(endpoint);
                // The first announcement goes out once every discovery endpoint is up.
                let wanted = usize::from(m.unicast.is_some()) + usize::from(m.multicast.is_some());
                if m.up.len() == wanted {
                    m.next_announce = Some(now.mono);
                }
                let message = format!(
                    "discovery: {what} is up; announcing as {} every {} ms",
                    m.config.node_id,
                    m.config.interval.as_millis()
                );
                self.log(LogLevel::Info, message);
            }
            Err(error) => {
                let reason = format!("cannot open {what}: {error}");
                self.log(LogLevel::Error, reason.clone());
                self.out.push_back(Output::Fatal { reason });
            }
        }
    }

    /// Announces when due, and forgets peers silent for too long.
    pub(super) fn membership_timers(&mut self, now: Now) {
        let Some(m) = &mut self.membership else {
            return;
        };
        for peer in m.table.expire(now.mono) {
            let message = format!(
                "discovery: forgot peer {} ({}): silent for {} announcement intervals",
                peer.node_id,
                peer.control,
                crate::cluster::SILENT_INTERVALS
            );
            self.log(LogLevel::Info, message);
        }
        let due = self.membership.as_ref().is_some_and(|m| {
            m.next_announce.is_some_and(|at| at <= now.mono) || m.registry_only_and_not_started()
        });
        if due {
            self.announce(now);
        }
    }

    fn announce(&mut self, now: Now) {
        let apps = self.announced_apps();
        let tombstones = self.announced_tombstones(now);
        let sig_reserve = match self.config.cluster_auth {
            AuthMode::Off => 1,
            _ => budget::SIG_RESERVE,
        };
        let Some(m) = &mut self.membership else {
            return;
        };
        m.next_announce = Some(after(now.mono, m.config.interval));
        let mut announcement = Announcement {
            node_id: m.config.node_id.clone(),
            seq: m.seq,
            control: m.control.clone().unwrap_or_default(),
            apps,
            sig: None,
        };
        m.seq = m.seq.saturating_add(1);
        let fitted = budget::fit(&mut announcement, tombstones, sig_reserve);
        m.tombstones = fitted;
        if self.config.cluster_auth != AuthMode::Off {
            let signed = match &self.config.own_key {
                Some(key) => signing::sign(&mut announcement, |bytes| key.sign(bytes)),
                None => Err(crate::auth::SignError(
                    "the node has no key pair (no state folder)".into(),
                )),
            };
            if let Err(error) = signed {
                m.sign_failed += 1;
                if m.sign_failed == 1 {
                    let message = format!("discovery: announcement not sent: {error}");
                    self.log(LogLevel::Error, message);
                }
                return;
            }
        }
        let bytes = match announcement.encode() {
            Ok(bytes) => bytes,
            Err(error) => {
                m.too_large += 1;
                if m.too_large == 1 {
                    let message = format!("discovery: announcement not sent: {error}");
                    self.log(LogLevel::Warn, message);
                }
                return;
            }
        };
        m.sent += 1;
        let mut sends = Vec::new();
        if let Some(endpoint) = m.multicast.filter(|e| m.up.contains(e)) {
            if let Some(group) = m.config.multicast {
                sends.push((endpoint, SocketAddr::V4(group)));
            }
        }
        if let Some(endpoint) = m.unicast.filter(|e| m.up.contains(e)) {
            sends.extend(m.config.peers.iter().map(|&to| (endpoint, to)));
        }
        let registry = m.config.registry;
        for (endpoint, to) in sends {
            self.out.push_back(Output::SendTo {
                endpoint,
                to,
                bytes: bytes.clone(),
            });
        }
        if registry {
            self.out.push_back(Output::Announce { bytes });
        }
    }

    /// What the node says about each app it serves: the serving version of each name (the
    /// tombstones are added to fit, [`budget::fit`]).
    fn announced_apps(&self) -> BTreeMap<String, AppAnnouncement> {
        self.names
            .iter()
            .filter_map(|(name, id)| Some((name.clone(), self.announced_app(self.apps.get(id)?))))
            .collect()
    }

    pub(super) fn announced_app(&self, app: &App) -> AppAnnouncement {
        let engine = &app.engine;
        let config = engine.config();
        let busy = engine
            .worker_loads()
            .iter()
            .filter(|(_, _, jobs)| *jobs > 0)
            .count();
        let tasks = app
            .manifest
            .tasks
            .iter()
            .filter_map(|t| {
                let (address, _) = t.kind.endpoint()?;
                Some((t.name.clone(), self.on_host(address)))
            })
            .collect();
        AppAnnouncement {
            version: app.manifest.version,
            hash: self.announced_hash(app),
            tasks,
            load: Load {
                queue: engine.queued() as u64,
                busy: busy as u64,
                workers: engine.worker_count() as u64,
                pool_limit: config.pool_limit as u64,
                queue_limit: config.queue_limit as u64,
            },
            state: announced_state(app),
        }
    }

    /// The content hash announced for `app`: the replication registry's, for a replicated
    /// app whose recorded version is the one serving; empty otherwise (a local app, or a
    /// redeploy still taking over).
    fn announced_hash(&self, app: &App) -> String {
        self.replicated_hash(&app.name, app.manifest.version)
    }

    /// A datagram on a discovery endpoint: taken into the peer table, or dropped and counted.
    pub(super) fn datagram(
        &mut self,
        now: Now,
        endpoint: EndpointId,
        from: SocketAddr,
        bytes: &[u8],
    ) {
        let Some(m) = &mut self.membership else {
            return;
        };
        if !m.owns(endpoint) {
            return;
        }
        let observed = match self.config.cluster_auth {
            AuthMode::Off => m.table.receive(now, from, bytes),
            mode => {
                let keys = self.auth.verifier.keys();
                m.table.receive_checked(now, from, bytes, |a, signed| {
                    signing::check(mode, keys, a, signed)
                })
            }
        };
        let malformed = m.table.stats().malformed;
        if matches!(
            observed,
            Observed::New | Observed::Updated | Observed::Replaced { .. }
        ) {
            self.replicate_from_datagram(now, from);
        }
        let Some(m) = &mut self.membership else {
            return;
        };
        let message = match observed {
            Observed::New => {
                let source = crate::cluster::Source::Datagram(from);
                let peer = m
                    .table
                    .peers()
                    .find(|p| p.source == source && p.last_seen == now.mono)
                    .map(|p| format!("{} ({})", p.node_id, p.control))
                    .unwrap_or_default();
                Some((
                    LogLevel::Info,
                    format!("discovery: new peer {peer} from {from}"),
                ))
            }
            Observed::Replaced { old_id } => Some((
                LogLevel::Info,
                format!("discovery: peer {old_id} restarted under a new id ({from})"),
            )),
            Observed::Dropped(DropReason::Malformed(error)) => {
                (malformed <= MALFORMED_LOGGED || malformed % MALFORMED_LOG_EVERY == 0).then(|| {
                    (
                        LogLevel::Warn,
                        format!(
                            "discovery: dropped a malformed announcement from {from} \
                                 ({malformed} so far): {error}"
                        ),
                    )
                })
            }
            Observed::Dropped(DropReason::Signature(refusal)) => {
                let refused = m.table.stats().unsigned
                    + m.table.stats().unknown_key
                    + m.table.stats().bad_signature;
                (refused <= MALFORMED_LOGGED || refused % MALFORMED_LOG_EVERY == 0).then(|| {
                    (
                        LogLevel::Warn,
                        format!(
                            "discovery: dropped an announcement from {from} \
                             ({refused} refused so far): {refusal}"
                        ),
                    )
                })
            }
            Observed::Dropped(DropReason::Full(max)) => Some((
                LogLevel::Warn,
                format!("discovery: peer table full ({max} peers); dropped {from}"),
            )),
            Observed::Updated | Observed::Dropped(_) => None,
        };
        if let Some((level, message)) = message {
            self.log(level, message);
        }
    }

    /// The `peers` control action: this node's discovery settings, every peer with its apps
    /// and load, and the counters.
    pub(super) fn peers_listing(&self, now: Now) -> Value {
        let Some(m) = &self.membership else {
            return json!({"node_id": null, "discovery": null, "peers": [], "stats": null});
        };
        let peers: Vec<Value> = m
            .table
            .peers()
            .map(|p| {
                let apps: Map<String, Value> = p
                    .apps
                    .iter()
                    .map(|(name, a)| (name.clone(), app_json(a)))
                    .collect();
                json!({
                    "node_id": p.node_id,
                    "control": p.control,
                    "source": match p.source {
                        crate::cluster::Source::Datagram(addr) => addr.to_string(),
                        crate::cluster::Source::Registry => "registry".to_owned(),
                    },
                    "seq": p.seq,
                    "last_seen_unix_ms": p.last_seen_unix_ms,
                    "silent_ms": now.mono.saturating_duration_since(p.last_seen).as_millis() as u64,
                    "apps": apps,
                })
            })
            .collect();
        let stats = m.table.stats();
        json!({
            "node_id": m.config.node_id,
            "control": m.control,
            "discovery": {
                "multicast": m.config.multicast.map(|g| g.to_string()),
                "peers": m.config.peers.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "interval_ms": m.config.interval.as_millis() as u64,
                "registry": m.config.registry,
                "auth": self.config.cluster_auth.name(),
            },
            "peers": peers,
            "stats": {
                "received": stats.received,
                "accepted": stats.accepted,
                "malformed": stats.malformed,
                "stale": stats.stale,
                "own": stats.own,
                "full": stats.full,
                "forgotten": stats.forgotten,
                "sent": m.sent,
                "too_large": m.too_large,
                "unsigned": stats.unsigned,
                "unknown_key": stats.unknown_key,
                "bad_signature": stats.bad_signature,
                "sign_failed": m.sign_failed,
                "tombstones_announced": m.tombstones.added,
                "tombstones_deferred": m.tombstones.deferred,
            },
        })
    }
}

impl Node {
    /// A registry's record of a node: into the peer table like a datagram's announcement.
    pub(super) fn peer_record(&mut self, now: Now, announcement: Announcement) {
        let Some(m) = &mut self.membership else {
            return;
        };
        let id = announcement.node_id.clone();
        let observed = m.table.observe(now, Source::Registry, announcement);
        if matches!(
            observed,
            Observed::New | Observed::Updated | Observed::Replaced { .. }
        ) {
            self.replicate_from_peer(now, &id);
        }
        let message = match observed {
            Observed::New => format!("discovery: new peer {id} from the registry"),
            Observed::Replaced { old_id } => {
                format!("discovery: peer {old_id} restarted as {id} (registry)")
            }
            Observed::Dropped(DropReason::Malformed(e)) => {
                format!("discovery: the registry's record of {id:?} is malformed: {e}")
            }
            _ => return,
        };
        self.log(LogLevel::Info, message);
    }

    /// The registry says a node left.
    pub(super) fn peer_gone(&mut self, node_id: &str) {
        let forgot = self
            .membership
            .as_mut()
            .is_some_and(|m| m.table.forget(node_id));
        if forgot {
            let message = format!("discovery: forgot peer {node_id}: the registry says it left");
            self.log(LogLevel::Info, message);
        }
    }
}

fn app_json(a: &AppAnnouncement) -> Value {
    json!({
        "version": a.version,
        "hash": a.hash,
        "state": a.state,
        "tasks": a.tasks,
        "queue": a.load.queue,
        "busy": a.load.busy,
        "workers": a.load.workers,
        "pool_limit": a.load.pool_limit,
        "queue_limit": a.load.queue_limit,
    })
}

fn announced_state(app: &App) -> AppState {
    match app.phase {
        Phase::Binding { .. } | Phase::AwaitingWorker => AppState::Starting,
        Phase::Retired | Phase::Removed | Phase::Failed => AppState::Stopping,
        Phase::Running => match app.engine.state() {
            _ if app.engine.failing().is_some() => AppState::Broken,
            EngineState::Running => AppState::Running,
            EngineState::Broken { .. } => AppState::Broken,
            EngineState::Stopping | EngineState::Stopped => AppState::Stopping,
        },
    }
}

/// `SCHEME://*:PORT` with `*` replaced by `host`; any other address as it is.
fn replace_wildcard_host(address: &str, host: &str) -> String {
    match address.split_once("://") {
        Some((scheme, rest)) if rest.starts_with("*:") => {
            format!("{scheme}://{host}{}", &rest[1..])
        }
        _ => address.to_owned(),
    }
}
