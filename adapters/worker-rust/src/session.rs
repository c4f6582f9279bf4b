//! The request side of the channel: reading, decoding, and turning messages into jobs.
//!
//! One thread at a time leads the session (see `group`): it reads until a job is ready to run,
//! then hands the session to the next thread and runs that job itself. The table of jobs whose
//! request is still arriving therefore lives here, behind the group's lock; the reply side is
//! the shared [`Output`].

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::Duration;

use cocaine_core::codec::worker::{JobMeta, WorkerMessage};
use cocaine_core::codec::{DecodeError, FrameDecoder};

use crate::error::WorkerError;
use crate::handler::{Handler, Handlers, Job, Lifecycle, PlainFn};
use crate::output::{JobRef, Output};
use crate::stream::RequestStream;

/// Bytes read from the socket at a time.
const READ_SIZE: usize = 64 * 1024;

/// Bad messages logged before the log goes quiet (then one line per this many).
const LOG_FIRST: u64 = 16;
const LOG_EVERY: u64 = 1000;

/// A job whose request is still arriving.
enum Pending {
    /// Collects the request; the handler runs at `[5]`.
    Plain {
        handler: Arc<PlainFn>,
        job: JobRef,
        request: Vec<u8>,
    },
    /// The handler already runs; chunks go to its [`RequestStream`]. `done` is set when it
    /// returns, so entries for jobs that ended before their request did can be pruned.
    Stream {
        chunks: Sender<Vec<u8>>,
        done: Arc<AtomicBool>,
    },
}

/// What the leader found.
pub(crate) enum Step {
    /// Run this job, after handing the session on.
    Run(Job),
    /// The session is over: `Ok` when the node hung up or a terminate drained.
    Ended(Result<(), WorkerError>),
}

pub(crate) struct Session {
    handlers: Arc<Handlers>,
    stream: UnixStream,
    /// The read timeout set on `stream`: how long the node may stay silent.
    silence: Duration,
    output: Arc<Output>,
    life: Arc<Lifecycle>,
    decoder: FrameDecoder,
    buf: Vec<u8>,
    pending: HashMap<u64, Pending>,
    /// Table size at which finished streaming entries are pruned; doubles with the live size
    /// so pruning costs O(1) per job.
    prune_at: usize,
    next_serial: u64,
    bad_messages: u64,
}

impl Session {
    pub fn new(
        handlers: Arc<Handlers>,
        stream: UnixStream,
        output: Arc<Output>,
        life: Arc<Lifecycle>,
        max_message: usize,
    ) -> io::Result<Self> {
        Ok(Session {
            handlers,
            silence: stream.read_timeout()?.unwrap_or_default(),
            stream,
            output,
            life,
            decoder: FrameDecoder::new(max_message),
            buf: vec![0u8; READ_SIZE],
            pending: HashMap::new(),
            prune_at: 64,
            next_serial: 0,
            bad_messages: 0,
        })
    }

    /// Reads and handles messages until a job is ready or the session ends. Frames already
    /// read stay buffered for the next leader.
    pub fn lead(&mut self) -> Step {
        loop {
            if self.life.drained() {
                return Step::Ended(Ok(()));
            }
            let frame = match self.decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => match self.flush_held().and_then(|()| self.fill()) {
                    Ok(true) => continue,
                    Ok(false) => return Step::Ended(Ok(())),
                    Err(err) => return Step::Ended(Err(err)),
                },
                Err(err) => return Step::Ended(Err(WorkerError::Framing(err))),
            };
            match WorkerMessage::decode_bytes(&frame) {
                Ok(msg) => match self.handle(msg) {
                    Ok(Some(job)) => return Step::Run(job),
                    Ok(None) => {}
                    Err(err) => return Step::Ended(Err(err.into())),
                },
                Err(err) => self.log_bad(&err),
            }
        }
    }

    /// Sends the replies inline jobs held (see [`Flush::Later`](crate::output::Flush)) before
    /// the reader blocks, so each batch of jobs from one read is answered in one write.
    fn flush_held(&self) -> Result<(), WorkerError> {
        Ok(self.output.flush_held()?)
    }

    /// Reads once into the decoder; `false` at the end of the stream.
    fn fill(&mut self) -> Result<bool, WorkerError> {
        loop {
            if !wait_readable(&self.stream, self.silence)? {
                return Err(WorkerError::NodeSilent(self.silence));
            }
            return match self.stream.read(&mut self.buf) {
                // The node closed the channel, or the last job of a terminating worker shut
                // the read side to wake us: either way there is nothing more to serve.
                Ok(0) => Ok(false),
                Ok(n) => {
                    self.decoder.push(self.buf.get(..n).unwrap_or_default());
                    Ok(true)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    Err(WorkerError::NodeSilent(self.silence))
                }
                Err(e) => Err(e.into()),
            };
        }
    }

    fn handle(&mut self, msg: WorkerMessage) -> io::Result<Option<Job>> {
        match msg {
            WorkerMessage::Heartbeat => {}
            WorkerMessage::Invoke { sid, event, meta } => return self.invoke(sid, &event, meta),
            WorkerMessage::Chunk { sid, data } => match self.pending.get_mut(&sid) {
                Some(Pending::Plain { request, .. }) => request.extend_from_slice(&data),
                // The handler may have dropped its stream: then the chunk is not wanted.
                Some(Pending::Stream { chunks, .. }) => {
                    let _ = chunks.send(data.to_vec());
                }
                // After a 404, a cancel or a duplicate: nothing to deliver to.
                None => {}
            },
            WorkerMessage::Choke { sid } => match self.pending.remove(&sid) {
                Some(Pending::Plain {
                    handler,
                    job,
                    request,
                }) => {
                    return Ok(Some(Job::Plain {
                        handler,
                        request,
                        job,
                    }))
                }
                // Dropping the sender ends the handler's request iterator.
                Some(Pending::Stream { .. }) | None => {}
            },
            WorkerMessage::Cancel { sid } => {
                if let Some(Pending::Plain { .. }) = self.pending.get(&sid) {
                    // Its handler never started, so it is answered now and will never be
                    // marked done.
                    self.pending.remove(&sid);
                    self.output.cancel_now(sid)?;
                    self.life.busy.fetch_sub(1, Ordering::SeqCst);
                } else {
                    // Recorded first: ending a streaming job's request would let its
                    // handler return and close the reply before the cancel is recorded.
                    self.output.cancel(sid)?;
                    if self.output.defers_cancel() {
                        // Its request ends, so a handler waiting for chunks returns.
                        self.pending.remove(&sid);
                    }
                }
            }
            WorkerMessage::Terminate { .. } => {
                self.life.terminating.store(true, Ordering::SeqCst);
            }
            WorkerMessage::Handshake { .. }
            | WorkerMessage::Error { .. }
            | WorkerMessage::Head { .. } => {
                self.log(format_args!(
                    "ignoring a worker-to-node message from the node"
                ));
            }
        }
        Ok(None)
    }

    fn invoke(&mut self, sid: u64, event: &str, meta: JobMeta) -> io::Result<Option<Job>> {
        if self.life.terminating.load(Ordering::SeqCst) {
            self.output.reject(sid, 503, "the worker is terminating")?;
            return Ok(None);
        }
        let Some(handler) = self.handlers.get(event) else {
            self.output
                .reject(sid, 404, &format!("no handler for event {event:?}"))?;
            return Ok(None);
        };
        let job = JobRef {
            sid,
            serial: self.next_serial,
        };
        self.next_serial += 1;
        if !self.output.open(job) {
            self.log(format_args!("ignoring a second open of job {sid}"));
            return Ok(None);
        }
        self.life.busy.fetch_add(1, Ordering::SeqCst);
        match handler {
            Handler::Plain(handler) => {
                let handler = handler.clone();
                self.pending.insert(
                    sid,
                    Pending::Plain {
                        handler,
                        job,
                        request: Vec::new(),
                    },
                );
                Ok(None)
            }
            Handler::Stream(handler) => {
                let handler = handler.clone();
                let (chunks, rx) = channel();
                let done = Arc::new(AtomicBool::new(false));
                self.prune();
                self.pending.insert(
                    sid,
                    Pending::Stream {
                        chunks,
                        done: done.clone(),
                    },
                );
                Ok(Some(Job::Stream {
                    handler,
                    request: RequestStream::new(rx, meta, event.to_owned()),
                    job,
                    done,
                }))
            }
        }
    }

    /// Forgets streaming jobs that finished before the node ended their request.
    fn prune(&mut self) {
        if self.pending.len() < self.prune_at {
            return;
        }
        self.pending.retain(|_, p| match p {
            Pending::Plain { .. } => true,
            Pending::Stream { done, .. } => !done.load(Ordering::SeqCst),
        });
        self.prune_at = (self.pending.len() * 2).max(64);
    }

    fn log_bad(&mut self, err: &DecodeError) {
        self.log(format_args!("dropping a bad message from the node: {err}"));
    }

    /// Logs to stderr (which the node collects), the first few lines then one in
    /// [`LOG_EVERY`], so a misbehaving peer cannot flood the log.
    pub fn log(&mut self, line: std::fmt::Arguments<'_>) {
        self.bad_messages += 1;
        let n = self.bad_messages;
        if n <= LOG_FIRST || n.is_multiple_of(LOG_EVERY) {
            eprintln!("cocaine-worker: {line} ({n} so far)");
        }
    }
}

/// Waits until `stream` is readable (or has ended, or failed), for at most `silence` (none:
/// forever); false when the time passed.
///
/// The reader waits in `poll` rather than in a blocking `read` because of how the kernel
/// wakes Unix stream sockets: each time the node reads a reply from this channel, the kernel
/// wakes every thread sleeping on the socket for "writable", and a thread blocked in `read`
/// is woken by that too (its wait does not filter by event), only to find nothing and sleep
/// again. That is a wake-up of this worker and a cross-CPU wake-up charged to the node for
/// every reply. A `poll` for input is not woken by it.
fn wait_readable(stream: &UnixStream, silence: Duration) -> Result<bool, WorkerError> {
    let timeout = if silence.is_zero() {
        -1
    } else {
        libc::c_int::try_from(silence.as_millis().max(1)).unwrap_or(libc::c_int::MAX)
    };
    let mut fd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, for a descriptor `stream` keeps open during the call.
        let n = unsafe { libc::poll(&mut fd, 1, timeout) };
        if n >= 0 {
            return Ok(n > 0);
        }
        let err = io::Error::last_os_error();
        if err.kind() != ErrorKind::Interrupted {
            return Err(err.into());
        }
    }
}
