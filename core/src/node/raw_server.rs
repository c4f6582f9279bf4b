//! raw-server (PROTOCOL.md §5): plain TCP connections whose requests are lines, length
//! frames, or the whole connection (`stream`).
//!
//! A redeploy hands the connections over to the new version's driver: a connection's
//! earlier requests may still run on the old version while its later ones go to the new
//! one. Each connection keeps the framing and limits it was accepted with. Replies leave in the order of the requests: a reply that is ready before
//! an earlier one waits for it. A connection whose client leaves (end of file in `line` and
//! `length`, a reset in any framing) has its jobs cancelled and gets nothing more.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::driver::{Binding, Cx, Driver, DriverInput, Handover, Job, JobRef};
use super::io::{Output, SocketKind};
use crate::codec::raw::{self, RequestDecoder};
use crate::engine::{JobPolicy, Origin, ReplyEvent, ReplyMode};
use crate::ids::{ConnId, EndpointId, IdMap};
use crate::manifest::keys::{endpoint, max_message, value, Ctx, Obj, Problems, Role};
use crate::manifest::{Framing, Task, TaskKind, DEFAULT_MAX_LINE, DEFAULT_REPLY_LIMIT};
use crate::process::LogLevel;
use crate::status::{self, Failure};

#[derive(Debug)]
struct Conn {
    endpoint: EndpointId,
    framing: Framing,
    /// Cuts requests out of `line` and `length` streams; `None` for `stream`.
    decoder: Option<RequestDecoder>,
    /// `stream`: the most request bytes the connection may send.
    max_message: usize,
    /// `stream`: request bytes so far.
    received: usize,
    peer: String,
    /// The next request's place.
    next_seq: u64,
    /// The place of the next reply to write.
    next_write: u64,
    /// Requests without a written reply, by place: the job while it runs, the reply once
    /// there is one.
    pending: BTreeMap<u64, Pending>,
    /// No more requests are taken; the connection closes once `pending` is written.
    closing: bool,
}

#[derive(Debug, Default)]
struct Pending {
    job: Option<JobRef>,
    reply: Option<Bytes>,
}

fn ready(reply: Bytes) -> Pending {
    Pending {
        job: None,
        reply: Some(reply),
    }
}

/// The connections a driver holds, and its jobs' tokens: (connection, request place).
#[derive(Debug, Default)]
struct Conns {
    conns: IdMap<ConnId, Conn>,
    tokens: IdMap<u64, (ConnId, u64)>,
}

#[derive(Debug)]
pub(super) struct RawServer {
    endpoint: String,
    framing: Framing,
    max_line: usize,
    max_message: usize,
    held: Conns,
}

const FRAMINGS: &[(&str, Framing)] = &[
    ("line", Framing::Line),
    ("length", Framing::Length),
    ("stream", Framing::Stream),
];

/// raw-server: `endpoint` (bound, TCP only), `framing` (required), `max-line` (line framing
/// only), `max-message`.
pub(crate) fn parse(o: &mut Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> TaskKind {
    let endpoint = endpoint(o, Role::Bind, p);
    // A raw server is a plain TCP listener, so ZeroMQ's other transports do not apply.
    if !endpoint.is_empty() && !endpoint.starts_with("tcp://") {
        p.add(
            o.at("endpoint"),
            "a raw-server listens on TCP only: use tcp://HOST:PORT",
        );
    }
    let framing = o.req("framing", p, |v, at, p| value::choice(v, at, FRAMINGS, p));
    let max_line = o.int("max-line", 1, p);
    if max_line.is_some() && framing.is_some_and(|f| f != Framing::Line) {
        p.add(
            o.at("max-line"),
            "max-line applies only to framing \"line\"",
        );
    }
    TaskKind::RawServer {
        endpoint,
        framing: framing.unwrap_or(Framing::Line),
        max_line: max_line.unwrap_or(DEFAULT_MAX_LINE),
        max_message: max_message(o, ctx, p),
    }
}

pub(super) fn make(task: &Task) -> Option<Box<dyn Driver>> {
    let TaskKind::RawServer {
        endpoint,
        framing,
        max_line,
        max_message,
    } = &task.kind
    else {
        return None;
    };
    Some(Box::new(RawServer {
        endpoint: endpoint.clone(),
        framing: *framing,
        max_line: *max_line,
        max_message: *max_message,
        held: Conns::default(),
    }))
}

impl Driver for RawServer {
    fn binding(&self) -> Option<Binding> {
        Some(Binding::new(SocketKind::Tcp, &self.endpoint))
    }

    fn handle(&mut self, cx: &mut Cx<'_>, input: DriverInput) {
        match input {
            DriverInput::Accepted {
                endpoint,
                conn,
                peer,
            } => self.accepted(cx, endpoint, conn, peer),
            DriverInput::ConnData { conn, bytes } => self.data(cx, conn, bytes),
            DriverInput::ConnEof { conn } => self.eof(cx, conn),
            // The connection is gone: its jobs are cancelled.
            DriverInput::ConnClosed { conn } => self.forget(cx, conn),
            DriverInput::Unbound { endpoint } => {
                let mut gone: Vec<ConnId> = (self.held.conns.iter())
                    .filter(|(_, c)| c.endpoint == endpoint)
                    .map(|(id, _)| *id)
                    .collect();
                gone.sort_unstable();
                for conn in gone {
                    self.forget(cx, conn);
                    cx.close_conn(conn);
                }
            }
            _ => {}
        }
    }

    fn reply(&mut self, cx: &mut Cx<'_>, token: u64, event: ReplyEvent) {
        let Some((conn, seq)) = self.held.tokens.get(&token).copied() else {
            return; // the client left; nothing is written after
        };
        if event.is_terminal() {
            self.held.tokens.remove(&token);
        }
        self.deliver(cx, conn, seq, event);
    }

    /// Connections move, with their requests' tokens.
    fn hand_over(&mut self, _cx: &mut Cx<'_>) -> Option<Handover> {
        Some(Box::new(std::mem::take(&mut self.held)))
    }

    fn take_over(&mut self, cx: &mut Cx<'_>, from: Handover) {
        let Ok(held) = from.downcast::<Conns>() else {
            return;
        };
        for &conn in held.conns.keys() {
            // Ours from now on, also once the old version is gone: a reset reported after
            // that must still reach the driver holding the connection.
            cx.own_conn(conn);
        }
        self.held.conns.extend(held.conns);
        self.held.tokens.extend(held.tokens);
    }

    fn job_moved(&mut self, token: u64, to: JobRef) {
        let Some((conn, seq)) = self.held.tokens.get(&token).copied() else {
            return;
        };
        let pending = (self.held.conns.get_mut(&conn)).and_then(|c| c.pending.get_mut(&seq));
        if let Some(p) = pending.filter(|p| p.job.is_some()) {
            p.job = Some(to);
        }
    }

    /// The version is gone: so are the connections it still holds.
    fn close(&mut self, cx: &mut Cx<'_>) {
        let mut all: Vec<ConnId> = self.held.conns.keys().copied().collect();
        all.sort_unstable();
        for conn in all {
            self.forget(cx, conn);
            cx.close_conn(conn);
        }
    }
}

impl RawServer {
    fn accepted(&mut self, cx: &mut Cx<'_>, endpoint: EndpointId, conn: ConnId, peer: String) {
        cx.own_conn(conn);
        let framing = self.framing;
        let limit = match framing {
            Framing::Line => self.max_line,
            Framing::Length | Framing::Stream => self.max_message,
        };
        let c = Conn {
            endpoint,
            framing,
            decoder: RequestDecoder::new(framing, limit),
            max_message: self.max_message,
            received: 0,
            peer,
            next_seq: 0,
            next_write: 0,
            pending: BTreeMap::new(),
            closing: false,
        };
        self.held.conns.insert(conn, c);
        if framing == Framing::Stream {
            // The connection is the job: its bytes stream in as they come.
            match self.submit(cx, conn, 0, None) {
                Ok(job) => {
                    if let Some(c) = self.held.conns.get_mut(&conn) {
                        c.next_seq = 1;
                        c.pending.insert(
                            0,
                            Pending {
                                job: Some(job),
                                reply: None,
                            },
                        );
                    }
                }
                Err(failure) => {
                    let message = format!("raw connection {conn} closed: {failure}");
                    cx.log(LogLevel::Debug, message);
                    self.close_conn(cx, conn);
                }
            }
        }
    }

    fn data(&mut self, cx: &mut Cx<'_>, conn: ConnId, bytes: Bytes) {
        let Some(c) = self.held.conns.get_mut(&conn) else {
            return;
        };
        if c.closing {
            return;
        }
        let Some(decoder) = c.decoder.as_mut() else {
            self.stream_data(cx, conn, bytes);
            return;
        };
        decoder.push(&bytes);
        while self.next_request(cx, conn) {}
        self.flush(cx, conn);
    }

    /// Takes the next whole request out of the connection's bytes; false when there is none
    /// (or no more are taken).
    fn next_request(&mut self, cx: &mut Cx<'_>, conn: ConnId) -> bool {
        let max_open = cx.config().max_open_per_peer;
        let Some(c) = self.held.conns.get_mut(&conn) else {
            return false;
        };
        let Some(decoder) = c.decoder.as_mut() else {
            return false;
        };
        let (framing, seq) = (c.framing, c.next_seq);
        let request = match decoder.next_request() {
            Ok(Some(request)) => request,
            Ok(None) => return false,
            Err(e) => {
                // Framing is lost: answer in turn, then close.
                let reply = raw::error(framing, status::TOO_LARGE, &e.to_string());
                c.next_seq += 1;
                c.closing = true;
                c.pending.insert(seq, ready(reply));
                return false;
            }
        };
        c.next_seq += 1;
        if c.pending.len() >= max_open {
            // A client that sends and never reads would make the node hold its replies
            // without end.
            let message =
                format!("too many requests wait for replies on this connection (limit {max_open})");
            let reply = raw::error(framing, status::UNAVAILABLE, &message);
            c.pending.insert(seq, ready(reply));
            c.closing = true;
            return false;
        }
        let pending = match self.submit(cx, conn, seq, Some(request)) {
            Ok(job) => Pending {
                job: Some(job),
                reply: None,
            },
            Err(f) => ready(raw::error(framing, f.code, &f.message)),
        };
        if let Some(c) = self.held.conns.get_mut(&conn) {
            c.pending.insert(seq, pending);
        }
        true
    }

    fn stream_data(&mut self, cx: &mut Cx<'_>, conn: ConnId, bytes: Bytes) {
        let Some(c) = self.held.conns.get_mut(&conn) else {
            return;
        };
        c.received = c.received.saturating_add(bytes.len());
        let job = c.pending.get(&0).and_then(|p| p.job);
        if c.received > c.max_message {
            let message = format!(
                "raw connection {conn} closed: its request is over the limit of {} bytes",
                c.max_message
            );
            cx.log(LogLevel::Debug, message);
            self.forget(cx, conn);
            cx.close_conn(conn);
            return;
        }
        if let Some(job) = job {
            cx.push_chunk(job, bytes);
        }
    }

    /// The client sends no more: in `stream` that ends the request; otherwise the client
    /// has left.
    fn eof(&mut self, cx: &mut Cx<'_>, conn: ConnId) {
        let Some(c) = self.held.conns.get(&conn) else {
            return;
        };
        if c.framing == Framing::Stream {
            if let Some(job) = c.pending.get(&0).and_then(|p| p.job) {
                cx.end_request(job);
            }
            return;
        }
        self.forget(cx, conn);
        cx.close_conn(conn);
    }

    /// A job's reply event for a connection's request.
    fn deliver(&mut self, cx: &mut Cx<'_>, conn: ConnId, seq: u64, event: ReplyEvent) {
        let Some(c) = self.held.conns.get_mut(&conn) else {
            return; // the client left; nothing is written after
        };
        if c.framing == Framing::Stream {
            self.deliver_stream(cx, conn, event);
            return;
        }
        let reply = match event {
            ReplyEvent::Chunk(_) | ReplyEvent::Head(_) => return, // collected jobs send none
            ReplyEvent::Collected(chunks) => raw::reply(c.framing, &chunks),
            ReplyEvent::End => raw::reply(c.framing, &[]),
            ReplyEvent::Error(f) => raw::error(c.framing, f.code, &f.message),
        };
        if let Some(p) = c.pending.get_mut(&seq) {
            p.job = None;
            p.reply = Some(reply);
        }
        self.flush(cx, conn);
    }

    fn deliver_stream(&mut self, cx: &mut Cx<'_>, conn: ConnId, event: ReplyEvent) {
        match event {
            ReplyEvent::Chunk(data) => {
                cx.out().push_back(Output::ConnSend { conn, bytes: data });
            }
            ReplyEvent::End => self.close_conn(cx, conn),
            ReplyEvent::Head(_) => {} // an HTTP reply head: raw servers have none
            ReplyEvent::Collected(chunks) => {
                let bytes = raw::reply(Framing::Stream, &chunks);
                cx.out().push_back(Output::ConnSend { conn, bytes });
                self.close_conn(cx, conn);
            }
            ReplyEvent::Error(failure) => {
                let message = format!("raw connection {conn} closed after an error: {failure}");
                cx.log(LogLevel::Debug, message);
                self.close_conn(cx, conn);
            }
        }
    }

    fn submit(
        &mut self,
        cx: &mut Cx<'_>,
        conn: ConnId,
        seq: u64,
        body: Option<Bytes>,
    ) -> Result<JobRef, Failure> {
        let peer = self.held.conns.get(&conn).map(|c| c.peer.clone());
        let mode = match body {
            Some(_) => ReplyMode::Collect {
                limit: DEFAULT_REPLY_LIMIT,
            },
            None => ReplyMode::Stream,
        };
        let job = Job {
            event: None,
            policy: JobPolicy::default(),
            mode,
            origin: peer.map(|peer| {
                Box::new(Origin {
                    user: None,
                    peer: Some(peer),
                    http: None,
                })
            }),
            body: body.map(|b| vec![b]),
        };
        let token = cx.token();
        let job = cx.submit(token, job)?;
        self.held.tokens.insert(token, (conn, seq));
        Ok(job)
    }

    /// Writes the replies that are next in order; closes a closing connection once all are.
    fn flush(&mut self, cx: &mut Cx<'_>, conn: ConnId) {
        let Some(c) = self.held.conns.get_mut(&conn) else {
            return;
        };
        while let Some(mut entry) = c.pending.first_entry() {
            if *entry.key() != c.next_write {
                break;
            }
            let Some(bytes) = entry.get_mut().reply.take() else {
                break;
            };
            entry.remove();
            c.next_write += 1;
            cx.out().push_back(Output::ConnSend { conn, bytes });
        }
        if c.closing && c.pending.is_empty() {
            self.close_conn(cx, conn);
        }
    }

    /// Forgets a connection whose jobs are all done, and closes it.
    fn close_conn(&mut self, cx: &mut Cx<'_>, conn: ConnId) {
        self.drop_conn(conn);
        cx.close_conn(conn);
    }

    fn drop_conn(&mut self, conn: ConnId) -> Option<Conn> {
        self.held.tokens.retain(|_, (c, _)| *c != conn);
        self.held.conns.remove(&conn)
    }

    /// Forgets a connection, cancelling its jobs (their replies then find no connection).
    fn forget(&mut self, cx: &mut Cx<'_>, conn: ConnId) {
        let Some(c) = self.drop_conn(conn) else {
            return;
        };
        let mut cancelled = 0;
        for job in c.pending.values().filter_map(|p| p.job) {
            if cx.cancel(job) {
                cancelled += 1;
            }
        }
        if cancelled > 0 {
            let message = format!(
                "raw connection {conn} ({}): {cancelled} job(s) cancelled",
                c.peer
            );
            cx.log(LogLevel::Debug, message);
        }
    }
}
