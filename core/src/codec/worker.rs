//! The worker channel (PROTOCOL.md §1).

use bytes::{Bytes, BytesMut};

use super::DecodeError;

/// Protocol version a worker announces in its handshake.
pub const PROTOCOL_VERSION: u32 = 1;

/// Per-job metadata sent with an invoke (`meta` map); every key optional on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobMeta {
    pub urgent: bool,
    /// Milliseconds the job has left before its timeout.
    pub timeout_ms: Option<u64>,
    /// Milliseconds the job has left before its deadline.
    pub deadline_ms: Option<u64>,
    pub user: Option<String>,
    pub peer: Option<String>,
    pub task: Option<String>,
}

/// One message of the worker channel, in either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerMessage {
    Handshake { worker_id: String, version: u32, pid: u32 },
    Heartbeat,
    Invoke { sid: u64, event: String, meta: JobMeta },
    Chunk { sid: u64, data: Bytes },
    Choke { sid: u64 },
    Error { sid: u64, code: u32, message: String },
    Cancel { sid: u64 },
    Terminate { reason: String },
}

impl WorkerMessage {
    /// Decodes one frame body (without its length prefix).
    pub fn decode(_body: &[u8]) -> Result<Self, DecodeError> {
        unimplemented!("codec task")
    }

    /// Appends the message, length prefix first.
    pub fn encode_framed(&self, _out: &mut BytesMut) {
        unimplemented!("codec task")
    }
}
