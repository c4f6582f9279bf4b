//! Registered handlers, jobs ready to run, and the count of jobs in flight.

use std::any::Any;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::{HandlerError, DEFAULT_ERROR_CODE};
use crate::output::{Flush, JobRef, Output};
use crate::stream::{RequestStream, Response};

/// A plain handler: the whole request in, reply chunks out.
pub(crate) type PlainFn = dyn Fn(Vec<u8>) -> Result<Vec<Vec<u8>>, HandlerError> + Send + Sync;
/// A streaming handler: request chunks as they come, a response to write to.
pub(crate) type StreamFn =
    dyn Fn(RequestStream, Response) -> Result<(), HandlerError> + Send + Sync;

/// Handlers by event name, and the one for every other name if a worker set it
/// ([`Worker::fallback_stream`](crate::Worker::fallback_stream)).
#[derive(Default)]
pub(crate) struct Handlers {
    pub by_name: HashMap<String, Handler>,
    pub fallback: Option<Handler>,
}

impl Handlers {
    /// The handler for `event`: its own, else the fallback.
    pub fn get(&self, event: &str) -> Option<&Handler> {
        self.by_name.get(event).or(self.fallback.as_ref())
    }
}

/// What [`Worker::on`](crate::Worker::on) and [`Worker::on_stream`](crate::Worker::on_stream)
/// registered under one event name.
#[derive(Clone)]
pub(crate) enum Handler {
    Plain(Arc<PlainFn>),
    Stream(Arc<StreamFn>),
}

/// Jobs in flight, and whether the node asked the worker to leave once they are done.
///
/// `busy` counts jobs from their `[3]` until their thread is done (or until a cancel drops a
/// plain job still waiting for its request), so a plain job whose request is still arriving
/// keeps a terminating worker alive.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    pub busy: AtomicUsize,
    pub terminating: AtomicBool,
}

impl Lifecycle {
    /// Whether the worker may exit now: terminating, nothing in flight.
    pub fn drained(&self) -> bool {
        self.terminating.load(Ordering::SeqCst) && self.busy.load(Ordering::SeqCst) == 0
    }

    /// Marks one job finished. The last one of a terminating worker wakes the reader, blocked
    /// on the socket, by shutting its read side: it then sees the end of stream and exits.
    pub fn job_done(&self, output: &Output) {
        if self.busy.fetch_sub(1, Ordering::SeqCst) == 1 && self.terminating.load(Ordering::SeqCst)
        {
            output.shutdown(std::net::Shutdown::Read);
        }
    }
}

/// A job ready to run on the thread that found it.
pub(crate) enum Job {
    /// The whole request is in.
    Plain {
        handler: Arc<PlainFn>,
        request: Vec<u8>,
        job: JobRef,
    },
    /// The request is still arriving; `done` tells the reader when the handler returned.
    Stream {
        handler: Arc<StreamFn>,
        request: RequestStream,
        job: JobRef,
        done: Arc<AtomicBool>,
    },
}

impl Job {
    /// Whether the job may run on the reading thread in inline mode: plain jobs only, since a
    /// streaming handler needs the reader to feed it chunks while it runs.
    pub fn is_plain(&self) -> bool {
        matches!(self, Job::Plain { .. })
    }

    /// Runs the handler and sends its outcome, then marks the job finished. Output for a job
    /// already ended (cancelled) is dropped by [`Output`], so those results are ignored on
    /// purpose. A streaming reply the handler left open is closed for it. `when` says whether
    /// the outcome is written at once or held for the reader to flush (inline jobs).
    pub fn run(self, output: &Arc<Output>, life: &Lifecycle, when: Flush) {
        let (job, outcome) = match self {
            Job::Plain {
                handler,
                request,
                job,
            } => (job, catch_unwind(AssertUnwindSafe(|| handler(request)))),
            Job::Stream {
                handler,
                request,
                job,
                done,
            } => {
                let response = Response::new(output.clone(), job);
                let outcome = catch_unwind(AssertUnwindSafe(|| handler(request, response)));
                done.store(true, Ordering::SeqCst);
                (job, outcome.map(|r| r.map(|()| Vec::new())))
            }
        };
        let _ = match outcome {
            Ok(Ok(chunks)) => output.finish(job, &chunks, when),
            Ok(Err(err)) => output.fail(job, err.wire_code(), &err.message, when),
            Err(panic) => output.fail(
                job,
                DEFAULT_ERROR_CODE,
                &panic_message(panic.as_ref()),
                when,
            ),
        };
        life.job_done(output);
    }
}

/// The text a panic was raised with, as `panic!` formats it.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "handler panicked".to_owned()
    }
}
