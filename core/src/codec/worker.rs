//! The worker channel (docs/protocol.md §1).
//!
//! Frames are a u32 big-endian length then a msgpack array `[kind, ...]`. The free `encode_*`
//! functions append one whole frame to a buffer without building a [`WorkerMessage`], for the
//! hot path; [`WorkerMessage::encode_framed`] uses them.

use bytes::{Bytes, BytesMut};

use super::frame::{begin_frame, end_frame, PREFIX_LEN};
use super::http_wire::{self, HttpMeta, ReplyHead};
use super::mp::{self, Reader};
use super::DecodeError;

/// Protocol version a worker announces in its handshake.
pub const PROTOCOL_VERSION: u32 = 1;

/// Message kinds of the worker channel.
pub mod kind {
    /// `[1, worker_id, version, pid]`, w -> n.
    pub const HANDSHAKE: u64 = 1;
    /// `[2]`, both ways.
    pub const HEARTBEAT: u64 = 2;
    /// `[3, sid, event, meta]`, n -> w.
    pub const INVOKE: u64 = 3;
    /// `[4, sid, data]`, both ways.
    pub const CHUNK: u64 = 4;
    /// `[5, sid]`, both ways.
    pub const CHOKE: u64 = 5;
    /// `[6, sid, code, message]`, w -> n.
    pub const ERROR: u64 = 6;
    /// `[7, sid]`, n -> w.
    pub const CANCEL: u64 = 7;
    /// `[8, reason]`, both ways.
    pub const TERMINATE: u64 = 8;
    /// `[9, sid, head]`, w -> n: an HTTP reply's status and headers.
    pub const HEAD: u64 = 9;
}

/// Per-job metadata sent with an invoke (`meta` map); every key optional on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobMeta {
    /// Whether the job jumped the queue.
    pub urgent: bool,
    /// Milliseconds the job has left before its timeout.
    pub timeout_ms: Option<u64>,
    /// Milliseconds the job has left before its deadline.
    pub deadline_ms: Option<u64>,
    /// The authenticated user who sent the request, if any.
    pub user: Option<String>,
    /// The peer (client address or node) the request came from.
    pub peer: Option<String>,
    /// The task (endpoint) the request came through.
    pub task: Option<String>,
    /// The HTTP request, for jobs of an http-server task (boxed: most jobs have none).
    pub http: Option<Box<HttpMeta>>,
}

/// One message of the worker channel, in either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerMessage {
    /// The worker's first message.
    Handshake {
        worker_id: String,
        version: u32,
        pid: u32,
    },
    /// Liveness; any message counts as one too.
    Heartbeat,
    /// Start job `sid` for `event`.
    Invoke {
        sid: u64,
        event: String,
        meta: JobMeta,
    },
    /// A chunk of the request (n -> w) or the reply (w -> n).
    Chunk { sid: u64, data: Bytes },
    /// End of the sender's stream for `sid`.
    Choke { sid: u64 },
    /// The job failed; terminal for `sid`.
    Error {
        sid: u64,
        code: u32,
        message: String,
    },
    /// Stop job `sid`.
    Cancel { sid: u64 },
    /// n -> w: exit gracefully; w -> n: leaving.
    Terminate { reason: String },
    /// w -> n: the status and headers of job `sid`'s HTTP reply; before its first chunk.
    Head { sid: u64, head: ReplyHead },
}

impl WorkerMessage {
    /// Decodes one frame body (without its length prefix); chunk data is copied.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming what was wrong; no input panics.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        decode_with(body, Bytes::copy_from_slice)
    }

    /// Like [`decode`](Self::decode), but chunk data shares `body`'s buffer instead of being
    /// copied: use it on frames from [`FrameDecoder`](super::frame::FrameDecoder).
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode).
    pub fn decode_bytes(body: &Bytes) -> Result<Self, DecodeError> {
        decode_with(body, |data| body.slice_ref(data))
    }

    /// Appends the message, length prefix first.
    pub fn encode_framed(&self, out: &mut BytesMut) {
        match self {
            WorkerMessage::Handshake {
                worker_id,
                version,
                pid,
            } => encode_handshake(out, worker_id, *version, *pid),
            WorkerMessage::Heartbeat => encode_heartbeat(out),
            WorkerMessage::Invoke { sid, event, meta } => encode_invoke(out, *sid, event, meta),
            WorkerMessage::Chunk { sid, data } => encode_chunk(out, *sid, data),
            WorkerMessage::Choke { sid } => encode_choke(out, *sid),
            WorkerMessage::Error { sid, code, message } => encode_error(out, *sid, *code, message),
            WorkerMessage::Cancel { sid } => encode_cancel(out, *sid),
            WorkerMessage::Terminate { reason } => encode_terminate(out, reason),
            WorkerMessage::Head { sid, head } => http_wire::encode_reply_head(out, *sid, head),
        }
    }
}

/// Decodes a frame body, turning borrowed chunk data into `Bytes` with `to_bytes`.
fn decode_with<'a>(
    body: &'a [u8],
    to_bytes: impl FnOnce(&'a [u8]) -> Bytes,
) -> Result<WorkerMessage, DecodeError> {
    let mp::Head {
        kind,
        arity,
        body: mut r,
    } = Reader::message(body)?;
    let expected = match kind {
        kind::HANDSHAKE | kind::INVOKE | kind::ERROR => 4,
        kind::HEARTBEAT => 1,
        kind::CHUNK | kind::HEAD => 3,
        kind::CHOKE | kind::CANCEL | kind::TERMINATE => 2,
        _ => return Err(DecodeError::UnknownKind(kind)),
    };
    if arity != expected {
        return Err(DecodeError::WrongArity {
            kind,
            expected,
            got: arity,
        });
    }
    let msg = match kind {
        kind::HANDSHAKE => WorkerMessage::Handshake {
            worker_id: r.str("worker_id")?.to_owned(),
            version: r.u32("version")?,
            pid: r.u32("pid")?,
        },
        kind::HEARTBEAT => WorkerMessage::Heartbeat,
        kind::INVOKE => WorkerMessage::Invoke {
            sid: r.uint("sid")?,
            event: r.str("event")?.to_owned(),
            meta: decode_meta(&mut r)?,
        },
        kind::CHUNK => WorkerMessage::Chunk {
            sid: r.uint("sid")?,
            data: to_bytes(r.bytes("data")?),
        },
        kind::CHOKE => WorkerMessage::Choke {
            sid: r.uint("sid")?,
        },
        kind::ERROR => WorkerMessage::Error {
            sid: r.uint("sid")?,
            code: r.u32("code")?,
            message: r.str("message")?.to_owned(),
        },
        kind::CANCEL => WorkerMessage::Cancel {
            sid: r.uint("sid")?,
        },
        kind::HEAD => WorkerMessage::Head {
            sid: r.uint("sid")?,
            head: http_wire::decode_reply_head(&mut r)?,
        },
        _ => WorkerMessage::Terminate {
            reason: r.str("reason")?.to_owned(),
        },
    };
    r.finish()?;
    Ok(msg)
}

fn decode_meta(r: &mut Reader<'_>) -> Result<JobMeta, DecodeError> {
    const MAP: &str = "meta";
    let len = r.map_len(MAP)?;
    let mut urgent = None;
    let mut meta = JobMeta::default();
    // Each slot is filled once: a repeated key is an error, not last-one-wins, so that two
    // readers of the same bytes cannot disagree.
    for _ in 0..len {
        match r.key(MAP)? {
            "urgent" => mp::set_once(&mut urgent, r.bool("meta.urgent")?, MAP, "urgent")?,
            "timeout" => mp::set_once(
                &mut meta.timeout_ms,
                r.uint("meta.timeout")?,
                MAP,
                "timeout",
            )?,
            "deadline" => mp::set_once(
                &mut meta.deadline_ms,
                r.uint("meta.deadline")?,
                MAP,
                "deadline",
            )?,
            "user" => mp::set_once(&mut meta.user, r.str("meta.user")?.to_owned(), MAP, "user")?,
            "peer" => mp::set_once(&mut meta.peer, r.str("meta.peer")?.to_owned(), MAP, "peer")?,
            "task" => mp::set_once(&mut meta.task, r.str("meta.task")?.to_owned(), MAP, "task")?,
            "http" => mp::set_once(
                &mut meta.http,
                Box::new(http_wire::decode_http_meta(r)?),
                MAP,
                "http",
            )?,
            other => return Err(DecodeError::unknown_key(MAP, other)),
        }
    }
    meta.urgent = urgent.unwrap_or(false);
    Ok(meta)
}

/// A [`JobMeta`] that borrows its strings, so the node can encode an invoke without
/// allocating them per job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaRef<'a> {
    pub urgent: bool,
    pub timeout_ms: Option<u64>,
    pub deadline_ms: Option<u64>,
    pub user: Option<&'a str>,
    pub peer: Option<&'a str>,
    pub task: Option<&'a str>,
    pub http: Option<&'a HttpMeta>,
}

impl<'a> From<&'a JobMeta> for MetaRef<'a> {
    fn from(meta: &'a JobMeta) -> Self {
        MetaRef {
            urgent: meta.urgent,
            timeout_ms: meta.timeout_ms,
            deadline_ms: meta.deadline_ms,
            user: meta.user.as_deref(),
            peer: meta.peer.as_deref(),
            task: meta.task.as_deref(),
            http: meta.http.as_deref(),
        }
    }
}

fn encode_meta(out: &mut BytesMut, meta: MetaRef<'_>) {
    let strings = [
        ("user", meta.user),
        ("peer", meta.peer),
        ("task", meta.task),
    ];
    let len = u32::from(meta.urgent)
        + u32::from(meta.timeout_ms.is_some())
        + u32::from(meta.deadline_ms.is_some())
        + strings
            .iter()
            .map(|(_, v)| u32::from(v.is_some()))
            .sum::<u32>()
        + u32::from(meta.http.is_some());
    mp::put_map_len(out, len);
    if meta.urgent {
        mp::put_str(out, "urgent");
        mp::put_bool(out, true);
    }
    for (key, value) in [("timeout", meta.timeout_ms), ("deadline", meta.deadline_ms)] {
        if let Some(v) = value {
            mp::put_str(out, key);
            mp::put_uint(out, v);
        }
    }
    for (key, value) in strings {
        if let Some(v) = value {
            mp::put_str(out, key);
            mp::put_str(out, v);
        }
    }
    if let Some(http) = meta.http {
        mp::put_str(out, "http");
        http_wire::encode_http_meta(out, http);
    }
}

/// Appends a framed `[3, sid, event, meta]`: start a job (n -> w).
pub fn encode_invoke(out: &mut BytesMut, sid: u64, event: &str, meta: &JobMeta) {
    encode_invoke_ref(out, sid, event, MetaRef::from(meta));
}

/// [`encode_invoke`] with borrowed metadata.
pub fn encode_invoke_ref(out: &mut BytesMut, sid: u64, event: &str, meta: MetaRef<'_>) {
    let strings = [meta.user, meta.peer, meta.task]
        .iter()
        .flatten()
        .map(|s| s.len() + 8)
        .sum::<usize>()
        + meta.http.map_or(0, http_wire::http_meta_len);
    out.reserve(PREFIX_LEN + 3 * mp::MAX_HEAD + event.len() + 40 + strings);
    let start = begin_frame(out);
    mp::put_array_len(out, 4);
    mp::put_uint(out, kind::INVOKE);
    mp::put_uint(out, sid);
    mp::put_str(out, event);
    encode_meta(out, meta);
    end_frame(out, start);
}

/// Appends a framed `[4, sid, data]`, `data` as msgpack bin.
pub fn encode_chunk(out: &mut BytesMut, sid: u64, data: &[u8]) {
    out.reserve(PREFIX_LEN + 3 * mp::MAX_HEAD + data.len());
    let start = begin_frame(out);
    mp::put_array_len(out, 3);
    mp::put_uint(out, kind::CHUNK);
    mp::put_uint(out, sid);
    mp::put_bin(out, data);
    end_frame(out, start);
}

/// Appends a framed `[5, sid]`: end of the sender's stream for `sid`.
pub fn encode_choke(out: &mut BytesMut, sid: u64) {
    encode_sid_only(out, kind::CHOKE, sid);
}

/// Appends a framed `[7, sid]`: cancel job `sid` (n -> w).
pub fn encode_cancel(out: &mut BytesMut, sid: u64) {
    encode_sid_only(out, kind::CANCEL, sid);
}

fn encode_sid_only(out: &mut BytesMut, kind: u64, sid: u64) {
    out.reserve(PREFIX_LEN + 2 * mp::MAX_HEAD);
    let start = begin_frame(out);
    mp::put_array_len(out, 2);
    mp::put_uint(out, kind);
    mp::put_uint(out, sid);
    end_frame(out, start);
}

/// Appends a framed `[6, sid, code, message]`: job `sid` failed (w -> n).
pub fn encode_error(out: &mut BytesMut, sid: u64, code: u32, message: &str) {
    out.reserve(PREFIX_LEN + 4 * mp::MAX_HEAD + message.len());
    let start = begin_frame(out);
    mp::put_array_len(out, 4);
    mp::put_uint(out, kind::ERROR);
    mp::put_uint(out, sid);
    mp::put_uint(out, u64::from(code));
    mp::put_str(out, message);
    end_frame(out, start);
}

/// Appends a framed `[2]`.
pub fn encode_heartbeat(out: &mut BytesMut) {
    let start = begin_frame(out);
    mp::put_array_len(out, 1);
    mp::put_uint(out, kind::HEARTBEAT);
    end_frame(out, start);
}

/// Appends a framed `[8, reason]`.
pub fn encode_terminate(out: &mut BytesMut, reason: &str) {
    out.reserve(PREFIX_LEN + 2 * mp::MAX_HEAD + reason.len());
    let start = begin_frame(out);
    mp::put_array_len(out, 2);
    mp::put_uint(out, kind::TERMINATE);
    mp::put_str(out, reason);
    end_frame(out, start);
}

/// Appends a framed `[1, worker_id, version, pid]` (w -> n, first message).
pub fn encode_handshake(out: &mut BytesMut, worker_id: &str, version: u32, pid: u32) {
    out.reserve(PREFIX_LEN + 4 * mp::MAX_HEAD + worker_id.len());
    let start = begin_frame(out);
    mp::put_array_len(out, 4);
    mp::put_uint(out, kind::HANDSHAKE);
    mp::put_str(out, worker_id);
    mp::put_uint(out, u64::from(version));
    mp::put_uint(out, u64::from(pid));
    end_frame(out, start);
}
