//! The two halves a streaming handler works with.

use std::sync::mpsc::Receiver;
use std::sync::Arc;

use cocaine_core::codec::worker::JobMeta;

use crate::error::ResponseError;
use crate::output::{Flush, JobRef, Output};

/// The request chunks of one job, in order, as the node sends them.
///
/// Iterating blocks until the next chunk arrives and ends at the node's end of request
/// (`[5]`), or when the job is cancelled.
#[derive(Debug)]
pub struct RequestStream {
    chunks: Receiver<Vec<u8>>,
    meta: JobMeta,
    event: String,
}

impl RequestStream {
    pub(crate) fn new(chunks: Receiver<Vec<u8>>, meta: JobMeta, event: String) -> Self {
        RequestStream {
            chunks,
            meta,
            event,
        }
    }

    /// The event this job handles (what a fallback handler dispatches on).
    pub fn event(&self) -> &str {
        &self.event
    }

    /// What the node said about the job: urgency, time left, user, peer, task.
    pub fn meta(&self) -> &JobMeta {
        &self.meta
    }
}

impl Iterator for RequestStream {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        self.chunks.recv().ok()
    }
}

/// The reply of one job. Each [`write`](Self::write) goes to the node at once.
///
/// If the handler returns `Ok(())` without [`close`](Self::close), the reply is closed for
/// it; if it returns `Err`, that error is sent unless the reply already ended.
#[derive(Debug)]
pub struct Response {
    output: Arc<Output>,
    job: JobRef,
    closed: bool,
}

impl Response {
    pub(crate) fn new(output: Arc<Output>, job: JobRef) -> Self {
        Response {
            output,
            job,
            closed: false,
        }
    }

    /// Sends one reply chunk.
    ///
    /// # Errors
    ///
    /// [`ResponseError::Cancelled`] once the node cancelled the job (stop working on it),
    /// [`ResponseError::Closed`] after [`close`](Self::close) or [`error`](Self::error),
    /// [`ResponseError::TooLarge`] if the chunk is over the node's max-message (the job
    /// then ended with 413), [`ResponseError::Io`] if the channel to the node broke.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), ResponseError> {
        self.check_open()?;
        self.output.chunk(self.job, chunk)
    }

    /// Ends the reply successfully (`[5]`).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub fn close(&mut self) -> Result<(), ResponseError> {
        self.check_open()?;
        self.closed = true;
        self.output.finish::<&[u8]>(self.job, &[], Flush::Now)
    }

    /// Ends the reply with an error (`[6, sid, code, message]`).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub fn error(&mut self, code: u32, message: &str) -> Result<(), ResponseError> {
        self.check_open()?;
        self.closed = true;
        self.output.fail(self.job, code, message, Flush::Now)
    }

    /// Whether the node cancelled the job (or it ended): the handler should stop.
    pub fn is_cancelled(&self) -> bool {
        self.output.is_cancelled(self.job)
    }

    fn check_open(&self) -> Result<(), ResponseError> {
        if self.closed {
            Err(ResponseError::Closed)
        } else {
            Ok(())
        }
    }
}
