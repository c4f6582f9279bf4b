//! The reply owed to one request, and how much of it can be written now.
//!
//! A reply's head goes out once its framing is known: when the reply ends (one
//! `Content-Length` for all of it) or when a second chunk arrives (chunked for HTTP/1.1,
//! close-delimited for HTTP/1.0).

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::request::Version;
use super::response::{self, BodyFraming};
use super::ReplyHead;

/// How a reply ends, when it is not by its job's chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fate {
    /// The job's head and chunks, as they come.
    Job,
    /// An error response, decided before anything of this reply was written.
    Error { status: u16, message: String },
    /// Write nothing more; close the connection once earlier replies are out.
    Abort,
}

/// The reply owed to one request.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) seq: u64,
    pub(super) version: Version,
    pub(super) keep_alive: bool,
    pub(super) head_only: bool,
    pub(super) want_continue: bool,
    /// A job still answers it: replies for `seq` are taken.
    pub(super) job: bool,
    pub(super) fate: Fate,
    pub(super) head: Option<ReplyHead>,
    pub(super) chunks: VecDeque<Bytes>,
    /// Bytes of reply so far (counted, not kept, for a HEAD request).
    pub(super) len: u64,
    pub(super) ended: bool,
    /// The head is written, with this framing.
    pub(super) started: Option<BodyFraming>,
}

impl Slot {
    pub(super) fn new(seq: u64, version: Version, keep_alive: bool) -> Self {
        Slot {
            seq,
            version,
            keep_alive,
            head_only: false,
            want_continue: false,
            job: false,
            fate: Fate::Job,
            head: None,
            chunks: VecDeque::new(),
            len: 0,
            ended: false,
            started: None,
        }
    }

    fn connection_header(&self, close: bool) -> Option<&'static str> {
        match (close, self.version) {
            (true, _) => Some("close"),
            (false, Version::Http10) => Some("keep-alive"),
            (false, Version::Http11) => None,
        }
    }
}

/// What writing the front reply got to.
pub(super) enum Progress {
    /// More of this reply is to come.
    Waiting,
    /// Fully written; `close`: the connection ends after it.
    Finished { close: bool },
}

/// Writes what can be written of the front reply.
pub(super) fn write_slot(slot: &mut Slot, out: &mut BytesMut) -> Progress {
    match &slot.fate {
        Fate::Abort => return Progress::Finished { close: true },
        Fate::Error { status, message } => {
            let close = !slot.keep_alive;
            let connection = slot.connection_header(close);
            response::encode_error(out, *status, message, slot.head_only, connection);
            return Progress::Finished { close };
        }
        Fate::Job => {}
    }
    if slot.started.is_none() {
        let status = slot.head.as_ref().map_or(200, |h| h.status);
        let framing = if response::has_no_body(status) {
            BodyFraming::NoBody
        } else if slot.ended {
            BodyFraming::Length(slot.len)
        } else if slot.chunks.len() >= 2 {
            match slot.version {
                Version::Http11 => BodyFraming::Chunked,
                Version::Http10 => BodyFraming::UntilClose,
            }
        } else {
            if slot.want_continue {
                slot.want_continue = false;
                response::encode_continue(out);
            }
            return Progress::Waiting;
        };
        if framing == BodyFraming::UntilClose {
            slot.keep_alive = false;
        }
        let connection = slot.connection_header(!slot.keep_alive);
        let head = slot.head.take().unwrap_or_default();
        response::encode_head(out, head.status, &head.headers, framing, connection);
        slot.started = Some(framing);
        slot.want_continue = false;
    }
    let framing = slot.started.unwrap_or(BodyFraming::NoBody);
    for chunk in slot.chunks.drain(..) {
        if !slot.head_only {
            response::encode_data(out, framing, &chunk);
        }
    }
    if !slot.ended {
        return Progress::Waiting;
    }
    if framing == BodyFraming::Chunked && !slot.head_only {
        response::encode_last_chunk(out);
    }
    Progress::Finished {
        close: !slot.keep_alive,
    }
}
