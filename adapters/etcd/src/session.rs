//! The thread's loop: sessions with etcd, one after another, with a backoff between them.
//!
//! A session: connect, grant a lease, list the prefix (the members become `PeerRecord`s; a
//! member the node was told of before but missing now becomes `PeerGone`), watch the prefix
//! from the listed revision, and from then on put each announcement the node hands over (with
//! the lease) and keep the lease alive. Anything that fails ends the session; the next one
//! starts from scratch, so nothing of a broken session (a lease etcd may have dropped, a watch
//! that missed events) is trusted.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cocaine_core::cluster::Announcement;
use cocaine_core::node::Input;
use cocaine_core::process::LogLevel;
use cocaine_os::folder::LogFn;
use cocaine_os::inbox::Inbox;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, KeyValue, PutOptions, Txn,
    TxnOp, WatchOptions,
};
use tokio::sync::watch;

use crate::dropped::Dropped;
use crate::records::{judge, own_records, Judged, Registry};
use crate::{EtcdConfig, EtcdError};

/// The longest any single request to etcd may take before the session is given up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// The first wait after a failed session, doubled after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The shortest lease etcd grants with its default timing (3/2 of a 1 s election timeout,
/// rounded up to whole seconds).
const MIN_TTL_SECS: i64 = 2;
/// How long a clean shutdown waits for etcd to revoke the lease.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(1);

/// The lease's time to live for an announcement interval: three intervals (as a silent peer
/// is forgotten after three), in whole seconds, at least [`MIN_TTL_SECS`].
pub fn lease_ttl(interval: Duration) -> i64 {
    let ms = interval.as_millis().saturating_mul(3);
    let secs = ms.div_ceil(1000).min(i64::MAX as u128) as i64;
    secs.max(MIN_TTL_SECS)
}

/// One key-value as etcd gave it (in a list or a watch event).
#[derive(Debug, Clone, Copy)]
struct Entry<'a> {
    key: &'a [u8],
    value: &'a [u8],
    mod_revision: i64,
}

impl<'a> Entry<'a> {
    fn of(kv: &'a KeyValue) -> Entry<'a> {
        Entry {
            key: kv.key(),
            value: kv.value(),
            mod_revision: kv.mod_revision(),
        }
    }
}

/// What lives across sessions.
struct Thread {
    config: EtcdConfig,
    inbox: Inbox,
    log: LogFn,
    announced: watch::Receiver<Option<Bytes>>,
    stopped: watch::Receiver<bool>,
    /// The members the node was told of (`PeerRecord`) and not told left (`PeerGone`).
    known: BTreeSet<String>,
    registry: Registry,
    dropped: Dropped,
    /// The lease of the current session, revoked at a clean stop.
    lease: Option<(Client, i64)>,
}

impl Thread {
    /// A thread that knows of no member, no registry record and no lease yet.
    fn new(
        config: EtcdConfig,
        inbox: Inbox,
        log: LogFn,
        announced: watch::Receiver<Option<Bytes>>,
        stopped: watch::Receiver<bool>,
    ) -> Thread {
        Thread {
            config,
            inbox,
            log,
            announced,
            stopped,
            known: BTreeSet::new(),
            registry: Registry::default(),
            dropped: Dropped::default(),
            lease: None,
        }
    }
}

/// Runs sessions until the node stops. Called on the thread of its own.
pub fn run(
    config: EtcdConfig,
    inbox: Inbox,
    mut log: LogFn,
    announced: watch::Receiver<Option<Bytes>>,
    stopped: watch::Receiver<bool>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            log(LogLevel::Error, &EtcdError::Runtime(e).to_string());
            return;
        }
    };
    let mut thread = Thread::new(config, inbox, log, announced, stopped);
    runtime.block_on(thread.sessions());
}

impl Thread {
    async fn sessions(&mut self) {
        let mut backoff = FIRST_BACKOFF;
        let mut failures: u32 = 0;
        let endpoints = self.config.endpoints.join(",");
        loop {
            let mut stopped = self.stopped.clone();
            let result = tokio::select! {
                r = self.session(&mut failures) => r,
                _ = stopped.wait_for(|s| *s) => break,
            };
            if *self.stopped.borrow() {
                break;
            }
            if let Err(error) = result {
                failures += 1;
                if failures == 1 {
                    backoff = FIRST_BACKOFF;
                }
                let (level, tail) = if failures == 1 {
                    (
                        LogLevel::Error,
                        "; the node serves on, and keeps trying to reach etcd",
                    )
                } else {
                    (LogLevel::Warn, "")
                };
                let message = format!(
                    "etcd ({endpoints}): {error}{tail}; attempt {} in {} ms",
                    failures + 1,
                    backoff.as_millis()
                );
                (self.log)(level, &message);
            }
            self.lease = None;
            let mut stopped = self.stopped.clone();
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stopped.wait_for(|s| *s) => break,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        self.revoke().await;
    }

    /// Revokes the lease of the session that was running, so peers forget this node at once
    /// rather than when the lease runs out.
    async fn revoke(&mut self) {
        if let Some((mut client, lease)) = self.lease.take() {
            let _ = tokio::time::timeout(REVOKE_TIMEOUT, client.lease_revoke(lease)).await;
        }
    }

    /// One session; returns only with the error that ended it.
    async fn session(&mut self, failures: &mut u32) -> Result<(), EtcdError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(2), REQUEST_TIMEOUT)
            .with_keep_alive_while_idle(true);
        let mut client = timed(
            "connect",
            Client::connect(self.config.endpoints.clone(), Some(options)),
        )
        .await??;
        let ttl = lease_ttl(self.config.interval);
        let lease = timed("lease grant", client.lease_grant(ttl, None))
            .await??
            .id();
        self.lease = Some((client.clone(), lease));
        let (mut keeper, mut kept) =
            timed("lease keep-alive", client.lease_keep_alive(lease)).await??;
        let prefix = self.config.layout.prefix().to_owned();
        let listed = timed(
            "list",
            client.get(prefix.clone(), Some(GetOptions::new().with_prefix())),
        )
        .await??;
        let revision = listed.header().map_or(0, |h| h.revision());
        self.reconcile(listed.kvs().iter().map(Entry::of));
        let mut watched = timed(
            "watch",
            client.watch(
                prefix,
                Some(
                    WatchOptions::new()
                        .with_prefix()
                        .with_start_revision(revision + 1),
                ),
            ),
        )
        .await??;
        if *failures > 0 {
            let message = format!(
                "etcd: connected again; {} peers listed (lease {lease:x}, {ttl} s)",
                self.known.len()
            );
            (self.log)(LogLevel::Info, &message);
        } else {
            let message = format!(
                "etcd: connected; member {} under a lease of {ttl} s, {} peers listed",
                self.config.layout.member(&self.config.node_id),
                self.known.len()
            );
            (self.log)(LogLevel::Info, &message);
        }
        *failures = 0;
        // The latest announcement is put at once, whether or not it changed since the last
        // session: this session's lease must hold the member key.
        self.announced.mark_changed();
        let keep_every = Duration::from_millis((ttl as u64 * 1000 / 3).max(500));
        let mut keepalive = tokio::time::interval(keep_every);
        let mut last_kept = Instant::now();
        loop {
            tokio::select! {
                changed = self.announced.changed() => {
                    if changed.is_err() {
                        // The node is gone (its stop is set before this can happen).
                        return Ok(());
                    }
                    let bytes = self.announced.borrow_and_update().clone();
                    if let Some(bytes) = bytes {
                        self.put(&mut client, lease, bytes).await?;
                    }
                }
                _ = keepalive.tick() => {
                    if last_kept.elapsed() > Duration::from_secs(ttl as u64) {
                        return Err(EtcdError::LeaseExpired);
                    }
                    timed("lease keep-alive", keeper.keep_alive()).await??;
                }
                message = kept.message() => {
                    match message? {
                        Some(r) if r.ttl() > 0 => last_kept = Instant::now(),
                        Some(_) => return Err(EtcdError::LeaseExpired),
                        None => return Err(EtcdError::StreamEnded("lease keep-alive")),
                    }
                }
                message = watched.message() => {
                    let Some(response) = message? else {
                        return Err(EtcdError::StreamEnded("watch"));
                    };
                    if response.canceled() {
                        let reason = match response.compact_revision() {
                            0 => response.cancel_reason().to_owned(),
                            r => format!("history compacted past revision {r}"),
                        };
                        return Err(EtcdError::WatchCancelled(reason));
                    }
                    for event in response.events() {
                        let Some(kv) = event.kv() else { continue };
                        match event.event_type() {
                            EventType::Put => self.take(Entry::of(kv)),
                            EventType::Delete => self.deleted(kv.key()),
                        }
                    }
                }
            }
        }
    }

    /// The prefix as listed at the start of a session: every member told to the node, every
    /// member the node knew but etcd no longer has told gone, the registry read afresh.
    fn reconcile<'a>(&mut self, kvs: impl Iterator<Item = Entry<'a>>) {
        let before = std::mem::take(&mut self.known);
        self.registry.clear();
        for kv in kvs {
            self.take(kv);
        }
        for gone in before.difference(&self.known) {
            self.inbox.push(Input::PeerGone {
                node_id: gone.clone(),
            });
        }
    }

    /// A key put (or listed).
    fn take(&mut self, kv: Entry<'_>) {
        match judge(&self.config.layout, kv.key, kv.value) {
            // Our own record: the node has nothing to learn from it.
            Judged::Member(a) if a.node_id == self.config.node_id => {}
            Judged::Member(announcement) => {
                self.known.insert(announcement.node_id.clone());
                self.inbox.push(Input::PeerRecord { announcement });
            }
            Judged::App(record) => {
                self.registry
                    .set(record.app.clone(), Some(record), kv.mod_revision);
            }
            Judged::BadApp(app, error) => {
                self.registry.set(app, None, kv.mod_revision);
                self.drop_value(kv.key, &error);
            }
            Judged::Dropped(error) => self.drop_value(kv.key, &error),
        }
    }

    /// A key deleted: a member's lease ended (or someone deleted it), or an app's record
    /// went (by hand: nodes never delete one).
    fn deleted(&mut self, key: &[u8]) {
        use cocaine_core::cluster::etcd::Key;
        match self.config.layout.parse(key) {
            Ok(Key::Member(id)) if id == self.config.node_id => {
                // Someone deleted this node's key: the next announcement puts it back.
            }
            Ok(Key::Member(id)) => {
                if self.known.remove(&id) {
                    self.inbox.push(Input::PeerGone { node_id: id });
                }
            }
            Ok(Key::App(app)) => self.registry.remove(&app),
            Err(_) => {}
        }
    }

    fn drop_value(&mut self, key: &[u8], error: &cocaine_core::cluster::etcd::RecordError) {
        if let Some(line) = self.dropped.count(key, error) {
            (self.log)(LogLevel::Warn, &line);
        }
    }

    /// Puts the node's announcement under its lease, then writes the registry records that
    /// rank above what etcd holds (compare-and-swap on the revision read, so two nodes never
    /// overwrite each other's higher record; one that loses hears the winner by the watch).
    async fn put(
        &mut self,
        client: &mut Client,
        lease: i64,
        bytes: Bytes,
    ) -> Result<(), EtcdError> {
        let key = self.config.layout.member(&self.config.node_id);
        let own = Announcement::decode(&bytes).ok();
        timed(
            "put",
            client.put(
                key,
                bytes.to_vec(),
                Some(PutOptions::new().with_lease(lease)),
            ),
        )
        .await??;
        let Some(own) = own else { return Ok(()) };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        for record in own_records(&own, now_ms) {
            let Some(revision) = self.registry.should_write(&record) else {
                continue;
            };
            let key = self.config.layout.app(&record.app);
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    revision,
                )])
                .and_then([TxnOp::put(key, record.encode(), None)]);
            let done = timed("registry write", client.txn(txn)).await??;
            if done.succeeded() {
                let state = if record.deleted_at.is_some() {
                    "deleted"
                } else {
                    "live"
                };
                let message = format!(
                    "etcd: registry: {} version {} {state}",
                    record.app, record.version
                );
                (self.log)(LogLevel::Info, &message);
                // The watch brings the record with its revision; until then, not again.
                let revision = done.header().map_or(revision, |h| h.revision());
                self.registry
                    .set(record.app.clone(), Some(record), revision);
            }
        }
        Ok(())
    }
}

async fn timed<T>(
    what: &'static str,
    future: impl std::future::Future<Output = T>,
) -> Result<T, EtcdError> {
    tokio::time::timeout(REQUEST_TIMEOUT, future)
        .await
        .map_err(|_| EtcdError::Timeout(what, REQUEST_TIMEOUT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cocaine_core::cluster::etcd::{Layout, DEFAULT_PREFIX};
    use std::sync::{Arc, Mutex};

    fn thread(lines: Arc<Mutex<Vec<String>>>) -> (Thread, Inbox) {
        let inbox = Inbox::new().unwrap();
        let (_, announced) = watch::channel(None);
        let (_, stopped) = watch::channel(false);
        let config = EtcdConfig {
            endpoints: vec![],
            layout: Layout::new(DEFAULT_PREFIX).unwrap(),
            node_id: "node-a".into(),
            interval: Duration::from_secs(1),
        };
        let log: LogFn = Box::new(move |_, line: &str| lines.lock().unwrap().push(line.to_owned()));
        let thread = Thread::new(config, inbox.clone(), log, announced, stopped);
        (thread, inbox)
    }

    fn member(id: &str) -> Vec<u8> {
        Announcement {
            node_id: id.into(),
            seq: 1,
            control: "tcp://127.0.0.9:5000".into(),
            apps: Default::default(),
            sig: None,
        }
        .encode()
        .unwrap()
        .to_vec()
    }

    fn entry<'a>(key: &'a str, value: &'a [u8]) -> Entry<'a> {
        Entry {
            key: key.as_bytes(),
            value,
            mod_revision: 1,
        }
    }

    /// What the node was handed: (peer records, peers gone).
    fn handed(inbox: &Inbox) -> (Vec<String>, Vec<String>) {
        let mut inputs = Vec::new();
        inbox.take(&mut inputs);
        let mut records = Vec::new();
        let mut gone = Vec::new();
        for input in inputs {
            match input {
                Input::PeerRecord { announcement } => records.push(announcement.node_id),
                Input::PeerGone { node_id } => gone.push(node_id),
                other => panic!("{other:?}"),
            }
        }
        (records, gone)
    }

    #[test]
    fn a_new_session_reconciles_the_members_with_what_the_node_was_told() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (mut t, inbox) = thread(lines.clone());
        let (a, b, c) = (member("node-a"), member("node-b"), member("node-c"));
        t.reconcile(
            [
                entry("/cocaine/members/node-a", &a),
                entry("/cocaine/members/node-b", &b),
                entry("/cocaine/members/node-c", &c),
                entry("/cocaine/members/node-x", b"garbage"),
            ]
            .into_iter(),
        );
        assert_eq!(
            handed(&inbox),
            (vec!["node-b".into(), "node-c".into()], vec![]),
            "the node's own record is not handed over"
        );
        assert_eq!(t.dropped.count, 1);
        assert!(lines.lock().unwrap()[0].contains("members/node-x"));

        // etcd came back without node-c (its lease ended while the session was down).
        t.reconcile([entry("/cocaine/members/node-b", &b)].into_iter());
        assert_eq!(
            handed(&inbox),
            (vec!["node-b".into()], vec!["node-c".into()])
        );

        // A watch's delete: told once; our own key's delete is not a peer leaving.
        t.deleted(b"/cocaine/members/node-b");
        t.deleted(b"/cocaine/members/node-b");
        t.deleted(b"/cocaine/members/node-a");
        t.deleted(b"/cocaine/members/bad key");
        assert_eq!(handed(&inbox), (vec![], vec!["node-b".into()]));
    }

    #[test]
    fn the_lease_lives_three_intervals_in_whole_seconds_at_least_two() {
        assert_eq!(lease_ttl(Duration::from_secs(1)), 3);
        assert_eq!(lease_ttl(Duration::from_millis(100)), 2);
        assert_eq!(lease_ttl(Duration::from_millis(1100)), 4);
        assert_eq!(lease_ttl(Duration::from_secs(10)), 30);
        assert_eq!(lease_ttl(Duration::MAX), i64::MAX);
    }
}
