//! The reader: decodes what the node sends and turns it into jobs.
//!
//! Only this thread touches the request side of jobs (the table below), so it needs no lock;
//! the reply side is the shared [`Output`].

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;

use cocaine_core::codec::worker::{JobMeta, WorkerMessage};
use cocaine_core::codec::{DecodeError, FrameDecoder};

use crate::error::WorkerError;
use crate::handler::{run_plain, run_stream, Handler, Lifecycle, PlainFn};
use crate::output::{JobRef, Output};
use crate::pool::Pool;
use crate::stream::{RequestStream, Response};

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
    /// The handler already runs; chunks go to its [`RequestStream`]. `done` is set when its
    /// thread finishes, so entries for jobs that ended before their request did can be pruned.
    Stream {
        chunks: Sender<Vec<u8>>,
        done: Arc<AtomicBool>,
    },
}

pub(crate) struct Session<'a> {
    pub handlers: &'a HashMap<String, Handler>,
    pub output: Arc<Output>,
    pub life: Arc<Lifecycle>,
    pub pool: Pool,
    pending: HashMap<u64, Pending>,
    /// Table size at which finished streaming entries are pruned; doubles with the live size
    /// so pruning costs O(1) per job.
    prune_at: usize,
    next_serial: u64,
    bad_messages: u64,
}

impl<'a> Session<'a> {
    pub fn new(
        handlers: &'a HashMap<String, Handler>,
        output: Arc<Output>,
        life: Arc<Lifecycle>,
    ) -> Self {
        Session {
            handlers,
            output,
            life,
            pool: Pool::new(),
            pending: HashMap::new(),
            prune_at: 64,
            next_serial: 0,
            bad_messages: 0,
        }
    }

    /// Serves until the node closes the channel (`Ok`), a terminate has drained (`Ok`), the
    /// node stays silent past the read timeout set on `stream`, or the channel fails.
    pub fn run(&mut self, mut stream: &UnixStream, max_message: usize) -> Result<(), WorkerError> {
        let timeout = stream.read_timeout()?.unwrap_or_default();
        let mut decoder = FrameDecoder::new(max_message);
        let mut buf = vec![0u8; READ_SIZE];
        loop {
            let n = match stream.read(&mut buf) {
                // The node closed the channel, or the last job of a terminating worker shut
                // the read side to wake us: either way there is nothing more to serve.
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(WorkerError::NodeSilent(timeout))
                }
                Err(e) => return Err(e.into()),
            };
            decoder.push(buf.get(..n).unwrap_or_default());
            while let Some(frame) = decoder.next_frame().map_err(WorkerError::Framing)? {
                match WorkerMessage::decode_bytes(&frame) {
                    Ok(msg) => self.handle(msg)?,
                    Err(err) => self.log_bad(&err),
                }
            }
            if self.life.drained() {
                return Ok(());
            }
        }
    }

    fn handle(&mut self, msg: WorkerMessage) -> io::Result<()> {
        match msg {
            WorkerMessage::Heartbeat => {}
            WorkerMessage::Invoke { sid, event, meta } => self.invoke(sid, &event, meta)?,
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
                }) => self.dispatch_plain(handler, job, request)?,
                // Dropping the sender ends the handler's request iterator.
                Some(Pending::Stream { .. }) | None => {}
            },
            WorkerMessage::Cancel { sid } => {
                // 499 first: ending a streaming job's request would let its handler return
                // and close the reply before the cancel is recorded.
                self.output.cancel(sid)?;
                if let Some(Pending::Plain { .. }) = self.pending.remove(&sid) {
                    // Its handler never started, so no thread will mark it done.
                    self.life.busy.fetch_sub(1, Ordering::SeqCst);
                }
            }
            WorkerMessage::Terminate { .. } => {
                self.life.terminating.store(true, Ordering::SeqCst);
            }
            WorkerMessage::Handshake { .. } | WorkerMessage::Error { .. } => {
                self.log_line(format_args!(
                    "ignoring a worker-to-node message from the node"
                ));
            }
        }
        Ok(())
    }

    fn invoke(&mut self, sid: u64, event: &str, meta: JobMeta) -> io::Result<()> {
        if self.life.terminating.load(Ordering::SeqCst) {
            return self.output.reject(sid, 503, "the worker is terminating");
        }
        let Some(handler) = self.handlers.get(event) else {
            return self
                .output
                .reject(sid, 404, &format!("no handler for event {event:?}"));
        };
        let job = JobRef {
            sid,
            serial: self.next_serial,
        };
        self.next_serial += 1;
        if !self.output.open(job) {
            self.log_line(format_args!("ignoring a second open of job {sid}"));
            return Ok(());
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
            }
            Handler::Stream(handler) => {
                let handler = handler.clone();
                let (chunks, rx) = channel();
                let done = Arc::new(AtomicBool::new(false));
                let request = RequestStream::new(rx, meta);
                let response = Response::new(self.output.clone(), job);
                let (output, life, thread_done) =
                    (self.output.clone(), self.life.clone(), done.clone());
                let started = self.pool.run(move || {
                    run_stream(&*handler, request, response, job, &output);
                    thread_done.store(true, Ordering::SeqCst);
                    life.job_done(&output);
                });
                if let Err(err) = started {
                    return self.no_thread(job, &err);
                }
                self.prune();
                self.pending.insert(sid, Pending::Stream { chunks, done });
            }
        }
        Ok(())
    }

    fn dispatch_plain(
        &mut self,
        handler: Arc<PlainFn>,
        job: JobRef,
        request: Vec<u8>,
    ) -> io::Result<()> {
        let (output, life) = (self.output.clone(), self.life.clone());
        let started = self.pool.run(move || {
            run_plain(&*handler, request, job, &output);
            life.job_done(&output);
        });
        match started {
            Ok(()) => Ok(()),
            Err(err) => self.no_thread(job, &err),
        }
    }

    /// Fails a job whose thread could not start; the worker goes on.
    fn no_thread(&mut self, job: JobRef, err: &io::Error) -> io::Result<()> {
        self.life.busy.fetch_sub(1, Ordering::SeqCst);
        match self
            .output
            .fail(job, 503, &format!("cannot start a job thread: {err}"))
        {
            Err(crate::error::ResponseError::Io(err)) => Err(err),
            _ => Ok(()),
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
        self.log_line(format_args!("dropping a bad message from the node: {err}"));
    }

    /// Logs to stderr (which the node collects), first few lines then one in [`LOG_EVERY`], so
    /// a misbehaving peer cannot flood the log.
    fn log_line(&mut self, line: std::fmt::Arguments<'_>) {
        self.bad_messages += 1;
        let n = self.bad_messages;
        if n <= LOG_FIRST || n.is_multiple_of(LOG_EVERY) {
            eprintln!("cocaine-worker: {line} ({n} so far)");
        }
    }
}
