//! One HTTP connection: requests in as they are read, replies out strictly in request order.
//!
//! Requests are numbered (`seq`) in the order they arrive. Several may be in flight at once
//! (pipelining, up to [`MAX_IN_FLIGHT`]); the reply to a later one waits in memory until
//! every earlier reply is written. A reply's head is written once its framing is known: when
//! the reply ends (one `Content-Length` for all of it) or when a second chunk arrives
//! (chunked for HTTP/1.1, close-delimited for HTTP/1.0).
//!
//! Every method returns the events the driver must act on; bytes to write accumulate in the
//! connection until [`HttpConn::take_output`], and once [`HttpConn::is_closed`] says so the
//! driver writes what is left and closes the socket.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};

use super::body::BodyDecoder;
use super::config::HttpConfig;
use super::request::{find_head_end, parse_head, BodyLength, RequestHead, Version};
use super::response;
use super::slot::{write_slot, Fate, Progress, Slot};
use super::{HttpMeta, Reject, ReplyHead};
use crate::engine::Origin;

/// Most requests one connection may have in flight; past it, the connection reads no
/// further request until a reply is written.
pub const MAX_IN_FLIGHT: usize = 16;

/// A request that became a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The request's number on its connection, from 0.
    pub seq: u64,
    /// The event to submit: the route's, or the task's name.
    pub event: Arc<str>,
    pub head: RequestHead,
}

impl Request {
    /// The job's `meta.http`.
    pub fn meta(&self) -> HttpMeta {
        super::meta::http_meta(&self.head)
    }

    /// The job's origin (`peer` and `meta.http` for the worker).
    pub fn origin(&self, peer: Option<String>) -> Origin {
        super::meta::origin(&self.head, peer)
    }

    /// [`Request::origin`], taking the head instead of copying it.
    pub fn into_origin(self, peer: Option<String>) -> Origin {
        Origin {
            user: None,
            peer,
            http: Some(super::meta::into_http_meta(self.head)),
        }
    }
}

/// What the driver must do after a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpEvent {
    /// Submit a job for this request; its body follows as `BodyChunk`s and a `RequestEnd`.
    Request(Box<Request>),
    /// A piece of request `seq`'s body: push it to the job.
    BodyChunk { seq: u64, bytes: Bytes },
    /// Request `seq`'s body is complete: end the job's request.
    RequestEnd { seq: u64 },
    /// Cancel request `seq`'s job: its reply will not be written (the client left, or its
    /// body turned out malformed or too large).
    Cancel { seq: u64 },
    /// The connection answered request `seq` itself with an error status (for logs and
    /// stats; nothing to do).
    Rejected {
        seq: u64,
        status: u16,
        reason: &'static str,
    },
}

/// What the reading side is doing.
#[derive(Debug)]
enum Reading {
    /// Waiting for a request head.
    Head,
    /// Reading request `seq`'s body; `deliver` is false when no job wants it (404).
    Body {
        seq: u64,
        decoder: BodyDecoder,
        deliver: bool,
        keep_alive: bool,
    },
    /// No further request is read on this connection.
    Stopped,
}

/// One client connection of an http-server task.
#[derive(Debug)]
pub struct HttpConn {
    config: Arc<HttpConfig>,
    task: Arc<str>,
    input: BytesMut,
    /// How much of `input` was already searched for the end of a head.
    scanned: usize,
    reading: Reading,
    /// Since when the connection waits for a head (for `header-timeout`).
    waiting_since: Instant,
    next_seq: u64,
    slots: VecDeque<Slot>,
    output: BytesMut,
    closed: bool,
}

impl HttpConn {
    /// A connection accepted at `now` for the http-server task named `task`.
    pub fn new(config: Arc<HttpConfig>, task: Arc<str>, now: Instant) -> Self {
        HttpConn {
            config,
            task,
            input: BytesMut::new(),
            scanned: 0,
            reading: Reading::Head,
            waiting_since: now,
            next_seq: 0,
            slots: VecDeque::new(),
            output: BytesMut::new(),
            closed: false,
        }
    }

    /// New settings after a redeploy: requests read from now on use them (routes, limits,
    /// timeout); requests in flight keep their jobs and their place in line.
    pub fn reconfigure(&mut self, config: Arc<HttpConfig>, task: Arc<str>) {
        self.config = config;
        self.task = task;
    }

    /// Bytes read from the client, in any split.
    pub fn feed(&mut self, data: &[u8], now: Instant) -> Vec<HttpEvent> {
        let mut events = Vec::new();
        if self.closed || matches!(self.reading, Reading::Stopped) {
            return events;
        }
        self.input.extend_from_slice(data);
        self.read(now, &mut events);
        self.pump(now, &mut events);
        events
    }

    /// The client closed its side (or the socket failed): every job still owed a reply is
    /// cancelled, and the connection is closed.
    pub fn eof(&mut self) -> Vec<HttpEvent> {
        let mut events = Vec::new();
        self.close(&mut events);
        events
    }

    /// When the header timeout fires, if it is armed: while the connection waits for a head
    /// that has started, or idles with no request in flight.
    pub fn header_deadline(&self) -> Option<Instant> {
        if self.closed || !matches!(self.reading, Reading::Head) {
            return None;
        }
        // The client is waiting for us, not we for it: replies are owed and no head has
        // started, or the pipeline is full and buffered heads wait for room.
        if (self.input.is_empty() && !self.slots.is_empty()) || self.slots.len() >= MAX_IN_FLIGHT {
            return None;
        }
        Some(crate::time::after(
            self.waiting_since,
            self.config.header_timeout,
        ))
    }

    /// Call when [`header_deadline`](Self::header_deadline) has passed. A half-sent head gets
    /// 408 and the connection closes; an idle connection just closes; with replies still
    /// owed, no further request is read and the connection closes after them.
    pub fn timeout(&mut self, now: Instant) -> Vec<HttpEvent> {
        let mut events = Vec::new();
        if self.header_deadline().is_none_or(|d| d > now) {
            return events;
        }
        if self.slots.is_empty() && !self.input.is_empty() {
            let seq = self.take_seq();
            let reason = "request head not received in time";
            events.push(HttpEvent::Rejected {
                seq,
                status: 408,
                reason,
            });
            response::encode_error(&mut self.output, 408, reason, false, Some("close"));
        }
        self.stop_reading();
        self.pump(now, &mut events);
        events
    }

    /// The job of request `seq` set its status and headers. Ignored once the reply has
    /// started (a chunk came first) or if it already has a head.
    pub fn reply_head(&mut self, seq: u64, head: ReplyHead, now: Instant) -> Vec<HttpEvent> {
        if let Some(slot) = self.job_slot(seq) {
            if slot.head.is_none() && slot.len == 0 && slot.started.is_none() {
                slot.head = Some(head);
            }
        }
        self.after_reply(now)
    }

    /// A reply chunk from request `seq`'s job.
    pub fn reply_chunk(&mut self, seq: u64, bytes: Bytes, now: Instant) -> Vec<HttpEvent> {
        if let Some(slot) = self.job_slot(seq) {
            slot.len += bytes.len() as u64;
            if !slot.head_only && !bytes.is_empty() {
                slot.chunks.push_back(bytes);
            }
        }
        self.after_reply(now)
    }

    /// Request `seq`'s job ended well.
    pub fn reply_end(&mut self, seq: u64, now: Instant) -> Vec<HttpEvent> {
        if let Some(slot) = self.job_slot(seq) {
            slot.ended = true;
            slot.job = false;
        }
        self.after_reply(now)
    }

    /// Request `seq`'s job failed with an engine error `code`: an error response, or, when
    /// the reply has already started or the code is 499 (cancelled), the connection closes
    /// once earlier replies are out.
    pub fn reply_error(
        &mut self,
        seq: u64,
        code: u32,
        message: &str,
        now: Instant,
    ) -> Vec<HttpEvent> {
        if let Some(slot) = self.job_slot(seq) {
            slot.job = false;
            slot.fate = match response::status_for_code(code) {
                Some(status) if slot.started.is_none() => Fate::Error {
                    status,
                    message: message.to_owned(),
                },
                _ => Fate::Abort,
            };
        }
        self.after_reply(now)
    }

    /// Bytes to write to the client now.
    pub fn take_output(&mut self) -> Bytes {
        self.output.split().freeze()
    }

    /// Whether the driver should close the socket once it has written [`take_output`]'s bytes.
    ///
    /// [`take_output`]: Self::take_output
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether reading more from the client is useful now; false while the pipeline is full
    /// (read again after the next reply) and once no further request will be read.
    pub fn wants_read(&self) -> bool {
        !self.closed
            && match self.reading {
                Reading::Head => self.slots.len() < MAX_IN_FLIGHT,
                Reading::Body { .. } => true,
                Reading::Stopped => false,
            }
    }

    /// Whether the pipeline is full and the next request head must wait for a reply: the
    /// time to stop reading the socket, so a client that pipelines without end fills its own
    /// buffers rather than the node's memory.
    pub fn pipeline_full(&self) -> bool {
        !self.closed && matches!(self.reading, Reading::Head) && self.slots.len() >= MAX_IN_FLIGHT
    }

    /// Requests whose jobs still owe a reply.
    pub fn in_flight(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots.iter().filter(|s| s.job).map(|s| s.seq)
    }

    fn job_slot(&mut self, seq: u64) -> Option<&mut Slot> {
        if self.closed {
            return None;
        }
        self.slots.iter_mut().find(|s| s.seq == seq && s.job)
    }

    fn after_reply(&mut self, now: Instant) -> Vec<HttpEvent> {
        let mut events = Vec::new();
        self.pump(now, &mut events);
        // A reply may have made room in a full pipeline: read what is buffered.
        if !self.closed {
            self.read(now, &mut events);
            self.pump(now, &mut events);
        }
        events
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    // -- reading -----------------------------------------------------------------------------

    fn read(&mut self, now: Instant, events: &mut Vec<HttpEvent>) {
        loop {
            let progressed = match self.reading {
                Reading::Head => self.read_head(events),
                Reading::Body { .. } => self.read_body(now, events),
                Reading::Stopped => false,
            };
            if !progressed {
                return;
            }
        }
    }

    /// Parses one head if a whole one is buffered; whether it did.
    fn read_head(&mut self, events: &mut Vec<HttpEvent>) -> bool {
        if self.input.is_empty() || self.slots.len() >= MAX_IN_FLIGHT {
            return false;
        }
        let max = self.config.max_header;
        let Some(end) = find_head_end(&self.input, self.scanned) else {
            self.scanned = self.input.len();
            if self.input.len() > max {
                self.reject(Reject::new(431, "request head too large"), events);
            }
            return false;
        };
        if end > max {
            self.reject(Reject::new(431, "request head too large"), events);
            return false;
        }
        match parse_head(&self.input[..end]) {
            Ok(Some((head, len))) => {
                self.input.advance(len);
                self.scanned = 0;
                self.start_request(head, events);
                true
            }
            // Blank lines before a request line: look for the next empty line.
            Ok(None) => {
                self.scanned = end;
                true
            }
            Err(reject) => {
                self.reject(reject, events);
                false
            }
        }
    }

    fn start_request(&mut self, head: RequestHead, events: &mut Vec<HttpEvent>) {
        let config = Arc::clone(&self.config);
        if let BodyLength::Length(n) = head.body {
            if n > config.max_body as u64 {
                self.reject(Reject::new(413, "request body too large"), events);
                return;
            }
        }
        let seq = self.take_seq();
        let mut slot = Slot::new(seq, head.version, head.keep_alive);
        slot.head_only = head.method == "HEAD";
        let has_body = head.body != BodyLength::Length(0);
        let mut keep_reading = head.keep_alive;
        let event = config.event_for(&head.path, &self.task).cloned();
        match &event {
            Some(_) => {
                slot.job = true;
                slot.want_continue = head.expect_continue && has_body;
            }
            None => {
                let reason = "no route for this path";
                slot.fate = Fate::Error {
                    status: 404,
                    message: reason.to_owned(),
                };
                events.push(HttpEvent::Rejected {
                    seq,
                    status: 404,
                    reason,
                });
                // The client waits for 100 Continue before its body, and never gets it: the
                // connection cannot tell whether a body follows, so it ends here.
                if head.expect_continue && has_body {
                    slot.keep_alive = false;
                    keep_reading = false;
                }
            }
        }
        let decoder = BodyDecoder::new(head.body, config.max_body, config.max_header);
        let deliver = event.is_some();
        self.slots.push_back(slot);
        if let Some(event) = event {
            events.push(HttpEvent::Request(Box::new(Request { seq, event, head })));
        }
        self.reading = if keep_reading || deliver {
            Reading::Body {
                seq,
                decoder,
                deliver,
                keep_alive: keep_reading,
            }
        } else {
            Reading::Stopped
        };
        if !keep_reading && !deliver {
            self.input.clear();
        }
    }

    /// Takes what it can of the current body; whether the body ended.
    fn read_body(&mut self, now: Instant, events: &mut Vec<HttpEvent>) -> bool {
        let Reading::Body {
            seq,
            decoder,
            deliver,
            keep_alive,
        } = &mut self.reading
        else {
            return false;
        };
        let (seq, deliver, keep_alive) = (*seq, *deliver, *keep_alive);
        let mut chunks = Vec::new();
        let result = decoder.decode(&mut self.input, &mut chunks);
        if deliver {
            events.extend(
                chunks
                    .into_iter()
                    .filter(|b| !b.is_empty())
                    .map(|bytes| HttpEvent::BodyChunk { seq, bytes }),
            );
        }
        match result {
            Ok(true) => {}
            Ok(false) => return false,
            Err(reject) => {
                self.body_failed(seq, reject, events);
                return false;
            }
        }
        if deliver {
            events.push(HttpEvent::RequestEnd { seq });
        }
        if keep_alive {
            self.reading = Reading::Head;
            self.waiting_since = now;
        } else {
            self.stop_reading();
        }
        true
    }

    /// A malformed or oversized head: answered with its status, then the connection closes.
    fn reject(&mut self, reject: Reject, events: &mut Vec<HttpEvent>) {
        let seq = self.take_seq();
        let mut slot = Slot::new(seq, Version::Http11, false);
        slot.fate = Fate::Error {
            status: reject.status,
            message: reject.reason.to_owned(),
        };
        self.slots.push_back(slot);
        events.push(HttpEvent::Rejected {
            seq,
            status: reject.status,
            reason: reject.reason,
        });
        self.stop_reading();
    }

    /// A body went wrong after its job was submitted: the job is cancelled, the reply is the
    /// error if nothing of it was written yet, and the connection closes.
    fn body_failed(&mut self, seq: u64, reject: Reject, events: &mut Vec<HttpEvent>) {
        self.stop_reading();
        events.push(HttpEvent::Rejected {
            seq,
            status: reject.status,
            reason: reject.reason,
        });
        if let Some(slot) = self.slots.iter_mut().find(|s| s.seq == seq) {
            if slot.job {
                slot.job = false;
                events.push(HttpEvent::Cancel { seq });
            }
            slot.keep_alive = false;
            slot.fate = if slot.started.is_none() {
                Fate::Error {
                    status: reject.status,
                    message: reject.reason.to_owned(),
                }
            } else {
                Fate::Abort
            };
        }
    }

    fn stop_reading(&mut self) {
        self.reading = Reading::Stopped;
        self.input.clear();
    }

    // -- writing -----------------------------------------------------------------------------

    /// Writes what the front replies allow, in order; closes when nothing more will come.
    fn pump(&mut self, now: Instant, events: &mut Vec<HttpEvent>) {
        while !self.closed {
            let Some(slot) = self.slots.front_mut() else {
                break;
            };
            match write_slot(slot, &mut self.output) {
                Progress::Waiting => break,
                Progress::Finished { close: false } => {
                    self.slots.pop_front();
                    if self.slots.is_empty() && self.input.is_empty() {
                        self.waiting_since = now;
                    }
                }
                Progress::Finished { close: true } => {
                    self.slots.pop_front();
                    self.close(events);
                }
            }
        }
        if !self.closed && self.slots.is_empty() && matches!(self.reading, Reading::Stopped) {
            self.closed = true;
        }
    }

    fn close(&mut self, events: &mut Vec<HttpEvent>) {
        if self.closed {
            return;
        }
        self.closed = true;
        events.extend(self.in_flight().map(|seq| HttpEvent::Cancel { seq }));
        self.slots.clear();
        self.reading = Reading::Stopped;
        self.input.clear();
    }
}
