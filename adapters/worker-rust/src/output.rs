//! The worker's half of the channel: one socket shared by the reader, the heartbeat thread and
//! every job thread, behind one lock.
//!
//! The lock also guards the table of open jobs, so "is this job still open?" and "write its
//! output" are one atomic step: a cancel and a job's last reply can race, and the node must get
//! exactly one terminal message per job. Each job is known by its sid plus a serial unique in
//! this process, so output from a cancelled job can never land in a later job that reuses the
//! sid.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::BytesMut;
use cocaine_core::codec::worker::{encode_choke, encode_chunk, encode_error};

use crate::error::ResponseError;

/// Code and text of the reply to a cancel (docs/protocol.md §2, same on the worker channel).
const CANCELLED: (u32, &str) = (499, "cancelled");

/// Code of a job whose reply chunk would be over the node's max-message.
const TOO_LARGE: u32 = 413;

/// A buffer that grew past this is dropped after use, so one huge reply does not pin memory.
const KEEP_BUFFER: usize = 1024 * 1024;

/// When a job's last message goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// At once, in one write.
    Now,
    /// With the next write: the reader's [`Output::flush_held`] before it blocks, or any
    /// other message. Inline jobs use it so that the replies to all the jobs found in one
    /// read leave in one write.
    Later,
}

/// Held replies past this many bytes are written at once rather than held further.
const HOLD_LIMIT: usize = 64 * 1024;

/// One job as the output side knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JobRef {
    pub sid: u64,
    pub serial: u64,
}

/// The shared writer; see the module docs.
#[derive(Debug)]
pub(crate) struct Output {
    inner: Mutex<Inner>,
    /// A second handle on the socket, outside the lock, for [`Output::shutdown`].
    control: UnixStream,
    /// A cancel is answered when the job's handler returns, not at once (see
    /// [`Worker::defer_cancel`](crate::Worker::defer_cancel)).
    defer_cancel: bool,
    /// The node's max-message: it drops a worker that sends a larger frame, so a reply chunk
    /// that would make one fails its job with 413 instead.
    max_message: usize,
}

#[derive(Debug)]
struct Inner {
    stream: UnixStream,
    /// Reused between writes so that the hot path does not allocate.
    buf: BytesMut,
    /// Open jobs: sid -> serial.
    open: HashMap<u64, u64>,
    /// Open jobs the node cancelled whose handler still runs (deferred cancels only).
    cancelled: HashSet<u64>,
}

impl Output {
    pub fn new(stream: UnixStream, defer_cancel: bool, max_message: usize) -> io::Result<Output> {
        Ok(Output {
            control: stream.try_clone()?,
            inner: Mutex::new(Inner {
                stream,
                buf: BytesMut::with_capacity(8 * 1024),
                open: HashMap::new(),
                cancelled: HashSet::new(),
            }),
            defer_cancel,
            max_message,
        })
    }

    /// Whether cancels wait for the handler to return.
    pub fn defers_cancel(&self) -> bool {
        self.defer_cancel
    }

    /// Whether `job` has ended or the node cancelled it: its handler should stop.
    pub fn is_cancelled(&self, job: JobRef) -> bool {
        let inner = self.lock();
        !inner.is_open(job) || inner.cancelled.contains(&job.sid)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing user-supplied runs under this lock, so poisoning would only mean a bug of
        // ours mid-write; the buffer is cleared before every use anyway.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes a message that belongs to no job (handshake, heartbeat).
    pub fn send(&self, encode: impl FnOnce(&mut BytesMut)) -> io::Result<()> {
        let mut inner = self.lock();
        encode(&mut inner.buf);
        inner.flush()
    }

    /// Registers a job; `false` if its sid is already open (a duplicate `[3]`).
    pub fn open(&self, job: JobRef) -> bool {
        let mut inner = self.lock();
        if inner.open.contains_key(&job.sid) {
            return false;
        }
        inner.open.insert(job.sid, job.serial);
        true
    }

    /// Fails a job that was never opened (no handler, terminating).
    pub fn reject(&self, sid: u64, code: u32, message: &str) -> io::Result<()> {
        self.send(|buf| encode_error(buf, sid, code, message))
    }

    /// Writes one reply chunk at once, so a streaming reply reaches the client as it is made.
    pub fn chunk(&self, job: JobRef, data: &[u8]) -> Result<(), ResponseError> {
        let mut inner = self.lock();
        if !inner.is_open(job) || inner.cancelled.contains(&job.sid) {
            return Err(ResponseError::Cancelled);
        }
        if !inner.push_chunk(job.sid, data, self.max_message) {
            inner.close(job);
            inner.too_large(job.sid, data.len(), self.max_message);
            inner.flush()?;
            return Err(ResponseError::TooLarge {
                len: data.len(),
                limit: self.max_message,
            });
        }
        Ok(inner.flush()?)
    }

    /// Ends a job with `chunks` then `[5]`, in one write ([`Flush::Now`]) or held for the
    /// next one ([`Flush::Later`]).
    pub fn finish<C: AsRef<[u8]>>(
        &self,
        job: JobRef,
        chunks: &[C],
        when: Flush,
    ) -> Result<(), ResponseError> {
        let mut inner = self.lock();
        if !inner.close(job) {
            return Err(ResponseError::Cancelled);
        }
        if inner.cancelled.remove(&job.sid) {
            return inner.answer_cancel(job.sid, when);
        }
        for chunk in chunks {
            if !inner.push_chunk(job.sid, chunk.as_ref(), self.max_message) {
                inner.too_large(job.sid, chunk.as_ref().len(), self.max_message);
                return Ok(inner.flush_if(when)?);
            }
        }
        encode_choke(&mut inner.buf, job.sid);
        Ok(inner.flush_if(when)?)
    }

    /// Ends a job with `[6, sid, code, message]`, written as [`Output::finish`] does.
    pub fn fail(
        &self,
        job: JobRef,
        code: u32,
        message: &str,
        when: Flush,
    ) -> Result<(), ResponseError> {
        let mut inner = self.lock();
        if !inner.close(job) {
            return Err(ResponseError::Cancelled);
        }
        if inner.cancelled.remove(&job.sid) {
            return inner.answer_cancel(job.sid, when);
        }
        encode_error(&mut inner.buf, job.sid, code, message);
        Ok(inner.flush_if(when)?)
    }

    /// Writes out replies held by [`Flush::Later`], if any. Any other write sends them too,
    /// ahead of its own bytes, so the order on the wire is the order of the calls.
    pub fn flush_held(&self) -> io::Result<()> {
        let mut inner = self.lock();
        if inner.buf.is_empty() {
            return Ok(());
        }
        inner.flush()
    }

    /// Ends job `sid` with 499 if it is still open; later output of that job is dropped.
    /// With deferred cancels, only records it: the 499 goes out when the handler returns
    /// (instead of whatever it returns), and until then its writes fail as cancelled.
    pub fn cancel(&self, sid: u64) -> io::Result<()> {
        if self.defer_cancel {
            let mut inner = self.lock();
            if inner.open.contains_key(&sid) {
                inner.cancelled.insert(sid);
            }
            return Ok(());
        }
        self.cancel_now(sid)
    }

    /// Ends job `sid` with 499 now if it is still open: for a job whose handler never ran.
    pub fn cancel_now(&self, sid: u64) -> io::Result<()> {
        let mut inner = self.lock();
        inner.cancelled.remove(&sid);
        if inner.open.remove(&sid).is_none() {
            return Ok(());
        }
        encode_error(&mut inner.buf, sid, CANCELLED.0, CANCELLED.1);
        inner.flush()
    }

    /// Shuts the socket down; `Read` wakes the reader blocked on it with an end of stream.
    pub fn shutdown(&self, how: Shutdown) {
        // Without the lock: a writer blocked on a full socket holds it, and shutting down is
        // exactly what unblocks it. An error means the socket is already gone.
        let _ = self.control.shutdown(how);
    }
}

impl Inner {
    /// The terminal 499 of a job whose deferred cancel waited for its handler.
    fn answer_cancel(&mut self, sid: u64, when: Flush) -> Result<(), ResponseError> {
        encode_error(&mut self.buf, sid, CANCELLED.0, CANCELLED.1);
        self.flush_if(when)?;
        Err(ResponseError::Cancelled)
    }

    /// Encodes a reply chunk unless its frame would be over `max_message`; `false` (and
    /// nothing encoded) if it would.
    fn push_chunk(&mut self, sid: u64, data: &[u8], max_message: usize) -> bool {
        let before = self.buf.len();
        encode_chunk(&mut self.buf, sid, data);
        // The frame's body: what was encoded less its 4-byte length prefix.
        if self.buf.len() - before - 4 > max_message {
            self.buf.truncate(before);
            return false;
        }
        true
    }

    /// Ends job `sid` with 413 for a chunk of `len` bytes.
    fn too_large(&mut self, sid: u64, len: usize, max_message: usize) {
        let message =
            format!("reply chunk of {len} bytes is over max-message ({max_message} bytes)");
        encode_error(&mut self.buf, sid, TOO_LARGE, &message);
    }

    fn is_open(&self, job: JobRef) -> bool {
        self.open.get(&job.sid) == Some(&job.serial)
    }

    /// Removes the job from the open table; `false` if it was not open.
    fn close(&mut self, job: JobRef) -> bool {
        if !self.is_open(job) {
            return false;
        }
        self.open.remove(&job.sid);
        true
    }

    /// Writes the buffer out unless told to hold it; a held buffer past [`HOLD_LIMIT`] is
    /// written anyway.
    fn flush_if(&mut self, when: Flush) -> io::Result<()> {
        if when == Flush::Later && self.buf.len() < HOLD_LIMIT {
            return Ok(());
        }
        self.flush()
    }

    /// Writes the buffer out and empties it. A failed write may leave half a frame on the
    /// wire, so the socket is shut down: the reader then sees the end and the worker exits.
    fn flush(&mut self) -> io::Result<()> {
        let result = self.stream.write_all(&self.buf);
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = BytesMut::with_capacity(8 * 1024);
        } else {
            self.buf.clear();
        }
        if result.is_err() {
            let _ = self.stream.shutdown(Shutdown::Both);
        }
        result
    }
}
