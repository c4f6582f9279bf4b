//! etcd discovery for a cocaine node (docs/cluster.md, "etcd"): one thread of its own, with a
//! small single-threaded tokio runtime for the etcd client, that
//!
//! - keeps the node's announcement under `<prefix>members/<node_id>`, attached to a lease it
//!   keeps alive, so that a node that dies leaves with its lease;
//! - watches `<prefix>` and hands the node every peer's announcement (`Input::PeerRecord`)
//!   and every departure (`Input::PeerGone`) through its inbox, as the store thread does;
//! - writes each replicated app's record under `<prefix>apps/<app>`, only ever upward, so that
//!   etcd holds the cluster's registry: the highest version and the tombstones.
//!
//! The node serves whatever etcd does: when etcd cannot be reached the thread logs it and
//! tries again with a backoff, and each new session starts from scratch (a new lease, the
//! record put again, the prefix listed and reconciled with what the node was told).
//!
//! Key layout and value codecs are the core's (`cocaine_core::cluster::etcd`), pure and fuzzed.

mod dropped;
mod records;
mod session;
mod startup;

use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use cocaine_core::cluster::etcd::Layout;
use cocaine_os::folder::LogFn;
use cocaine_os::inbox::Inbox;
use tokio::sync::watch;

pub use dropped::Dropped;
pub use session::lease_ttl;
pub use startup::read_tombstones;

/// Where etcd is and what this node is called there.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// etcd's client URLs (`http://HOST:PORT`); the client balances over them.
    pub endpoints: Vec<String>,
    pub layout: Layout,
    pub node_id: String,
    /// The node's announcement interval: the lease lives three of them (at least 2 s).
    pub interval: Duration,
}

/// Why a session with etcd ended.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("{0}")]
    Client(#[from] etcd_client::Error),
    #[error("no answer to {0} within {1:?}")]
    Timeout(&'static str, Duration),
    #[error("the lease expired (etcd did not hear the keep-alives in time)")]
    LeaseExpired,
    #[error("etcd closed the {0} stream")]
    StreamEnded(&'static str),
    #[error("etcd cancelled the watch: {0}")]
    WatchCancelled(String),
    #[error("cannot start the etcd thread's runtime: {0}")]
    Runtime(std::io::Error),
}

/// The etcd thread. Dropping it revokes the node's lease (so its peers forget it at once)
/// and joins the thread.
pub struct EtcdThread {
    announcements: watch::Sender<Option<Bytes>>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl EtcdThread {
    /// Starts the thread; it connects in the background (the node does not wait for etcd).
    pub fn spawn(config: EtcdConfig, inbox: Inbox, log: LogFn) -> std::io::Result<EtcdThread> {
        let (announcements, announced) = watch::channel(None);
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("cocaine-etcd".to_owned())
            .spawn(move || session::run(config, inbox, log, announced, stopped))?;
        Ok(EtcdThread {
            announcements,
            stop,
            thread: Some(thread),
        })
    }

    /// The node's latest announcement (`Output::Announce`): put in etcd as soon as the thread
    /// can; only the latest one matters.
    pub fn announce(&self, bytes: Bytes) {
        self.announcements.send_replace(Some(bytes));
    }
}

impl Drop for EtcdThread {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
