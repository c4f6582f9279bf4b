//! The announcement a node sends every `announce-interval` (docs/protocol.md, "Announcements"):
//! one UDP datagram holding the msgpack array
//! `[1, node_id, seq, control, apps, sig]`, where `apps` maps each app's name to
//! `{version, hash, tasks, queue, busy, workers, pool_limit, queue_limit, state}`.
//!
//! Decoding is strict (every key required, no unknown key, no key twice, sizes bounded), and a
//! decoded announcement is then checked for sense ([`Announcement::validate`]): a datagram comes
//! from anyone on the network, so nothing in it is trusted until both pass.

use std::collections::BTreeMap;
use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::codec::mp::{self, Reader};
use crate::codec::DecodeError;

/// The message kind of an announcement, its first element.
pub const KIND: u64 = 1;
/// Elements of the announcement array, the kind included.
const ARITY: usize = 6;
/// The largest announcement sent or accepted: the largest UDP payload over IPv4.
pub const MAX_ANNOUNCEMENT: usize = 65_507;
/// The longest node id.
pub const MAX_NODE_ID: usize = 64;
/// The longest endpoint (the control endpoint, a task's endpoint).
pub const MAX_ENDPOINT: usize = 256;
/// The longest content hash (a SHA-256 in hex is 64 characters; room for a prefix).
pub const MAX_HASH: usize = 128;
/// The longest task name.
pub const MAX_TASK_NAME: usize = 128;
/// The longest signature.
pub const MAX_SIG: usize = 1024;

/// One node's announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// Who sends it: 1 to [`MAX_NODE_ID`] characters from `A-Z a-z 0-9 . _ -`, unique in the
    /// cluster (see [`check_node_id`]).
    pub node_id: String,
    /// Grows by one with each announcement the node sends, and starts, when the node starts,
    /// past anything it sent before (the node starts it at its start time in unix
    /// milliseconds), so a restart is not mistaken for a replay.
    pub seq: u64,
    /// The node's control endpoint, `tcp://HOST:PORT`. A wildcard host (`*`, `0.0.0.0`) is
    /// replaced by the sender's address when a peer takes it in.
    pub control: String,
    /// The node's apps, by name.
    pub apps: BTreeMap<String, AppAnnouncement>,
    /// The node's RSA-PSS/SHA-256 signature over the bytes before it
    /// ([`Announcement::signed_part`]), made with the node's key when `--cluster-auth` is on;
    /// `None` from a node that does not sign (docs/cluster.md).
    pub sig: Option<Bytes>,
}

/// What a node says about one of its apps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppAnnouncement {
    /// The manifest's `version` (the newer wins when apps replicate).
    pub version: u64,
    /// A content hash of the app as deployed (manifest and package): two nodes with the same
    /// version and hash run the same thing. Lowercase hex; may be empty when unknown.
    pub hash: String,
    /// Each task that has an endpoint, by task name: where clients reach it.
    pub tasks: BTreeMap<String, String>,
    /// How loaded the app is on this node.
    pub load: Load,
    pub state: AppState,
}

/// An app's load on one node, as its engine counts it at announcement time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// Jobs waiting in the queue.
    pub queue: u64,
    /// Workers holding at least one job.
    pub busy: u64,
    /// Workers that exist, in any state.
    pub workers: u64,
    /// The most workers the app may have (`engine.pool-limit`).
    pub pool_limit: u64,
    /// The longest the queue may grow (`engine.queue-limit`); past it requests get 503.
    pub queue_limit: u64,
}

impl Load {
    /// True when the queue is at its limit: a request sent there now would get 503.
    pub fn is_full(&self) -> bool {
        self.queue >= self.queue_limit
    }
}

/// Where an app is in its life on the announcing node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppState {
    /// Binding its endpoints or waiting for its first worker.
    Starting,
    /// Serving.
    Running,
    /// Up, but its workers fail: calls fail until it recovers or is fixed.
    Broken,
    /// Being removed or replaced; finishing its jobs.
    Stopping,
    /// Not an app that runs: the tombstone of a replicated app deleted at `version`, announced
    /// so that every peer deletes it too and none brings it back (docs/cluster.md). Its
    /// `hash` is empty, `tasks` empty and its load zero.
    Deleted,
}

impl AppState {
    /// Every state, in wire order.
    pub const ALL: [AppState; 5] = [
        AppState::Starting,
        AppState::Running,
        AppState::Broken,
        AppState::Stopping,
        AppState::Deleted,
    ];

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            AppState::Starting => "starting",
            AppState::Running => "running",
            AppState::Broken => "broken",
            AppState::Stopping => "stopping",
            AppState::Deleted => "deleted",
        }
    }

    /// The state of a wire name.
    pub fn from_name(name: &str) -> Option<AppState> {
        AppState::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an announcement cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// It would not fit one datagram (too many apps or tasks).
    #[error("announcement of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
}

impl Announcement {
    /// The datagram's bytes.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::with_capacity(256);
        self.encode_unsigned_part(&mut out);
        match &self.sig {
            Some(sig) => mp::put_bin(&mut out, sig),
            None => mp::put_nil(&mut out),
        }
        if out.len() > MAX_ANNOUNCEMENT {
            return Err(EncodeError::TooLarge {
                size: out.len(),
                limit: MAX_ANNOUNCEMENT,
            });
        }
        Ok(out.freeze())
    }

    fn encode_unsigned_part(&self, out: &mut BytesMut) {
        mp::put_array_len(out, ARITY as u32);
        mp::put_uint(out, KIND);
        mp::put_str(out, &self.node_id);
        mp::put_uint(out, self.seq);
        mp::put_str(out, &self.control);
        put_len(out, self.apps.len(), mp::put_map_len);
        for (name, app) in &self.apps {
            mp::put_str(out, name);
            app.encode(out);
        }
    }

    /// Reads one datagram: msgpack decoding, then [`Announcement::validate`]. Never panics.
    pub fn decode(datagram: &[u8]) -> Result<Announcement, DecodeError> {
        Self::decode_signed(datagram).map(|(announcement, _)| announcement)
    }

    /// [`Announcement::decode`], and how many of the datagram's bytes come before `sig`:
    /// `&datagram[..n]` is what a signature covers, exactly as it arrived (docs/protocol.md §8).
    pub fn decode_signed(datagram: &[u8]) -> Result<(Announcement, usize), DecodeError> {
        if datagram.len() > MAX_ANNOUNCEMENT {
            return Err(DecodeError::TooLarge {
                size: datagram.len(),
                limit: MAX_ANNOUNCEMENT,
            });
        }
        let mp::Head {
            kind,
            arity,
            body: mut r,
        } = Reader::message(datagram)?;
        if kind != KIND {
            return Err(DecodeError::UnknownKind(kind));
        }
        if arity != ARITY {
            return Err(DecodeError::WrongArity {
                kind,
                expected: ARITY,
                got: arity,
            });
        }
        let node_id = r.str("node_id")?.to_owned();
        let seq = r.uint("seq")?;
        let control = r.str("control")?.to_owned();
        let apps = decode_apps(&mut r)?;
        let signed_len = r.offset_in(datagram);
        let sig = if r.nil() {
            None
        } else {
            Some(Bytes::copy_from_slice(r.bin("sig")?))
        };
        r.finish()?;
        let announcement = Announcement {
            node_id,
            seq,
            control,
            apps,
            sig,
        };
        announcement.validate()?;
        Ok((announcement, signed_len))
    }

    /// The bytes a signature covers: the encoding up to, and without, `sig` (whatever `sig`
    /// holds). A sender signs these and puts the signature in `sig`; a receiver checks the
    /// signature over the datagram's own bytes ([`Announcement::decode_signed`]), which are
    /// these for an announcement this encoder wrote.
    pub fn signed_part(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(256);
        self.encode_unsigned_part(&mut out);
        out.freeze()
    }

    /// Checks what msgpack cannot: names, endpoints and sizes within their rules, and counts
    /// that agree with each other (no more busy workers than workers).
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_node_id(&self.node_id)?;
        check_endpoint(&self.control, "control")?;
        for (name, app) in &self.apps {
            crate::control::check_app_name(name).map_err(|_| DecodeError::Invalid {
                field: "apps",
                reason: "an app name breaks the rules of app names",
            })?;
            app.validate()?;
        }
        if self.sig.as_ref().is_some_and(|s| s.len() > MAX_SIG) {
            return Err(DecodeError::Invalid {
                field: "sig",
                reason: "longer than any signature",
            });
        }
        Ok(())
    }
}

impl AppAnnouncement {
    fn encode(&self, out: &mut BytesMut) {
        mp::put_map_len(out, 9);
        mp::put_str(out, "version");
        mp::put_uint(out, self.version);
        mp::put_str(out, "hash");
        mp::put_str(out, &self.hash);
        mp::put_str(out, "tasks");
        put_len(out, self.tasks.len(), mp::put_map_len);
        for (task, endpoint) in &self.tasks {
            mp::put_str(out, task);
            mp::put_str(out, endpoint);
        }
        let l = &self.load;
        for (key, value) in [
            ("queue", l.queue),
            ("busy", l.busy),
            ("workers", l.workers),
            ("pool_limit", l.pool_limit),
            ("queue_limit", l.queue_limit),
        ] {
            mp::put_str(out, key);
            mp::put_uint(out, value);
        }
        mp::put_str(out, "state");
        mp::put_str(out, self.state.name());
    }

    fn validate(&self) -> Result<(), DecodeError> {
        if self.hash.len() > MAX_HASH
            || !self
                .hash
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b':')
        {
            return Err(DecodeError::Invalid {
                field: "apps.hash",
                reason: "not a content hash (up to 128 letters and digits)",
            });
        }
        for (task, endpoint) in &self.tasks {
            if task.is_empty()
                || task.len() > MAX_TASK_NAME
                || task.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(DecodeError::Invalid {
                    field: "apps.tasks",
                    reason: "a task name is empty, too long, or holds spaces",
                });
            }
            check_endpoint(endpoint, "apps.tasks")?;
        }
        if self.load.busy > self.load.workers {
            return Err(DecodeError::Invalid {
                field: "apps.busy",
                reason: "more busy workers than workers",
            });
        }
        Ok(())
    }
}

/// How many bytes the entry `name` → `app` takes in an announcement's `apps` map.
pub fn entry_len(name: &str, app: &AppAnnouncement) -> usize {
    let mut out = BytesMut::with_capacity(128);
    mp::put_str(&mut out, name);
    app.encode(&mut out);
    out.len()
}

/// Checks a node id: 1 to [`MAX_NODE_ID`] characters from `A-Z a-z 0-9 . _ -`.
pub fn check_node_id(id: &str) -> Result<(), DecodeError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_NODE_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(DecodeError::Invalid {
            field: "node_id",
            reason: "1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'",
        })
    }
}

/// An endpoint: `SCHEME://REST`, printable, at most [`MAX_ENDPOINT`] bytes.
fn check_endpoint(endpoint: &str, field: &'static str) -> Result<(), DecodeError> {
    let ok = endpoint.len() <= MAX_ENDPOINT
        && endpoint.split_once("://").is_some_and(|(scheme, rest)| {
            !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_lowercase()) && !rest.is_empty()
        })
        && !endpoint
            .chars()
            .any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(DecodeError::Invalid {
            field,
            reason: "not an endpoint (SCHEME://ADDRESS, at most 256 bytes)",
        })
    }
}

/// Writes a container length. Every container here is bounded by [`MAX_ANNOUNCEMENT`] long
/// before `u32::MAX`, and an oversized announcement is refused after encoding.
fn put_len(out: &mut BytesMut, len: usize, put: fn(&mut BytesMut, u32)) {
    put(out, u32::try_from(len).unwrap_or(u32::MAX));
}

fn decode_apps(r: &mut Reader<'_>) -> Result<BTreeMap<String, AppAnnouncement>, DecodeError> {
    let len = r.map_len("apps")?;
    let mut apps = BTreeMap::new();
    for _ in 0..len {
        let name = r.key("apps")?.to_owned();
        let app = decode_app(r)?;
        if apps.insert(name, app).is_some() {
            return Err(DecodeError::DuplicateKey {
                map: "apps",
                key: "(an app name)",
            });
        }
    }
    Ok(apps)
}

/// The fields of one app entry as they arrive, each at most once.
#[derive(Default)]
struct AppFields {
    version: Option<u64>,
    hash: Option<String>,
    tasks: Option<BTreeMap<String, String>>,
    queue: Option<u64>,
    busy: Option<u64>,
    workers: Option<u64>,
    pool_limit: Option<u64>,
    queue_limit: Option<u64>,
    state: Option<AppState>,
}

fn decode_app(r: &mut Reader<'_>) -> Result<AppAnnouncement, DecodeError> {
    const MAP: &str = "apps.*";
    let len = r.map_len(MAP)?;
    let mut f = AppFields::default();
    for _ in 0..len {
        match r.key(MAP)? {
            "version" => mp::set_once(&mut f.version, r.uint("apps.version")?, MAP, "version")?,
            "hash" => mp::set_once(&mut f.hash, r.str("apps.hash")?.to_owned(), MAP, "hash")?,
            "tasks" => mp::set_once(&mut f.tasks, decode_tasks(r)?, MAP, "tasks")?,
            "queue" => mp::set_once(&mut f.queue, r.uint("apps.queue")?, MAP, "queue")?,
            "busy" => mp::set_once(&mut f.busy, r.uint("apps.busy")?, MAP, "busy")?,
            "workers" => mp::set_once(&mut f.workers, r.uint("apps.workers")?, MAP, "workers")?,
            "pool_limit" => mp::set_once(
                &mut f.pool_limit,
                r.uint("apps.pool_limit")?,
                MAP,
                "pool_limit",
            )?,
            "queue_limit" => mp::set_once(
                &mut f.queue_limit,
                r.uint("apps.queue_limit")?,
                MAP,
                "queue_limit",
            )?,
            "state" => {
                let state =
                    AppState::from_name(r.str("apps.state")?).ok_or(DecodeError::Invalid {
                        field: "apps.state",
                        reason: "not one of starting, running, broken, stopping",
                    })?;
                mp::set_once(&mut f.state, state, MAP, "state")?
            }
            other => return Err(DecodeError::unknown_key(MAP, other)),
        }
    }
    let missing = |key| DecodeError::MissingKey { map: MAP, key };
    Ok(AppAnnouncement {
        version: f.version.ok_or(missing("version"))?,
        hash: f.hash.ok_or(missing("hash"))?,
        tasks: f.tasks.ok_or(missing("tasks"))?,
        load: Load {
            queue: f.queue.ok_or(missing("queue"))?,
            busy: f.busy.ok_or(missing("busy"))?,
            workers: f.workers.ok_or(missing("workers"))?,
            pool_limit: f.pool_limit.ok_or(missing("pool_limit"))?,
            queue_limit: f.queue_limit.ok_or(missing("queue_limit"))?,
        },
        state: f.state.ok_or(missing("state"))?,
    })
}

fn decode_tasks(r: &mut Reader<'_>) -> Result<BTreeMap<String, String>, DecodeError> {
    const MAP: &str = "apps.tasks";
    let len = r.map_len(MAP)?;
    let mut tasks = BTreeMap::new();
    for _ in 0..len {
        let task = r.key(MAP)?.to_owned();
        let endpoint = r.str("apps.tasks.*")?.to_owned();
        if tasks.insert(task, endpoint).is_some() {
            return Err(DecodeError::DuplicateKey {
                map: MAP,
                key: "(a task name)",
            });
        }
    }
    Ok(tasks)
}
