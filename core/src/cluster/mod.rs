//! The cluster: how nodes find each other and what they tell each other (docs/cluster.md).
//!
//! - [`announcement`]: the datagram every node sends each `announce-interval` (its apps,
//!   their versions, hashes, endpoints, load and state), its codec and its checks.
//! - [`peers`]: the peer table every discovery mode feeds (multicast, static peers, a
//!   registry later): who is there, what they run, and forgetting the silent.
//! - [`balance`]: choosing a node for a request by announced load (power of two choices),
//!   the blind baselines, and the spillover decision.
//! - `simulation` (feature `sim`): balancing at scale, simulated.
//! - [`etcd`]: the keys and values a cluster keeps in etcd (`cocaine node --etcd`).
//! - [`budget`]: fitting live apps and tombstones into one datagram.
//! - [`signing`]: signed announcements (`--cluster-auth`): signing and the check.
//! - [`registry`], [`fetch`], [`tombstone`]: replication: which version of each replicated app
//!   wins, how a node copies one from a peer, and how deletions are kept.
//!
//! Discovery is one interface: a runtime (or an adapter thread) hands the core what it heard,
//! as bytes from a datagram or as a typed announcement from a registry; the core keeps the
//! table, its expiry and every decision, and says what to send. Nothing here does IO.

pub mod announcement;
pub mod balance;
pub mod budget;
pub mod etcd;
#[cfg(feature = "fuzzing")]
pub mod etcd_fuzzing;
pub mod fetch;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod peers;
pub mod registry;
#[cfg(feature = "fuzzing")]
pub mod replication_fuzzing;
pub mod signing;
#[cfg(feature = "sim")]
pub mod simulation;
pub mod tombstone;

pub use announcement::{
    check_node_id, Announcement, AppAnnouncement, AppState, EncodeError, Load, MAX_ANNOUNCEMENT,
};
pub use peers::{
    resolve_wildcard, DropReason, MembershipStats, Observed, Peer, PeerTable, PeerTableConfig,
    Source, DEFAULT_MAX_PEERS, SILENT_INTERVALS,
};
